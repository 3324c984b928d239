"""The real peers a scenario connects to (tests/peers), and their placeholders.

A scenario's `"peers"` maps a name to a peer, `{"kind": KIND, ...options}`
(the kind defaults to the name):

- `smtp`: the SMTP recorder (tests/peers/smtp.py);
- `socks5`: the SOCKS5 test server, options `users` ({name: password}: RFC
  1929 required) and `refuse_bind`;
- `haproxy`: the proxy guide's HAProxy (root only: the scenario is skipped
  otherwise, with the reason);
- `closed`: a loopback port where nothing listens (bound, never listening), so
  that connecting to it is refused at once: a wrong port, a proxy that is down.

Placeholders, replaced in the policy's text, in every step and in every
expected answer: `{NAME}` is the peer's `HOST:PORT`, `{NAME.host}` and
`{NAME.port}` its parts, `{hostname}` this host's name (what a client says in
EHLO for a source without `ehlo_domain`).

`{"saw": NAME, "kind": KIND, "expect": [RECORD, ...]}` checks the records of
that kind the peer made since the last such check, element by element (see
driver.matches): e.g. the SMTP recorder's `helo` records `{"peer": IP,
"helo": NAME}`. Each example command answers only after its SMTP exchange, and
the recorder records before it replies to EHLO, so nothing is waited for.
"""

from __future__ import annotations

import re
import socket
from typing import Any

from peers import haproxy
from peers._service import LoopService
from peers.smtp import SmtpRecorder
from peers.socks5 import Socks5Server

KINDS = ("smtp", "socks5", "haproxy", "closed")
PLACEHOLDER = re.compile(r"\{(\w+)(?:\.(host|port))?\}")


def _kind(name: str, spec: dict[str, Any]) -> str:
    kind = str(spec.get("kind", name))
    assert kind in KINDS, f"peer {name!r}: unknown kind {kind!r} (one of {KINDS})"
    return kind


def unavailable(scenario: dict[str, Any]) -> str | None:
    """Why this scenario cannot run here (its peers need what is missing), or None."""
    for name, spec in scenario.get("peers", {}).items():
        if _kind(name, spec) == "haproxy":
            return haproxy.unavailable_reason()
    return None


class ScenarioPeers:
    """The peers of one scenario: started together, stopped together."""

    def __init__(self, specs: dict[str, dict[str, Any]]) -> None:
        self.specs = specs
        self.addresses: dict[str, tuple[str, int]] = {}
        self._services: dict[str, LoopService] = {}
        self._haproxies: list[haproxy.HAProxy] = []
        self._closed: list[socket.socket] = []
        self._seen: dict[tuple[str, str], int] = {}

    def start(self) -> None:
        for name, spec in self.specs.items():
            assert name != "hostname", "`hostname` is a placeholder of its own"
            kind = _kind(name, spec)
            if kind == "smtp":
                self._service(name, SmtpRecorder())
            elif kind == "socks5":
                server = Socks5Server(
                    users=spec.get("users"), refuse_bind=bool(spec.get("refuse_bind", False))
                )
                self._service(name, server)
            elif kind == "haproxy":
                proxy = haproxy.HAProxy()
                self._haproxies.append(proxy)
                proxy.start()
                self.addresses[name] = (proxy.host, proxy.port)
            else:
                closed = socket.socket()
                self._closed.append(closed)
                closed.bind(("127.0.0.1", 0))
                self.addresses[name] = ("127.0.0.1", closed.getsockname()[1])

    def _service(self, name: str, service: LoopService) -> None:
        self._services[name] = service
        service.start()
        self.addresses[name] = (service.host, service.port)

    def stop(self) -> None:
        for service in self._services.values():
            service.stop()
        for proxy in self._haproxies:
            proxy.stop()
        for closed in self._closed:
            closed.close()

    def substitute(self, value: Any) -> Any:
        """`value` (a string, or JSON made of them) with the placeholders replaced."""
        if isinstance(value, str):
            return self.substitute_text(value)
        if isinstance(value, list):
            return [self.substitute(v) for v in value]
        if isinstance(value, dict):
            return {k: self.substitute(v) for k, v in value.items()}
        return value

    def substitute_text(self, text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name, part = match.group(1), match.group(2)
            if name == "hostname" and part is None:
                return socket.gethostname()
            if name not in self.addresses:
                return match.group(0)  # not a placeholder: Lua's own braces, say
            host, port = self.addresses[name]
            if part == "host":
                return host
            if part == "port":
                return str(port)
            return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

        return PLACEHOLDER.sub(replace, text)

    def new_records(self, name: str, kind: str) -> list[dict[str, Any]]:
        """The records of `kind` that peer `name` made since the last call."""
        assert name in self._services, f"{name!r} is not a recording peer of this scenario"
        records = self._services[name].records(kind)
        seen = self._seen.get((name, kind), 0)
        self._seen[(name, kind)] = len(records)
        return records[seen:]
