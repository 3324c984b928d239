"""In-process cost of each step of a hit and of a miss, without gRPC.

Times, in this process and on one thread, what the sidecar does per call
besides grpcio's own work: the cache lookup that answers a hit (it returns
the response bytes serialized when the entry was stored), the request parse,
and what a miss adds: the Lua handler with validation (`PolicyHost`), and
building and serializing the response (`encode_source`). Uses
bench/policy.lua and the name "ip-1", like `make bench-client`. Writes
bench/results/hot-path.json. Best of 7 repeats, in µs per call.

    .venv/bin/python bench/hot_path.py
"""

from __future__ import annotations

import json
import timeit
from collections.abc import Callable
from pathlib import Path

from egress_resolver.cache import DefinitionCache
from egress_resolver.codec import EncodedSource, encode_source
from egress_resolver.lua_host import PolicyHost
from kumo.egress.v1 import resolver_service_pb2 as pb

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "hot-path.json"
NAME = "ip-1"


def best_us(call: Callable[[], object], number: int) -> float:
    """Best of 7 repeats of `number` calls, in µs per call."""
    return min(timeit.repeat(call, number=number, repeat=7)) / number * 1e6


def main() -> None:
    host = PolicyHost(ROOT / "bench" / "policy.lua")
    definition = host.resolve_source(NAME)
    encoded = encode_source(definition)
    cache: DefinitionCache[EncodedSource] = DefinitionCache(
        10_000, negative_ttl=60.0, max_pending=1024
    )
    cache._put(NAME, encoded, 3600.0)  # what a finished load stores
    request = pb.GetEgressSourceRequest(name=NAME).SerializeToString()
    figures = {
        "hit_cache_lookup_us": best_us(lambda: cache.lookup(NAME), 200_000),
        "request_parse_us": best_us(lambda: pb.GetEgressSourceRequest.FromString(request), 200_000),
        "miss_lua_handler_and_validation_us": best_us(lambda: host.resolve_source(NAME), 20_000),
        "miss_encode_source_us": best_us(lambda: encode_source(definition), 50_000),
        "response_bytes": len(encoded.response),
    }
    RESULTS.write_text(json.dumps({k: round(v, 2) for k, v in figures.items()}, indent=2) + "\n")
    for key, value in figures.items():
        print(f"{key:<40} {value:8.2f}")


if __name__ == "__main__":
    main()
