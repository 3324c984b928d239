# The documentation site (issue 20): `make docs` builds docs/ with MkDocs
# (Material theme; mkdocs.yml at the root, versions pinned in pyproject.toml)
# into build/docs, strict: a broken link or anchor, or a page left out of the
# nav, fails it. The generated tables of the pages (docs/errors.md, the field
# tables of docs/reference/index.md) are checked first; `make docs-tables`
# rewrites them. `make test` runs both.
.PHONY: docs docs-tables test-docs

CLIENT_TEST_TARGETS += test-docs

# No --quiet: it drops the warnings that strict mode counts.
docs: $(STAMP) ## build the documentation site into build/docs (mkdocs build --strict)
	$(PY) -m egress_resolver.ops.docs_tables --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --config-file mkdocs.yml --site-dir build/docs

docs-tables: $(STAMP) ## rewrite the generated tables of docs/ (error reasons, the reference index)
	$(PY) -m egress_resolver.ops.docs_tables

test-docs: docs
