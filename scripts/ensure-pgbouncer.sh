#!/usr/bin/env bash
# Makes sure a `pgbouncer` binary exists for the pooler tests (tests/e2e/pooler.rs), which put a
# throwaway PgBouncer in transaction pool mode between the controller and PostgreSQL, as
# Supabase's transaction pooler is in production. Installs Debian's `pgbouncer` package when it
# is missing (the test kit looks in $PGBOUNCER_BIN, PATH and /usr/sbin).
#
# The package also installs a `pgbouncer` service. Nothing here uses it: each test starts its own
# binary with its own configuration on a free port, so whether the service runs (on a host with
# systemd) or not (in a container, where policy-rc.d refuses to start it) does not matter.
set -euo pipefail

have_pgbouncer() {
  [ -n "${PGBOUNCER_BIN:-}" ] && [ -x "$PGBOUNCER_BIN" ] && return 0
  command -v pgbouncer >/dev/null 2>&1 && return 0
  [ -x /usr/sbin/pgbouncer ] && return 0
  return 1
}
if have_pgbouncer; then
  exit 0
fi
echo "pgbouncer not found: installing Debian's pgbouncer package" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null
have_pgbouncer || { echo "the pgbouncer package is installed but pgbouncer is still missing" >&2; exit 1; }
