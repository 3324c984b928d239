"""What a valid request name and a valid `kumo.make_egress_source` table are.

The source rules follow KumoMTA's `EgressSource` (serde with
`deny_unknown_fields`): the same keys, the same types, addresses parsed as IP
addresses, proxy servers as socket addresses, host names or unix paths
(proxy_server.py), the auto-suspend rules of suspend.py, and serde-shaped
messages ("unknown field `x`, expected one of ...", fields.py) so that helpers
written against kumod's messages keep working.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import TypeVar

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
from egress_resolver.definitions.suspend import (
    SUSPEND_FIELDS,
    SuspendOnFailure,
    rule_params,
    suspend_field,
)

T = TypeVar("T")
MAX_NAME_BYTES = 1024
DEFAULT_TTL_NANOS = 60 * NANOS_PER_SECOND
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

SOURCE_FIELDS = (
    "name",
    "ehlo_domain",
    "source_address",
    "remote_port",
    "ha_proxy_server",
    "ha_proxy_source_address",
    "socks5_proxy_server",
    "socks5_proxy_source_address",
    "socks5_proxy_username",
    "socks5_proxy_password",
    *SUSPEND_FIELDS,
    "ttl",
)
_PLAIN_FIELDS = (
    "ehlo_domain",
    "source_address",
    "remote_port",
    "ha_proxy_server",
    "ha_proxy_source_address",
    "socks5_proxy_server",
    "socks5_proxy_source_address",
    "socks5_proxy_username",
)
_VAULT_FIELDS = ("vault_address", "vault_token", "vault_mount", "vault_path", "vault_key")


@dataclasses.dataclass(frozen=True, slots=True)
class KeySource:
    """A secret by reference (`file`, `vault`) or inline (`key_data`); never printed."""

    file: str | None = None
    key_data: str | None = dataclasses.field(default=None, repr=False)
    vault: Mapping[str, str] | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class SourceDefinition:
    """A validated egress source: the keys of `kumo.make_egress_source`."""

    name: str
    ehlo_domain: str | None = None
    source_address: str | None = None
    remote_port: int | None = None
    ha_proxy_server: str | None = None
    ha_proxy_source_address: str | None = None
    socks5_proxy_server: str | None = None
    socks5_proxy_source_address: str | None = None
    socks5_proxy_username: str | None = None
    socks5_proxy_password: KeySource | None = None
    suspend_when_unplumbed: SuspendOnFailure | None = None
    suspend_when_proxy_unhealthy: SuspendOnFailure | None = None
    ttl_nanos: int = DEFAULT_TTL_NANOS

    @property
    def ttl_seconds(self) -> float:
        """The ttl in seconds, as the cache counts it."""
        return self.ttl_nanos / NANOS_PER_SECOND


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
    check_fields(params, SOURCE_FIELDS, required=("name",))
    values: dict[str, object] = {"name": string_field(params, "name")}
    for key in ("ehlo_domain", "socks5_proxy_username"):
        values[key] = _optional(params, key, string_field)
    for key in ("source_address", "ha_proxy_source_address", "socks5_proxy_source_address"):
        values[key] = _optional(params, key, _ip_address)
    for key in ("ha_proxy_server", "socks5_proxy_server"):
        values[key] = _optional(params, key, proxy_server_field)
    values["remote_port"] = _optional(params, "remote_port", _port)
    values["socks5_proxy_password"] = _optional(params, "socks5_proxy_password", _key_source)
    for key in SUSPEND_FIELDS:
        values[key] = _optional(params, key, suspend_field)
    ttl = _optional(params, "ttl", duration_field)
    values["ttl_nanos"] = DEFAULT_TTL_NANOS if ttl is None else ttl
    return SourceDefinition(**values)  # type: ignore[arg-type]


def source_params(definition: SourceDefinition) -> dict[str, object]:
    """The definition as a `kumo.make_egress_source` table (what invoke_* returns)."""
    params: dict[str, object] = {"name": definition.name}
    for key in _PLAIN_FIELDS:
        value = getattr(definition, key)
        if value is not None:
            params[key] = value
    password = definition.socks5_proxy_password
    if password is not None:
        if password.file is not None:
            params["socks5_proxy_password"] = password.file
        elif password.key_data is not None:
            params["socks5_proxy_password"] = {"key_data": password.key_data}
        else:
            params["socks5_proxy_password"] = dict(password.vault or {})
    for key in SUSPEND_FIELDS:
        rule = getattr(definition, key)
        if rule is not None:
            params[key] = rule_params(rule)
    params["ttl"] = format_humantime(definition.ttl_nanos)
    return params


def default_source(name: str) -> SourceDefinition:
    """The definition kumod uses for `unspecified`: the name and defaults."""
    return SourceDefinition(name=name)


def _optional(
    params: Mapping[object, object], key: str, parse: Callable[[Mapping[object, object], str], T]
) -> T | None:
    return None if params.get(key) is None else parse(params, key)


def _ip_address(params: Mapping[object, object], key: str) -> str:
    text = string_field(params, key)
    try:
        return _canonical_ip(text)
    except ValueError:
        raise ValidationError(f"invalid value for `{key}`: {text!r} is not an IP address") from None


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
