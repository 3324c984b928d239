"""What a valid request name and a valid `kumo.make_egress_source` table are.

The source rules follow KumoMTA's `EgressSource` (serde with
`deny_unknown_fields`): the same keys, the same types, addresses parsed as IP
addresses, proxy servers as socket addresses, host names or unix paths
(proxy_server.py), the auto-suspend rules of suspend.py, and serde-shaped
messages ("unknown field `x`, expected one of ...", fields.py) so that helpers
written against kumod's messages keep working. SourceDefinition is the one
server statement of each EgressSource field and its rule.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

from egress_resolver.definitions.durations import NANOS_PER_SECOND, format_humantime
from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.definitions.fields import (
    ValidationError,
    check_fields,
    describe_type,
    duration_field,
    string_field,
)
from egress_resolver.definitions.proxy_server import proxy_server_field
from egress_resolver.definitions.suspend import SuspendOnFailure, rule_params, suspend_field

MAX_NAME_BYTES = 1024
DEFAULT_TTL_NANOS = 60 * NANOS_PER_SECOND
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_VAULT_FIELDS = ("vault_address", "vault_token", "vault_mount", "vault_path", "vault_key")


@dataclasses.dataclass(frozen=True, slots=True)
class KeySource:
    """A secret by reference (`file`, `vault`) or inline (`key_data`); never printed."""

    file: str | None = None
    key_data: str | None = dataclasses.field(default=None, repr=False)
    vault: Mapping[str, str] | None = dataclasses.field(default=None, repr=False)


Parse = Callable[[Mapping[object, object], str], Any]
"""A rule's check: `parse(params, key)` is the value of `params[key]`, or a ValidationError."""


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    """How one key of `kumo.make_egress_source` is checked and handed back.

    `key` is the key of the table and the field of the EgressSource message;
    `attribute` the field of SourceDefinition that holds the value (the key,
    unless the value is held in another unit, as `ttl_nanos`). `params` turns
    a value back into what the policy writes (`kumo.invoke_get_egress_source`).
    A key is required when its SourceDefinition field has no default; an
    optional key that is absent (or nil) keeps the default.
    """

    parse: Parse
    params: Callable[[Any], object]
    key: str = ""
    attribute: str = ""
    required: bool = False


_RULE = "rule"


def _same(value: object) -> object:
    return value


def _rule(
    parse: Parse,
    *,
    params: Callable[[Any], object] = _same,
    key: str = "",
    default: object = None,
) -> Any:
    """A SourceDefinition field that states its rule: the dataclass default and the rule."""
    return dataclasses.field(
        default=default, metadata={_RULE: Rule(parse=parse, params=params, key=key)}
    )


def _ip_address(params: Mapping[object, object], key: str) -> str:
    text = string_field(params, key)
    try:
        return _canonical_ip(text)
    except ValueError:
        raise ValidationError(f"invalid value for `{key}`: {text!r} is not an IP address") from None


def _port(params: Mapping[object, object], key: str) -> int:
    value = params[key]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            f"invalid type for `{key}`: {describe_type(value)} {value!r}, expected an integer"
        )
    if not 0 <= value <= 65535:
        raise ValidationError(f"invalid value for `{key}`: {value} is not in 0..=65535")
    return value


def _key_source(params: Mapping[object, object], key: str) -> KeySource:
    value = params[key]
    if isinstance(value, str):
        return KeySource(file=value)
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"invalid type for `{key}`: {describe_type(value)}, expected a file path string, "
            "{ key_data = ... } or a table of vault_* keys"
        )
    if set(value) == {"key_data"}:
        return KeySource(key_data=string_field(value, "key_data"))
    unknown = sorted(str(k) for k in value if k not in _VAULT_FIELDS)
    if unknown or "vault_mount" not in value or "vault_path" not in value:
        raise ValidationError(
            f"invalid value for `{key}`: expected {{ key_data = ... }} or a table with "
            "vault_mount, vault_path and optionally vault_address, vault_token, vault_key"
            + (f" (unknown keys: {', '.join(unknown)})" if unknown else "")
        )
    return KeySource(vault={str(k): string_field(value, str(k)) for k in value})


def _key_source_params(source: KeySource) -> object:
    if source.file is not None:
        return source.file
    if source.key_data is not None:
        return {"key_data": source.key_data}
    return dict(source.vault or {})


@dataclasses.dataclass(frozen=True, slots=True)
class SourceDefinition:
    """A validated egress source: the keys of `kumo.make_egress_source`.

    This is the rule table of EgressSource: one line per key, in the order of
    serde's "expected one of" list (and the order the keys are checked in),
    with its type, its default and its rule (how it is checked and handed
    back). The codec and the JSON views take everything else from the
    schema's descriptor, which must have the same fields (source_message.py checks it
    at import); see docs/contributing.md, "Adding a field to EgressSource".
    """

    name: str = dataclasses.field(metadata={_RULE: Rule(string_field, _same)})
    ehlo_domain: str | None = _rule(string_field)
    source_address: str | None = _rule(_ip_address)
    remote_port: int | None = _rule(_port)
    ha_proxy_server: str | None = _rule(proxy_server_field)
    ha_proxy_source_address: str | None = _rule(_ip_address)
    socks5_proxy_server: str | None = _rule(proxy_server_field)
    socks5_proxy_source_address: str | None = _rule(_ip_address)
    socks5_proxy_username: str | None = _rule(string_field)
    socks5_proxy_password: KeySource | None = _rule(_key_source, params=_key_source_params)
    suspend_when_unplumbed: SuspendOnFailure | None = _rule(suspend_field, params=rule_params)
    suspend_when_proxy_unhealthy: SuspendOnFailure | None = _rule(suspend_field, params=rule_params)
    ttl_nanos: int = _rule(
        duration_field, params=format_humantime, key="ttl", default=DEFAULT_TTL_NANOS
    )

    @property
    def ttl_seconds(self) -> float:
        """The ttl in seconds, as the cache counts it."""
        return self.ttl_nanos / NANOS_PER_SECOND


def _rules() -> tuple[Rule, ...]:
    rules = []
    for field in dataclasses.fields(SourceDefinition):
        rule: Rule = field.metadata[_RULE]
        required = field.default is dataclasses.MISSING
        rules.append(
            dataclasses.replace(
                rule, key=rule.key or field.name, attribute=field.name, required=required
            )
        )
    return tuple(rules)


SOURCE_RULES: tuple[Rule, ...] = _rules()
"""The rule of every key, in SourceDefinition's order."""
SOURCE_RULE_BY_KEY: Mapping[str, Rule] = {rule.key: rule for rule in SOURCE_RULES}
SOURCE_FIELDS = tuple(SOURCE_RULE_BY_KEY)
"""The keys `kumo.make_egress_source` takes, in serde's order."""
_REQUIRED = tuple(rule.key for rule in SOURCE_RULES if rule.required)
_PLAN = tuple((rule.key, rule.attribute, rule.parse, rule.required) for rule in SOURCE_RULES)
_PARAMS_PLAN = tuple(
    (rule.key, rule.attribute, None if rule.params is _same else rule.params)
    for rule in SOURCE_RULES
)


def check_name(name: str) -> None:
    """Raise INVALID_ARGUMENT unless `name` is a plausible source name."""
    if not name:
        raise ResolveError(Reason.EMPTY_NAME, "name must not be empty")
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        raise ResolveError(
            Reason.NAME_TOO_LONG, f"name is {size} bytes long; the limit is {MAX_NAME_BYTES}"
        )
    bad = _CONTROL.search(name)
    if bad is not None:
        raise ResolveError(
            Reason.NAME_HAS_CONTROL_CHARACTERS,
            f"name contains the control character U+{ord(bad.group()):04X} "
            f"at position {bad.start()}",
        )


def build_source(params: Mapping[object, object]) -> SourceDefinition:
    """Validate the table given to `kumo.make_egress_source` into a definition."""
    check_fields(params, SOURCE_FIELDS, required=_REQUIRED)
    values: dict[str, object] = {}
    for key, attribute, parse, required in _PLAN:
        if required or params.get(key) is not None:
            values[attribute] = parse(params, key)
    return SourceDefinition(**values)  # type: ignore[arg-type]


def source_params(definition: SourceDefinition) -> dict[str, object]:
    """The definition as a `kumo.make_egress_source` table (what invoke_* returns)."""
    params: dict[str, object] = {}
    for key, attribute, to_params in _PARAMS_PLAN:
        value = getattr(definition, attribute)
        if value is not None:
            params[key] = value if to_params is None else to_params(value)
    return params


def default_source(name: str) -> SourceDefinition:
    """The definition kumod uses for `unspecified`: the name and defaults."""
    return SourceDefinition(name=name)


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
"""An IPv4 address as ipaddress writes it (no leading zeros, which it refuses)."""


def _canonical_ip(text: str) -> str:
    # A canonical IPv4 address (the usual case) is checked by one regex match
    # (~0.3 µs); anything else is parsed (~6 µs), the same few addresses once.
    if _CANONICAL_IPV4.fullmatch(text):
        return text
    return _parsed_ip(text)


@functools.lru_cache(maxsize=4096)
def _parsed_ip(text: str) -> str:
    # Policies hand out the same few addresses to many names; parsing one with
    # ipaddress is ~40 % of validating a definition. Errors are not cached.
    return str(ipaddress.ip_address(text))
