"""The warm-reload rules (serving/warm.py; docs/index.md "Caches that stay right", 4) with a
real sidecar process and SIGHUP: what a reload announces on WatchInvalidations when
the cache evicted, when it holds more names than --reload-warm-names, and when a
name is being loaded while the reload runs."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
from datasources import HeldHttpServer

from egress_client import Resolver
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc
from support import DEADLINE, ServerProcess, watch

POLICY = """
local data = kumo.json_load('sources.json')
kumo.on('get_egress_source', function(name)
  if name:sub(1, 5) == 'held-' then
    local client = kumo.http.build_client { timeout = '60s' }
    local response = client:get(os.getenv('HTTP_URL') .. '/' .. name):send()
    return kumo.make_egress_source { name = name, ehlo_domain = response:text(), ttl = '1h' }
  end
  local address = data[name]
  if address == nil then return nil end
  return kumo.make_egress_source { name = name, source_address = address, ttl = '1h' }
end)
"""
NAMES = [f"ip-{i}" for i in range(5)]


def write_sources(directory: Path, changes: dict[str, str] | None = None) -> None:
    sources = {name: f"10.0.0.{i + 1}" for i, name in enumerate(NAMES)}
    (directory / "sources.json").write_text(json.dumps({**sources, **(changes or {})}))


@contextlib.contextmanager
def serve(
    directory: Path, *extra: str, env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    """The policy above in a sidecar that reloads on SIGHUP only."""
    write_sources(directory)
    policy = directory / "policy.lua"
    policy.write_text(POLICY)
    args = ("--policy", str(policy), "--listen", "127.0.0.1:0", "--watch-interval", "0")
    with ServerProcess(*args, "--handler-timeout", "60s", *extra, env=env) as server:
        server.wait_for_event("policy loaded")
        yield server


@contextlib.contextmanager
def invalidations(target: str) -> Iterator[Iterator[pb.WatchInvalidationsResponse]]:
    """A WatchInvalidations stream, after its hello."""
    channel, stream = watch(target)
    try:
        hello = next(stream)
        assert (hello.all, list(hello.names)) == (False, [])
        yield stream
    finally:
        channel.close()


def reload(
    server: ServerProcess, stream: Iterator[pb.WatchInvalidationsResponse]
) -> tuple[bool, list[str]]:
    """SIGHUP, and what the reload announced: (all, names)."""
    server.signal(signal.SIGHUP)
    event = next(stream)
    return event.all, list(event.names)


def cache_hit(target: str, name: str) -> bool:
    """Whether the sidecar holds `name` (ExplainEgressSource; a miss resolves it)."""
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.EgressResolverServiceStub(channel)
        response = stub.ExplainEgressSource(
            pb.ExplainEgressSourceRequest(name=name), timeout=DEADLINE
        )
        return response.cache_hit


def test_all_is_announced_after_the_cache_evicted_since_the_last_swap(tmp_path: Path) -> None:
    with (
        serve(tmp_path, "--cache-size", "3") as server,
        Resolver(server.target, timeout=DEADLINE) as resolver,
        invalidations(server.target) as stream,
    ):
        for name in NAMES:  # five names in a cache of three: two evicted
            resolver.get(name)
        # Clients may hold ip-0 and ip-1, which the sidecar no longer knows of.
        assert reload(server, stream) == (True, [])
        # No eviction since that swap: the three cached names were re-resolved,
        # unchanged, and nothing else is announced.
        assert reload(server, stream) == (False, [])
        resolver.get("ip-0")  # a miss: the cache is full, ip-2 is evicted
        assert reload(server, stream) == (True, [])


def test_names_not_re_resolved_are_announced_by_name(tmp_path: Path) -> None:
    with (
        serve(tmp_path, "--reload-warm-names", "2") as server,
        Resolver(server.target, timeout=DEADLINE) as resolver,
        invalidations(server.target) as stream,
    ):
        for name in NAMES:  # ip-4 and ip-3 are the two most recently used
            resolver.get(name)
        write_sources(tmp_path, {"ip-3": "10.3.3.3"})
        # ip-3 changed; ip-4 did not; ip-0..ip-2 were not checked with the new policy.
        assert reload(server, stream) == (False, ["ip-0", "ip-1", "ip-2", "ip-3"])
        assert cache_hit(server.target, "ip-4")  # kept, under the new revision
        assert cache_hit(server.target, "ip-3")  # re-resolved: the new definition
        assert resolver.get("ip-3").source_address == "10.3.3.3"
        assert not cache_hit(server.target, "ip-0")  # dropped: resolved again on request


def test_a_name_being_loaded_during_the_reload_is_announced(tmp_path: Path) -> None:
    with (
        HeldHttpServer() as held,
        serve(tmp_path, env={"HTTP_URL": held.url}) as server,
        Resolver(server.target, timeout=DEADLINE) as resolver,
        invalidations(server.target) as stream,
    ):
        resolver.get("ip-0")
        answered: list[str | None] = []
        caller = threading.Thread(
            target=lambda: answered.append(resolver.get("held-1").ehlo_domain)
        )
        caller.start()
        held.wait_for_requests(1)  # held-1's load waits on its data source
        # The old policy's load may finish after the swap: clients must not keep it.
        # ip-0 was re-resolved, unchanged: not announced.
        assert reload(server, stream) == (False, ["held-1"])
        held.release()
        caller.join(DEADLINE)
        assert answered == ["held.example"]  # the caller that waited gets its answer...
        resolver.get("held-1")
        assert held.requests == 2  # ...but the sidecar did not keep it: the policy ran again
