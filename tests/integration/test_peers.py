"""The test peers themselves (tests/peers): a plain client, with no egress
client in between, reaches the SMTP recorder from the address it meant to,
directly, through the SOCKS5 test server and through the proxy guide's
HAProxy."""

from __future__ import annotations

import ipaddress
import json
import smtplib
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from peers import haproxy
from peers.smtp import SmtpRecorder
from peers.socks5 import Socks5Server

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0


class _SmtpOver(smtplib.SMTP):
    """smtplib over a socket that is already connected (to a proxy)."""

    def __init__(self, sock: socket.socket) -> None:
        self._given = sock
        super().__init__(timeout=TIMEOUT)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return self._given


def _converse(sock: socket.socket, ehlo: str, message: bool = False) -> None:
    """Banner, EHLO, (one message,) QUIT over `sock`."""
    client = _SmtpOver(sock)
    client.connect("proxied", 0)
    client.ehlo(ehlo)
    if message:
        client.sendmail("from@example.com", ["to@example.net"], b"Subject: t\r\n\r\nhello\r\n")
    client.quit()


def _socks_exchange(
    proxy: str,
    port: int,
    bind: str,
    to: tuple[str, int],
    credentials: tuple[str, str] | None = None,
) -> tuple[socket.socket, list[int]]:
    """kumod's exchange, by hand: greeting (auth), BIND `bind`, CONNECT `to`.
    Returns the socket and the replies' codes (method, [auth], bind, connect)."""
    sock = socket.create_connection((proxy, port), TIMEOUT)
    codes: list[int] = []
    methods = b"\x00\x02" if credentials else b"\x00"
    sock.sendall(bytes([5, len(methods)]) + methods)
    codes.append(_read(sock, 2)[1])
    if codes[-1] == 2:
        assert credentials is not None
        user, password = (c.encode() for c in credentials)
        sock.sendall(bytes([1, len(user)]) + user + bytes([len(password)]) + password)
        codes.append(_read(sock, 2)[1])
        if codes[-1] != 0:
            return sock, codes
    elif codes[-1] != 0:
        return sock, codes
    for command, (host, host_port) in ((2, (bind, 0)), (1, to)):
        address = ipaddress.ip_address(host)
        atyp = 1 if address.version == 4 else 4
        sock.sendall(bytes([5, command, 0, atyp]) + address.packed + struct.pack("!H", host_port))
        reply = _read(sock, 4)
        _read(sock, (4 if reply[3] == 1 else 16) + 2)
        codes.append(reply[1])
        if reply[1] != 0:
            break
    return sock, codes


def _read(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        assert chunk, f"the peer closed after {data!r}"
        data += chunk
    return data


@pytest.fixture
def smtp() -> Iterator[SmtpRecorder]:
    with SmtpRecorder() as recorder:
        yield recorder


def test_direct_from_a_loopback_source_address(smtp: SmtpRecorder) -> None:
    client = smtplib.SMTP(timeout=TIMEOUT, source_address=("127.0.0.2", 0))
    client.connect("127.0.0.1", smtp.port)
    client.ehlo("mta2.example.com")
    client.sendmail("from@example.com", ["to@example.net"], b"Subject: t\r\n\r\nhello\r\n")
    client.quit()
    [greeting] = smtp.wait_count("helo", 1)
    assert (greeting["peer"], greeting["helo"], greeting["esmtp"]) == (
        "127.0.0.2",
        "mta2.example.com",
        True,
    )
    [message] = smtp.wait_count("message", 1)
    assert message["peer"] == "127.0.0.2"
    assert message["helo"] == "mta2.example.com"
    assert message["mail_from"] == "from@example.com"
    assert message["rcpt_tos"] == ["to@example.net"]
    assert "hello" in message["data"]


@pytest.mark.parametrize("credentials", [None, ("alice", "s3cret")])
def test_socks5_binds_the_source_then_connects(
    smtp: SmtpRecorder, credentials: tuple[str, str] | None
) -> None:
    users = dict([credentials]) if credentials else None
    with Socks5Server(users=users) as proxy:
        sock, codes = _socks_exchange(
            "127.0.0.1", proxy.port, "127.0.0.4", ("127.0.0.1", smtp.port), credentials
        )
        assert codes == ([0] if credentials is None else [2, 0]) + [0, 0]
        _converse(sock, "socks.example.com", message=True)
        [greeting] = smtp.wait_count("helo", 1)
        assert (greeting["peer"], greeting["helo"]) == ("127.0.0.4", "socks.example.com")
        assert smtp.wait_count("message", 1)[0]["peer"] == "127.0.0.4"
        [connect] = proxy.records("connect")
        assert (connect["source"], connect["rep"]) == ("127.0.0.4", 0)
        if credentials:
            assert proxy.records("auth")[0]["user"] == "alice"


def test_socks5_refuses_wrong_credentials_and_clients_without_auth() -> None:
    with Socks5Server(users={"alice": "s3cret"}) as proxy:
        sock, codes = _socks_exchange(
            "127.0.0.1", proxy.port, "127.0.0.4", ("127.0.0.1", 9), ("alice", "wrong")
        )
        sock.close()
        assert codes == [2, 1]
        sock, codes = _socks_exchange("127.0.0.1", proxy.port, "127.0.0.4", ("127.0.0.1", 9))
        sock.close()
        assert codes == [0xFF]
        assert proxy.records("auth")[0]["ok"] is False


def test_socks5_bind_failures() -> None:
    # 192.0.2.1 (TEST-NET-1) is on no interface: the bind fails, REP 01.
    with Socks5Server() as proxy:
        sock, codes = _socks_exchange("127.0.0.1", proxy.port, "192.0.2.1", ("127.0.0.1", 9))
        sock.close()
        assert codes == [0, 1]
        assert proxy.records("bind")[0]["rep"] == 1
    with Socks5Server(refuse_bind=True) as proxy:
        sock, codes = _socks_exchange("127.0.0.1", proxy.port, "127.0.0.4", ("127.0.0.1", 9))
        sock.close()
        assert codes == [0, 2]


def test_socks5_connect_refused() -> None:
    closed = socket.socket()  # bound, not listening: connecting to it is refused
    closed.bind(("127.0.0.1", 0))
    with closed, Socks5Server() as proxy:
        sock, codes = _socks_exchange(
            "127.0.0.1", proxy.port, "127.0.0.4", ("127.0.0.1", closed.getsockname()[1])
        )
        sock.close()
        assert codes == [0, 0, 5]


def test_haproxy_with_the_guides_configuration(smtp: SmtpRecorder) -> None:
    reason = haproxy.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with haproxy.HAProxy() as proxy:
        sock = socket.create_connection(("127.0.0.1", proxy.port), TIMEOUT)
        body = socket.inet_aton("127.0.0.3") + socket.inet_aton("127.0.0.1")
        body += struct.pack("!HH", 0, smtp.port)
        header = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", len(body))
        sock.sendall(header + body)
        _converse(sock, "ha.example.com")
        [greeting] = smtp.wait_count("helo", 1)
        assert (greeting["peer"], greeting["helo"]) == ("127.0.0.3", "ha.example.com")


def test_smtp_recorder_as_a_process(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.peers.smtp", "--port-file", str(port_file)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        assert int(port_file.read_text()) == port
        client = smtplib.SMTP(timeout=TIMEOUT, source_address=("127.0.0.5", 0))
        client.connect("127.0.0.1", port)
        client.ehlo("cli.example.com")
        client.quit()
        record = json.loads(proc.stdout.readline())
        assert (record["kind"], record["peer"], record["helo"]) == (
            "helo",
            "127.0.0.5",
            "cli.example.com",
        )
    finally:
        proc.terminate()
        assert proc.wait(TIMEOUT) == 0
