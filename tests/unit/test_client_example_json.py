"""The Python example's JSON view of a source: protobuf JSON whose secrets come from the schema.

The secrets are the fields the schema marks `[debug_redact = true]`; these tests find them in the
descriptor on their own (no field name written here is taken as a secret) and check that each one
prints "[redacted]" and never its value, at whatever depth the schema puts it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import cast

import pytest
from google.protobuf import json_format
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.api_pb2 import Api
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.empty_pb2 import Empty
from google.protobuf.message import Message
from google.protobuf.type_pb2 import Option

from egress_client._json_view import REDACTED, message_json, redacted_fields
from egress_client.example import pool_json
from kumo.egress.v1.egress_pool_pb2 import EgressPool, EgressPoolEntry
from kumo.egress.v1.egress_source_pb2 import (
    EgressSource,
    KeySource,
    SuspendOnFailure,
    VaultKeySource,
)

SENTINEL = "sentinel-secret-value"


def _paths(
    descriptor: Descriptor, prefix: tuple[FieldDescriptor, ...] = ()
) -> Iterator[tuple[FieldDescriptor, ...]]:
    """Every path of singular fields from `descriptor` down to a string field."""
    for field in descriptor.fields:
        path = (*prefix, field)
        if field.is_repeated:
            continue
        if field.type == FieldDescriptor.TYPE_STRING:
            yield path
        elif field.message_type is not None and field.message_type not in [
            f.containing_type for f in prefix
        ]:
            yield from _paths(field.message_type, path)


def _with(path: tuple[FieldDescriptor, ...], value: str) -> EgressSource:
    """A source with the field at the end of `path` set to `value`, and every message on the way."""
    source = EgressSource(name="a")
    message: Message = source
    for field in path[:-1]:
        message = getattr(message, field.name)
    setattr(message, path[-1].name, value)
    return source


def _at(printed: object, path: tuple[FieldDescriptor, ...]) -> object:
    for field in path:
        assert isinstance(printed, dict), printed
        printed = printed[field.name]
    return printed


def _all_redact_fields(message: Message) -> set[str]:
    """Every field of the file that defines `message` whose options say `debug_redact`."""

    def walk(descriptor: Descriptor) -> Iterator[FieldDescriptor]:
        yield from descriptor.fields
        for nested in descriptor.nested_types:
            yield from walk(nested)

    file = cast(Descriptor, message.DESCRIPTOR).file
    return {
        field.full_name
        for descriptor in file.message_types_by_name.values()
        for field in walk(descriptor)
        if field.GetOptions().debug_redact
    }


def test_the_redacted_fields_are_the_schemas_debug_redact_fields() -> None:
    found = redacted_fields(EgressSource.DESCRIPTOR)
    assert found == _all_redact_fields(EgressSource())
    assert found  # the schema has secrets: otherwise this test would check nothing
    assert found == {
        "kumo.egress.v1.KeySource.key_data",
        "kumo.egress.v1.VaultKeySource.vault_token",
    }


STRING_PATHS = list(_paths(EgressSource.DESCRIPTOR))


@pytest.mark.parametrize(
    "path", STRING_PATHS, ids=[".".join(f.name for f in p) for p in STRING_PATHS]
)
def test_each_string_field_prints_its_value_unless_the_schema_marks_it(
    path: tuple[FieldDescriptor, ...],
) -> None:
    printed = message_json(_with(path, SENTINEL))
    line = json.dumps(printed)
    if path[-1].full_name in _all_redact_fields(EgressSource()):
        assert _at(printed, path) == REDACTED
        assert SENTINEL not in line
    else:
        assert _at(printed, path) == SENTINEL


def test_every_secret_is_reached_by_some_path() -> None:
    reached = {path[-1].full_name for path in STRING_PATHS}
    assert _all_redact_fields(EgressSource()) <= reached


def test_inline_password_and_vault_token_print_redacted() -> None:
    inline = EgressSource(name="inline", socks5_proxy_password=KeySource(key_data="hunter2"))
    vaulted = EgressSource(
        name="vaulted",
        socks5_proxy_password=KeySource(
            vault=VaultKeySource(
                vault_token="s.vault-token", vault_mount="kv", vault_path="mta/socks"
            )
        ),
    )
    assert message_json(inline) == {
        "name": "inline",
        "socks5_proxy_password": {"key_data": REDACTED},
    }
    assert message_json(vaulted) == {
        "name": "vaulted",
        "socks5_proxy_password": {
            "vault": {"vault_token": REDACTED, "vault_mount": "kv", "vault_path": "mta/socks"}
        },
    }
    assert inline.socks5_proxy_password.key_data == "hunter2"  # the caller's message is not changed
    assert "hunter2" not in json.dumps(message_json(inline))
    assert "s.vault-token" not in json.dumps(message_json(vaulted))


def test_every_other_field_prints_as_protobuf_json() -> None:
    source = EgressSource(
        name="full",
        source_address="10.0.0.1",
        remote_port=2525,
        ttl=Duration(seconds=90),
        socks5_proxy_password=KeySource(file="/etc/mta/socks"),
        suspend_when_unplumbed=SuspendOnFailure(immediate=Empty(), duration=Duration(seconds=300)),
        suspend_when_proxy_unhealthy=SuspendOnFailure(
            threshold="3/300s", duration=Duration(seconds=1, nanos=500_000_000)
        ),
    )
    expected = json_format.MessageToDict(source, preserving_proto_field_name=True)
    assert message_json(source) == expected
    assert expected["suspend_when_proxy_unhealthy"] == {"threshold": "3/300s", "duration": "1.500s"}
    assert expected["remote_port"] == 2525


def test_a_pool_prints_every_weight_even_zero() -> None:
    pool = EgressPool(
        name="p",
        entries=[EgressPoolEntry(name="a", weight=0), EgressPoolEntry(name="b", weight=2)],
        ttl=Duration(seconds=120),
    )
    assert pool_json(pool) == {
        "name": "p",
        "entries": [{"name": "a", "weight": 0}, {"name": "b", "weight": 2}],
        "ttl": "120s",
    }
    assert pool_json(EgressPool(name="empty", ttl=Duration(seconds=60))) == {
        "name": "empty",
        "entries": [],
        "ttl": "60s",
    }


def test_a_secret_inside_an_any_is_redacted_by_the_packed_messages_descriptor() -> None:
    packed = AnyMessage()
    packed.Pack(KeySource(key_data="hunter2"))
    holder = Api(name="holder", options=[Option(name="password", value=packed)])
    printed = message_json(holder)
    assert printed["options"] == [
        {
            "name": "password",
            "value": {
                "@type": "type.googleapis.com/kumo.egress.v1.KeySource",
                "key_data": REDACTED,
            },
        }
    ]
    assert "hunter2" not in json.dumps(printed)
