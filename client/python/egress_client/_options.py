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


def parse_bool(text: str, origin: str) -> bool:
    """1/0, true/false, yes/no, on/off."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise OptionError(f"{origin}: {text!r} is not a boolean (true or false)")


def parse_count(text: str, origin: str) -> int:
    """A positive integer."""
    try:
        value = int(text.strip())
    except ValueError:
        raise OptionError(f"{origin}: {text!r} is not an integer") from None
    if value < 1:
        raise OptionError(f"{origin}: {text!r} must be at least 1")
    return value


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
        """Options given in code, else from EGRESS_CLIENT_* variables, else the defaults."""
        env = os.environ if environ is None else environ
        options = cls(
            target=_pick(env, "target", target, lambda text, _origin: text.strip(), DEFAULT_TARGET),
            timeout=_pick(env, "timeout", timeout, parse_seconds, DEFAULT_TIMEOUT),
            cache=_pick(env, "cache", cache, parse_bool, False),
            max_entries=_pick(env, "max_entries", max_entries, parse_count, DEFAULT_MAX_ENTRIES),
            stale_if_error=_pick(env, "stale_if_error", stale_if_error, parse_seconds, 0.0),
            keepalive_interval=_pick(
                env,
                "keepalive_interval",
                keepalive_interval,
                parse_seconds,
                DEFAULT_KEEPALIVE_INTERVAL,
            ),
            connect_timeout=_pick(
                env, "connect_timeout", connect_timeout, parse_seconds, DEFAULT_CONNECT_TIMEOUT
            ),
        )
        if min(options.timeout, options.keepalive_interval, options.connect_timeout) <= 0:
            raise OptionError("timeout, keepalive_interval and connect_timeout must be more than 0")
        if options.max_entries < 1:
            raise OptionError("max_entries must be at least 1")
        return options

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
    if given is not None:
        return given
    key = ENV_PREFIX + name.upper()
    text = env.get(key, "")
    return parse(text, key) if text.strip() else default
