# grpcurl (pinned), the reflection client docs/index.md shows: `make test` runs
# `grpcurl list` and `grpcurl describe` against a live sidecar in
# tests/integration/test_reflection.py (grpcurl asks grpc.reflection.v1
# first). Installed into bin/ with `go install`, like ghz in mk/bench.mk.
GRPCURL_VERSION := v1.9.4
GRPCURL := bin/grpcurl
GRPCURL_STAMP := bin/.grpcurl-$(GRPCURL_VERSION)

$(GRPCURL_STAMP):
	GOTOOLCHAIN=local GOBIN=$(CURDIR)/bin go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
	touch $@
