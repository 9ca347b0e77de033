;;; neuraldbg.el --- neuraldbg (neural debugger) for Emacs through eglot -*- lexical-binding: t -*-

;; Version: 0.1.0
;; Package-Requires: ((emacs "28.1") (eglot "1.9"))
;; Keywords: languages, tools

;;; Commentary:

;; Connects eglot to the neuraldbg language server for Python buffers:
;; hovers with the values names take, diagnostics, code actions ("Fill
;; hole"), code lenses' commands, and the server's `neuraldbg/status'
;; notification in the mode line.
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
