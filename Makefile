# Two commands matter: `make run` (the whole system locally, with a demo instance) and
# `make test` (every test). Both install what is missing and need only Rust on Debian.
SHELL := /bin/bash
CARGO ?= cargo
DEV := target/debug/openclaws-dev

.PHONY: run test bench bench-api bench-watch bench-pairing bench-writes chaos unit lint fmt build postgres postgres-server pgbouncer prometheus crd clean openclaw chromium sim-process schemathesis ts-client ts-client-deps

## run: throwaway PostgreSQL + the Fly simulator (fly-sim) + the controller (openclaws-controller
## serve), each its own process with its log in target/dev/, and a demo instance reaching Ready.
## The simulator's machines run the real pinned OpenClaw gateway (installed on first use), reached
## from a browser at http://demo.localhost:4281/. `make run INERT=1`: machines run nothing and
## gateway checks are off (a quick stack for API work).
INERT ?=
run: postgres
	$(CARGO) build --quiet --workspace --bins
	$(DEV) run $(if $(INERT),--inert,)

## test: formatting, lints, unit, property and black-box tests against a real PostgreSQL, and the
## short chaos run (tests/chaos: 3 replicas, 15 instances, one seed, about a minute; it stops and
## starts a PostgreSQL of its own, so it needs the server binaries whatever DATABASE_URL says).
## Tests run TEST_THREADS at a time in each test binary: most wait on the simulator's Fly-like
## latencies rather than the CPU (the real-gateway tests limit themselves to two gateways at
## once). Each test holds about 20 database connections: a server named by DATABASE_URL needs
## max_connections of at least 25 × TEST_THREADS (the throwaway one allows 500).
TEST_THREADS ?= 8
test: postgres postgres-server pgbouncer prometheus openclaw chromium ts-client-deps lint
	$(CARGO) build --quiet --workspace --all-targets
	@export RUST_TEST_THREADS=$(TEST_THREADS); \
	if [ -n "$$DATABASE_URL" ]; then \
	  $(CARGO) test --workspace --all-targets --no-fail-fast; \
	else \
	  $(DEV) with-postgres -- $(CARGO) test --workspace --all-targets --no-fail-fast; \
	fi
	@scripts/schemathesis.sh

## schemathesis: fuzz the API against its own /openapi.json with Schemathesis (pinned, in a virtual
## environment under target/) on the dev stack (throwaway PostgreSQL, fly-sim, serve): at least
## 10,000 requests; any server error, undocumented status or response off its schema fails.
## See docs/api-edge.md.
schemathesis: postgres
	$(CARGO) build --quiet --workspace --bins
	@scripts/schemathesis.sh

## bench: fleet figures against the simulator: provisioning, steady state, drift repair.
## Defaults to 1,000 instances (about 20 minutes: Fly creates one app per second per org);
## pass options with BENCH_ARGS, e.g. `make bench BENCH_ARGS="--instances 10000"`. Then the
## API/PostgreSQL ratio table (`bench-api` below; its options in API_BENCH_ARGS) and the
## pairing section on real gateways (`bench-pairing` below; its options in PAIRING_BENCH_ARGS),
## skipped with a message when the pinned OpenClaw is not installed. The controller's own
## CPU and memory at scale, the simulator in a process of its own and the rate limits scaled:
## `make bench BENCH_ARGS="--instances 10000 --rate-scale 50 --provision-only --sim-process"`.
bench: postgres
	$(CARGO) build --quiet --workspace --bins
	$(CARGO) build --quiet --release -p fly-sim
	@if [ -n "$$DATABASE_URL" ]; then \
	  $(CARGO) bench -p openclaws-testkit --bench fleet -- $(BENCH_ARGS); \
	else \
	  $(DEV) with-postgres -- $(CARGO) bench -p openclaws-testkit --bench fleet -- $(BENCH_ARGS); \
	fi
	@$(MAKE) --no-print-directory bench-api BENCH_ARGS="$(API_BENCH_ARGS)"
	@$(MAKE) --no-print-directory bench-writes BENCH_ARGS="$(WRITES_BENCH_ARGS)"
	@$(MAKE) --no-print-directory bench-pairing BENCH_ARGS="$(PAIRING_BENCH_ARGS)"

## bench-api: the API's throughput side by side with pgbench on the same database, as ratios
## (bench/RESULTS.md): 1,000 instances (16 provisioned through the simulator at latency 0, the
## rest copies seeded in the store), then GET one, GET ?limit=50 and PATCH (workers running)
## with 8 connections of a Rust load generator against `pgbench -S` and `pgbench -N` with 8
## clients, 10 s each, 3 runs (medians), and PostgreSQL round trips per request counted on the
## wire. About 4 minutes; fewer runs or other sizes with BENCH_ARGS, e.g.
## `make bench-api BENCH_ARGS="--runs 1 --seconds 5"`.
bench-api: postgres
	@if [ -n "$$DATABASE_URL" ]; then \
	  $(CARGO) bench -p openclaws-testkit --bench api -- $(BENCH_ARGS); \
	else \
	  $(DEV) with-postgres -- $(CARGO) bench -p openclaws-testkit --bench api -- $(BENCH_ARGS); \
	fi

## bench-watch: what watches cost (docs/watch.md): the controller's status write before and after
## resourceVersion moved to a sequence (interleaved on two databases, sequential and 8 in
## parallel), and the latency from a status change to its event at a watching client (p50/p99
## over 1,000 changes). About a minute; options with BENCH_ARGS, e.g. `--changes 5000`.
bench-watch: postgres
	@if [ -n "$$DATABASE_URL" ]; then \
	  $(CARGO) bench -p openclaws-testkit --bench watch -- $(BENCH_ARGS); \
	else \
	  $(DEV) with-postgres -- $(CARGO) bench -p openclaws-testkit --bench watch -- $(BENCH_ARGS); \
	fi

## bench-writes: a storm of status writes (100,000 over 100 instances by 4 writers, each with a
## ~20 KB observation snapshot) before and after the snapshot is kept while unchanged: heap,
## TOAST and total size of `instances`, dead tuples, HOT updates, write time (docs/idle.md).
## A few minutes; options with BENCH_ARGS, e.g. `--writes 20000`.
bench-writes: postgres
	@if [ -n "$$DATABASE_URL" ]; then \
	  $(CARGO) bench -p openclaws-testkit --bench writes -- $(BENCH_ARGS); \
	else \
	  $(DEV) with-postgres -- $(CARGO) bench -p openclaws-testkit --bench writes -- $(BENCH_ARGS); \
	fi

## bench-pairing: pairing by subscription on real gateways (docs/pairing.md): 3 gateways, 50
## devices under policy auto (approval latency p50/p90/p99/max, Fly calls pairing caused: goal
## 0), and request -> status.pairing.pending under policy manual. Needs the pinned OpenClaw
## (`make openclaw`; skipped with a message without it). A few minutes; options with
## BENCH_ARGS, e.g. `make bench-pairing BENCH_ARGS="--devices 100 --gateways 4"`.
bench-pairing: postgres
	$(CARGO) build --quiet --workspace --bins
	@if [ -n "$$DATABASE_URL" ]; then \
	  $(CARGO) bench -p openclaws-testkit --bench pairing -- $(BENCH_ARGS); \
	else \
	  $(DEV) with-postgres -- $(CARGO) bench -p openclaws-testkit --bench pairing -- $(BENCH_ARGS); \
	fi

## chaos: the seeded chaos harness (docs/chaos.md): for each seed, 3 controller replicas on their
## own PostgreSQL and the Fly simulator under kills, freezes, a database stop, a Fly outage and the
## simulator's faults, 100 instances written through the API, then every invariant checked. Prints
## each seed's figures and a table; a failing seed prints the command that replays it. About 3-4
## minutes a seed. Other seeds with CHAOS_SEEDS (`7`, `1,5,9`, `1..=5`), options with CHAOS_ARGS,
## e.g. `make chaos CHAOS_SEEDS=7 CHAOS_ARGS="--instances 30 --keep-logs"`.
CHAOS_SEEDS ?= 1..=20
chaos: postgres-server
	$(CARGO) build --quiet --workspace --bins
	target/debug/openclaws-chaos --seeds $(CHAOS_SEEDS) $(CHAOS_ARGS)

## sim-process: the Fly simulator on 127.0.0.1:4280 whose started machines run their command (the
## real gateway through the boot bundle), with its Fly-like proxy on 127.0.0.1:4281.
sim-process: openclaw
	FLY_SIM_TOKEN=$${FLY_SIM_TOKEN:-dev-fly-token} $(CARGO) run --quiet -p fly-sim -- --machines process \
	  --proxy-listen $${FLY_SIM_PROXY_LISTEN:-127.0.0.1:4281}

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --quiet --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

build:
	$(CARGO) build --workspace --all-targets

## postgres: install PostgreSQL server binaries when DATABASE_URL is unset and none are present.
postgres:
	@scripts/ensure-postgres.sh

## postgres-server: install PostgreSQL server binaries when none are present, even with
## DATABASE_URL set: the chaos harness owns a cluster it stops and starts.
postgres-server:
	@env -u DATABASE_URL scripts/ensure-postgres.sh

## pgbouncer: install Debian's pgbouncer package when it is missing, for the tests that put a
## throwaway PgBouncer in transaction pool mode between the controller and PostgreSQL
## (tests/e2e/pooler.rs), as Supabase's transaction pooler is in production.
pgbouncer:
	@scripts/ensure-pgbouncer.sh

## prometheus: install Debian's prometheus package (prometheus + promtool) when either is missing,
## for the test that checks the dashboards against a real Prometheus server.
prometheus:
	@scripts/ensure-prometheus.sh

## openclaw: install the pinned Node 24 and openclaw 2026.9.6 (for the real-gateway tests) into the
## user's cache, and the previous releases in OPENCLAW_PREVIOUS_VERSIONS beside it (the simulator
## runs an image tagged `:2026.9.5` on that install: upgrade tests); prints the path of the
## 2026.9.6 `openclaw` command only. Quiet and offline when already installed.
OPENCLAW_PREVIOUS_VERSIONS ?= 2026.9.5
openclaw:
	@for version in $(OPENCLAW_PREVIOUS_VERSIONS); do \
	  OPENCLAWS_OPENCLAW_VERSION=$$version scripts/install-openclaw.sh >/dev/null || exit 1; \
	done
	@scripts/install-openclaw.sh

## chromium: install Debian's chromium and chromium-driver when missing (the support console's
## browser test drives headless Chromium through chromedriver).
chromium:
	@scripts/ensure-chromium.sh

## ts-client-deps: install the TypeScript client's pinned dependencies (clients/typescript,
## `npm ci` with the pinned Node of `make openclaw`) when node_modules is missing or stale.
ts-client-deps: openclaw
	@scripts/ts-client.sh install

## ts-client: regenerate clients/typescript/src/schema.d.ts from the API's OpenAPI document
## (`openclaws-controller openapi`): run it and commit the result after any change to the API's
## routes or types; the test tests/api/ts_client.rs fails while the checked-in file is stale.
ts-client: ts-client-deps
	$(CARGO) build --quiet --bin openclaws-controller
	@scripts/ts-client.sh generate

## crd: regenerate the checked-in CRD from the Rust types.
crd:
	$(CARGO) run --quiet -- crd > crds/openclawinstances.openclaws.biz.yaml

clean:
	$(CARGO) clean
