"""The benchmark harness behind `make bench` and `make bench-profile`.

Modules: `machine` (what the run ran on), `targets` (starting and stopping the
servers), `ghz` (running the load generator), `plan` (targets and scenarios),
`results` (medians and ratios), `report` (docs/benchmarks.md and JSON) and `plot`
(the PNG). Only the standard library and matplotlib are used.
"""
