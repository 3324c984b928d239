"""In-process cost of each step of a hit and of a miss, without gRPC.

Times, in this process and on one thread, what the sidecar does per call
besides grpcio's own work: the cache lookup that answers a hit (it returns
the response bytes serialized when the entry was stored), the request parse,
and what a miss adds: the Lua handler with validation (`PolicyHost`), and
building and serializing the response (`encode_source`). Uses
bench/policy.lua and the name "ip-1", like `make bench-client`. Then the
whole miss path as the service runs it — the cache's single-flight, the hand-off
to the Lua thread and back, the handler, validation, encoding and the store —
for 50 concurrent callers asking for new names, as CPU time (both threads) per
miss. Writes bench/results/hot-path.json. Best of 7 repeats (3 for the miss
path), in µs per call.

    .venv/bin/python bench/hot_path.py
"""

from __future__ import annotations

import asyncio
import json
import time
import timeit
from collections.abc import Callable
from pathlib import Path

from egress_resolver.definitions.codec import EncodedSource, encode_source
from egress_resolver.ops import logs
from egress_resolver.ops.app import App
from egress_resolver.ops.settings import Settings
from egress_resolver.runtime.lua_host import PolicyHost
from egress_resolver.serving.cache import DefinitionCache
from kumo.egress.v1 import resolver_service_pb2 as pb

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "hot-path.json"
NAME = "ip-1"


def best_us(call: Callable[[], object], number: int) -> float:
    """Best of 7 repeats of `number` calls, in µs per call."""
    return min(timeit.repeat(call, number=number, repeat=7)) / number * 1e6


def miss_path_cpu_us(misses: int = 20_000, concurrency: int = 50) -> float:
    """CPU µs per miss through ResolverService.resolve, `concurrency` callers at once."""
    logs.configure("json", "warning")

    async def run() -> float:
        app = App(Settings(policy=ROOT / "bench" / "policy.lua", cache_size=1_000_000))
        assert await app.runner.load()
        best = float("inf")

        async def caller(round_: int, first: int) -> None:
            for i in range(first, misses, concurrency):
                await app.service.resolve(f"miss-{round_}-{i}", 60.0)

        for round_ in range(3):
            started = time.process_time()
            await asyncio.gather(*(caller(round_, k) for k in range(concurrency)))
            best = min(best, (time.process_time() - started) / misses * 1e6)
        app.runner.close()
        return best

    return asyncio.run(run())


def main() -> None:
    host = PolicyHost(ROOT / "bench" / "policy.lua")
    definition = host.resolve_source(NAME)
    encoded = encode_source(definition)
    cache: DefinitionCache[EncodedSource] = DefinitionCache(
        10_000, negative_ttl=60.0, max_pending=1024
    )
    cache.store(NAME, encoded, time.monotonic())  # what a finished load stores
    request = pb.GetEgressSourceRequest(name=NAME).SerializeToString()
    figures = {
        "hit_cache_lookup_us": best_us(lambda: cache.lookup(NAME), 200_000),
        "request_parse_us": best_us(lambda: pb.GetEgressSourceRequest.FromString(request), 200_000),
        "miss_lua_handler_and_validation_us": best_us(lambda: host.resolve_source(NAME), 20_000),
        "miss_encode_source_us": best_us(lambda: encode_source(definition), 50_000),
        "miss_path_50_concurrent_cpu_us": miss_path_cpu_us(),
        "response_bytes": len(encoded.response),
    }
    RESULTS.write_text(json.dumps({k: round(v, 2) for k, v in figures.items()}, indent=2) + "\n")
    for key, value in figures.items():
        print(f"{key:<40} {value:8.2f}")


if __name__ == "__main__":
    main()
