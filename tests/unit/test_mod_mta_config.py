"""kumo.make_queue_config, make_egress_path, make_listener_domain and make_throttle:
the keys kumod accepts, kumod's serde wording for what it refuses, and the objects."""

from __future__ import annotations

import json

import pytest

from egress_resolver.runtime.lua_host import PolicyHost
from support import fixture

EXPECTED_QUEUE_FIELDS = (
    "`retry_interval`, `max_retry_interval`, `max_age`, `egress_pool`, `max_message_rate`, "
    "`protocol`, `reap_interval`, `refresh_interval`, `timerwheel_tick_interval`, `strategy`, "
    "`refresh_strategy`, `provider_name`, `shrink_policy`"
)


@pytest.fixture(scope="module")
def host() -> PolicyHost:
    return PolicyHost(fixture("lua_eval.lua"))


def run(host: PolicyHost, expression: str) -> str:
    """What the Lua expression gave: 'ok: VALUE' or 'error: MESSAGE'."""
    answer = host.resolve_source(expression).ehlo_domain
    assert answer is not None
    return answer


def fields(host: PolicyHost, expression: str) -> dict[str, object]:
    answer = run(host, f"fields({expression})")
    assert answer.startswith("ok: "), answer
    decoded: dict[str, object] = json.loads(answer.removeprefix("ok: "))
    return decoded


def error(host: PolicyHost, expression: str) -> str:
    answer = run(host, expression)
    assert answer.startswith("error: "), answer
    return answer.removeprefix("error: ")


# --- kumo.make_queue_config ---------------------------------------------------------


def test_queue_config_fills_kumods_defaults(host: PolicyHost) -> None:
    assert fields(host, "kumo.make_queue_config {}") == {
        "retry_interval": "20m",
        "max_age": "7days",
        "protocol": {"smtp": {"mx_list": {}, "treat_mx_list_as_secure": False}},
        "reap_interval": "10m",
        "refresh_interval": "1m",
        "strategy": "SingletonTimerWheel",
        "refresh_strategy": "Ttl",
        "shrink_policy": {},
    }


def test_queue_config_accepts_its_keys(host: PolicyHost) -> None:
    made = fields(
        host,
        """kumo.make_queue_config {
          max_age = '24 hours', retry_interval = 90, max_retry_interval = '2h',
          egress_pool = 'pool-1', max_message_rate = '3/5m', provider_name = 'gmail',
          strategy = 'SkipList', refresh_strategy = 'Epoch', timerwheel_tick_interval = '1s',
          shrink_policy = { { interval = '0s', policy = 'ShrinkData' } },
          protocol = {
            smtp = { mx_list = { 'mx.example.com', { name = 'mx2', addr = '10.0.0.1' } } },
          },
        }""",
    )
    assert made["max_age"] == "1day"
    assert made["retry_interval"] == "1m 30s"
    assert made["max_retry_interval"] == "2h"
    assert made["egress_pool"] == "pool-1"
    assert made["max_message_rate"] == "3/300s"  # kumod's canonical spec
    assert made["strategy"] == "SkipList"
    assert made["refresh_strategy"] == "Epoch"
    assert made["shrink_policy"] == [{"interval": "0s", "policy": "ShrinkData"}]
    assert made["protocol"] == {
        "smtp": {
            "mx_list": ["mx.example.com", {"name": "mx2", "addr": "10.0.0.1", "is_secure": False}],
            "treat_mx_list_as_secure": False,
        }
    }


def test_queue_config_other_protocols(host: PolicyHost) -> None:
    made = fields(host, "kumo.make_queue_config { protocol = { maildir_path = '/var/mail' } }")
    assert made["protocol"] == {"maildir_path": "/var/mail"}
    made = fields(
        host, "kumo.make_queue_config { protocol = { custom_lua = { constructor = 'c' } } }"
    )
    assert made["protocol"] == {
        "custom_lua": {
            "constructor": "c",
            "batch_size": 1,
            "min_batch_size": 1,
            "max_batch_latency": "0s",
        }
    }


def test_queue_config_refuses_an_unknown_key_as_kumod_does(host: PolicyHost) -> None:
    assert error(host, "kumo.make_queue_config { mytenant = { egress_pool = 'p' } }") == (
        "kumo.make_queue_config: deserialize error: unknown field `mytenant`, expected one of "
        f'{EXPECTED_QUEUE_FIELDS}, while processing {{"mytenant":{{"egress_pool":"p"}}}}'
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("egress_pool = 5", "invalid type: integer `5`, expected a string"),
        ("egress_pool = { 'a' }", "invalid type: sequence, expected a string"),
        ("max_age = true", "invalid type: boolean `true`, expected a duration"),
        ("max_age = 'forever'", 'invalid value: string "forever", expected a duration'),
        ("strategy = 5", "bad enum value"),
        (
            "strategy = 'Fast'",
            "unknown variant `Fast`, expected one of `TimerWheel`, `SkipList`, "
            "`SingletonTimerWheel`, `SingletonTimerWheelV2`",
        ),
        ("refresh_strategy = 'Never'", "unknown variant `Never`, expected `Ttl` or `Epoch`"),
        ("max_message_rate = '10/fortnight'", "unknown period quantity fortnight"),
        ("max_message_rate = 10", "invalid type: integer `10`, expected a string"),
        ("shrink_policy = { { interval = '1m' } }", "missing field `policy`"),
        (
            "protocol = { carrier_pigeon = true }",
            "data did not match any variant of untagged enum DeliveryProto",
        ),
    ],
)
def test_queue_config_checks_value_types(host: PolicyHost, params: str, message: str) -> None:
    refused = error(host, f"kumo.make_queue_config {{ {params} }}")
    assert refused.startswith(f"kumo.make_queue_config: deserialize error: {message}, while ")


def test_the_queue_helper_tells_unknown_keys_from_bad_values(host: PolicyHost) -> None:
    # policy-extras/queue.lua: an error with 'invalid type' is a bad value, else an unknown key
    assert "invalid type" in error(host, "kumo.make_queue_config { max_age = true }")
    assert "invalid type" not in error(host, "kumo.make_queue_config { tenant_x = true }")


# --- kumo.make_egress_path ----------------------------------------------------------


def test_egress_path_accepts_its_keys_and_the_flattened_timeouts(host: PolicyHost) -> None:
    made = fields(
        host,
        """kumo.make_egress_path {
          connection_limit = 'local:1_000', additional_connection_limits = { a = 5 },
          enable_tls = 'Required', connect_timeout = '10s', smtp_port = 2525,
          prohibited_hosts = { '::1', '10.0.0.0/8', '192.168.1.1/32' },
          openssl_options = 'NO_TLSV1|NO_TLSV1_1',
          rustls_cipher_suites = { 'TLS13_AES_256_GCM_SHA384' },
          max_message_rate = '3/5m', additional_message_rate_throttles = { x = '10/h' },
          tls_certificate = '/etc/cert.pem', ip_lookup_strategy = 'Ipv4Only',
        }""",
    )
    assert made["connection_limit"] == {"limit": 1000, "force_local": True}
    assert made["additional_connection_limits"] == {"a": {"limit": 5, "force_local": False}}
    assert made["enable_tls"] == "Required"
    assert made["connect_timeout"] == "10s"
    assert made["ehlo_timeout"] == "5m"  # a default of the flattened SmtpClientTimeouts
    assert made["smtp_port"] == 2525
    assert made["prohibited_hosts"] == ["10.0.0.0/8", "192.168.1.1", "::1"]
    assert made["max_message_rate"] == "3/300s"
    assert made["additional_message_rate_throttles"] == {"x": "10/h"}
    assert made["tls_certificate"] == "/etc/cert.pem"
    assert made["ip_lookup_strategy"] == "Ipv4Only"
    assert "openssl_options" not in made  # kumod does not serialize these two
    assert "rustls_cipher_suites" not in made


def test_egress_path_defaults(host: PolicyHost) -> None:
    made = fields(host, "kumo.make_egress_path {}")
    assert made["connection_limit"] == {"limit": 32, "force_local": False}
    assert made["prohibited_hosts"] == ["0.0.0.0", "127.0.0.0/8", "::", "::1"]
    assert made["max_ready"] == 1024
    assert made["enable_mta_sts"] is True
    assert made["rset_timeout"] == "5s"
    assert "max_message_rate" not in made  # unset options are absent


def test_egress_path_refuses_an_unknown_key_as_kumod_does(host: PolicyHost) -> None:
    # serde words an unknown key of a struct with a flattened field without the field list
    assert error(host, "kumo.make_egress_path { nope = 5 }") == (
        "kumo.make_egress_path: deserialize error: unknown field `nope`, "
        'while processing {"nope":5}'
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("enable_tls = 5", "invalid type: integer `5`, expected string or map"),
        ("enable_tls = 'Maybe'", "unknown variant `Maybe`, expected one of `Opportunistic`"),
        ("smtp_port = 70000", "invalid value: integer `70000`, expected u16"),
        ("max_ready = 1.5", "invalid type: floating point `1.5`, expected usize"),
        ("max_ready = -1", "invalid value: integer `-1`, expected usize"),
        ("enable_dane = 'yes'", 'invalid type: string "yes", expected a boolean'),
        ("connect_timeout = {}", "invalid type: map, expected a duration"),
        ("connection_limit = 0", "limit must be 1 or larger"),
        ("connection_limit = '1x'", "invalid limit '1x': invalid digit found in string"),
        ("connection_limit = true", "invalid type: boolean `true`, expected string or numeric"),
        (
            "prohibited_hosts = { '10.0.0.1/8' }",
            "10.0.0.1/8: 10.0.0.1/8 is not a valid CIDR: host part of address was not zero. "
            "Did you mean 10.0.0.0/8?",
        ),
        ("openssl_options = 'NOPE'", "`NOPE` is not a valid SslOption name. Possible values"),
        ("rustls_cipher_suites = { 'RC4' }", "`RC4` is not a valid rustls cipher suite"),
        ("tls_private_key = 5", "data did not match any variant of untagged enum KeySource"),
    ],
)
def test_egress_path_checks_value_types(host: PolicyHost, params: str, message: str) -> None:
    refused = error(host, f"kumo.make_egress_path {{ {params} }}")
    assert refused.startswith(f"kumo.make_egress_path: deserialize error: {message}")


def test_inline_key_material_is_not_shown_in_errors(host: PolicyHost) -> None:
    refused = error(
        host, "kumo.make_egress_path { smtp_auth_plain_password = { key_data = 'hunter2' }, x = 1 }"
    )
    assert "hunter2" not in refused
    assert '"smtp_auth_plain_password":{"key_data":"[redacted]"}' in refused
    shown = run(host, "tostring(kumo.make_egress_path { tls_private_key = { key_data = 'k3y' } })")
    assert "k3y" not in shown


# --- kumo.make_listener_domain ------------------------------------------------------


def test_listener_domain_accepts_its_keys(host: PolicyHost) -> None:
    assert fields(
        host,
        "kumo.make_listener_domain { log_oob = true, log_arf = 'LogThenDrop', relay_to = true, "
        "relay_from = { '10.0.0.0/24', '10.0.0.1' }, ttl = 30 }",
    ) == {
        "log_oob": "LogThenRelay",
        "log_arf": "LogThenDrop",
        "relay_to": True,
        "relay_from": ["10.0.0.0/24", "10.0.0.1"],
        "ttl": "30s",
    }


def test_listener_domain_refuses_an_unknown_key_as_kumod_does(host: PolicyHost) -> None:
    assert error(host, "kumo.make_listener_domain { relay_from_authz = { 'john' } }") == (
        "kumo.make_listener_domain: deserialize error: unknown field `relay_from_authz`, expected "
        "one of `log_oob`, `log_arf`, `relay_to`, `relay_from`, `ttl`, "
        'while processing {"relay_from_authz":["john"]}'
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("relay_to = 'yes'", 'invalid type: string "yes", expected a boolean'),
        (
            "log_arf = 'yes'",
            'invalid value: string "yes", expected a boolean value or one of '
            "'Ignore', 'LogThenDrop' or 'LogThenRelay'",
        ),
        ("log_oob = 1", "invalid type: integer `1`, expected a boolean value or one of"),
        ("relay_from = '10.0.0.1'", 'invalid type: string "10.0.0.1", expected a sequence'),
        ("relay_from = { 5 }", "invalid type: integer `5`, expected a string"),
    ],
)
def test_listener_domain_checks_value_types(host: PolicyHost, params: str, message: str) -> None:
    refused = error(host, f"kumo.make_listener_domain {{ {params} }}")
    assert refused.startswith(f"kumo.make_listener_domain: deserialize error: {message}")


# --- the objects --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("maker", "type_name"),
    [
        ("make_queue_config", "QueueConfig"),
        ("make_egress_path", "EgressPathConfig"),
        ("make_listener_domain", "EsmtpDomain"),
    ],
)
def test_objects_carry_the_rust_type_name_and_are_read_only(
    host: PolicyHost, maker: str, type_name: str
) -> None:
    assert run(host, f"meta(kumo.{maker} {{}})") == f"ok: {type_name}"
    assert run(host, f"tostring(kumo.{maker} {{}}):match '^%a+'") == f"ok: {type_name}"
    assert error(host, f"(function() kumo.{maker}({{}}).nope = 1 end)()").endswith(
        f"{type_name}: cannot set field 'nope': the object is read-only"
    )
    assert error(host, f"kumo.{maker}('x')").endswith(f"kumo.{maker}: expected a table, got string")


def test_objects_index_compare_and_go_back_to_their_maker(host: PolicyHost) -> None:
    assert run(host, "kumo.make_queue_config({ egress_pool = 'p' }).egress_pool") == "ok: p"
    assert run(host, "kumo.make_queue_config({}).max_message_rate") == "ok: nil"
    again = "kumo.make_listener_domain(kumo.make_listener_domain { relay_to = true })"
    assert fields(host, again) == fields(host, "kumo.make_listener_domain { relay_to = true }")


def test_objects_survive_memoize(host: PolicyHost) -> None:
    made = "cached(function() return { q = kumo.make_queue_config { egress_pool = 'p' } } end).q"
    assert run(host, f"meta({made})") == "ok: QueueConfig"
    assert run(host, f"{made}.egress_pool") == "ok: p"


# --- kumo.make_throttle -------------------------------------------------------------


def test_throttle_checks_its_spec(host: PolicyHost) -> None:
    made = run(host, "tostring(kumo.make_throttle('tenant-a', 'local:1_000/h,max_burst=5'))")
    assert made == "ok: UserThrottle(lua-user-throttle-tenant-a, local:1000/h,max_burst=5)"
    assert run(host, "meta(kumo.make_throttle('x', '10/s'))") == "ok: UserThrottle"
    assert error(host, "kumo.make_throttle('x', '10/fortnight')") == (
        "unknown period quantity fortnight"
    )
    assert error(host, "kumo.make_throttle('x', '0/s')") == (
        "invalid ThrottleSpec `0/s`: limit must be greater than 0!"
    )
    assert error(host, "kumo.make_throttle(nil, '10/s')") == (
        "bad argument #1 to `make_throttle`: error converting Lua nil to String "
        "(expected string or number)"
    )


@pytest.mark.parametrize(
    "method", ["throttle", "explain", "sleep_if_throttled", "delay_message_if_throttled"]
)
def test_throttle_methods_are_refused_by_name(host: PolicyHost, method: str) -> None:
    refused = error(host, f"kumo.make_throttle('x', '10/s'):{method}()")
    assert refused.startswith(f"throttle:{method} is not available in egress-resolver: ")
    assert "only the MTA can apply them" in refused
