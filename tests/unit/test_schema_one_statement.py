"""The schema is the one statement of an EgressSource field (issue 20).

The server states each field once, in the rule table (SourceDefinition in
definitions/validation.py); the codec, the JSON views and the redaction of
secrets take the rest from the EgressSource descriptor. These tests keep it so:
no other hand-written server module names a field, the rule table and the
schema have the same fields, and what is secret comes from `debug_redact`.
"""

from __future__ import annotations

import re
from pathlib import Path

from egress_resolver.definitions.fields import ValidationError
from egress_resolver.definitions.json_view import REDACTED, message_json, secret_fields
from egress_resolver.definitions.source_message import decode_source, source_message
from egress_resolver.definitions.validation import SOURCE_FIELDS, build_source, source_params
from egress_resolver.kumo_api.mod_kumo import deserialize_error
from kumo.egress.v1 import egress_pool_pb2, egress_source_pb2, resolver_service_pb2
from support import REPO

SERVER = REPO / "server" / "egress_resolver"
RULE_TABLE = SERVER / "definitions" / "validation.py"
FIELDS = (
    "source_address",
    "ehlo_domain",
    "remote_port",
    "ha_proxy_server",
    "ha_proxy_source_address",
    "socks5_proxy_server",
    "socks5_proxy_source_address",
    "socks5_proxy_username",
    "socks5_proxy_password",
)
OTHER_SCHEMAS = {SERVER / "definitions" / "mta_config.py": {"ehlo_domain"}}
"""Modules that state a field of another kumod struct with the same name:
mta_config.py's table of kumod's EgressPathConfig has its own `ehlo_domain` (the
name a whole egress path says in EHLO), which is not the EgressSource field."""


def _modules_naming(field: str) -> list[Path]:
    word = re.compile(rf"\b{field}\b")
    return sorted(
        path
        for path in SERVER.rglob("*.py")
        if word.search(path.read_text(encoding="utf-8"))
        and field not in OTHER_SCHEMAS.get(path, set())
    )


def test_each_field_is_named_by_the_rule_table_alone() -> None:
    named = {field: _modules_naming(field) for field in FIELDS}
    assert all(modules == [RULE_TABLE] for modules in named.values()), {
        field: [str(path.relative_to(REPO)) for path in modules]
        for field, modules in named.items()
        if modules != [RULE_TABLE]
    }


def test_the_other_schemas_still_name_what_they_are_excused_for() -> None:
    """An excuse that no longer applies is dropped, so that the list stays true."""
    for path, fields in OTHER_SCHEMAS.items():
        text = path.read_text(encoding="utf-8")
        assert all(re.search(rf'Field\("{field}"', text) for field in fields), path


def test_the_rule_table_has_the_fields_of_the_schema() -> None:
    schema = [field.name for field in egress_source_pb2.EgressSource.DESCRIPTOR.fields]
    assert sorted(SOURCE_FIELDS) == sorted(schema)
    assert set(FIELDS) < set(SOURCE_FIELDS)


def test_every_field_round_trips_through_the_descriptor_plan() -> None:
    definition = build_source(
        {
            "name": "ip-1",
            "source_address": "10.0.0.1",
            "ehlo_domain": "mta1.example.com",
            "remote_port": 0,
            "ha_proxy_server": "10.0.0.9:5000",
            "ha_proxy_source_address": "10.0.0.2",
            "socks5_proxy_server": "[::1]:1080",
            "socks5_proxy_source_address": "::1",
            "socks5_proxy_username": "user",
            "socks5_proxy_password": {"vault_mount": "kv", "vault_path": "p", "vault_key": "k"},
            "suspend_when_unplumbed": {"duration": "5m"},
            "suspend_when_proxy_unhealthy": {"trigger": {"Threshold": "3/5m"}, "duration": 60},
            "ttl": "90s",
        }
    )
    message = source_message(definition)
    assert sorted(f.name for f, _ in message.ListFields()) == sorted(SOURCE_FIELDS)
    assert message.remote_port == 0
    assert message.HasField("remote_port")
    assert decode_source(message) == definition
    assert sorted(source_params(definition)) == sorted(SOURCE_FIELDS)


def test_what_is_secret_comes_from_debug_redact() -> None:
    assert secret_fields(egress_source_pb2.EgressSource.DESCRIPTOR) == {"socks5_proxy_password"}
    assert secret_fields(egress_source_pb2.KeySource.DESCRIPTOR) == {"key_data", "vault"}
    assert secret_fields(egress_source_pb2.VaultKeySource.DESCRIPTOR) == {"vault_token"}
    assert secret_fields(egress_pool_pb2.EgressPool.DESCRIPTOR) == frozenset()


def test_the_json_view_redacts_marked_fields_at_any_depth() -> None:
    inline = build_source({"name": "a", "socks5_proxy_password": {"key_data": "hunter2"}})
    vault = build_source(
        {
            "name": "b",
            "socks5_proxy_password": {"vault_mount": "m", "vault_path": "p", "vault_token": "t0k"},
        }
    )
    by_file = build_source({"name": "c", "socks5_proxy_password": "/etc/secret"})
    assert message_json(source_message(inline))["socks5_proxy_password"] == {"key_data": REDACTED}
    assert message_json(source_message(vault))["socks5_proxy_password"] == {
        "vault": {"vault_token": REDACTED, "vault_mount": "m", "vault_path": "p"}
    }
    assert message_json(source_message(by_file))["socks5_proxy_password"] == {"file": "/etc/secret"}
    batch = resolver_service_pb2.BatchGetEgressSourcesResponse(
        results=[resolver_service_pb2.EgressSourceResult(name="a", source=source_message(inline))]
    )
    shown = message_json(batch)
    assert "hunter2" not in repr(shown)
    assert shown["results"][0]["source"]["socks5_proxy_password"] == {"key_data": REDACTED}


def test_a_refused_table_does_not_show_the_secret() -> None:
    refused = deserialize_error(
        "kumo.make_egress_source",
        ValidationError("boom"),
        {"name": "a", "socks5_proxy_password": {"key_data": "hunter2"}, "ttl": "1x"},
    )
    assert "hunter2" not in str(refused)
    assert '"socks5_proxy_password":"[redacted]"' in str(refused)
