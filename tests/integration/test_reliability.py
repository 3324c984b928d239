"""Faults with real processes and signals: reloads under load, draining, garbage input."""

import os
import random
import signal
import threading
from pathlib import Path

import grpc

from egress_client import Resolver, ResolverError
from support import DEADLINE, ServerProcess, fixture, health_status

METHOD = "/kumo.egress.v1.EgressResolverService/GetEgressSource"


class Load:
    """Calls the server without pause from a thread, counting answers and failures."""

    def __init__(self, target: str, names: int = 20) -> None:
        self.resolver = Resolver(target, timeout=DEADLINE)
        self.names = [f"name-{i}" for i in range(names)]
        self.answers: dict[str, int] = {}
        self.failures: list[ResolverError] = []
        self.calls = 0
        self._stop = threading.Event()
        self.warm = threading.Event()  # set after the first round of answers
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name in self.names:
                try:
                    ehlo = self.resolver.get(name).ehlo_domain
                    self.answers[ehlo] = self.answers.get(ehlo, 0) + 1
                except ResolverError as err:
                    self.failures.append(err)
                self.calls += 1
            self.warm.set()

    def __enter__(self) -> "Load":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(DEADLINE)
        self.resolver.close()


def version(policy: Path, text: str) -> None:
    """Rewrite the policy (atomically, as a config manager would)."""
    staged = policy.with_suffix(".new")
    staged.write_text(text)
    os.replace(staged, policy)


def test_good_broken_good_reload_under_load_loses_nothing(tmp_path: Path) -> None:
    policy = tmp_path / "policy.lua"
    original = fixture("versioned.lua").read_text()
    policy.write_text(original)
    args = ("--policy", str(policy), "--listen", "127.0.0.1:0", "--watch-interval", "50ms")
    with ServerProcess(*args) as server:
        server.wait_for_event("policy loaded")
        with Load(server.target) as load:
            assert load.warm.wait(DEADLINE)
            version(policy, original.replace("'v1'", "'v2'"))
            assert server.wait_for_event("policy loaded")["generation"] == 2
            version(policy, "this is not lua")
            server.wait_for_event("policy load failed")
            calls_after_failure = load.calls
            version(policy, original.replace("'v1'", "'v3'"))
            assert server.wait_for_event("policy loaded")["generation"] == 3
            latest = Resolver(server.target)
            assert latest.get("fresh-name").ehlo_domain == "v3"
            assert latest.get("name-0").ehlo_domain == "v3"  # the cache was invalidated
            latest.close()
        assert load.failures == []
        assert load.calls > calls_after_failure
        assert set(load.answers) <= {"v1", "v2", "v3"}
        assert load.answers.get("v1", 0) > 0


def test_sigterm_drains_in_flight_calls_and_refuses_new_ones(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    env = {"FIFO": str(fifo)}
    args = ("--policy", str(fixture("counter.lua")), "--listen", "127.0.0.1:0")
    with ServerProcess(*args, "--handler-timeout", "60s", env=env) as server:
        server.wait_for_event("policy loaded")
        in_flight: list[object] = []
        resolver = Resolver(server.target, timeout=DEADLINE)
        caller = threading.Thread(target=lambda: in_flight.append(resolver.get("wait-1")))
        caller.start()
        # Opening a FIFO for writing returns once the handler has opened it for
        # reading: from then on, wait-1 is a call in flight inside the policy.
        release = fifo.open("w")
        assert resolver.get("unspecified").name == "unspecified"  # served while wait-1 blocks
        server.signal(signal.SIGTERM)
        refused = None
        with Resolver(server.target, timeout=5) as probe:
            for _ in range(int(DEADLINE / 0.05)):
                try:
                    probe.get("unspecified")
                except ResolverError as err:
                    refused = err
                    break
                threading.Event().wait(0.05)
        assert refused is not None
        assert refused.code is grpc.StatusCode.UNAVAILABLE
        assert refused.reason in ("SHUTTING_DOWN", None)
        release.write("go\n")
        release.close()
        caller.join(DEADLINE)
        assert [getattr(s, "name", None) for s in in_flight] == ["wait-1"]
        assert server.wait() == 0
        resolver.close()


def test_random_request_bodies_do_not_hurt_the_server() -> None:
    rng = random.Random(20261125)
    args = ("--policy", str(fixture("seed_source_address.lua")), "--listen", "127.0.0.1:0")
    with ServerProcess(*args) as server:
        server.wait_for_event("policy loaded")
        with grpc.insecure_channel(server.target) as channel:
            call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(METHOD)
            seen: set[grpc.StatusCode] = set()
            for size in [0, 1, 2, 3, 5, 8, 64, 1024, 70_000] * 20:
                body = rng.randbytes(size)
                try:
                    call(body, timeout=DEADLINE)
                    seen.add(grpc.StatusCode.OK)
                except grpc.RpcError as err:
                    seen.add(err.code())
        assert seen <= {
            grpc.StatusCode.OK,
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.FAILED_PRECONDITION,
        }
        with Resolver(server.target) as resolver:
            assert resolver.get("ip-1").source_address == "10.0.0.1"
        assert health_status(server.target) == 1


def test_sigterm_exits_after_the_grace_period_even_if_a_handler_is_stuck(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    args = ("--policy", str(fixture("counter.lua")), "--listen", "127.0.0.1:0")
    flags = ("--handler-timeout", "1h", "--shutdown-grace", "500ms")
    with ServerProcess(*args, *flags, env={"FIFO": str(fifo)}) as server:
        server.wait_for_event("policy loaded")
        resolver = Resolver(server.target, timeout=DEADLINE)
        failed: list[ResolverError] = []

        def stuck_call() -> None:
            try:
                resolver.get("wait-forever")
            except ResolverError as err:
                failed.append(err)

        caller = threading.Thread(target=stuck_call)
        caller.start()
        with fifo.open("w"):  # returns once the handler is blocked reading the FIFO
            server.signal(signal.SIGTERM)
            assert server.wait() == 0
        caller.join(DEADLINE)
        assert len(failed) == 1  # the one stuck call is the only loss
        resolver.close()
