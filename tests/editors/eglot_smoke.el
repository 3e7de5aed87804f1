;;; eglot_smoke.el --- Headless Emacs + eglot smoke test for `fieldsafe lsp'  -*- lexical-binding: t -*-

;; Run: emacs --batch -Q -l tests/editors/eglot_smoke.el
;; Environment:
;;   FIELDSAFE_PYTHON   interpreter with fieldsafe installed
;;   FIELDSAFE_PROJECT  a (copied) Particle project whose pin disagrees with its target device
;;   FIELDSAFE_OUT      where to write the JSON result
;;   FIELDSAFE_ELPA     optional: Debian's elpa dir (default /usr/share/emacs/site-lisp/elpa)
;;   PARTICLE_API_URL / PARTICLE_ACCESS_TOKEN point the server at the emulator.
;;
;; Targets Debian 12: Emacs 28.2 + elpa-eglot 1.9 (eglot is built in from Emacs 29, where the elpa
;; load-path step is a no-op).  eglot 1.9 does not advertise publishDiagnostics.dataSupport, yet it
;; keeps each LSP diagnostic whole and sends it back in codeAction's context, `data' included: the
;; result records that (`sent_data') rather than assuming it.
;;
;; Why the odd parts:
;; - `-Q' skips Debian's site-start, so the elpa dirs go on `load-path' by hand; eglot 1.9 needs the
;;   newer project/xref/seq shipped beside it, so they go in front of Emacs' bundled copies.
;; - In batch nothing runs `post-command-hook', so Flymake never starts by itself; the wait loop
;;   calls `flymake-start' so eglot's backend hands its stored diagnostics to Flymake.
;; - The project root comes from `project.properties' (a Particle project needs no VCS), via
;;   `project-find-functions', which is also what a user's config would do.

(require 'cl-lib)
(require 'subr-x)

(setq native-comp-deferred-compilation nil) ; no async .eln builds on a shared CI box
(setq inhibit-message nil)

(let ((elpa (or (getenv "FIELDSAFE_ELPA") "/usr/share/emacs/site-lisp/elpa")))
  (when (file-directory-p elpa)
    (dolist (dir (directory-files elpa t directory-files-no-dot-files-regexp))
      (when (file-directory-p dir)
        (push dir load-path)))))

(require 'eglot)
(require 'flymake)
(require 'project)
(require 'json)

(defvar fieldsafe-smoke-python (or (getenv "FIELDSAFE_PYTHON") "python3"))
(defvar fieldsafe-smoke-root
  (file-name-as-directory
   (expand-file-name (or (getenv "FIELDSAFE_PROJECT") (error "FIELDSAFE_PROJECT is not set")))))
(defvar fieldsafe-smoke-out (or (getenv "FIELDSAFE_OUT") (error "FIELDSAFE_OUT is not set")))

(defvar fieldsafe-smoke-result
  (list :ok :false :stage "start" :diagnostics [] :actions [] :statuses []
        :emacs emacs-version
        :eglot (or (locate-library "eglot") ""))
  "The JSON result (a plist for `json-serialize'; arrays are vectors).")

(defun fieldsafe-smoke-set (key value)
  "Record VALUE under KEY in the result."
  (setq fieldsafe-smoke-result (plist-put fieldsafe-smoke-result key value)))

(defun fieldsafe-smoke-push (key value)
  "Append VALUE to the vector under KEY in the result."
  (fieldsafe-smoke-set key (vconcat (plist-get fieldsafe-smoke-result key) (list value))))

(defun fieldsafe-smoke-project (dir)
  "A transient project rooted at the Particle project (the dir holding project.properties) above DIR."
  (when-let ((root (locate-dominating-file dir "project.properties")))
    (cons 'transient (expand-file-name root))))

(cl-defmethod eglot-handle-notification
  (_server (_method (eql fieldsafe/status)) &key state &allow-other-keys)
  "Record fieldsafe's custom status notifications, as the Neovim smoke does."
  (fieldsafe-smoke-push :statuses (or state "")))

(defun fieldsafe-smoke-wait (seconds predicate &optional on-tick)
  "Pump process output for up to SECONDS until PREDICATE is non-nil; call ON-TICK each round."
  (let ((deadline (+ (float-time) seconds)) (found nil))
    (while (and (not (setq found (funcall predicate))) (< (float-time) deadline))
      (accept-process-output nil 0.1)
      (when on-tick (funcall on-tick)))
    found))

(defun fieldsafe-smoke-lsp-diag (diag)
  "The LSP Diagnostic plist eglot stored in the Flymake DIAG."
  (cdr (assoc 'eglot-lsp-diag (flymake-diagnostic-data diag))))

(defun fieldsafe-smoke-code-string (code)
  "LSP Diagnostic.code (string or integer) as a string."
  (cond ((null code) "") ((stringp code) code) (t (format "%s" code))))

(defun fieldsafe-smoke-describe-diag (diag)
  "A JSON-ready plist for the Flymake DIAG: 0-based line/col as the server sent them."
  (let* ((lsp (fieldsafe-smoke-lsp-diag diag))
         (range (plist-get lsp :range))
         (start (plist-get range :start))
         (end (plist-get range :end)))
    (list :line (plist-get start :line) :col (plist-get start :character)
          :end_line (plist-get end :line) :end_col (plist-get end :character)
          :code (fieldsafe-smoke-code-string (plist-get lsp :code))
          :message (flymake-diagnostic-text diag)
          :has_data (if (plist-member lsp :data) t :false)
          :text (save-excursion
                  (goto-char (flymake-diagnostic-beg diag))
                  (buffer-substring-no-properties (line-beginning-position) (line-end-position))))))

(defun fieldsafe-smoke-shutdown (server)
  "`eglot-shutdown' minus its instant kill: shutdown + exit, then give the server 5 s to leave.
Emacs 28's `jsonrpc-shutdown' SIGKILLs the process right after `exit' (\"exited with status 9\"),
which would hide a server that never exits by itself; record how it really ended instead."
  (let ((proc (jsonrpc--process server)))
    (setf (eglot--shutdown-requested server) t)
    (unwind-protect
        (progn
          (jsonrpc-request server :shutdown nil :timeout 5)
          (jsonrpc-notify server :exit nil)
          (fieldsafe-smoke-set
           :server_exited (if (fieldsafe-smoke-wait 5 (lambda () (not (process-live-p proc)))) t :false))
          (fieldsafe-smoke-set :server_exit_status (process-exit-status proc)))
      (jsonrpc-shutdown server t))))

(defun fieldsafe-smoke-events-tail ()
  "The end of eglot's events buffer (the JSON-RPC traffic), to debug a failed run."
  (if-let ((server (ignore-errors (with-current-buffer (find-buffer-visiting
                                                        (expand-file-name ".vscode/settings.json"
                                                                          fieldsafe-smoke-root))
                                    (eglot-current-server))))
           (buf (jsonrpc-events-buffer server)))
      (with-current-buffer buf
        (buffer-substring-no-properties (max (point-min) (- (point-max) 6000)) (point-max)))
    ""))

(defun fieldsafe-smoke-record-code-action-request (_conn method params &rest _)
  "Record whether the codeAction request eglot sends carries Diagnostic.data back."
  (when (eq method :textDocument/codeAction)
    (let ((sent (plist-get (plist-get params :context) :diagnostics)))
      (fieldsafe-smoke-set :sent_diagnostics (length sent))
      (fieldsafe-smoke-set :sent_data (if (cl-some (lambda (d) (plist-member d :data)) sent) t :false)))))

(advice-add 'jsonrpc-request :before #'fieldsafe-smoke-record-code-action-request)

(defun fieldsafe-smoke-run ()
  "Start eglot on settings.json, wait for diagnostics, ask for and apply the retarget quick-fix."
  (setq project-find-functions (list #'fieldsafe-smoke-project))
  (setq-default eglot-workspace-configuration '(:fieldsafe (:compileOnSave :json-false)))
  (setq eglot-sync-connect 30
        eglot-connect-timeout 60
        eglot-autoreconnect nil)
  ;; Emacs 28 opens .json in js-mode; tell the server it is jsonc (VS Code's id for settings.json).
  (add-to-list 'eglot-server-programs
               `((js-mode :language-id "jsonc") . (,fieldsafe-smoke-python "-m" "fieldsafe" "lsp")))

  (fieldsafe-smoke-set :stage "open")
  (find-file (expand-file-name ".vscode/settings.json" fieldsafe-smoke-root))
  (js-mode)
  (apply #'eglot (eglot--guess-contact))
  (let ((server (or (eglot-current-server) (error "eglot did not connect"))))
    (fieldsafe-smoke-set :project_root (project-root (eglot--project server)))

    (fieldsafe-smoke-set :stage "diagnostics")
    (unless (fieldsafe-smoke-wait 20 #'flymake-diagnostics #'flymake-start)
      (error "no diagnostics on settings.json within 20 s"))
    (let ((diags (cl-remove-if-not #'fieldsafe-smoke-lsp-diag (flymake-diagnostics))))
      (dolist (d diags)
        (fieldsafe-smoke-push :diagnostics (fieldsafe-smoke-describe-diag d)))

      (fieldsafe-smoke-set :stage "codeAction")
      ;; What M-x eglot-code-actions does on the diagnostic's region, minus the interactive menu.
      (let* ((first (or (cl-find "FS101" diags :test #'equal
                                 :key (lambda (d) (fieldsafe-smoke-code-string
                                                   (plist-get (fieldsafe-smoke-lsp-diag d) :code))))
                        (car diags)))
             (actions (eglot-code-actions (flymake-diagnostic-beg first) (flymake-diagnostic-end first)))
             (chosen nil))
        (dolist (a actions)
          (fieldsafe-smoke-push :actions (list :title (or (plist-get a :title) "")
                                               :kind (or (plist-get a :kind) "")
                                               :has_edit (if (plist-get a :edit) t :false)))
          (when (and (null chosen) (plist-get a :edit)
                     (string-prefix-p "Retarget" (or (plist-get a :title) "")))
            (setq chosen a)))

        (fieldsafe-smoke-set :stage "applied")
        (when chosen
          (fieldsafe-smoke-set :applied (plist-get chosen :title))
          (eglot--apply-workspace-edit (plist-get chosen :edit)))
        (fieldsafe-smoke-set :buffer (buffer-substring-no-properties (point-min) (point-max)))))

    (fieldsafe-smoke-set :stage "shutdown")
    (fieldsafe-smoke-shutdown server)
    (fieldsafe-smoke-set :stage "done")
    (fieldsafe-smoke-set :ok t)))

(defun fieldsafe-smoke-write ()
  "Write the result as JSON to FIELDSAFE_OUT."
  (with-temp-file fieldsafe-smoke-out
    (insert (json-serialize fieldsafe-smoke-result))))

(condition-case err
    (fieldsafe-smoke-run)
  (error (fieldsafe-smoke-set :error (error-message-string err))
         (fieldsafe-smoke-set :events (fieldsafe-smoke-events-tail))))
(fieldsafe-smoke-write)
(kill-emacs 0)

;;; eglot_smoke.el ends here
