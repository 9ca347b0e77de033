;;; emacs_e2e.el --- Emacs (batch) driving neuraldbg through eglot and editor-clients/emacs -*- lexical-binding: t -*-
;; emacs --batch -Q -l emacs_e2e.el
;; Environment: NEURALDBG_REPO, NEURALDBG_WORKDIR (a git repository with a
;; copy of examples/), NEURALDBG_PYTHON, NEURALDBG_OUT (results as JSON).

(require 'json)
(dolist (dir (file-expand-wildcards "/usr/share/emacs/site-lisp/elpa/*"))
  (add-to-list 'load-path dir))
(add-to-list 'load-path (expand-file-name "editor-clients/emacs" (getenv "NEURALDBG_REPO")))
(require 'neuraldbg)

(defvar e2e-results nil)
(defvar e2e-errors nil)

(defun e2e-put (key value) (push (cons key value) e2e-results))

(defun e2e-finish ()
  (e2e-put 'errors (vconcat (reverse e2e-errors)))
  (with-temp-file (getenv "NEURALDBG_OUT")
    (insert (json-encode e2e-results)))
  (kill-emacs 0))

(defun e2e-wait (pred &optional seconds)
  (let ((deadline (+ (float-time) (or seconds 30))))
    (while (and (not (funcall pred)) (< (float-time) deadline))
      (accept-process-output nil 0.05))
    (funcall pred)))

(defun e2e-hover-at (line word)
  "Hover on WORD on LINE (1-based) through the eglot connection, hovering
again while the server answers tracing…"
  (goto-char (point-min))
  (forward-line (1- line))
  (search-forward word (line-end-position))
  (backward-char 1)
  (let ((text "") (tries 0))
    (while (and (< tries 40) (or (string= text "") (string-match-p "tracing…" text)))
      (let ((hover (jsonrpc-request (eglot--current-server-or-lose) :textDocument/hover
                                    (eglot--TextDocumentPositionParams))))
        (setq text (or (plist-get (plist-get hover :contents) :value) "")))
      (when (string-match-p "tracing…" text) (accept-process-output nil 0.3))
      (setq tries (1+ tries)))
    text))

(condition-case err
    (progn
      (setq neuraldbg-server-command (list (getenv "NEURALDBG_PYTHON") "-m" "neuraldbg" "serve"))
      (setq neuraldbg-settings '(:backend "exec" :allowExecution t :debounceMs 50))
      (neuraldbg-setup)
      (find-file (expand-file-name "strawberry.py" (getenv "NEURALDBG_WORKDIR")))
      (python-mode)
      (apply #'eglot (eglot--guess-contact))
      (e2e-put 'connected (if (e2e-wait (lambda () (eglot-current-server)) 60) t :json-false))
      (e2e-put 'server_class (symbol-name (eieio-object-class (eglot-current-server))))
      (e2e-put 'hover (e2e-hover-at 13 "count"))
      (e2e-put 'hover_def (e2e-hover-at 4 "count_letter"))
      ;; an edit in the buffer: eglot sends an incremental didChange
      (goto-char (point-min))
      (forward-line 12)
      (search-forward "+= 1")
      (delete-char -1)
      (insert "2")
      (eglot--signal-textDocument/didChange)
      (e2e-put 'hover_after_edit (e2e-hover-at 13 "count"))
      (e2e-wait (lambda () (equal (plist-get neuraldbg-status :state) "ready")) 20)
      (e2e-put 'status (list :state (plist-get neuraldbg-status :state)
                             :backend (plist-get neuraldbg-status :backend)))
      (e2e-put 'mode_line (or (neuraldbg-mode-line) ""))
      (let ((trace (neuraldbg-trace "count_letter")))
        (e2e-put 'trace_status (plist-get trace :status))
        (e2e-put 'trace_frames (length (plist-get trace :frames))))
      ;; the trace view of the function at point, then RET on the row of `count += 2'
      (goto-char (point-min))
      (forward-line 9)  ; line 10, `count = 0': inside count_letter
      (let* ((source (current-buffer))
             (view (neuraldbg-trace-view (python-info-current-defun))))
        (with-current-buffer view
          (e2e-put 'trace_view_mode (symbol-name major-mode))
          (e2e-put 'trace_view_header (format "%s" header-line-format))
          (e2e-put 'trace_view_columns (vconcat (mapcar #'car tabulated-list-format)))
          (e2e-put 'trace_view_lines (vconcat (split-string (buffer-substring-no-properties (point-min) (point-max)) "\n" t)))
          (goto-char (point-min))
          (search-forward "~count=2")
          (e2e-put 'trace_view_face (format "%s" (get-text-property (1- (point)) 'face)))
          (goto-char (point-min))
          (re-search-forward "^ *[0-9]+ +line +13 ")
          (e2e-put 'trace_view_row (buffer-substring-no-properties (line-beginning-position) (line-end-position)))
          (switch-to-buffer view)
          (call-interactively (key-binding (kbd "RET")))
          (e2e-put 'after_jump (list :buffer (buffer-name) :line (line-number-at-pos)
                                     :source (if (eq (current-buffer) source) t :json-false))))
        (switch-to-buffer source))
      (let ((entry (neuraldbg-set-entry "count_letter('banana', 'a')")))
        (e2e-put 'set_entry (plist-get entry :call)))
      (e2e-put 'hover_after_set_entry (e2e-hover-at 13 "count"))
      (e2e-put 'debug_port (neuraldbg-debug-adapter-port))
      (e2e-put 'diagnostics_count (length (flymake-diagnostics)))
      ;; the replay backend: the trace view puts the real run beside the prediction
      (setq neuraldbg-settings '(:backend "replay" :allowExecution t :debounceMs 50))
      (eglot-signal-didChangeConfiguration (eglot-current-server))
      (e2e-wait (lambda () (and (equal (plist-get neuraldbg-status :backend) "replay")
                                (equal (plist-get neuraldbg-status :state) "ready"))) 30)
      (with-current-buffer (neuraldbg-trace-view "count_letter")
        (e2e-put 'compare_columns (vconcat (mapcar #'car tabulated-list-format)))
        (e2e-put 'compare_header (format "%s" header-line-format))
        (e2e-put 'compare_lines (vconcat (split-string (buffer-substring-no-properties (point-min) (point-max)) "\n" t))))
      (eglot-shutdown (eglot-current-server)))
  (error (push (format "%S" err) e2e-errors)))
(e2e-finish)
