#!/bin/sh
# Installs what the Emacs client and its test need (Debian 12): emacs-nox
# 28.2 and elpa-eglot 1.9. Does nothing when emacs and eglot are already
# there. Needs root (apt-get); `make test` runs it before pytest.
set -eu
if command -v emacs >/dev/null 2>&1 && [ -d /usr/share/emacs/site-lisp/elpa/eglot-1.9 ] || \
   { command -v emacs >/dev/null 2>&1 && emacs --batch -Q --eval "(progn (package-initialize) (require 'eglot))" >/dev/null 2>&1; }; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-emacs.sh: emacs/eglot missing; run as root: apt-get install -y emacs-nox elpa-eglot" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q emacs-nox elpa-eglot >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q emacs-nox elpa-eglot >/dev/null; }
command -v emacs >/dev/null
