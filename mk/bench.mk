# Benchmarks (issue 4): `make bench` and `make bench-profile`. Not part of
# `make test`, which only borrows the pinned ghz for a reflection test. See
# BENCHMARKS.md. Tools go to bin/ (ghz, pinned) and build/bench-venv
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

.PHONY: bench bench-profile bench-tools bench-client

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

bench-tools: $(STAMP) $(PROTO_DEPS)/.copied $(GHZ_STAMP) $(BENCH_VENV_STAMP) $(BENCH_REFERENCE_GO)

bench: bench-tools ## benchmark the sidecar against bare grpcio and grpc-go (~4 min)
	$(BENCH_PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/hot_path.py
	$(MAKE) bench-client

# The Go client's BenchmarkGetUncached (client/go/egressclient/bench_test.go)
# starts its own server; `go test` without -bench (make test-go) never runs it.
# Its output goes to $(GO_CLIENT_BENCH), which bench/client_bench.py parses
# into the same table as the Python rows.
GO_CLIENT_BENCH := build/bench/go-client-bench.txt
GO_CLIENT_BENCH_COUNT ?= 5

bench-client: $(STAMP) ## cost of the Python client's cached/uncached get and the Go client's Get (~45 s)
	mkdir -p $(dir $(GO_CLIENT_BENCH))
	set -o pipefail; cd $(GO_DIR) && $(GO_ENV) EGRESS_RESOLVER=$(CURDIR)/$(BIN)/egress-resolver \
	  $(GO) test -run '^$$' -bench '^BenchmarkGetUncached$$' -benchmem -count $(GO_CLIENT_BENCH_COUNT) \
	  -timeout 5m ./egressclient | tee $(CURDIR)/$(GO_CLIENT_BENCH)
	$(PY) bench/client_bench.py --go-bench $(GO_CLIENT_BENCH)

bench-profile: bench-tools ## py-spy profile of the sidecar's hit path (~20 s)
	$(BENCH_PY) bench/profile.py $(PROFILE_ARGS)
