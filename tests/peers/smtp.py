"""An SMTP server on loopback that records who connected and what they said.

aiosmtpd's SMTP protocol, served on a private event loop (peers._service).
Records (dicts, also written as JSON lines to a sink):

- `{"kind": "helo", "peer": IP, "port": N, "helo": NAME, "esmtp": bool}` at
  each EHLO / HELO: the connection's peer address and the name it gave;
- `{"kind": "message", "peer": IP, "port": N, "helo": NAME, "mail_from": ADDR,
  "rcpt_tos": [ADDR, ...], "data": TEXT}` at each DATA it accepted.

In a test:

    with SmtpRecorder() as smtp:             # 127.0.0.1, a free port
        ...connect to smtp.hostport...
        [greeting] = smtp.wait_count("helo", 1)
        assert greeting["peer"] == "127.0.0.2"

From another language's tests, as a process (the first stdout line is the
port; records follow on stdout, or go to --records FILE):

    .venv/bin/python -m tests.peers.smtp --port-file F [--host 127.0.0.1] [--records FILE]

It stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
from typing import IO, Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from ._service import LoopService, cli_parser, open_sink, serve_until_signalled

BANNER_HOSTNAME = "recorder.test"


class SmtpRecorder(LoopService):
    """The SMTP server; see the module's docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, sink: IO[str] | None = None) -> None:
        super().__init__(host, port, sink)

    async def _serve(self) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        handler = _Handler(self)
        return await loop.create_server(
            lambda: SMTP(handler, hostname=BANNER_HOSTNAME, loop=loop, timeout=60),
            host=self.host,
            port=self.requested_port,
        )

    def greetings(self) -> list[dict[str, Any]]:
        """The `helo` records so far."""
        return self.records("helo")

    def messages(self) -> list[dict[str, Any]]:
        """The `message` records so far."""
        return self.records("message")


def _peer(session: Session) -> tuple[str, int]:
    peer = session.peer  # (host, port, ...) for TCP; aiosmtpd also allows a str
    if peer is None or isinstance(peer, str):
        return str(peer), 0
    return str(peer[0]), int(peer[1])


class _Handler:
    """aiosmtpd's hooks: each records, then answers as aiosmtpd would."""

    def __init__(self, recorder: SmtpRecorder) -> None:
        self.recorder = recorder

    async def handle_EHLO(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        self._greeted(session, hostname, esmtp=True)
        return responses

    async def handle_HELO(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        session.host_name = hostname
        self._greeted(session, hostname, esmtp=False)
        return f"250 {server.hostname}"

    def _greeted(self, session: Session, hostname: str, *, esmtp: bool) -> None:
        peer, port = _peer(session)
        self.recorder.add(
            {"kind": "helo", "peer": peer, "port": port, "helo": hostname, "esmtp": esmtp}
        )

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        peer, port = _peer(session)
        content = envelope.original_content or b""
        self.recorder.add(
            {
                "kind": "message",
                "peer": peer,
                "port": port,
                "helo": session.host_name,
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "data": content.decode("utf-8", errors="replace"),
            }
        )
        return "250 OK"


def main(argv: list[str] | None = None) -> None:
    args = cli_parser(__doc__.splitlines()[0] if __doc__ else "").parse_args(argv)
    sink = open_sink(args.records)
    serve_until_signalled(SmtpRecorder(args.host, args.port, sink), args.port_file)


if __name__ == "__main__":
    main()
