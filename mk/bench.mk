# Benchmarks (issue 4): `make bench` and `make bench-profile`. Not part of
# `make test`, which only borrows the pinned ghz for a reflection test. See
# docs/benchmarks.md. Tools go to bin/ (ghz, pinned) and build/bench-venv
# (matplotlib, py-spy, pinned in bench/requirements.txt); the project's .venv
# is only used to run the sidecar and the grpcio reference.
GHZ_VERSION := v0.121.0
GHZ := bin/ghz
GHZ_STAMP := bin/.ghz-$(GHZ_VERSION)
BENCH_VENV := build/bench-venv
BENCH_PY := $(BENCH_VENV)/bin/python
BENCH_VENV_STAMP := $(BENCH_VENV)/.installed
BENCH_REFERENCE_GO := build/bench/reference-go
BENCH_ARGS ?=
PROFILE_ARGS ?=

.PHONY: bench bench-profile bench-tools bench-client bench-fleet bench-scale bench-connect

$(GHZ_STAMP):
	GOTOOLCHAIN=local GOBIN=$(CURDIR)/bin go install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)
	touch $@

$(BENCH_VENV_STAMP): bench/requirements.txt
	rm -rf $(BENCH_VENV)
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -r bench/requirements.txt
	touch $@

$(BENCH_REFERENCE_GO): $(wildcard bench/reference/go/*.go) bench/reference/go/go.mod bench/reference/go/go.sum
	cd bench/reference/go && go build -trimpath -o $(CURDIR)/$@ .

bench-tools: $(STAMP) $(PROTO_DEPS)/.copied $(GHZ_STAMP) $(BENCH_VENV_STAMP) $(BENCH_REFERENCE_GO) redis-server

bench: bench-tools ## benchmark the sidecar against bare grpcio and grpc-go (~10 min)
	$(BENCH_PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/hot_path.py
	$(PY) bench/lua_api.py
	$(MAKE) bench-client
	$(MAKE) bench-fleet
	$(MAKE) bench-scale
	$(MAKE) bench-connect

# Connecting through a source (issue 19): every client's connect against a
# plain connect (bind 127.0.0.2, and no fields), and the time from a reported
# failure to two example processes knowing the suspension (p50/p99 over 30
# trials, goal p99 ≤ 50 ms). Writes bench/results/connect.json and its
# docs/benchmarks.md table.
BENCH_CONNECT_ARGS ?=
bench-connect: $(STAMP) ## connect's cost over a plain connect, report-to-every-client suspension latency, every language (~3 min)
	$(PY) bench/connect.py $(BENCH_CONNECT_ARGS)

# The serving core at scale (issue 18): a sidecar with 10 000 and 100 000
# cached sources; bytes per source, warm reload time, hits during reloads, RSS
# after them, server CPU per miss vs per hit, each against its goal. Writes
# bench/results/scale.json and its docs/benchmarks.md table.
BENCH_SCALE_ARGS ?=
bench-scale: $(STAMP) ## bytes/source, warm reload, hits during it, miss vs hit CPU at 10k and 100k sources (~6 min)
	$(PY) bench/scale.py $(BENCH_SCALE_ARGS)

# Fleet invalidation (issue 13): three sidecars on one redis-server, a caching
# client on each, 100 PUBLISHes; p50/p99 from PUBLISH to every client having
# dropped the name. Writes bench/results/fleet.json and its docs/benchmarks.md table.
BENCH_FLEET_ARGS ?=
bench-fleet: $(STAMP) redis-server ## PUBLISH-to-every-client latency, 3 sidecars on one Redis (~20 s)
	$(PY) bench/fleet.py $(BENCH_FLEET_ARGS)

# Every client (python, go, typescript, rust) measured through its own
# example program by bench/client_matrix.py: cached get, uncached round trip,
# select, and reload-to-fresh latency; the table in docs/benchmarks.md.
BENCH_CLIENT_ARGS ?=
bench-client: $(STAMP) ## every client's cached/uncached get, select and reload-to-fresh latency (~3 min)
	$(PY) bench/client_matrix.py $(BENCH_CLIENT_ARGS)

bench-profile: bench-tools ## py-spy profile of the sidecar's hit path (~20 s)
	$(BENCH_PY) bench/profile.py $(PROFILE_ARGS)
