"""The conformance driver's peers (tests/conformance/scenario_peers.py):
placeholders are replaced only for declared peers, never in Lua's own braces,
and `saw` sees each record once."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator

import pytest
from conformance.scenario_peers import ScenarioPeers, unavailable

from peers import haproxy


@pytest.fixture
def started() -> Iterator[ScenarioPeers]:
    peers = ScenarioPeers({"smtp": {}, "down": {"kind": "closed"}})
    peers.start()
    yield peers
    peers.stop()


def test_placeholders_in_policy_text(started: ScenarioPeers) -> None:
    host, port = started.addresses["smtp"]
    text = "x = { remote_port = {smtp.port}, s = '{smtp}', h = '{smtp.host}', u = '{other}' }"
    assert started.substitute_text(text) == (
        f"x = {{ remote_port = {port}, s = '{host}:{port}', h = '{host}', u = '{{other}}' }}"
    )
    assert started.substitute_text("{}") == "{}"
    assert started.substitute_text("{hostname}") == socket.gethostname()


def test_placeholders_in_steps(started: ScenarioPeers) -> None:
    _, down = started.addresses["down"]
    step = {"send": {"connect": "a", "to": "127.0.0.1:{down.port}", "n": 3}, "example": 1}
    assert started.substitute(step) == {
        "send": {"connect": "a", "to": f"127.0.0.1:{down}", "n": 3},
        "example": 1,
    }


def test_closed_refuses_and_saw_sees_each_record_once(started: ScenarioPeers) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(started.addresses["down"], 10)
    host, port = started.addresses["smtp"]
    for name in ("one.example", "two.example"):
        client = smtplib.SMTP(host, port, timeout=30, source_address=("127.0.0.8", 0))
        client.ehlo(name)
        client.quit()
    assert [r["helo"] for r in started.new_records("smtp", "helo")] == [
        "one.example",
        "two.example",
    ]
    assert started.new_records("smtp", "helo") == []


def test_haproxy_scenarios_say_why_they_cannot_run() -> None:
    assert unavailable({"peers": {"smtp": {}}}) is None
    assert unavailable({"peers": {"proxy": {"kind": "haproxy"}}}) == haproxy.unavailable_reason()
