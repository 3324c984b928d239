"""Real data sources for the tests: a local HTTP server, redis-server and dnsmasq processes.

Each listens on 127.0.0.1 on a free port and is stopped by the test that
started it (context managers). `RedisServer.stop()` / `start()` kill and
restart the same server on the same port, for outage tests. `DnsServer` is
Debian's dnsmasq answering only the records it is given (`dns_server` is
the pytest fixture, with `DNS_RECORDS`); `StubDnsServer` answers every
query alike (SERVFAIL, one address, or never: timeouts) and counts them.
`HeldHttpServer` holds every request until the test releases it, and
`silent_port` is a port that accepts connections and never answers.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdata
import dns.rdatatype
import pytest
import redis

DEADLINE = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the listen backlog: 50 connections arrive at once


class SourceHttpServer:
    """Answers GET /source/NAME with {"source_address": ...} after `delay` seconds.

    Names choose a fault: `fail-*` gets a 503, a name with `slow-` waits 5 s, `garbage-*`
    gets bytes that are not HTTP, `endless-*` gets a body that never ends (chunks
    of 64 KiB until the client goes away or the server is stopped; `endless_sent`
    counts its bytes). `gather-*` requests are held until `gather`
    of them are in at once (then all are answered; after 20 s each gets a
    504): only handlers that wait side by side can all be answered.
    Query parameters: `status=`, `delay=`. `max_in_flight` is the most
    requests it held at once.
    """

    def __init__(self, delay: float = 0.0, gather: int = 1) -> None:
        self.delay = delay
        self._gather = threading.Barrier(gather)
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.headers_seen: list[dict[str, str]] = []
        self.bodies: list[bytes] = []
        self.endless_sent = 0
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                server._enter(dict(self.headers.items()))
                try:
                    length = int(self.headers.get("content-length") or 0)
                    server.bodies.append(self.rfile.read(length) if length else b"")
                    parts = urlsplit(self.path)
                    query = parse_qs(parts.query)
                    name = parts.path.rsplit("/", 1)[-1]
                    if name.startswith("endless-"):
                        self._endless()
                        return
                    if name.startswith("garbage-"):
                        self.wfile.write(b"\x00\x01 this is not HTTP\r\n\r\n")
                        self.close_connection = True
                        return
                    if name.startswith("gather-"):
                        try:
                            server._gather.wait(20.0)
                        except threading.BrokenBarrierError:
                            self.send_error(504)
                            return
                    delay = 5.0 if "slow-" in name else server.delay
                    time.sleep(float(query.get("delay", [delay])[0]))
                    status = 503 if name.startswith("fail-") else 200
                    status = int(query.get("status", [status])[0])
                    body = json.dumps({"name": name, "source_address": "10.9.0.1"}).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("X-Served-By", "test")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                finally:
                    server._leave()

            def _endless(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"x" * 65536
                framed = b"%x\r\n%b\r\n" % (len(chunk), chunk)
                self.close_connection = True
                # Bounded by the test: it ends when the server is stopped (or
                # after DEADLINE), if the client has not gone away before.
                ends = time.monotonic() + DEADLINE
                while not server._stopped.is_set() and time.monotonic() < ends:
                    try:
                        self.wfile.write(framed)
                    except OSError:  # the client closed the connection
                        return
                    with server._lock:
                        server.endless_sent += len(chunk)

            do_GET = do_POST = do_PUT = _answer  # noqa: N815 (http.server calls these names)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def gather(self, count: int) -> None:
        """From now on, hold `gather-*` requests until `count` are in at once."""
        self._gather = threading.Barrier(count)

    def _enter(self, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.headers_seen.append(headers)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> SourceHttpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(DEADLINE)


class HeldHttpServer:
    """Holds every GET until `release()`, then answers each with the body `held.example`.

    `wait_for_requests(n)` returns once n requests have arrived: from then on,
    n handlers are waiting on this data source (an event, not a sleep).
    """

    def __init__(self) -> None:
        self.requests = 0
        self.paths: list[str] = []
        self._released = threading.Event()
        self._arrived = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with server._arrived:
                    server.requests += 1
                    server.paths.append(self.path)
                    server._arrived.notify_all()
                server._released.wait(DEADLINE)
                body = b"held.example"
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except ConnectionError:  # the caller gave up (a sidecar that stopped)
                    self.close_connection = True

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def wait_for_requests(self, count: int) -> None:
        """Return once `count` requests have arrived (fail after DEADLINE)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: self.requests >= count, DEADLINE):
                raise AssertionError(f"{count} requests did not arrive within {DEADLINE} s")

    def release(self) -> None:
        """Answer every held request, and every later one at once."""
        self._released.set()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> HeldHttpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(DEADLINE)


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections (into the kernel's
    backlog) and never answers: a data source that hangs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


def redis_server_binary() -> str:
    """The path of redis-server; `make test` installs it (mk/redis.mk)."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if found is None:
        raise RuntimeError("redis-server is not installed: run `make redis-server` (apt-get)")
    return found


class RedisServer:
    """A redis-server process on 127.0.0.1:`port`, no persistence; stop() kills it."""

    def __init__(self, workdir: Path, port: int | None = None, *extra: str) -> None:
        self.port = port or free_port()
        self.workdir = workdir
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/"

    def start(self) -> None:
        """Start (or restart) the server and wait until it answers PING."""
        assert self.proc is None or self.proc.poll() is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir), *self.extra]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            try:
                if self.client().ping():
                    return
            except redis.exceptions.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not answer PING in time")

    def stop(self) -> None:
        """Kill the server (SIGKILL: an outage, not a shutdown) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(DEADLINE)

    def client(self) -> redis.Redis:
        """A synchronous redis-py client, for the test to load data and look."""
        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=5, decode_responses=True
        )

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until(check: Callable[[], bool], timeout: float = DEADLINE) -> None:
    """Poll `check` (bounded) until it is true."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(100):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


class RedisClusterServers:
    """Three redis-server masters with `cluster-enabled yes`, joined with
    `redis-cli --cluster create`; all killed on exit."""

    def __init__(self, workdir: Path, masters: int = 3) -> None:
        self.nodes: list[RedisServer] = []
        for index in range(masters):
            port = free_cluster_port()
            extra: tuple[str, ...] = ("--cluster-enabled", "yes", "--cluster-node-timeout", "5000")
            extra += ("--cluster-config-file", f"nodes-{port}.conf")
            self.nodes.append(RedisServer(workdir / f"node-{index}", port, *extra))

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def __enter__(self) -> RedisClusterServers:
        try:
            for node in self.nodes:
                node.start()
            cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            create = ["--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"]
            subprocess.run(
                [cli, *create],
                check=True,
                capture_output=True,
                timeout=DEADLINE,
            )
            wait_until(lambda: all(self._ok(node) for node in self.nodes))
        except BaseException:
            self.__exit__()
            raise
        return self

    @staticmethod
    def _ok(node: RedisServer) -> bool:
        info = node.client().cluster("INFO")  # redis-py parses it into a dict
        return bool(info.get("cluster_state") == "ok")

    def client(self) -> redis.RedisCluster:
        """A synchronous cluster client, for the test to load data and look."""
        first = self.nodes[0]
        return redis.RedisCluster(host="127.0.0.1", port=first.port, decode_responses=True)

    def __exit__(self, *exc: object) -> None:
        for node in self.nodes:
            node.stop()


def free_udp_tcp_port() -> int:
    """A port on 127.0.0.1 free for both UDP and TCP right now (a DNS server needs both)."""
    for _ in range(100):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no port free for both UDP and TCP")


def dnsmasq_binary() -> str:
    """The path of dnsmasq; `make test` installs it (mk/dns.mk, Debian's dnsmasq-base)."""
    found = shutil.which("dnsmasq") or (
        "/usr/sbin/dnsmasq" if Path("/usr/sbin/dnsmasq").exists() else None
    )
    if found is None:
        raise RuntimeError("dnsmasq is not installed: run `make dnsmasq` (apt-get)")
    return found


DNS_RECORDS: dict[str, Sequence[str]] = {
    "host-record": ["mx1.example.test,10.0.0.5", "mx6.example.test,::5",
                    "both.example.test,10.0.0.6,::6"],
    "mx-host": ["example.test,mx1.example.test,10", "example.test,mx2.example.test,20"],
    "txt-record": ["txt.example.test,v=spf1 -all", 'split.example.test,part one,part two',
                   "2.0.0.127.bl.example.test,Listed for testing"],
    "ptr-record": ["1.0.0.10.in-addr.arpa,default-resolver.example.test"],
    "address": ["/2.0.0.127.bl.example.test/127.0.0.2"],
}  # fmt: skip
"""What `dns_server` answers: dnsmasq options and their values (each value one option).
The kumomta suite's default resolver is this server: test-define-resolver.lua
looks up the PTR of 10.0.0.1 there and expects anything but its Test zone's."""

LOCAL_DOMAINS = ("test", "in-addr.arpa", "ip6.arpa")
"""Answered from the records only: NXDOMAIN / no data for the rest (other names: REFUSED)."""


class DnsServer:
    """dnsmasq on 127.0.0.1:`port` (UDP and TCP), answering only `records`.

    No /etc/resolv.conf, no /etc/hosts, no upstream: names under LOCAL_DOMAINS
    that no record gives are NXDOMAIN, any other name is REFUSED. Records
    have a TTL of `ttl` seconds. It runs as the current user (root in CI).
    """

    def __init__(
        self, workdir: Path, records: Mapping[str, Sequence[str]] = DNS_RECORDS, ttl: int = 30
    ) -> None:
        self.port = free_udp_tcp_port()
        self.workdir = workdir
        self.records = records
        self.ttl = ttl
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """HOST:PORT, as --dns-servers and name_servers take it."""
        return f"127.0.0.1:{self.port}"

    def args(self) -> list[str]:
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        args = [dnsmasq_binary(), "--keep-in-foreground", "--conf-file=/dev/null"]
        args += ["--no-resolv", "--no-hosts", "--no-poll", "--pid-file=", "--log-facility=-"]
        args += [f"--user={user}", f"--group={group}", f"--port={self.port}"]
        args += ["--listen-address=127.0.0.1", "--bind-interfaces", f"--local-ttl={self.ttl}"]
        args += [f"--local=/{domain}/" for domain in LOCAL_DOMAINS]
        args += ["--txt-record=ready.dnsmasq.test,ready"]
        for option, values in self.records.items():
            args += [f"--{option}={value}" for value in values]
        return args

    def query(self, name: str, rdtype: str = "A") -> dns.message.Message:
        """Ask the server directly (the test's own look)."""
        return dns.query.udp(
            dns.message.make_query(name, rdtype), "127.0.0.1", port=self.port, timeout=1.0
        )

    def __enter__(self) -> DnsServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with (self.workdir / "dnsmasq.log").open("wb") as log:
            self.proc = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log_text = (self.workdir / "dnsmasq.log").read_text(errors="replace")
                raise RuntimeError(f"dnsmasq exited with {self.proc.returncode}: {log_text}")
            try:
                if self.query("ready.dnsmasq.test", "TXT").answer:
                    return self
            except (OSError, dns.exception.Timeout):
                time.sleep(0.02)
        self.__exit__()
        raise RuntimeError("dnsmasq did not answer in time")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(DEADLINE)


@pytest.fixture(scope="session")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    """dnsmasq with DNS_RECORDS, for every test of the session that asks for it."""
    with DnsServer(tmp_path_factory.mktemp("dnsmasq")) as server:
        yield server


class StubDnsServer:
    """A UDP name server on 127.0.0.1 that answers every query alike: with
    `rcode` (SERVFAIL by default); with `address`, NOERROR and that A record
    (TTL `ttl`) to A queries; with `silent`, never. `queries` lists them."""

    def __init__(
        self,
        rcode: dns.rcode.Rcode = dns.rcode.SERVFAIL,
        silent: bool = False,
        address: str | None = None,
        ttl: int = 30,
    ) -> None:
        self.rcode = dns.rcode.NOERROR if address is not None else rcode
        self.silent = silent
        self.record = address
        self.ttl = ttl
        self.queries: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(data)
            self.queries.append(query.question[0].to_text())
            if not self.silent:
                response = dns.message.make_response(query)
                response.set_rcode(self.rcode)
                question = query.question[0]
                if self.record is not None and question.rdtype == dns.rdatatype.A:
                    rrset = response.find_rrset(
                        response.answer,
                        question.name,
                        question.rdclass,
                        question.rdtype,
                        create=True,
                    )
                    rrset.add(dns.rdata.from_text("IN", "A", self.record), self.ttl)
                self._sock.sendto(response.to_wire(), peer)

    def __enter__(self) -> StubDnsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(DEADLINE)
        self._sock.close()
