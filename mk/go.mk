# Go client (client/go, its own module): generated code, the egressclient
# package, the example program and their tests against a real server.
GO ?= go
GO_DIR := client/go
GOBIN_DIR := $(CURDIR)/bin
# GOTOOLCHAIN=local: use the Go that CI installed, never download another one.
GO_ENV := GOTOOLCHAIN=local GOBIN=$(GOBIN_DIR)
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GO_PLUGINS := $(GOBIN_DIR)/.go-plugins-$(PROTOC_GEN_GO_VERSION)-$(PROTOC_GEN_GO_GRPC_VERSION)
GO_EXAMPLE := $(CURDIR)/build/go/egress-example
# Extra `go test` flags, e.g. GO_TEST_FLAGS=-race (off by default: a cold race
# build of grpc-go costs minutes on a small CI machine).
GO_TEST_FLAGS ?=
# buf generates from the repository root; $(1) is an extra output base directory.
gen_go = $(BIN)/buf generate --template $(GO_DIR)/buf.gen.yaml --path proto/kumo $(1)

GEN_TARGETS += gen-go
GEN_CHECK_TARGETS += gen-check-go
CLIENT_TEST_TARGETS += test-go
.PHONY: gen-go gen-check-go test-go example-go

$(GO_PLUGINS):
	$(GO_ENV) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(GO_ENV) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	touch $@

gen-go: $(PROTO_DEPS)/.copied $(GO_PLUGINS) ## regenerate client/go/kumo from proto/
	rm -rf $(GO_DIR)/kumo
	$(call gen_go)

gen-check-go: $(PROTO_DEPS)/.copied $(GO_PLUGINS) ## fail when client/go/kumo is stale
	rm -rf build/gen-check-go
	$(call gen_go,--output build/gen-check-go)
	diff -r build/gen-check-go/$(GO_DIR)/kumo $(GO_DIR)/kumo

test-go: $(STAMP) ## gofmt, go vet and go test of client/go against a real server
	@unformatted="$$(cd $(GO_DIR) && "$$($(GO_ENV) $(GO) env GOROOT)/bin/gofmt" -l .)"; \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	cd $(GO_DIR) && $(GO_ENV) $(GO) vet ./...
	cd $(GO_DIR) && $(GO_ENV) EGRESS_RESOLVER=$(CURDIR)/$(BIN)/egress-resolver $(GO) test $(GO_TEST_FLAGS) -count=1 -timeout 5m ./...

# Without NAME the example reads JSON commands on stdin (see
# client/go/cmd/egress-example); CACHE=1 turns the client's cache on.
example-go: ## the Go client's example: make example-go TARGET=127.0.0.1:50051 [CACHE=1] [NAME=ip-1] (no NAME: commands on stdin)
	@cd $(GO_DIR) && $(GO_ENV) $(GO) build -o $(GO_EXAMPLE) ./cmd/egress-example
	@$(GO_EXAMPLE) $(if $(TARGET),--target '$(TARGET)',$(if $(EGRESS_CLIENT_TARGET),,--target '$(LISTEN)')) $(if $(filter 1 true yes on,$(CACHE)),--cache) $(if $(NAME),'$(NAME)')
