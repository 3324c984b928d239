"""parse_message: what one fleet invalidation message asks to drop, or why it is ignored."""

import json
import re

import pytest

from egress_resolver.fleet import MAX_NAMES, GarbageMessageError, parse_message
from egress_resolver.settings import Settings, SettingsError


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (b"ip-1", (["ip-1"], [], False)),
        (b'"ip-1"', (["ip-1"], [], False)),
        (b"*", ([], [], True)),
        (json.dumps(["ip-1", "ip-2"]).encode(), (["ip-1", "ip-2"], [], False)),
        (json.dumps({"pool_names": ["pool-a"]}).encode(), ([], ["pool-a"], False)),
        (
            json.dumps({"names": ["ip-1"], "pool_names": ["pool-a"]}).encode(),
            (["ip-1"], ["pool-a"], False),
        ),
        ("ip-é".encode(), (["ip-é"], [], False)),
        (json.dumps([f"n-{i}" for i in range(MAX_NAMES + 1)]).encode(), ([], [], True)),
    ],
)
def test_messages_that_name_something(
    message: bytes, expected: tuple[list[str], list[str], bool]
) -> None:
    assert parse_message(message) == expected


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"[ip-1", "not valid JSON"),
        (b'["ip-1", null]', "holds null, not a string"),
        (b'{"names": "ip-1"}', "names is not an array"),
        (b'{"sources": []}', "unknown keys ['sources']"),
        (b"[]", "no names"),
        (b"42.5e3x", None),  # a name like any other: not JSON (does not start with [ { ")
        (b"", "name must not be empty"),
        (b"tab\tname", "control character U+0009"),
        (b"\xc3", "not UTF-8"),
        (b"x" * 1025, "1025 bytes long"),
        (b"null", None),
        (b'"\\u0000"', "control character U+0000"),
        (b"3", None),
    ],
)
def test_garbage_is_refused_with_the_reason(message: bytes, reason: str | None) -> None:
    if reason is None:  # what looks like garbage but is a valid name
        assert parse_message(message) == ([message.decode()], [], False)
        return
    with pytest.raises(GarbageMessageError, match=re.escape(reason)):
        parse_message(message)


def test_the_settings_take_a_redis_url_and_a_channel() -> None:
    settings = Settings.from_sources({"invalidation_redis": "redis://127.0.0.1:6379/0"}, {})
    assert settings.invalidation_redis == "redis://127.0.0.1:6379/0"
    assert settings.invalidation_channel == "egress-resolver:invalidate"
    with pytest.raises(SettingsError, match="--invalidation-redis: invalid value 'localhost'"):
        Settings.from_sources({"invalidation_redis": "localhost"}, {})
    with pytest.raises(SettingsError, match="EGRESS_RESOLVER_INVALIDATION_CHANNEL"):
        Settings.from_sources({}, {"EGRESS_RESOLVER_INVALIDATION_CHANNEL": ""})
