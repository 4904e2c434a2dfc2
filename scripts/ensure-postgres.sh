#!/usr/bin/env bash
# Makes sure PostgreSQL server binaries exist for the throwaway database that `make run` and
# `make test` start when DATABASE_URL is not set. Installs Debian's `postgresql` package if needed.
set -euo pipefail

if [ -n "${DATABASE_URL:-}" ]; then
  exit 0
fi
have_server() {
  [ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/initdb" ] && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && return 0
  command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1 && return 0
  return 1
}
if have_server; then
  exit 0
fi
echo "PostgreSQL server binaries not found: installing Debian's postgresql package" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
have_server || { echo "postgresql installed but initdb is still missing" >&2; exit 1; }
