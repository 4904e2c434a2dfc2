#!/usr/bin/env bash
# Fuzzes the API with Schemathesis against its own /openapi.json (`make schemathesis`, part of
# `make test`). Starts the whole dev stack as `make run INERT=1` does (`openclaws-dev run --inert`: a throwaway
# PostgreSQL, the Fly simulator and the production `openclaws-controller serve`, logs in
# target/schemathesis/), then runs Schemathesis with the writer token and the checks
# not_a_server_error, status_code_conformance and response_schema_conformance. Any finding fails,
# and so does a run of fewer than SCHEMATHESIS_MIN_REQUESTS requests (counted in its HAR report).
#
# Schemathesis is pinned and installed into a virtual environment under target/ (Debian's
# python3-venv is installed when `python3 -m venv` cannot work). The binaries must be built
# (`cargo build --workspace --bins`; the Makefile does it).
#
# scripts/schemathesis.toml pins `timeoutSeconds` of the two watchable operations to 1, so a
# generated `watch=true` ends after a second.
#
# Knobs: SCHEMATHESIS_EXAMPLES (test cases per operation and phase, default 1500),
# SCHEMATHESIS_MIN_REQUESTS (default 10000), SCHEMATHESIS_SEED (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=4.32.5
VENV=target/schemathesis-venv
OUT=target/schemathesis
EXAMPLES=${SCHEMATHESIS_EXAMPLES:-1500}
MIN_REQUESTS=${SCHEMATHESIS_MIN_REQUESTS:-10000}
SEED=${SCHEMATHESIS_SEED:-1}
WRITER=dev-writer-token

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

venv_works() {
  command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, ensurepip' >/dev/null 2>&1
}
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "version $VERSION\$"; then
  if ! venv_works; then
    echo "python3 -m venv is unavailable: installing Debian's python3 and python3-venv" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3 python3-venv >/dev/null
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi

# The dev stack always runs on its own throwaway PostgreSQL: it must not migrate or fill a
# database named by DATABASE_URL.
DATABASE_URL= scripts/ensure-postgres.sh
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
API_PORT=$(free_port)
SIM_PORT=$(free_port)
API=http://127.0.0.1:$API_PORT
rm -rf "$OUT"
mkdir -p "$OUT/logs"

# A credential failure limit no fuzzer reaches (everything comes from 127.0.0.1), and a fast
# simulator so instances created by the fuzzer settle quickly.
env -u DATABASE_URL \
  OPENCLAWS_API_AUTH_FAILURES_PER_MINUTE=1000000 OPENCLAWS_API_AUTH_FAILURE_BURST=1000000 \
  target/debug/openclaws-dev run --listen "127.0.0.1:$API_PORT" --sim-listen "127.0.0.1:$SIM_PORT" \
  --latency-scale 0.05 --demo demo --inert --log-dir "$OUT/logs" >"$OUT/logs/dev.log" 2>&1 &
DEV_PID=$!
stop_stack() {
  if kill -0 "$DEV_PID" 2>/dev/null; then
    kill -INT "$DEV_PID"
    wait "$DEV_PID" 2>/dev/null || true
  fi
}
trap stop_stack EXIT

for _ in $(seq 1 600); do
  if grep -q "serving until Ctrl-C" "$OUT/logs/dev.log"; then break; fi
  if ! kill -0 "$DEV_PID" 2>/dev/null; then
    echo "the dev stack exited before it was ready:" >&2
    tail -n 30 "$OUT/logs/dev.log" >&2
    exit 1
  fi
  sleep 0.2
done
grep -q "serving until Ctrl-C" "$OUT/logs/dev.log" || {
  echo "the dev stack was not ready within 120 s; see $OUT/logs" >&2
  exit 1
}

started=$(date +%s)
status=0
# Run from $OUT: Schemathesis keeps a cache directory (.schemathesis/) where it runs.
(cd "$OUT" && "../../$VENV/bin/schemathesis" --config-file ../../scripts/schemathesis.toml \
  run "$API/openapi.json" \
  --checks not_a_server_error,status_code_conformance,response_schema_conformance \
  --header "Authorization: Bearer $WRITER" \
  --max-examples "$EXAMPLES" --seed "$SEED" --workers 2 \
  --generation-database none --no-color \
  --report junit,har --report-dir .) || status=$?
elapsed=$(( $(date +%s) - started ))

requests=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["log"]["entries"]))' \
  "$(ls "$OUT"/har-*.json | head -n 1)")
echo "schemathesis: $requests requests in ${elapsed}s (report and logs in $OUT)"
if [ "$status" -ne 0 ]; then
  echo "schemathesis found problems (exit $status); the controller's log is $OUT/logs/controller.log" >&2
  exit "$status"
fi
if [ "$requests" -lt "$MIN_REQUESTS" ]; then
  echo "schemathesis sent $requests requests, fewer than $MIN_REQUESTS: raise SCHEMATHESIS_EXAMPLES" >&2
  exit 1
fi
