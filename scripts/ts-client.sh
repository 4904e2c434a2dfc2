#!/usr/bin/env bash
# The typed TypeScript client under clients/typescript/: its dependencies, its generated schema
# and its checks, all with the pinned Node that scripts/install-openclaw.sh installs.
#
#   scripts/ts-client.sh install           # npm ci when node_modules is missing or older than the lock
#   scripts/ts-client.sh generate          # rewrite src/schema.d.ts from `openclaws-controller openapi`
#   scripts/ts-client.sh check [DOC.json]  # fail when src/schema.d.ts is not what DOC (default: the
#                                          # built binary's document) generates
#   scripts/ts-client.sh typecheck         # tsc --noEmit over src/ and test/
#   scripts/ts-client.sh e2e               # run test/e2e.ts against OPENCLAWS_API_URL with
#                                          # OPENCLAWS_API_TOKEN (a writer token)
#   scripts/ts-client.sh node-bin          # print the pinned Node's bin directory
#
# `make ts-client` runs `generate` (after building the binary): the one step after any change to
# the API's routes or types. The controller binary is target/debug/openclaws-controller unless
# OPENCLAWS_CONTROLLER_BIN names another.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd -P)"
CLIENT="$ROOT/clients/typescript"
SCHEMA="$CLIENT/src/schema.d.ts"
REGENERATE="make ts-client"

log() { printf '[ts-client] %s\n' "$*" >&2; }
die() { printf '[ts-client] error: %s\n' "$*" >&2; exit 1; }

# The pinned Node's bin directory, next to the openclaw wrapper the installer prints.
node_bin() {
  local wrapper root dir
  wrapper="$("$ROOT/scripts/install-openclaw.sh")" || die "installing the pinned Node failed"
  root="$(dirname "$(dirname "$wrapper")")"
  for dir in "$root"/node/node_modules/node-*/bin; do
    if [[ -x "$dir/node" ]]; then
      echo "$dir"
      return
    fi
  done
  die "no node under $root/node/node_modules"
}

# PATH with the pinned Node first: npm (the bootstrap one the installer needs) and the client's
# tools start through `#!/usr/bin/env node`, so they run on the pinned Node.
use_pinned_node() {
  PATH="$(node_bin):$PATH"
  export PATH
}

install() {
  use_pinned_node
  local stamp="$CLIENT/node_modules/.package-lock.json"
  if [[ -f "$stamp" && ! "$CLIENT/package-lock.json" -nt "$stamp" ]]; then
    return
  fi
  command -v npm >/dev/null 2>&1 || die "no npm on PATH (scripts/install-openclaw.sh installs Debian's)"
  log "npm ci in clients/typescript with node $(node --version)"
  (cd "$CLIENT" && npm ci --no-audit --no-fund --no-update-notifier --loglevel=error) >&2 ||
    die "npm ci in clients/typescript failed"
}

# Writes the TypeScript generated from the OpenAPI document $1 to $2. --default-non-nullable
# false: a property with a default is optional as the document says (the write bodies share
# schemas such as GuestSpec with the answers, and a client may leave defaulted fields out).
generate_from() {
  (cd "$CLIENT" && node_modules/.bin/openapi-typescript "$1" --output "$2" --silent \
    --default-non-nullable false) ||
    die "openapi-typescript failed on $1"
}

# The built binary's document, into $1.
print_document() {
  local bin="${OPENCLAWS_CONTROLLER_BIN:-$ROOT/target/debug/openclaws-controller}"
  [[ -x "$bin" ]] || die "$bin is not built: run \`cargo build --bin openclaws-controller\`"
  "$bin" openapi >"$1" || die "$bin openapi failed"
}

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

case "${1:-}" in
  node-bin)
    node_bin
    ;;
  install)
    install
    ;;
  generate)
    install
    print_document "$TMP/openapi.json"
    generate_from "$TMP/openapi.json" "$SCHEMA"
    log "wrote ${SCHEMA#"$ROOT"/}"
    ;;
  check)
    install
    document="${2:-}"
    if [[ -z "$document" ]]; then
      document="$TMP/openapi.json"
      print_document "$document"
    fi
    generate_from "$document" "$TMP/schema.d.ts"
    if ! diff -u "$SCHEMA" "$TMP/schema.d.ts" >"$TMP/diff"; then
      head -n 60 "$TMP/diff" >&2
      die "clients/typescript/src/schema.d.ts is stale: the API's OpenAPI document changed. Run \`$REGENERATE\` and commit the result."
    fi
    ;;
  typecheck)
    install
    (cd "$CLIENT" && node_modules/.bin/tsc --noEmit -p tsconfig.json) || die "tsc --noEmit failed"
    ;;
  e2e)
    install
    [[ -n "${OPENCLAWS_API_URL:-}" && -n "${OPENCLAWS_API_TOKEN:-}" ]] ||
      die "set OPENCLAWS_API_URL and OPENCLAWS_API_TOKEN (a writer token)"
    # Node >= 22.18 runs TypeScript by stripping its types (tsc has checked them).
    (cd "$CLIENT" && node --disable-warning=ExperimentalWarning test/e2e.ts)
    ;;
  *)
    sed -n '2,16p' "$0" >&2
    exit 2
    ;;
esac
