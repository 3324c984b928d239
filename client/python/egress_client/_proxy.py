"""The proxy handshakes of kumod's `connect_to`, as bytes only (no I/O).

Hand-written rather than taken from a library: the PROXY v2 header is a
fixed 16-byte prefix and two addresses, and kumod's SOCKS5 exchange (a BIND
of the source address, then a CONNECT on the same connection) is not what
generic SOCKS5 clients do (they send one CONNECT). Both are small.

A handshake is a generator shared by the blocking and the asyncio drivers
(_dial.py, _adial.py): it yields `bytes` to send (and is sent back b"") or an
`int`, a count of bytes to receive (and is sent back exactly that many). It
raises HandshakeError when the exchange fails.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Generator
from pathlib import Path

from kumo.egress.v1.egress_source_pb2 import KeySource

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Exchange = Generator[bytes | int, bytes, None]
"""Yields bytes to send or a count of bytes to receive; is sent what was received."""

PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
VAULT_REFUSED = (
    "vault KeySource is not supported by the egress-resolver clients; use key_data or a file"
)

SOCKS_VERSION = 5
NO_AUTH = 0x00
USERNAME_PASSWORD = 0x02
NO_ACCEPTABLE_METHOD = 0xFF
BIND = 0x02
CONNECT = 0x01
_REPLIES = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


class HandshakeError(Exception):
    """The proxy handshake failed (the message says how)."""


def proxy_v2_header(source: IP, destination: IP, destination_port: int) -> bytes:
    """The PROXY protocol v2 header kumod sends: PROXY command, TCP, source
    `source`:0, destination `destination`:`destination_port`."""
    if source.version != destination.version:
        raise ValueError(f"{source} and {destination} are not of the same address family")
    family, length = (0x11, 12) if source.version == 4 else (0x21, 36)
    return (
        PROXY_V2_SIGNATURE
        + bytes((0x21, family))
        + struct.pack("!H", length)
        + source.packed
        + destination.packed
        + struct.pack("!HH", 0, destination_port)
    )


def haproxy_exchange(source: IP, destination: IP, destination_port: int) -> Exchange:
    """Send the PROXY v2 header; nothing is read back (HAProxy answers nothing)."""
    yield proxy_v2_header(source, destination, destination_port)


def socks5_exchange(
    source: IP,
    destination: IP,
    destination_port: int,
    username: str | None = None,
    password: KeySource | None = None,
) -> Exchange:
    """kumod's SOCKS5 exchange (RFC 1928, RFC 1929): greeting, optional
    username/password, BIND of `source` port 0, CONNECT to the destination."""
    credentials = (username, password) if username is not None and password is not None else None
    methods = bytes((NO_AUTH, USERNAME_PASSWORD)) if credentials else bytes((NO_AUTH,))
    yield bytes((SOCKS_VERSION, len(methods))) + methods
    version, method = yield 2
    if version != SOCKS_VERSION:
        raise HandshakeError(f"not a SOCKS5 server (version byte {version})")
    if method == USERNAME_PASSWORD and credentials is not None:
        yield from _authenticate(*credentials)
    elif method == NO_ACCEPTABLE_METHOD:
        raise HandshakeError("the SOCKS5 proxy accepted none of the offered methods")
    elif method != NO_AUTH:
        raise HandshakeError(f"incompatible SOCKS5 authentication method {method:#04x}")
    yield socks5_request(BIND, source, 0)
    reply = yield from _read_reply()
    if reply != 0:
        raise HandshakeError(f"the proxy server failed to bind {source}: {_describe(reply)}")
    yield socks5_request(CONNECT, destination, destination_port)
    reply = yield from _read_reply()
    if reply != 0:
        raise HandshakeError(
            f"the proxy server failed to connect {source} -> "
            f"{hostport(destination, destination_port)}: {_describe(reply)}"
        )


def _authenticate(username: str, key: KeySource) -> Exchange:
    user = username.encode()
    secret = key_source_bytes(key)
    if len(user) > 255 or len(secret) > 255:
        raise HandshakeError("the SOCKS5 username or password is longer than 255 bytes")
    yield bytes((1, len(user))) + user + bytes((len(secret),)) + secret
    version, status = yield 2
    if version != 1:
        raise HandshakeError(f"invalid SOCKS5 username/password reply (version {version})")
    if status != 0:
        raise HandshakeError("SOCKS5 username/password was incorrect")


def _read_reply() -> Generator[bytes | int, bytes, int]:
    """Read one reply `05 REP 00 ATYP BND.ADDR BND.PORT` in full; its REP."""
    version, reply, _reserved, atyp = yield 4
    if version != SOCKS_VERSION:
        raise HandshakeError(f"invalid SOCKS5 reply (version byte {version})")
    if atyp == 1:
        yield 4 + 2
    elif atyp == 4:
        yield 16 + 2
    elif atyp == 3:
        (length,) = yield 1
        yield length + 2
    else:
        raise HandshakeError(f"invalid SOCKS5 reply (address type {atyp})")
    return int(reply)


def socks5_request(command: int, address: IP, port: int) -> bytes:
    """`05 CMD 00 ATYP ADDR PORT` for an IP address."""
    atyp = 1 if address.version == 4 else 4
    return bytes((SOCKS_VERSION, command, 0, atyp)) + address.packed + struct.pack("!H", port)


def key_source_bytes(key: KeySource) -> bytes:
    """The secret of a KeySource: `key_data`, or the `file` read now; vault is refused."""
    which = key.WhichOneof("source")
    if which == "key_data":
        return key.key_data.encode()
    if which == "file":
        try:
            return Path(key.file).read_bytes()
        except OSError as err:
            raise HandshakeError(f"failed to read the SOCKS5 password file: {err}") from None
    if which == "vault":
        raise HandshakeError(VAULT_REFUSED)
    raise HandshakeError("the SOCKS5 password KeySource is empty")


def _describe(reply: int) -> str:
    return f"reply {reply:#04x} ({_REPLIES.get(reply, 'unassigned')})"


def hostport(address: IP | str, port: int) -> str:
    """`1.2.3.4:25` or `[::1]:25`."""
    text = str(address)
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"
