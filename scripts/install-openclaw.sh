#!/usr/bin/env bash
# Installs the OpenClaw gateway version the controller is verified against, with the Node runtime
# it needs, into a per-user cache, and prints the path of a runnable `openclaw` command.
#
#   scripts/install-openclaw.sh            # prints e.g. ~/.cache/openclaws/openclaw-2026.9.6/bin/openclaw
#   scripts/install-openclaw.sh --check    # the same when installed; exit 1 (installing nothing) when not
#
# Why this shape:
# - openclaw needs Node >= 24.16; Debian ships an older Node. The pinned runtime comes from the npm
#   registry's `node-linux-<arch>` package (a registry package that carries the official binary), so
#   only the npm registry is needed, not nodejs.org.
# - The printed `bin/openclaw` is a wrapper that runs openclaw with the pinned Node first on PATH
#   (openclaw and its helpers start child processes through `#!/usr/bin/env node`).
# - Everything is built in a temporary directory and renamed into place after a check, so an
#   interrupted run leaves nothing half-installed; a second run does no network access and prints
#   only the path. Concurrent runs (parallel test binaries) wait on a lock.
#
# Settings (environment): OPENCLAWS_OPENCLAW_VERSION (default 2026.9.6), OPENCLAWS_NODE_VERSION
# (default 24.21.0), OPENCLAWS_CACHE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/openclaws).
# Needs a bootstrap `npm` (any Node >= 18); when it is missing and apt-get is available, Debian's
# `npm` package is installed.
set -euo pipefail

OPENCLAW_VERSION="${OPENCLAWS_OPENCLAW_VERSION:-2026.9.6}"
NODE_VERSION="${OPENCLAWS_NODE_VERSION:-24.21.0}"
CACHE_DIR="${OPENCLAWS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/openclaws}"
TARGET="$CACHE_DIR/openclaw-$OPENCLAW_VERSION"
WRAPPER="$TARGET/bin/openclaw"
STAMP="$TARGET/.complete"
WANT_STAMP="openclaw@$OPENCLAW_VERSION node@$NODE_VERSION"

log() { printf '[install-openclaw] %s\n' "$*" >&2; }
die() { printf '[install-openclaw] error: %s\n' "$*" >&2; exit 1; }

installed() { [[ -x "$WRAPPER" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT_STAMP" ]]; }

if installed; then
  echo "$WRAPPER"
  exit 0
fi
# `--check`: only say whether it is installed (exit 1 when not), never install.
if [[ "${1:-}" == "--check" ]]; then
  exit 1
fi

case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) die "unsupported OS: $(uname -s)" ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "unsupported CPU: $(uname -m)" ;;
esac
NODE_PKG="node-$os-$arch"

mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/.install.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
if installed; then # another run finished while we waited for the lock
  echo "$WRAPPER"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "a bootstrap npm is needed on PATH"
  log "no npm on PATH: installing Debian's npm package"
  SUDO=""
  if [[ "$(id -u)" -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm >&2
fi

TMP="$TARGET.tmp.$$"
trap 'rm -rf "$TMP"' EXIT
rm -rf "$TMP"
mkdir -p "$TMP/node" "$TMP/lib" "$TMP/bin"

# stdout is reserved for the printed path; npm's chatter goes to stderr.
npm_install() { # <dir> <package@version>
  printf '{"name":"openclaws-%s","private":true}\n' "$(basename "$1")" >"$1/package.json"
  (cd "$1" && npm install --save-exact --no-audit --no-fund --no-update-notifier --loglevel=error "$2") >&2
}

log "installing $NODE_PKG@$NODE_VERSION"
npm_install "$TMP/node" "$NODE_PKG@$NODE_VERSION" || die "installing $NODE_PKG@$NODE_VERSION failed"
NODE_BIN_DIR="$TMP/node/node_modules/$NODE_PKG/bin"
[[ "$("$NODE_BIN_DIR/node" --version)" == "v$NODE_VERSION" ]] || die "the installed node is not v$NODE_VERSION"

# openclaw's install scripts run under `#!/usr/bin/env node`, so the pinned Node goes first on PATH.
log "installing openclaw@$OPENCLAW_VERSION with node v$NODE_VERSION"
PATH="$NODE_BIN_DIR:$PATH" npm_install "$TMP/lib" "openclaw@$OPENCLAW_VERSION" || die "installing openclaw@$OPENCLAW_VERSION failed"

# The wrapper finds its own directory at run time, so the tree still works after the rename.
cat >"$TMP/bin/openclaw" <<EOF
#!/bin/sh
# openclaw $OPENCLAW_VERSION on node v$NODE_VERSION, installed by scripts/install-openclaw.sh
root="\$(cd "\$(dirname "\$0")/.." && pwd -P)"
PATH="\$root/node/node_modules/$NODE_PKG/bin:\$PATH"
export PATH
exec node "\$root/lib/node_modules/openclaw/openclaw.mjs" "\$@"
EOF
chmod 755 "$TMP/bin/openclaw"

"$TMP/bin/openclaw" --version | grep -q "$OPENCLAW_VERSION" || die "the installed openclaw does not report $OPENCLAW_VERSION"
printf '%s\n' "$WANT_STAMP" >"$TMP/.complete"
rm -rf "$TARGET"
mv "$TMP" "$TARGET"
trap - EXIT
log "installed openclaw $OPENCLAW_VERSION into $TARGET"
echo "$WRAPPER"
