#!/usr/bin/env bash
# Makes sure `prometheus` and `promtool` exist for the metrics test (tests/prometheus_dashboards.rs),
# which runs its own Prometheus server against the controller's /metrics and checks every
# dashboard query. Installs Debian's `prometheus` package when either is missing.
#
# The package also installs a `prometheus` service. Nothing here uses it: the test starts its own
# binary with its own config, a free port and a temporary data directory, so whether the service
# runs (on a host with systemd) or not (in a container, where policy-rc.d refuses to start it)
# does not matter.
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  exit 0
fi
echo "prometheus/promtool not found: installing Debian's prometheus package" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || {
  echo "the prometheus package is installed but prometheus/promtool are still missing" >&2
  exit 1
}
