"""kumod's own value types, read as its serde `Deserialize` impls read them.

Durations (`duration_serde`: humantime strings or seconds, serialized back in
humantime's words), throttle specs (`ThrottleSpec`, throttle_spec.py), connection
limits (`LimitSpec`), and sets of CIDR blocks (`CidrSet`). The errors are kumod's
words; serde_shapes.py has the rest of the machinery.
"""

from __future__ import annotations

import dataclasses
import ipaddress

from egress_resolver.definitions.durations import DurationError, parse_duration
from egress_resolver.definitions.serde_errors import SerdeError, invalid_type, invalid_value
from egress_resolver.definitions.serde_shapes import (
    BOOL,
    STRING,
    U64,
    Custom,
    Field,
    Seq,
    Shape,
    Struct,
)
from egress_resolver.definitions.throttle_spec import ThrottleSpecError, parse_throttle_spec

_NANOS = 1_000_000_000


@dataclasses.dataclass(frozen=True)
class Duration(Shape):
    """`duration_serde`: a humantime string, or a number of seconds."""

    expecting = "a duration"

    def read(self, value: object, content: bool) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise invalid_type(value, self.expecting)
        if isinstance(value, int) and value < 0:
            raise SerdeError(
                "duration must either be a string or a positive integer specifying the "
                "number of seconds. (error: out of range integral type conversion attempted)"
            )
        try:
            return humantime(parse_duration(value))
        except DurationError:
            if isinstance(value, str):
                raise invalid_value(value, self.expecting) from None
            raise SerdeError(f"cannot convert float seconds to Duration: {value}") from None


DURATION = Duration()

_HUMANTIME = (
    ("year", 31_557_600 * _NANOS, True),
    ("month", 2_630_016 * _NANOS, True),
    ("day", 86_400 * _NANOS, True),
    ("h", 3_600 * _NANOS, False),
    ("m", 60 * _NANOS, False),
    ("s", _NANOS, False),
    ("ms", 1_000_000, False),
    ("us", 1_000, False),
    ("ns", 1, False),
)


def humantime(nanos: int) -> str:
    """A duration as `humantime::format_duration` writes it ("7days", "1h 30m", "0s")."""
    parts = []
    for unit, size, plural in _HUMANTIME:
        count, nanos = divmod(nanos, size)
        if count:
            parts.append(f"{count}{unit}{'s' if plural and count > 1 else ''}")
    return " ".join(parts) or "0s"


def rust_u64(text: str) -> int:
    """`str::parse::<u64>()`; raises ValueError with Rust's words."""
    unsigned = text.removeprefix("+")
    if not text:
        raise ValueError("cannot parse integer from empty string")
    if not unsigned or not unsigned.isascii() or not unsigned.isdigit():
        raise ValueError("invalid digit found in string")
    if int(unsigned) > 2**64 - 1:
        raise ValueError("number too large to fit in target type")
    return int(unsigned)


def _throttle(value: object, content: bool) -> object:
    """`ThrottleSpec`: a string (serde `try_from = "String"`), in canonical form."""
    text = STRING.read(value, content)
    try:
        return parse_throttle_spec(str(text)).canonical()
    except ThrottleSpecError as err:
        raise SerdeError(str(err)) from None


THROTTLE = Custom(_throttle)


def _limit(value: object, content: bool) -> object:
    """`LimitSpec`: `N`, `"[local:]N"` (with `_`/`,` separators) or `{limit=, force_local=}`."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise SerdeError("limit must be 1 or larger")
        return {"limit": value, "force_local": False}
    if isinstance(value, str):
        force_local = value.startswith("local:")
        rest = value.removeprefix("local:")
        digits = rest.replace("_", "").replace(",", "")
        try:
            limit = rust_u64(digits)
        except ValueError as err:
            raise SerdeError(f"invalid limit '{digits}': {err}") from None
        if limit == 0:
            raise SerdeError(f"invalid LimitSpec `{rest}`: limit must be greater than 0!")
        return {"limit": limit, "force_local": force_local}
    if isinstance(value, dict):
        return _LIMIT_STRUCT.read_map(value, content)
    raise invalid_type(value, "string or numeric limit spec")


_LIMIT_STRUCT = Struct(
    "LimitSpec",
    (Field("limit", U64, required=True), Field("force_local", BOOL, default=False)),
)
LIMIT = Custom(_limit)


def _cidr_set(value: object, content: bool) -> object:
    """`CidrSet`: a list of CIDR blocks or addresses (serde `try_from = "Vec<String>"`)."""
    entries = Seq(STRING).read(value, content)
    problems, blocks = [], []
    for entry in entries:  # type: ignore[attr-defined]
        try:
            blocks.append(canonical_cidr(entry))
        except ValueError as err:
            problems.append(f"{entry}: {err}")
    if problems:
        raise SerdeError(", ".join(problems))
    # kumod keeps the blocks in a trie and lists them in its order: IPv4 first, by address
    networks = {ipaddress.ip_network(b) for b in blocks}
    ordered = sorted(networks, key=lambda n: (n.version, int(n.network_address), n.prefixlen))
    return [_cidr_text(n) for n in ordered]


def canonical_cidr(text: str) -> str:
    """A CIDR block as kumod's `cidr` crate writes it: a host address has no `/len`."""
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"{text} is not a valid CIDR: invalid IP address syntax") from None
        raise ValueError(
            f"{text} is not a valid CIDR: host part of address was not zero. "
            f"Did you mean {_cidr_text(loose)}?"
        ) from None
    return _cidr_text(network)


def _cidr_text(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


CIDR_SET = Custom(_cidr_set)
