# `make soak`: not part of `make test` (about 12 minutes). See docs/reliability.md.
.PHONY: soak

soak: $(STAMP) $(PROTO_DEPS)/.copied $(GHZ_STAMP) ## flood of 1M names, then ghz mixed load for 10 min (docs/reliability.md)
	$(PY) bench/soak.py

.PHONY: bench-metrics
bench-metrics: $(STAMP) $(PROTO_DEPS)/.copied $(GHZ_STAMP) ## hit-path cost of --metrics (CPU per call, calls/s), into docs/benchmarks.md
	$(PY) bench/metrics_cost.py
