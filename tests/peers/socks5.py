"""A SOCKS5 server for the tests, written from kumod's side of the exchange.

No KumoMTA proxy (kumo-proxy) can be installed here: it is not packaged in
Debian, PyPI, npm or crates.io, and nothing else may be fetched. So this
server does exactly what kumod's `perform_handshake`
(crates/kumod/src/egress_source.rs) asks of a SOCKS5 proxy, and no more:

1. greeting `05 N METHODS` -> `05 00` (no auth) or `05 02` (RFC 1929), or
   `05 FF` when auth is required and the client did not offer it;
2. RFC 1929 `01 ULEN USER PLEN PASS` -> `01 00`, or `01 01` and close;
3. BIND `05 02 00 ATYP ADDR PORT`: kumod's meaning, not RFC 1928's (which is
   "listen for an inbound connection"): bind ADDR:PORT as the source of the
   onward connection. A bind that fails (e.g. EADDRNOTAVAIL for an address not
   on this host) answers REP 01 (general failure); `refuse_bind` answers
   REP 02 (not allowed by ruleset) without trying;
4. CONNECT `05 01 00 ATYP ADDR PORT`: connect onward (from the bound address,
   if any) and relay bytes both ways until either side closes. REP 05
   (refused), 04 (unreachable) or 01 on failure.

Each reply is `05 REP 00 ATYP BND.ADDR BND.PORT`. Records: `{"kind": "auth",
"client", "user", "ok"}`, `{"kind": "bind", "client", "address", "rep"}`,
`{"kind": "connect", "client", "source", "to", "rep"}`.

As a process (first stdout line: the port):

    .venv/bin/python -m tests.peers.socks5 --port-file F [--user NAME:PASSWORD] [--refuse-bind]
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import socket
from typing import IO

from ._service import LoopService, cli_parser, open_sink, serve_until_signalled

VERSION = 5
NO_AUTH, USER_PASS, NO_ACCEPTABLE = 0x00, 0x02, 0xFF
CONNECT, BIND = 0x01, 0x02
SUCCEEDED, GENERAL_FAILURE, NOT_ALLOWED = 0x00, 0x01, 0x02
UNREACHABLE, REFUSED, NOT_SUPPORTED = 0x04, 0x05, 0x07
IPV4, DOMAIN, IPV6 = 0x01, 0x03, 0x04
ONWARD_TIMEOUT = 30.0


class Socks5Server(LoopService):
    """The server; see the module's docstring. `users` (name -> password)
    makes RFC 1929 authentication required."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        sink: IO[str] | None = None,
        *,
        users: dict[str, str] | None = None,
        refuse_bind: bool = False,
    ) -> None:
        super().__init__(host, port, sink)
        self.users = users
        self.refuse_bind = refuse_bind

    async def _serve(self) -> asyncio.Server:
        return await asyncio.start_server(self._session, self.host, self.requested_port)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = str(writer.get_extra_info("peername")[0])
        source: socket.socket | None = None
        try:
            if not await self._negotiate(client, reader, writer):
                return
            while True:
                _version, command, _reserved = await reader.readexactly(3)
                host, port = await _read_address(reader)
                if command == BIND:
                    if source is not None:
                        source.close()
                    source = self._bind(client, host, port, writer)
                    if source is None:
                        return
                elif command == CONNECT:
                    await self._connect(client, source, host, port, reader, writer)
                    source = None  # handed over to the relay, which closed it
                    return
                else:
                    writer.write(_reply(NOT_SUPPORTED))
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            if source is not None:
                source.close()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _negotiate(
        self, client: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        _version, count = await reader.readexactly(2)
        methods = set(await reader.readexactly(count))
        if self.users is None and NO_AUTH in methods:
            writer.write(bytes([VERSION, NO_AUTH]))
            return True
        if USER_PASS not in methods:
            writer.write(bytes([VERSION, NO_ACCEPTABLE]))
            return False
        writer.write(bytes([VERSION, USER_PASS]))
        _auth_version, user_length = await reader.readexactly(2)
        user = (await reader.readexactly(user_length)).decode("utf-8", "replace")
        (password_length,) = await reader.readexactly(1)
        password = (await reader.readexactly(password_length)).decode("utf-8", "replace")
        ok = self.users is None or self.users.get(user) == password
        self.add({"kind": "auth", "client": client, "user": user, "ok": ok})
        writer.write(bytes([0x01, 0x00 if ok else 0x01]))
        return ok

    def _bind(
        self, client: str, host: str, port: int, writer: asyncio.StreamWriter
    ) -> socket.socket | None:
        """kumod's BIND: the source address of the onward connection."""
        rep, sock = NOT_ALLOWED, None
        if not self.refuse_bind:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.bind((host, port))
                rep = SUCCEEDED
            except OSError:
                sock.close()
                sock, rep = None, GENERAL_FAILURE
        self.add({"kind": "bind", "client": client, "address": host, "rep": rep})
        writer.write(_reply(rep, sock.getsockname() if sock is not None else None))
        return sock

    async def _connect(
        self,
        client: str,
        source: socket.socket | None,
        host: str,
        port: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        loop = asyncio.get_running_loop()
        source_ip = source.getsockname()[0] if source is not None else None
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            usable = [i for i in infos if source is None or i[0] == source.family]
            if not usable:
                raise OSError(errno.EAFNOSUPPORT, f"no address of the bound family for {host}")
            family, _, _, _, address = usable[0]
            sock = source if source is not None else socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await asyncio.wait_for(loop.sock_connect(sock, address), ONWARD_TIMEOUT)
            except BaseException:
                sock.close()
                raise
        except (OSError, TimeoutError) as err:
            rep = REFUSED if isinstance(err, ConnectionRefusedError) else GENERAL_FAILURE
            if isinstance(err, OSError) and err.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                rep = UNREACHABLE
            self.add(
                {"kind": "connect", "client": client, "source": source_ip,
                 "to": f"{host}:{port}", "rep": rep}
            )  # fmt: skip
            writer.write(_reply(rep))
            return
        onward_reader, onward_writer = await asyncio.open_connection(sock=sock)
        self.add(
            {"kind": "connect", "client": client, "source": sock.getsockname()[0],
             "to": f"{host}:{port}", "rep": SUCCEEDED}
        )  # fmt: skip
        writer.write(_reply(SUCCEEDED, sock.getsockname()))
        try:
            await asyncio.gather(_pipe(reader, onward_writer), _pipe(onward_reader, writer))
        finally:
            onward_writer.close()


async def _read_address(reader: asyncio.StreamReader) -> tuple[str, int]:
    (atyp,) = await reader.readexactly(1)
    if atyp == IPV4:
        host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
    elif atyp == IPV6:
        host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
    elif atyp == DOMAIN:
        (length,) = await reader.readexactly(1)
        host = (await reader.readexactly(length)).decode("idna")
    else:
        raise ConnectionError(f"unknown SOCKS5 address type {atyp}")
    port = int.from_bytes(await reader.readexactly(2), "big")
    return host, port


def _reply(rep: int, bound: tuple[str, int] | tuple[str, int, int, int] | None = None) -> bytes:
    """`05 REP 00 ATYP BND.ADDR BND.PORT` (0.0.0.0:0 when nothing is bound)."""
    host, port = (bound[0], bound[1]) if bound is not None else ("0.0.0.0", 0)
    ip = ipaddress.ip_address(host)
    atyp = IPV4 if ip.version == 4 else IPV6
    return bytes([VERSION, rep, 0x00, atyp]) + ip.packed + port.to_bytes(2, "big")


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until end of file, then pass the end of file on."""
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()
    except (ConnectionError, OSError):
        sink.close()


def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("A SOCKS5 test server written from kumod's side of the exchange")
    parser.add_argument("--user", help="NAME:PASSWORD: require RFC 1929 authentication")
    parser.add_argument("--refuse-bind", action="store_true", help="answer every BIND with REP 02")
    args = parser.parse_args(argv)
    users = dict([args.user.split(":", 1)]) if args.user else None
    server = Socks5Server(
        args.host, args.port, open_sink(args.records), users=users, refuse_bind=args.refuse_bind
    )
    serve_until_signalled(server, args.port_file)


if __name__ == "__main__":
    main()
