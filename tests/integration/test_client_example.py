"""The Python example's commands of the client spec against a real server: get_many,
concurrent_get (single-flight), cached (LRU order), options (code over variables),
timeouts; the conformance suite plays the same against every language."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from egress_client import Resolver
from egress_client.example import answer
from egress_resolver.ops.settings import Settings
from support import DEADLINE, InProcessServer

POLICY = """
local kumo = require 'kumo'
local calls = 0
kumo.on('get_egress_source', function(name)
  calls = calls + 1
  if name:sub(1, 5) == 'gone-' then return nil end
  if name:sub(1, 5) == 'slow-' then kumo.sleep(tonumber(name:sub(6)) / 1000) end
  return kumo.make_egress_source { name = name, ehlo_domain = 'call-' .. calls, ttl = '1h' }
end)
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[InProcessServer]:
    policy = tmp_path / "policy.lua"
    policy.write_text(POLICY)
    with InProcessServer(Settings(policy=policy, listen=["127.0.0.1:0"])) as srv:
        yield srv


def ask(resolver: Resolver, command: dict[str, Any]) -> dict[str, Any]:
    return answer(resolver, json.dumps(command))


def test_get_many_keeps_the_order_and_is_never_cached(server: InProcessServer) -> None:
    with Resolver(server.target, cache=True, timeout=DEADLINE) as resolver:
        assert resolver.wait_until_watching(DEADLINE)
        reply = ask(resolver, {"get_many": ["b", "gone-x", "a"]})
        results = reply["results"]
        assert [r.get("source", {}).get("name") for r in results] == ["b", None, "a"]
        assert results[1] == {
            "error": {
                "code": "NOT_FOUND",
                "reason": "SOURCE_NOT_FOUND",
                "message": results[1]["error"]["message"],
            }
        }
        assert ask(resolver, {"cached": {}}) == {"names": []}
        assert ask(resolver, {"stats": {}})["rpcs"] == 1
        assert ask(resolver, {"get_many": []}) == {"results": []}
        assert ask(resolver, {"get_many": "a"})["error"]["reason"] == "BAD_COMMAND"


def test_cached_lists_source_names_least_to_most_recently_used(
    server: InProcessServer,
) -> None:
    with Resolver(server.target, cache=True, max_entries=3, timeout=DEADLINE) as resolver:
        assert resolver.wait_until_watching(DEADLINE)
        for name in ("a", "b", "c", "a", "d"):
            assert ask(resolver, {"get": name})["source"]["name"] == name
        assert ask(resolver, {"cached": {}}) == {"names": ["c", "a", "d"]}
        assert ask(resolver, {"stats": {}})["rpcs"] == 4  # the second a was a hit
        ask(resolver, {"pool": "no-such-pool"})  # pools are another cache
        assert ask(resolver, {"cached": {}}) == {"names": ["c", "a", "d"]}
    with Resolver(server.target, timeout=DEADLINE) as resolver:  # cache off: nothing held
        ask(resolver, {"get": "a"})
        assert ask(resolver, {"cached": {}}) == {"names": []}


def test_concurrent_gets_of_a_missing_name_share_one_call(server: InProcessServer) -> None:
    with Resolver(server.target, cache=True, timeout=DEADLINE) as resolver:
        assert resolver.wait_until_watching(DEADLINE)
        assert ask(resolver, {"concurrent_get": "slow-500", "n": 8}) == {"sources": 8}
        assert ask(resolver, {"stats": {}})["rpcs"] == 1
        assert server.app.cache.stats().misses == 1
        assert ask(resolver, {"concurrent_get": "gone-y", "n": 3})["error"]["code"] == "NOT_FOUND"
        assert ask(resolver, {"concurrent_get": "a", "n": 0}) == {"sources": 0}


def test_a_call_past_its_timeout_fails_with_deadline_exceeded(server: InProcessServer) -> None:
    with Resolver(server.target, cache=True, timeout=0.3) as resolver:
        start = time.monotonic()
        reply = ask(resolver, {"get": "slow-2000"})
        assert time.monotonic() - start < 1.5  # the deadline, not the handler's 2 s
        assert reply["error"]["code"] == "DEADLINE_EXCEEDED"
        # empty unless the sidecar answered first (it sees the deadline and says why)
        assert reply["error"]["reason"] in ("", "DEADLINE_EXCEEDED")


def example(
    env: dict[str, str], *commands: dict[str, Any], flags: tuple[str, ...] = ()
) -> tuple[int, list[Any], str]:
    """Run the example program with `env` added, these command lines on stdin."""
    done = subprocess.run(
        [sys.executable, "-m", "egress_client.example", "--target", "unix:/nowhere.sock", *flags],
        input="".join(json.dumps(c) + "\n" for c in commands),
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def test_example_options_in_code_win_over_the_variables() -> None:
    variables = {
        "EGRESS_CLIENT_TIMEOUT": "5",
        "EGRESS_CLIENT_CACHE": "true",
        "EGRESS_CLIENT_MAX_ENTRIES": "50",
        "EGRESS_CLIENT_STALE_IF_ERROR": "1500ms",
        "EGRESS_CLIENT_KEEPALIVE_INTERVAL": "10s",
        "EGRESS_CLIENT_CONNECT_TIMEOUT": "0.25",
    }
    code = {"timeout": "750ms", "max_entries": 3, "stale_if_error": 2, "cache": False}
    rc, lines, err = example({**variables, "EXAMPLE_OPTIONS": json.dumps(code)}, {"options": {}})
    assert (rc, err) == (0, "")
    assert lines == [
        {
            "options": {
                "target": "unix:/nowhere.sock",
                "timeout": "750ms",
                "cache": False,
                "max_entries": 3,
                "stale_if_error": "2s",
                "keepalive_interval": "10s",
                "connect_timeout": "250ms",
            }
        }
    ]


def test_the_examples_flags_win_over_the_same_key_of_example_options() -> None:
    code = {"target": "unix:/elsewhere.sock", "cache": False, "timeout": 1}
    rc, lines, _ = example(
        {"EXAMPLE_OPTIONS": json.dumps(code)}, {"options": {}}, flags=("--cache",)
    )
    assert rc == 0
    shown = lines[0]["options"]
    assert (shown["target"], shown["cache"], shown["timeout"]) == ("unix:/nowhere.sock", True, "1s")


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"EGRESS_CLIENT_TIMEOUT": "fast"}, "EGRESS_CLIENT_TIMEOUT: 'fast' is not a duration"),
        ({"EGRESS_CLIENT_CACHE": "2"}, "EGRESS_CLIENT_CACHE: '2' is not a boolean"),
        ({"EXAMPLE_OPTIONS": '{"ttl": 1}'}, "EXAMPLE_OPTIONS: unknown option 'ttl'"),
        ({"EXAMPLE_OPTIONS": "[1]"}, "EXAMPLE_OPTIONS: '[1]' is not a JSON object"),
        ({"EXAMPLE_OPTIONS": '{"timeout": "x"}'}, "EXAMPLE_OPTIONS timeout: 'x' is not a duration"),
        ({"EXAMPLE_OPTIONS": '{"max_entries": 0}'}, "max_entries: '0' must be at least 1"),
    ],
)
def test_an_option_that_cannot_be_used_stops_the_example(env: dict[str, str], words: str) -> None:
    rc, lines, err = example(env, {"options": {}})
    assert (rc, lines) == (2, [])
    assert words in err
