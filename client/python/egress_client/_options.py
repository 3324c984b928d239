"""The client's options: one name, one default and one variable each, in every language.

| option | default | variable |
|---|---|---|
| target | 127.0.0.1:50051 | EGRESS_CLIENT_TARGET |
| timeout | 2 s | EGRESS_CLIENT_TIMEOUT |
| cache | off | EGRESS_CLIENT_CACHE |
| max_entries | 10 000 | EGRESS_CLIENT_MAX_ENTRIES |
| stale_if_error | 0 (off) | EGRESS_CLIENT_STALE_IF_ERROR |
| keepalive_interval | 30 s | EGRESS_CLIENT_KEEPALIVE_INTERVAL |
| connect_timeout | 60 s | EGRESS_CLIENT_CONNECT_TIMEOUT |

An option given in code wins over its variable, which wins over the default.
Durations in variables are seconds, optionally suffixed `s` or `ms`
("2", "2s", "500ms"); booleans are 1/0, true/false, yes/no, on/off.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_TIMEOUT = 2.0
"""Seconds a call may take unless the caller says otherwise (a miss runs Lua)."""
DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_KEEPALIVE_INTERVAL = 30.0
DEFAULT_CONNECT_TIMEOUT = 60.0
"""Seconds one `connect` may take in all unless the caller says otherwise."""
ENV_PREFIX = "EGRESS_CLIENT_"


class OptionError(ValueError):
    """An option (or its variable) with a value that cannot be used."""


def parse_seconds(text: str, origin: str) -> float:
    """'2', '2s' or '500ms' as seconds; refuses negative and malformed values."""
    raw = text.strip()
    scale = 1.0
    if raw.endswith("ms"):
        raw, scale = raw[:-2], 0.001
    elif raw.endswith("s"):
        raw = raw[:-1]
    try:
        value = float(raw) * scale
    except ValueError:
        raise OptionError(f"{origin}: {text!r} is not a duration (e.g. 2, 2s, 500ms)") from None
    if not value >= 0 or value == float("inf"):
        raise OptionError(f"{origin}: {text!r} must be a finite duration of 0 or more")
    return value


def parse_positive_seconds(text: str, origin: str) -> float:
    """As parse_seconds, above 0."""
    value = parse_seconds(text, origin)
    if value <= 0:
        raise OptionError(f"{origin}: {text!r} must be a duration above 0")
    return value


def parse_bool(text: str, origin: str) -> bool:
    """1/0, true/false, yes/no, on/off."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise OptionError(f"{origin}: {text!r} is not a boolean (1/0, true/false, yes/no, on/off)")


def parse_count(text: str, origin: str) -> int:
    """A positive integer."""
    try:
        value = int(text.strip())
    except ValueError:
        raise OptionError(f"{origin}: {text!r} is not an integer") from None
    if value < 1:
        raise OptionError(f"{origin}: {text!r} must be at least 1")
    return value


def parse_target(text: str, origin: str) -> str:
    """An address: HOST:PORT, [::1]:PORT or unix:/path (gRPC checks the rest)."""
    value = text.strip()
    if not value:
        raise OptionError(f"{origin}: {text!r} is not an address (HOST:PORT or unix:/path)")
    return value


def format_duration(seconds: float) -> str:
    """A duration as the options are shown in every language: whole seconds
    as `<n>s`, else milliseconds as `<n>ms` (`2s`, `500ms`, `0s`)."""
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    """Every option of a Resolver, resolved against the environment."""

    target: str = DEFAULT_TARGET
    timeout: float = DEFAULT_TIMEOUT
    cache: bool = False
    max_entries: int = DEFAULT_MAX_ENTRIES
    stale_if_error: float = 0.0
    keepalive_interval: float = DEFAULT_KEEPALIVE_INTERVAL
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT

    @classmethod
    def resolve(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        target: str | None = None,
        timeout: float | None = None,
        cache: bool | None = None,
        max_entries: int | None = None,
        stale_if_error: float | None = None,
        keepalive_interval: float | None = None,
        connect_timeout: float | None = None,
    ) -> Options:
        """Options given in code, else from EGRESS_CLIENT_* variables, else the
        defaults. OptionError names the option (given in code) or the variable,
        and the value, that cannot be used."""
        env = os.environ if environ is None else environ
        return cls(
            target=_pick(env, "target", target, parse_target, DEFAULT_TARGET),
            timeout=_pick(env, "timeout", timeout, parse_positive_seconds, DEFAULT_TIMEOUT),
            cache=_pick(env, "cache", cache, parse_bool, False),
            max_entries=_pick(env, "max_entries", max_entries, parse_count, DEFAULT_MAX_ENTRIES),
            stale_if_error=_pick(env, "stale_if_error", stale_if_error, parse_seconds, 0.0),
            keepalive_interval=_pick(
                env,
                "keepalive_interval",
                keepalive_interval,
                parse_positive_seconds,
                DEFAULT_KEEPALIVE_INTERVAL,
            ),
            connect_timeout=_pick(
                env,
                "connect_timeout",
                connect_timeout,
                parse_positive_seconds,
                DEFAULT_CONNECT_TIMEOUT,
            ),
        )

    def describe(self) -> dict[str, str | bool | int]:
        """The options by their schema names, durations formatted as in every
        language (`format_duration`): what the example's `options` command shows."""
        return {
            "target": self.target,
            "timeout": format_duration(self.timeout),
            "cache": self.cache,
            "max_entries": self.max_entries,
            "stale_if_error": format_duration(self.stale_if_error),
            "keepalive_interval": format_duration(self.keepalive_interval),
            "connect_timeout": format_duration(self.connect_timeout),
        }

    def channel_options(self) -> list[tuple[str, int]]:
        """gRPC channel arguments: keepalive pings on idle connections (so the
        WatchInvalidations stream stays open and a dead sidecar is noticed),
        and quick reconnects to a local sidecar that restarts."""
        interval_ms = max(1, round(self.keepalive_interval * 1000))
        return [
            ("grpc.keepalive_time_ms", interval_ms),
            ("grpc.keepalive_timeout_ms", max(1000, interval_ms)),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 500),
        ]


def _pick(
    env: Mapping[str, str],
    name: str,
    given: T | None,
    parse: Callable[[str, str], T],
    default: T,
) -> T:
    """The option given in code (checked by the variable's own rule), else its
    variable, else the default."""
    if given is not None:
        _check_given(name, given, default)
        parse(_as_text(given), name)  # the same bounds as the variable's
        return given
    key = ENV_PREFIX + name.upper()
    text = env.get(key, "")
    return parse(text, key) if text.strip() else default


def _check_given(name: str, given: object, default: object) -> None:
    """A code option of the option's type (an int is a number of seconds too)."""
    if isinstance(default, bool | str) or isinstance(given, bool):
        ok = type(given) is type(default)
    elif isinstance(default, int):
        ok = isinstance(given, int)
    else:
        ok = isinstance(given, int | float)
    if not ok:
        kind = _KINDS[type(default)]
        raise OptionError(f"{name}: {given!r} is not {kind}")


_KINDS = {bool: "a boolean", int: "an integer", float: "a number of seconds", str: "a string"}


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
