# TypeScript / Node.js client (client/typescript): generated code, strict type
# check, live tests and the example program. `npm ci` installs the pinned
# tools (protoc-gen-es, tsc) into client/typescript/node_modules (gitignored),
# and what the Haraka plugin's live test runs: Haraka 3.3.4 (the real MTA, one
# process), smtp-server and nodemailer (the loopback recorder and the sender).

TS_DIR := client/typescript
TS_NPM_STAMP := $(TS_DIR)/node_modules/.npm-ci-done
TS_BUILD_STAMP := $(TS_DIR)/dist/.built
TS_SOURCES := $(shell find $(TS_DIR)/src $(TS_DIR)/test -name '*.ts' 2>/dev/null)
TSC := $(TS_DIR)/node_modules/.bin/tsc -p $(TS_DIR)/tsconfig.json

GEN_TARGETS += gen-typescript
GEN_CHECK_TARGETS += gen-check-typescript
CLIENT_TEST_TARGETS += test-typescript

.PHONY: gen-typescript gen-check-typescript test-typescript example-typescript bench-typescript

# Build output goes to stderr: `make example-typescript` speaks JSON on stdout.
$(TS_NPM_STAMP): $(TS_DIR)/package.json $(TS_DIR)/package-lock.json
	cd $(TS_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
	touch $@

# Generates src/gen under $(1), a directory that stands for client/typescript.
define gen_typescript
	$(BIN)/buf generate --template $(TS_DIR)/buf.gen.yaml --output $(1)
endef

gen-typescript: $(PROTO_DEPS)/.copied $(TS_NPM_STAMP) ## regenerate client/typescript/src/gen
	$(call gen_typescript,$(TS_DIR))

gen-check-typescript: $(PROTO_DEPS)/.copied $(TS_NPM_STAMP) ## fail when client/typescript/src/gen is stale
	rm -rf build/gen-check-typescript && mkdir -p build/gen-check-typescript
	$(call gen_typescript,build/gen-check-typescript)
	diff -r build/gen-check-typescript/src/gen $(TS_DIR)/src/gen

$(TS_BUILD_STAMP): $(TS_NPM_STAMP) $(TS_DIR)/tsconfig.json $(TS_SOURCES)
	rm -rf $(TS_DIR)/dist
	$(TSC) --noEmitOnError >&2
	touch $@

# dist/test/*.test.js includes haraka.live.test.js: real Haraka with the
# plugin in client/typescript/haraka/egress, against a real sidecar.
test-typescript: $(STAMP) $(TS_BUILD_STAMP) ## tsc --noEmit (strict) and the live tests of the TypeScript client (Haraka included)
	$(TSC) --noEmit
	cd $(TS_DIR) && node --test dist/test/*.test.js

# Without NAME the example reads JSON commands on stdin (the conformance
# protocol); CACHE=1 turns the client cache on.
example-typescript: $(TS_BUILD_STAMP) ## make example-typescript TARGET=127.0.0.1:50051 [CACHE=1] [NAME=ip-1]
	@node $(TS_DIR)/dist/src/example.js $(if $(TARGET),--target '$(TARGET)') $(if $(filter 1,$(CACHE)),--cache) $(if $(NAME),'$(NAME)')

# The TypeScript client's figures (cached get, round trip, select, reload to
# fresh) as one JSON line on stdout; `make bench-client` may collect it.
bench-typescript: $(STAMP) $(TS_BUILD_STAMP) ## cost of the TypeScript client's cached get, round trip, select and reload
	node $(TS_DIR)/dist/test/bench.js
