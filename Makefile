# egress-resolver — every target installs what it needs into .venv by itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTO_FILES := $(wildcard proto/kumo/egress/v1/*.proto)
# google/rpc/*.proto ship inside googleapis-common-protos; buf and protoc read them from there.
PROTO_DEPS := build/proto-deps
POLICY ?= examples/policy.lua
LISTEN ?= 127.0.0.1:50051

.PHONY: help install gen gen-check gen-python gen-check-python proto-lint lint typecheck test \
	test-python test-unit test-integration test-conformance example-python run clean

# Each client language and the benchmarks live in mk/<part>.mk and add their
# targets to these lists, so `make gen`, `make gen-check` and `make test`
# cover every language.
GEN_TARGETS := gen-python
GEN_CHECK_TARGETS := gen-check-python
CLIENT_TEST_TARGETS :=
include $(sort $(wildcard mk/*.mk))

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# Both Python distributions, editable: egress-resolver (server/) requires
# egress-resolver-client (client/python/) at its own version, which the second
# -e satisfies.
$(STAMP): pyproject.toml client/python/pyproject.toml hatch_build.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ./client/python -e '.[dev]'
	touch $@

install: $(STAMP) ## create .venv with .venv/bin/egress-resolver and the dev tools

$(PROTO_DEPS)/.copied: $(STAMP)
	rm -rf $(PROTO_DEPS) && mkdir -p $(PROTO_DEPS)/google/rpc
	cp "$$($(PY) -c 'import google.rpc.status_pb2 as m, os; print(os.path.dirname(m.__file__))')"/{status,error_details,code}.proto $(PROTO_DEPS)/google/rpc/
	touch $@

# Generates into $(1) (a directory that stands for client/python).
define gen_python
	$(PY) -m grpc_tools.protoc -I proto -I $(PROTO_DEPS) \
	  --plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy --plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc \
	  --python_out=$(1) --grpc_python_out=$(1) --mypy_out=$(1) --mypy_grpc_out=$(1) $(PROTO_FILES)
endef

gen: $(GEN_TARGETS) ## regenerate the committed client code of every language from proto/

gen-check: $(GEN_CHECK_TARGETS) ## fail when any committed generated code is stale

gen-python: $(PROTO_DEPS)/.copied
	$(call gen_python,client/python)

gen-check-python: $(PROTO_DEPS)/.copied
	rm -rf build/gen-check && mkdir -p build/gen-check
	$(call gen_python,build/gen-check)
	diff -r --exclude=__pycache__ --exclude=__init__.py --exclude=py.typed build/gen-check/kumo client/python/kumo

proto-lint: $(PROTO_DEPS)/.copied ## buf lint (STANDARD) and buf format
	$(BIN)/buf lint
	$(BIN)/buf format --diff --exit-code proto

lint: $(STAMP) proto-lint ## ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy --strict
	$(BIN)/mypy

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

test-integration: $(STAMP)
	$(BIN)/pytest tests/integration -q

# ghz (pinned in mk/bench.mk) and grpcurl (mk/grpcurl.mk) run the
# reflection-only commands of docs/index.md in tests/integration/test_reflection.py.
test-python: $(STAMP) $(GHZ_STAMP) $(GRPCURL_STAMP)
	GHZ=$(CURDIR)/$(GHZ) GRPCURL=$(CURDIR)/$(GRPCURL) $(BIN)/pytest -q --ignore=tests/conformance

# One suite for every client: tests/conformance/scenarios/*.json played against
# each language's example (make example-<lang>), after each language's own tests.
CONFORMANCE_LANGUAGES ?= python go typescript rust
test-conformance: $(STAMP) ## the shared client conformance suite, every language (tests/conformance)
	CONFORMANCE_LANGUAGES='$(CONFORMANCE_LANGUAGES)' $(BIN)/pytest -q tests/conformance

test: lint typecheck gen-check test-python $(CLIENT_TEST_TARGETS) test-conformance ## everything CI runs

# With NAME: resolve it once. Without: the scriptable example (JSON lines on
# stdin, one JSON line out per command; see client/python/egress_client/example.py).
example-python: $(STAMP) ## the Python client's example: make example-python TARGET=127.0.0.1:50051 [CACHE=1] [NAME=ip-1]
	@$(PY) -m egress_client.example --target '$(or $(TARGET),$(LISTEN))' $(if $(CACHE),--cache) $(NAME)

run: $(STAMP) ## serve examples/policy.lua on 127.0.0.1:50051
	$(BIN)/egress-resolver serve --policy $(POLICY) --listen $(LISTEN)

clean: ## remove the venv, build outputs and dist/
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis
