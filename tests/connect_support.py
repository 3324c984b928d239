"""What the Python client's connect tests share (tests/integration/test_client_connect*.py):
the SMTP greeting a connection gets, a PROXY v2 reader that keeps the header's
bytes, a port that refuses, and a SOCKS5 source for the tests/peers server."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Iterator

from kumo.egress.v1.egress_source_pb2 import EgressSource, KeySource
from peers.smtp import SmtpRecorder
from peers.socks5 import Socks5Server

TIMEOUT = 30.0


def greet(sock: socket.socket, ehlo: str) -> None:
    """Banner, EHLO, QUIT, as the example does."""
    with sock, sock.makefile("rwb") as stream:
        sock.settimeout(TIMEOUT)
        assert stream.readline().startswith(b"220")
        stream.write(f"EHLO {ehlo}\r\n".encode())
        stream.flush()
        while (line := stream.readline())[3:4] == b"-":
            pass
        assert line.startswith(b"250"), line
        stream.write(b"QUIT\r\n")
        stream.flush()
        assert stream.readline().startswith(b"221")


class ProxyV2Reader(socketserver.ThreadingTCPServer):
    """Reads a PROXY v2 header (signature, length, addresses), keeps its bytes and
    the peer, then says a banner and closes: what HAProxy sees, checked byte by byte."""

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, str]] = []
        self.arrived = threading.Event()
        super().__init__(("127.0.0.1", 0), _ProxyV2Handler)
        self.port = self.server_address[1]
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> ProxyV2Reader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(TIMEOUT)


class _ProxyV2Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: ProxyV2Reader = self.server  # type: ignore[assignment]
        sock: socket.socket = self.request
        sock.settimeout(TIMEOUT)
        head = _read(sock, 16)
        header = head + _read(sock, int.from_bytes(head[14:16], "big"))
        server.headers.append((header, sock.getpeername()[0]))
        server.arrived.set()
        sock.sendall(b"220 proxied\r\n")


def greeting(smtp: SmtpRecorder, **match: object) -> dict[str, object]:
    """The first EHLO record with these fields (waited for)."""

    def found(records: list[dict[str, object]]) -> list[dict[str, object]]:
        return [
            r for r in records if r["kind"] == "helo" and all(r[k] == v for k, v in match.items())
        ]

    return found(smtp.wait_for(lambda records: bool(found(records)), TIMEOUT))[0]


def _read(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            break
        data += chunk
    return data


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port held bound but not listening: a connect to it is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def socks_source(name: str, proxy: Socks5Server, **fields: object) -> EgressSource:
    source = EgressSource(
        name=name,
        ehlo_domain=f"{name}.example",
        socks5_proxy_server=proxy.hostport,
        socks5_proxy_source_address="127.0.0.5",
    )
    for key, value in fields.items():
        field = getattr(source, key)
        if isinstance(value, KeySource):
            field.CopyFrom(value)
        else:
            setattr(source, key, value)
    return source
