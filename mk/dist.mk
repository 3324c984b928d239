# Packages (issue 14): `make dist` writes every package into dist/ and
# `make test-packaging` (part of `make test`) installs each one the way its
# ecosystem does and resolves a name through it from a live sidecar
# (tests/packages). Go has no artifact: a Go module is used from its
# repository (tests/packages/test_go_module.py). The container image is
# mk/image.mk.
# This part is included before rust.mk and typescript.mk (mk/*.mk in name
# order), so its prerequisites name their directories and the TypeScript build
# stamp literally; recipes may use their variables.
DIST := dist
# The one version of the Python distributions; package.json and Cargo.toml
# carry the same one (tests/packages/test_versions.py).
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' client/python/egress_client/_version.py)
PY_CLIENT_SOURCES := $(shell find client/python/kumo client/python/egress_client -name '*.py*' -not -path '*/__pycache__/*') \
	client/python/pyproject.toml client/python/README.md
PY_SERVER_SOURCES := $(shell find server/egress_resolver -name "*.py" -not -path "*/__pycache__/*") pyproject.toml hatch_build.py README.md
PY_CLIENT_WHEEL := $(DIST)/egress_resolver_client-$(VERSION)-py3-none-any.whl
PY_SERVER_WHEEL := $(DIST)/egress_resolver-$(VERSION)-py3-none-any.whl
NPM_TARBALL := $(DIST)/egress-resolver-client-$(VERSION).tgz
CRATE := $(DIST)/egress-client-$(VERSION).crate
RUST_SOURCES := $(shell find client/rust/src client/rust/examples -name '*.rs') \
	$(addprefix client/rust/,build.rs Cargo.toml Cargo.lock README.md)

CLIENT_TEST_TARGETS += test-packaging
.PHONY: dist dist-python dist-typescript dist-rust test-packaging

dist: dist-python dist-typescript dist-rust ## every package into dist/: Python wheels + sdists, npm tarball, .crate

dist-python: $(PY_CLIENT_WHEEL) $(PY_SERVER_WHEEL)
dist-typescript: $(NPM_TARBALL)
dist-rust: $(CRATE)

# python -m build makes the sdist, then the wheel from the sdist (so the sdist
# is known to build). --no-isolation: hatchling and build are pinned in .venv.
$(PY_CLIENT_WHEEL): $(STAMP) $(PY_CLIENT_SOURCES)
	rm -f $(DIST)/egress_resolver_client-*
	$(PY) -m build --no-isolation --outdir $(DIST) client/python

$(PY_SERVER_WHEEL): $(STAMP) $(PY_SERVER_SOURCES) client/python/egress_client/_version.py
	rm -f $(DIST)/egress_resolver-[0-9]*
	$(PY) -m build --no-isolation --outdir $(DIST) .

# `files` in package.json picks what the tarball holds (dist/src, no tests).
$(NPM_TARBALL): client/typescript/dist/.built client/typescript/package.json client/typescript/README.md
	mkdir -p $(DIST) && rm -f $(DIST)/egress-resolver-client-*.tgz
	cd $(TS_DIR) && npm pack --ignore-scripts --silent --pack-destination $(CURDIR)/$(DIST) >/dev/null

# The crate's build.rs reads proto/ from inside the crate when it is not in
# this repository: copy the schema and google/rpc/status.proto in for
# `cargo package` (which also builds the packaged crate on its own), then
# remove the copy. --allow-dirty: the package is what the work tree holds.
# The packaged crate is built in a target directory of its own: cargo gives
# it the same unit hashes as client/rust itself, and sharing client/rust/target
# would let either build reuse the other's build-script output (generated
# from another proto/). tests/packages/test_rust_crate.py builds there too.
RUST_PACKAGE_TARGET := client/rust/target/dist
$(CRATE): $(PROTO_DEPS)/.copied $(RUST_SOURCES) $(PROTO_FILES)
	rm -rf $(RUST_DIR)/proto && mkdir -p $(RUST_DIR)/proto/google/rpc $(DIST)
	cp -r proto/kumo $(RUST_DIR)/proto/
	cp $(PROTO_DEPS)/google/rpc/status.proto $(RUST_DIR)/proto/google/rpc/
	cd $(RUST_DIR) && $(RUST_ENV) CARGO_TARGET_DIR=$(CURDIR)/$(RUST_PACKAGE_TARGET) \
	  $(CARGO) package --locked --allow-dirty --quiet; status=$$?; rm -rf proto; exit $$status
	cp $(RUST_PACKAGE_TARGET)/package/egress-client-$(VERSION).crate $@

test-packaging: $(STAMP) dist ## install each package into a scratch project and resolve a name (tests/packages)
	EGRESS_DIST=$(CURDIR)/$(DIST) CARGO_TARGET_DIR=$(CURDIR)/$(RUST_PACKAGE_TARGET) \
	  GOTOOLCHAIN=local $(BIN)/pytest tests/packages -q --durations=5
