"""Caches that stay right, with real sidecar processes: ages, restarts, warm reloads,
targeted invalidation and long idle streams (issue "Caches that stay right")."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc

from egress_client import Resolver, ResolverError
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc
from support import DEADLINE, ServerProcess, health_status, rpcs, until, watch

DATA_POLICY = """
local data = kumo.json_load('sources.json')
kumo.on('get_egress_source', function(name)
  local address = data[name]
  if address == nil then return nil end
  return kumo.make_egress_source { name = name, source_address = address, ttl = '%s' }
end)
"""


CLI = (sys.executable, "-m", "egress_resolver")


def write_policy(directory: Path, names: int, ttl: str = "1h") -> Path:
    (directory / "sources.json").write_text(
        json.dumps({f"ip-{i}": f"10.0.{i // 250}.{i % 250 + 1}" for i in range(names)})
    )
    policy = directory / "policy.lua"
    policy.write_text(DATA_POLICY % ttl)
    return policy


def change_address(directory: Path, name: str, address: str) -> None:
    path = directory / "sources.json"
    data = json.loads(path.read_text())
    data[name] = address
    path.write_text(json.dumps(data))


@contextlib.contextmanager
def serve(policy: Path, listen: str, *extra: str) -> Iterator[ServerProcess]:
    """A sidecar process, once its policy is loaded (it listens before that)."""
    args = ("--policy", str(policy), "--listen", listen, "--watch-interval", "0", *extra)
    with ServerProcess(*args) as srv:
        srv.wait_for_event("policy loaded")
        yield srv


def explain(target: str, name: str) -> pb.ExplainEgressSourceResponse:
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.EgressResolverServiceStub(channel)
        response: pb.ExplainEgressSourceResponse = stub.ExplainEgressSource(
            pb.ExplainEgressSourceRequest(name=name), timeout=DEADLINE
        )
        return response


def test_a_client_keeps_an_entry_only_until_produced_at_plus_ttl(tmp_path: Path) -> None:
    policy = write_policy(tmp_path, 1, ttl="2s")
    with serve(policy, "127.0.0.1:0") as srv, Resolver(srv.target, cache=True) as resolver:
        assert resolver.wait_until_watching(DEADLINE)
        produced = explain(srv.target, "ip-0").produced_at.ToNanoseconds() / 1e9
        until(lambda: time.time() - produced >= 1.5, "the sidecar's entry is 1.5 s old")
        assert explain(srv.target, "ip-0").cache_hit  # the client will get the aged entry
        resolver.get("ip-0")
        asked = time.monotonic()
        first = rpcs(resolver)
        until(lambda: resolver.get("ip-0") is not None and rpcs(resolver) > first, "asks again")
        waited = time.monotonic() - asked
        # 0.5 s were left of the ttl; a client counting a full ttl from its own
        # request would not ask again before 2 s.
        assert waited < 1.25, f"the client asked again after {waited:.3f} s"


def test_a_sidecar_restart_fails_no_cached_lookup_and_keeps_the_cache(tmp_path: Path) -> None:
    policy = write_policy(tmp_path, 100)
    listen = f"unix:{tmp_path / 's.sock'}"
    names = [f"ip-{i}" for i in range(100)]
    failures: list[ResolverError] = []
    stop = threading.Event()
    with Resolver(listen, cache=True) as resolver:

        def look_up() -> None:
            while not stop.is_set():
                for name in names:
                    try:
                        resolver.get(name)
                    except ResolverError as err:
                        failures.append(err)

        with serve(policy, listen):
            assert resolver.wait_until_watching(DEADLINE)
            for name in names:
                resolver.get(name)
            before = rpcs(resolver)
            thread = threading.Thread(target=look_up)
            thread.start()
        # stopped with SIGTERM (ServerProcess.__exit__): lookups go on meanwhile
        until(lambda: not resolver.stats()["watching"], "the client saw the stream end")
        with serve(policy, listen):
            until(lambda: resolver.stats()["watching"] is True, "the client resumed watching")
            stop.set()
            thread.join(DEADLINE)
            assert failures == []
            for name in names:
                resolver.get(name)
            assert rpcs(resolver) == before  # not one GetEgressSource at the new sidecar


def test_a_restart_with_a_changed_policy_is_served_within_a_second(tmp_path: Path) -> None:
    policy = write_policy(tmp_path, 10)
    listen = f"unix:{tmp_path / 's.sock'}"
    with Resolver(listen, cache=True) as resolver:
        with serve(policy, listen):
            assert resolver.wait_until_watching(DEADLINE)
            assert resolver.get("ip-3").source_address == "10.0.0.4"
        change_address(tmp_path, "ip-3", "10.9.9.9")
        with serve(policy, listen):
            until(lambda: health_status(listen) == 1, "the new sidecar is SERVING")
            serving = time.monotonic()
            until(lambda: resolver.get("ip-3").source_address == "10.9.9.9", "new definition")
            waited = time.monotonic() - serving
            assert waited < 1.0, f"the new definition was served {waited:.3f} s after SERVING"


def test_a_reload_that_changes_one_of_1000_names_announces_only_it(tmp_path: Path) -> None:
    policy = write_policy(tmp_path, 1000)
    with serve(policy, "127.0.0.1:0") as srv, Resolver(srv.target, cache=True) as resolver:
        assert resolver.wait_until_watching(DEADLINE)
        names = [f"ip-{i}" for i in range(1000)]
        for name in names:
            resolver.get(name)
        channel, stream = watch(srv.target)
        try:
            hello = next(stream)
            change_address(tmp_path, "ip-7", "10.7.7.7")
            srv.signal(signal.SIGHUP)
            event = next(stream)
        finally:
            channel.close()
        assert (event.all, list(event.names), event.sequence) == (False, ["ip-7"], 1)
        assert event.revision != hello.revision
        others = [name for name in names if name != "ip-7"]
        assert all(explain(srv.target, name).cache_hit for name in others)
        until(lambda: resolver.stats()["entries"] == 999, "the client dropped ip-7")
        before = rpcs(resolver)
        for name in others:
            resolver.get(name)
        assert rpcs(resolver) == before  # the client kept the other 999
        assert resolver.get("ip-7").source_address == "10.7.7.7"


def test_the_invalidate_command_reaches_the_stream_and_the_next_get_runs_the_policy(
    tmp_path: Path,
) -> None:
    policy = write_policy(tmp_path, 3)
    with serve(policy, "127.0.0.1:0") as srv:
        explain(srv.target, "ip-1")
        assert explain(srv.target, "ip-1").cache_hit
        channel, stream = watch(srv.target)
        try:
            next(stream)
            done = subprocess.run(
                [*CLI, "invalidate", "--target", srv.target, "ip-1"],
                capture_output=True,
                text=True,
                timeout=DEADLINE,
                check=True,
            )
            assert json.loads(done.stdout) == {"sequence": 1, "dropped": 1}
            event = next(stream)
        finally:
            channel.close()
        assert (event.all, list(event.names), list(event.pool_names)) == (False, ["ip-1"], [])
        assert not explain(srv.target, "ip-1").cache_hit  # this call ran the policy


def test_invalidate_can_be_turned_off(tmp_path: Path) -> None:
    policy = write_policy(tmp_path, 1)
    with serve(policy, "127.0.0.1:0", "--allow-invalidate", "false") as srv:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "egress_resolver",
                "invalidate",
                "--target",
                srv.target,
                "--all",
            ],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )
        assert done.returncode == 1
        assert done.stderr.startswith("PERMISSION_DENIED: Invalidate is turned off")
        assert "[INVALIDATE_DISABLED]" in done.stderr


def test_an_idle_stream_outlives_many_keepalive_pings(tmp_path: Path) -> None:
    # gRPC clients ping at most once a second; the sidecar's default policy
    # would answer the third ping of an idle connection with GOAWAY
    # too_many_pings. Held idle for 5 pings, the stream must stay the same one.
    policy = write_policy(tmp_path, 2)
    with (
        serve(policy, "127.0.0.1:0", "--keepalive-interval", "1s") as srv,
        Resolver(srv.target, cache=True, keepalive_interval=1.0) as resolver,
    ):
        assert resolver.wait_until_watching(DEADLINE)
        resolver.get("ip-1")
        threading.Event().wait(5.5)  # idle: real time is the point here
        assert resolver.stats()["watching"] is True
        with grpc.insecure_channel(srv.target) as channel:
            pb_grpc.EgressResolverServiceStub(channel).Invalidate(
                pb.InvalidateRequest(names=["ip-1"]), timeout=DEADLINE
            )
        until(lambda: resolver.stats()["entries"] == 0, "the idle stream delivered")
        assert resolver._watcher is not None
        assert resolver._watcher.streams == 1  # never cut and reopened
