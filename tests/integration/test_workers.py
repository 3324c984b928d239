"""`serve --workers 2` as a real process tree (ops/workers.py): both workers serve one
fixed TCP port with SO_REUSEPORT, what cannot be shared is refused, and a worker that
dies stops the sidecar (exit 1) so that its supervisor restarts the whole of it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from datasources import free_port

from egress_client import ResolverError
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc
from support import DEADLINE, ServerProcess, fixture, until

POLICY = fixture("workers.lua")
TCP_LISTEN = "0A"
"""The state column of /proc/net/tcp for a listening socket."""


def children(pid: int) -> set[int]:
    """The live child processes of `pid`, found by scanning /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.add(int(entry.name))
    return found


def listening_sockets(port: int) -> set[int]:
    """Inodes of the sockets listening on 127.0.0.1:`port` (grpc may bind it as
    the IPv4-mapped IPv6 address ::ffff:127.0.0.1)."""
    addresses = {f"0100007F:{port:04X}", f"0000000000000000FFFF00000100007F:{port:04X}"}
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1] in addresses and fields[3] == TCP_LISTEN:
                inodes.add(int(fields[9]))
    return inodes


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets process `pid` has open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def serve_workers(port: int, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """`serve --workers 2` on 127.0.0.1:`port`, once both workers loaded the policy."""
    args = ("--policy", str(POLICY), "--listen", f"127.0.0.1:{port}", "--workers", "2")
    with ServerProcess(*args, "--watch-interval", "0", "--shutdown-grace", "60s", env=env) as srv:
        srv.wait_for_event("policy loaded")
        srv.wait_for_event("policy loaded")
        yield srv


@contextlib.contextmanager
def connection(target: str) -> Iterator[pb_grpc.EgressResolverServiceStub]:
    """A stub on a connection of its own: grpc shares connections between channels
    to one target unless told not to, and each connection reaches one worker."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    with grpc.insecure_channel(target, options=options) as channel:
        yield pb_grpc.EgressResolverServiceStub(channel)


def answering_worker(stub: pb_grpc.EgressResolverServiceStub, name: str = "who") -> int:
    """The pid of the worker that answered `name` on this connection."""
    response = stub.GetEgressSource(pb.GetEgressSourceRequest(name=name), timeout=DEADLINE)
    return int(response.source.ehlo_domain.removeprefix("pid-"))


def test_two_workers_serve_one_fixed_port() -> None:
    port = free_port()
    with serve_workers(port) as server:
        assert server.addresses == [f"127.0.0.1:{port}"]
        assert server.proc is not None
        workers = children(server.proc.pid)
        assert len(workers) == 2
        # Each worker holds a listening socket of its own on the one port: two
        # listeners on one address, which only SO_REUSEPORT allows.
        listeners = listening_sockets(port)
        assert len(listeners) == 2
        for worker in workers:
            assert len(socket_inodes(worker) & listeners) == 1
        assert not socket_inodes(server.proc.pid) & listeners  # the parent serves nothing
        # New connections are spread over both: each worker answers with its own Lua.
        seen: set[int] = set()

        def both_answered() -> bool:
            with connection(server.target) as stub:
                seen.add(answering_worker(stub))
            return seen == workers

        until(both_answered, "both workers answered")
        server.signal(signal.SIGTERM)
        assert server.wait() == 0
        assert not any(alive(worker) for worker in workers)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ("--listen", "127.0.0.1:{port}", "--metrics", "127.0.0.1:{port2}"),
            "egress-resolver: --metrics with --workers > 1 is not supported yet: each worker "
            "has its own counters and they cannot share one port\n",
        ),
        (
            ("--listen", "127.0.0.1:0"),
            "egress-resolver: --listen 127.0.0.1:0: --workers > 1 needs fixed TCP ports "
            "(a unix socket or port 0 cannot be shared between processes)\n",
        ),
        (
            ("--listen", "unix:{tmp}/s.sock"),
            "egress-resolver: --listen unix:{tmp}/s.sock: --workers > 1 needs fixed TCP ports "
            "(a unix socket or port 0 cannot be shared between processes)\n",
        ),
    ],
    ids=["metrics", "port-0", "unix-socket"],
)
def test_what_workers_cannot_share_is_refused(
    tmp_path: Path, flags: tuple[str, ...], message: str
) -> None:
    values = {"port": free_port(), "port2": free_port(), "tmp": tmp_path}
    args = ["--policy", str(POLICY), "--workers", "2", *(flag.format(**values) for flag in flags)]
    done = subprocess.run(
        [sys.executable, "-m", "egress_resolver", "serve", *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == message.format(**values)  # before forking: no worker said anything


def test_a_worker_that_dies_stops_the_sidecar_with_status_1(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with serve_workers(free_port(), env={"FIFO": str(fifo)}) as server:
        assert server.proc is not None
        workers = children(server.proc.pid)
        with connection(server.target) as stub:
            survivor = answering_worker(stub)  # "who" is now cached in the survivor
            (victim,) = workers - {survivor}
            answered: list[int] = []
            caller = threading.Thread(
                target=lambda: answered.append(answering_worker(stub, "wait-1"))
            )
            caller.start()
            # Opening the FIFO for writing returns once the survivor's handler has
            # opened it for reading: wait-1 is in flight there from then on.
            release = fifo.open("w")
            try:
                os.kill(victim, signal.SIGKILL)
                # The parent sees the death and stops the survivor: it drains, so
                # new calls on its connection are refused for another instance...
                refusals: list[ResolverError] = []

                def refused() -> bool:
                    try:
                        answering_worker(stub)  # a hit: never waits behind wait-1
                    except grpc.RpcError as err:
                        refusals.append(ResolverError.from_rpc_error(err))
                        return True
                    return False

                until(refused, "the survivor refuses new calls")
                assert (refusals[0].code, refusals[0].reason) == (
                    grpc.StatusCode.UNAVAILABLE,
                    "SHUTTING_DOWN",
                )
                assert server.proc.poll() is None  # ...while wait-1 holds the drain open
                assert alive(survivor)
            finally:
                release.write("go\n")
                release.close()
            caller.join(DEADLINE)
        assert answered == [survivor]  # the call in flight was answered
        assert server.wait() == 1  # a worker died: the supervisor should restart it all
        assert not any(alive(worker) for worker in workers)
        assert server.proc.stderr is not None
        rest = server.proc.stderr.read()
        assert '"event": "drained"' in rest  # the survivor stopped in order
