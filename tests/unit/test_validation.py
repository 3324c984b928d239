"""Validation of request names and of kumo.make_egress_source tables."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.definitions.fields import ValidationError
from egress_resolver.definitions.suspend import SuspendOnFailure
from egress_resolver.definitions.validation import (
    SOURCE_FIELDS,
    KeySource,
    build_source,
    check_name,
    default_source,
    source_params,
)


def test_minimal_source_has_defaults() -> None:
    source = build_source({"name": "ip-1"})
    assert source == default_source("ip-1")
    assert source.ttl_nanos == 60 * 1_000_000_000
    assert source.source_address is None


def test_every_field() -> None:
    source = build_source(
        {
            "name": "ip-1",
            "source_address": "10.0.0.1",
            "ehlo_domain": "mta1.examplecorp.com",
            "remote_port": 2525,
            "ha_proxy_server": "10.0.0.1:5000",
            "ha_proxy_source_address": "10.0.0.2",
            "socks5_proxy_server": "[::1]:1080",
            "socks5_proxy_source_address": "::1",
            "socks5_proxy_username": "user",
            "socks5_proxy_password": {"key_data": "secret"},
            "suspend_when_unplumbed": {"duration": "5m"},
            "suspend_when_proxy_unhealthy": {"trigger": {"Threshold": "3/5m"}, "duration": 600},
            "ttl": "5 mins",
        }
    )
    assert source.remote_port == 2525
    assert source.socks5_proxy_password == KeySource(key_data="secret")
    assert source.suspend_when_unplumbed == SuspendOnFailure(duration_nanos=300 * 1_000_000_000)
    assert source.suspend_when_proxy_unhealthy == SuspendOnFailure(
        duration_nanos=600 * 1_000_000_000, threshold="3/300s"
    )
    assert source.ttl_nanos == 300 * 1_000_000_000
    assert "secret" not in repr(source)


@pytest.mark.parametrize(
    "params",
    [
        {"name": "bare"},
        {
            "name": "every-key",
            "source_address": "10.0.0.1",
            "ehlo_domain": "mta1.examplecorp.com",
            "remote_port": 2525,
            "ha_proxy_server": "proxy.example.com:5000",
            "ha_proxy_source_address": "10.0.0.2",
            "socks5_proxy_server": "/run/socks.sock",
            "socks5_proxy_source_address": "::1",
            "socks5_proxy_username": "user",
            "socks5_proxy_password": {"vault_mount": "kv", "vault_path": "mta"},
            "suspend_when_unplumbed": {"trigger": "Immediate", "duration": "90s"},
            "suspend_when_proxy_unhealthy": {"trigger": {"Threshold": "local:5/h"}, "duration": 1},
            "ttl": "1h 30m",
        },
    ],
)
def test_source_params_build_the_same_definition(params: dict[object, object]) -> None:
    """What kumo.invoke_get_egress_source hands back is a table make_egress_source takes."""
    definition = build_source(params)
    again = dict[object, object](source_params(definition).items())
    assert build_source(again) == definition
    assert set(again) <= set(SOURCE_FIELDS)


def test_ip_addresses_are_canonical() -> None:
    assert build_source({"name": "a", "source_address": "2001:DB8::0:1"}).source_address == (
        "2001:db8::1"
    )


def test_proxy_servers_are_canonical() -> None:
    # every form is covered in test_proxy_server.py; here: both keys use it
    source = build_source(
        {"name": "a", "ha_proxy_server": "[10.0.0.1]:25", "socks5_proxy_server": "[::0:1]:1080"}
    )
    assert (source.ha_proxy_server, source.socks5_proxy_server) == ("10.0.0.1:25", "[::1]:1080")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "missing field `name`"),
        ({"name": 1}, "invalid type for `name`: integer 1, expected a string"),
        (
            {"name": "a", "sorce_address": "1.2.3.4"},
            "unknown field `sorce_address`, expected one of",
        ),
        ({"name": "a", 1: "x"}, "invalid key 1: keys must be strings"),
        (
            {"name": "a", "source_address": "10.0.0.256"},
            "`source_address`: '10.0.0.256' is not an IP",
        ),
        ({"name": "a", "source_address": "example.com"}, "is not an IP address"),
        ({"name": "a", "source_address": 10}, "expected a string"),
        ({"name": "a", "ha_proxy_source_address": "1.2.3"}, "`ha_proxy_source_address`"),
        ({"name": "a", "socks5_proxy_source_address": "::g"}, "`socks5_proxy_source_address`"),
        ({"name": "a", "remote_port": 65536}, "65536 is not in 0..=65535"),
        ({"name": "a", "remote_port": -1}, "-1 is not in 0..=65535"),
        ({"name": "a", "remote_port": 25.5}, "expected an integer"),
        ({"name": "a", "remote_port": "25"}, "expected an integer"),
        ({"name": "a", "remote_port": True}, "expected an integer"),
        ({"name": "a", "ha_proxy_server": "10.0.0.1"}, "missing :port suffix"),
        ({"name": "a", "socks5_proxy_server": "bad_host!:1"}, 'invalid hostname "bad_host!"'),
        ({"name": "a", "suspend_when_unplumbed": {}}, "missing field `duration`"),
        ({"name": "a", "ttl": "60"}, "`ttl`: invalid duration '60': time unit needed"),
        ({"name": "a", "ttl": -5}, "must not be negative"),
        ({"name": "a", "ttl": float("nan")}, "finite"),
        ({"name": "a", "ehlo_domain": False}, "`ehlo_domain`: boolean"),
        ({"name": "a", "socks5_proxy_password": 5}, "expected a file path string"),
        ({"name": "a", "socks5_proxy_password": {"vault_mount": "m"}}, "vault_mount, vault_path"),
        ({"name": "a", "socks5_proxy_password": {"key_data": 5}}, "`key_data`"),
    ],
)
def test_invalid_definitions(params: dict[object, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace("[", r"\[")):
        build_source(params)


def test_unknown_field_message_lists_every_field() -> None:
    with pytest.raises(ValidationError) as err:
        build_source({"name": "a", "nope": 1})
    for field in SOURCE_FIELDS:
        assert f"`{field}`" in str(err.value)


def test_integral_float_port_is_accepted() -> None:
    assert build_source({"name": "a", "remote_port": 25.0}).remote_port == 25


def test_key_sources() -> None:
    assert build_source(
        {"name": "a", "socks5_proxy_password": "/etc/pw"}
    ).socks5_proxy_password == (KeySource(file="/etc/pw"))
    vault = {"vault_mount": "secret", "vault_path": "mta/socks", "vault_token": "t"}
    built = build_source({"name": "a", "socks5_proxy_password": vault}).socks5_proxy_password
    assert built is not None
    assert built.vault == vault


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", Reason.EMPTY_NAME),
        ("x" * 2000, Reason.NAME_TOO_LONG),
        ("é" * 513, Reason.NAME_TOO_LONG),
        ("ip\n1", Reason.NAME_HAS_CONTROL_CHARACTERS),
        ("ip\x001", Reason.NAME_HAS_CONTROL_CHARACTERS),
        ("ip\x7f", Reason.NAME_HAS_CONTROL_CHARACTERS),
        ("ip\u0085", Reason.NAME_HAS_CONTROL_CHARACTERS),
    ],
)
def test_bad_names(name: str, reason: Reason) -> None:
    with pytest.raises(ResolveError) as err:
        check_name(name)
    assert err.value.reason is reason
    assert err.value.code.name == "INVALID_ARGUMENT"


@pytest.mark.parametrize("name", ["ip-1", "x" * 1024, "é" * 512, "pool/ip 1", "日本"])
def test_good_names(name: str) -> None:
    check_name(name)


@given(st.text(max_size=1100))
def test_check_name_accepts_or_raises_invalid_argument(name: str) -> None:
    try:
        check_name(name)
    except ResolveError as err:
        assert err.code.name == "INVALID_ARGUMENT"
    else:
        assert name
        assert len(name.encode("utf-8", "surrogatepass")) <= 1024


@pytest.mark.parametrize(
    ("ttl", "shown"), [(True, "boolean true"), ([1], "sequence"), ({"a": 1}, "table")]
)
def test_wrongly_typed_ttl_is_an_invalid_type(ttl: object, shown: str) -> None:
    with pytest.raises(ValidationError, match=f"invalid type for `ttl`: {shown}, expected a dur"):
        build_source({"name": "a", "ttl": ttl})


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("255.255.255.255", "255.255.255.255"),
        ("0.0.0.0", "0.0.0.0"),
        ("::FFFF:10.0.0.1", "::ffff:a00:1"),
        ("2001:DB8::1", "2001:db8::1"),
    ],
)
def test_addresses_are_kept_in_canonical_form(text: str, canonical: str) -> None:
    assert build_source({"name": "s", "source_address": text}).source_address == canonical


@pytest.mark.parametrize("text", ["010.0.0.1", "256.0.0.1", "10.0.0", "10.0.0.1\n", "10.0.0.1 "])
def test_addresses_that_are_not_ip_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValidationError, match="is not an IP address"):
        build_source({"name": "s", "source_address": text})
