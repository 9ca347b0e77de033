;;; neuraldbg.el --- neuraldbg (neural debugger) for Emacs through eglot -*- lexical-binding: t -*-

;; Version: 0.1.0
;; Package-Requires: ((emacs "28.1") (eglot "1.9"))
;; Keywords: languages, tools

;;; Commentary:

;; Connects eglot to the neuraldbg language server for Python buffers:
;; hovers with the values names take, diagnostics, code actions ("Fill
;; hole"), code lenses' commands, the server's `neuraldbg/status'
;; notification in the mode line, and `neuraldbg-trace-view': the trace of
;; the function at point as a table (RET on a row goes to its line).
;;
;;   (add-to-list 'load-path "/path/to/neuraldbg/editor-clients/emacs")
;;   (require 'neuraldbg)
;;   (setq neuraldbg-server-command '("neuraldbg" "serve"))
;;   (setq neuraldbg-settings '(:backend "exec" :allowExecution t))
;;   (neuraldbg-setup)
;;
;; then `M-x eglot' in a Python buffer (or `eglot-ensure' from
;; `python-mode-hook').  Settings are those of lsp/README.md; they are sent
;; as initializationOptions and answered to workspace/configuration.

;;; Code:

(require 'eglot)
(require 'cl-lib)
(require 'tabulated-list)
(require 'python)

(defgroup neuraldbg nil
  "The neuraldbg neural debugger."
  :group 'tools
  :prefix "neuraldbg-")

(defcustom neuraldbg-server-command '("neuraldbg" "serve")
  "Command line that starts the neuraldbg language server (LSP over stdio)."
  :type '(repeat string))

(defcustom neuraldbg-settings '(:backend "exec" :allowExecution :json-false)
  "Settings for the server, a plist with the keys of lsp/README.md.
Use t and :json-false for booleans.  Set :allowExecution to t only in
projects you trust: the server then runs their code."
  :type 'plist)

(defcustom neuraldbg-modes '(python-mode python-ts-mode)
  "Major modes served by neuraldbg."
  :type '(repeat symbol))

(defvar neuraldbg-status nil
  "The latest `neuraldbg/status' payload, a plist (:state :backend :message :queue ...).")

(defvar neuraldbg-status-hook nil
  "Functions called with the status plist each time the server sends one.")

(defclass neuraldbg-eglot-server (eglot-lsp-server) ()
  :documentation "The neuraldbg language server.")

(cl-defmethod eglot-initialization-options ((_server neuraldbg-eglot-server))
  "Send `neuraldbg-settings' as initializationOptions."
  neuraldbg-settings)

(cl-defmethod eglot-handle-notification ((_server neuraldbg-eglot-server) (_method (eql neuraldbg/status))
                                         &rest params)
  "Keep the server's status for the mode line and `neuraldbg-status-hook'."
  (setq neuraldbg-status params)
  (run-hook-with-args 'neuraldbg-status-hook params)
  (force-mode-line-update t))

(defun neuraldbg-mode-line ()
  "A short mode-line string for the server status."
  (when neuraldbg-status
    (format " ndbg:%s" (plist-get neuraldbg-status :state))))

(defun neuraldbg-workspace-configuration (_server)
  "The workspace/configuration answer: section neuraldbg."
  (list :neuraldbg neuraldbg-settings))

(defun neuraldbg--server ()
  (let ((server (eglot-current-server)))
    (unless (cl-typep server 'neuraldbg-eglot-server)
      (user-error "No neuraldbg server in this buffer (M-x eglot)"))
    server))

(defun neuraldbg-trace (function &optional call)
  "Return the trace of FUNCTION (with CALL, else its own input) as a plist."
  (interactive (list (read-string "Function: ") nil))
  (let ((result (jsonrpc-request (neuraldbg--server) :neuraldbg/trace
                                 (append (list :uri (eglot--path-to-uri (buffer-file-name))
                                               :function function)
                                         (when call (list :call call))))))
    (when (called-interactively-p 'interactive)
      (with-current-buffer (get-buffer-create "*neuraldbg trace*")
        (erase-buffer)
        (insert (jsonrpc--json-encode result))
        (pop-to-buffer (current-buffer))))
    result))

;;;; The trace view: a tabulated list of frames

(defface neuraldbg-trace-new '((t :inherit diff-added))
  "A local that a frame binds for the first time in its call.")
(defface neuraldbg-trace-changed '((t :inherit diff-changed))
  "A local whose value changed since the previous frame of its call.")
(defface neuraldbg-trace-removed '((t :inherit diff-removed))
  "A local that is no longer bound.")
(defface neuraldbg-trace-divergence '((t :inherit warning))
  "The first frame where a prediction leaves the real run.")

(defvar-local neuraldbg-trace--source nil
  "The source buffer of this trace view.")

(defun neuraldbg-trace--locals (frame)
  "FRAME's locals as a sorted alist of (NAME . VALUE) strings."
  (let ((plist (plist-get frame :locals)) out)
    (while plist
      (push (cons (substring (symbol-name (car plist)) 1) (cadr plist)) out)
      (setq plist (cddr plist)))
    (sort out (lambda (a b) (string< (car a) (car b))))))

(defun neuraldbg-trace--previous (frames i)
  "The previous frame of the same call as frame I of FRAMES, or nil."
  (let ((depth (plist-get (aref frames i) :depth)) found)
    (unless (equal (plist-get (aref frames i) :event) "call")
      (cl-loop for j downfrom (1- i) to 0
               for d = (plist-get (aref frames j) :depth)
               do (cond ((< d depth) (cl-return))
                        ((= d depth) (setq found (aref frames j)) (cl-return)))))
    found))

(defun neuraldbg-trace-changes (frames i)
  "The locals of frame I of FRAMES that are new, changed or removed.
A list of (KIND NAME VALUE BEFORE)."
  (let* ((prev (neuraldbg-trace--previous frames i))
         (before (and prev (neuraldbg-trace--locals prev)))
         (now (neuraldbg-trace--locals (aref frames i)))
         out)
    (dolist (cell now)
      (let ((old (assoc (car cell) before)))
        (cond ((or (null prev) (null old)) (push (list 'new (car cell) (cdr cell) nil) out))
              ((not (equal (cdr old) (cdr cell))) (push (list 'changed (car cell) (cdr cell) (cdr old)) out)))))
    (dolist (cell before)
      (unless (assoc (car cell) now)
        (push (list 'removed (car cell) "" (cdr cell)) out)))
    (nreverse out)))

(defun neuraldbg-trace--changes-text (frames i)
  "The locals column of frame I: +new ~changed -removed, each in its face."
  (mapconcat
   (lambda (change)
     (pcase-let ((`(,kind ,name ,value ,before) change))
       (pcase kind
         ('new (propertize (format "+%s=%s" name value) 'face 'neuraldbg-trace-new))
         ('changed (propertize (format "~%s=%s" name value) 'face 'neuraldbg-trace-changed))
         (_ (propertize (format "-%s (was %s)" name before) 'face 'neuraldbg-trace-removed)))))
   (neuraldbg-trace-changes frames i) " "))

(defun neuraldbg-trace--event (frame)
  (let ((event (plist-get frame :event)) (depth (plist-get frame :depth)))
    (concat (apply #'concat (make-list depth "· "))
            (if (member event '("return" "exception"))
                (format "%s %s" event (or (plist-get frame :value) "None"))
              event)
            (if (> depth 0) (format " (%s)" (plist-get frame :function)) ""))))

(defun neuraldbg-trace--percent (p)
  (cond ((not (numberp p)) "")
        ((>= p 0.995) "100%")
        ((< p 0.0001) "<0.01%")
        ((< p 0.1) (format "%.2f%%" (* 100 p)))
        (t (format "%.0f%%" (* 100 p)))))

(defun neuraldbg-trace-entries (result)
  "The `tabulated-list-entries' of a neuraldbg/trace RESULT.
RESULT was asked with :compare t.  Each entry's id is (STEP . LINE)."
  (let* ((frames (plist-get result :frames))
         (comparison (plist-get result :comparison))
         (executed (plist-get comparison :executed))
         (exec-frames (and executed (plist-get executed :frames)))
         (divergence (plist-get comparison :divergence))
         (div-step (and divergence (plist-get divergence :step)))
         (confidence (plist-get comparison :confidence))
         (n (max (length frames) (length exec-frames)))
         entries)
    (dotimes (i n)
      (let* ((frame (and (< i (length frames)) (aref frames i)))
             (real (and exec-frames (< i (length exec-frames)) (aref exec-frames i)))
             (line (plist-get (or frame real) :line))
             (mark (if (eql div-step i) (propertize "!" 'face 'neuraldbg-trace-divergence) ""))
             (cols (list (concat mark (number-to-string i))
                         (if frame (neuraldbg-trace--event frame) "")
                         (if frame (number-to-string (plist-get frame :line)) "")
                         (if frame (neuraldbg-trace--changes-text frames i) ""))))
        (when exec-frames
          (setq cols (append cols (list (if real (neuraldbg-trace--event real) "")
                                        (if real (number-to-string (plist-get real :line)) "")
                                        (if real (neuraldbg-trace--changes-text exec-frames i) "")))))
        (when confidence
          (setq cols (append cols (list (neuraldbg-trace--percent (and (< i (length confidence)) (aref confidence i)))))))
        (push (list (cons i line) (vconcat cols)) entries)))
    (nreverse entries)))

(defun neuraldbg-trace-format (result)
  "The `tabulated-list-format' for RESULT.
With the executed and confidence columns when RESULT has them."
  (let* ((comparison (plist-get result :comparison))
         (executed (plist-get comparison :executed))
         (left (if (eq (plist-get comparison :predicted) t) "Predicted" "Event")))
    (vconcat (list '("Step" 5 nil :right-align t) (list left 22 nil) '("Line" 5 nil :right-align t)
                   (list "Locals changed" (if executed 36 60) nil))
             (when executed '(("Executed" 22 nil) ("Line" 5 nil :right-align t) ("Locals changed" 36 nil)))
             (when (plist-get comparison :confidence) '(("Confidence" 10 nil :right-align t))))))

(defvar neuraldbg-trace-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map (kbd "RET") #'neuraldbg-trace-goto)
    map)
  "Keys of the trace view: RET goes to the frame's line.")

(define-derived-mode neuraldbg-trace-mode tabulated-list-mode "neuraldbg-trace"
  "The frames of a neuraldbg trace, one row each; RET goes to the frame's line.")

(defun neuraldbg-trace-goto ()
  "Put point on the line of the frame at point, in its source buffer."
  (interactive)
  (let ((id (tabulated-list-get-id)) (source neuraldbg-trace--source))
    (unless (and id (> (cdr id) 0) (buffer-live-p source))
      (user-error "No source line for this row"))
    (pop-to-buffer source)
    (goto-char (point-min))
    (forward-line (1- (cdr id)))))

(defun neuraldbg-trace-view (function)
  "Show the trace of FUNCTION (default: the one at point) as a table.
Asks neuraldbg/trace with compare, so a prediction shows beside the real run,
its first divergence marked with !, and the model's confidence per frame once
the real run is rated.  Returns the view's buffer."
  (interactive (list (read-string "Function: " (python-info-current-defun))))
  (let* ((source (current-buffer))
         (result (jsonrpc-request (neuraldbg--server) :neuraldbg/trace
                                  (list :uri (eglot--path-to-uri (buffer-file-name))
                                        :function function :compare t)))
         (comparison (plist-get result :comparison))
         (buffer (get-buffer-create (format "*neuraldbg trace: %s*" function))))
    (with-current-buffer buffer
      (neuraldbg-trace-mode)
      (setq neuraldbg-trace--source source)
      (setq tabulated-list-format (neuraldbg-trace-format result))
      (setq tabulated-list-entries (neuraldbg-trace-entries result))
      ;; the column names go above the rows, the header line says what was traced
      (setq tabulated-list-use-header-line nil)
      (tabulated-list-init-header)
      (setq header-line-format
            (concat (format "%s · %s · %d frames (%s)"
                            (let ((call (plist-get result :call))) (if (member call '(nil "")) function call))
                            (plist-get result :backend) (length (plist-get result :frames)) (plist-get result :status))
                    (let ((d (plist-get comparison :divergence))) (if d (concat " · " (plist-get d :message)) ""))
                    (let ((r (plist-get comparison :reason)))
                      (if (and r (eq (plist-get comparison :predicted) t)) (concat " · " r) ""))))
      (tabulated-list-print))
    (when (called-interactively-p 'interactive)
      (pop-to-buffer buffer))
    buffer))

(defun neuraldbg-set-entry (call)
  "Use CALL as the input of the function at point."
  (interactive "sCall (e.g. f(3, 'a')): ")
  (let* ((pos (eglot--pos-to-lsp-position))
         (result (jsonrpc-request (neuraldbg--server) :workspace/executeCommand
                                  (list :command "neuraldbg.setEntry"
                                        :arguments (vector (list :uri (eglot--path-to-uri (buffer-file-name))
                                                                 :position pos
                                                                 :call call))))))
    (unless (eq (plist-get result :ok) t)
      (message "neuraldbg: %s" (plist-get result :error)))
    result))

(defun neuraldbg-debug-adapter-port ()
  "The loopback port of the debug adapter running inside the server.
It runs the program (exec, replay) only if `neuraldbg-settings' has
:allowExecution t; a launch's own :allowExecution cannot turn that on."
  (plist-get (jsonrpc-request (neuraldbg--server) :neuraldbg/debugAdapter eglot--{}) :port))

;;;###autoload
(defun neuraldbg-setup ()
  "Register neuraldbg with eglot for `neuraldbg-modes'."
  (let ((entry (cons (if (cdr neuraldbg-modes) neuraldbg-modes (car neuraldbg-modes))
                     (cons 'neuraldbg-eglot-server neuraldbg-server-command))))
    (setq eglot-server-programs
          (cons entry (cl-remove-if (lambda (e) (and (consp (cdr e)) (eq (cadr e) 'neuraldbg-eglot-server)))
                                     eglot-server-programs))))
  (setq-default eglot-workspace-configuration #'neuraldbg-workspace-configuration)
  (unless (member '(:eval (neuraldbg-mode-line)) global-mode-string)
    (setq global-mode-string (append global-mode-string '((:eval (neuraldbg-mode-line)))))))

(provide 'neuraldbg)
;;; neuraldbg.el ends here
