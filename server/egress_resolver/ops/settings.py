"""Settings: every knob of the server, its flag, its variable and its default.

This module is the configuration reference: each field of `Settings` names
its command-line flag, its `EGRESS_RESOLVER_*` variable and its default, and
the settings table of docs/operating.md is checked against it by a test.
Precedence: flag, then variable, then default. Durations use the policy's syntax ("2s",
"5 mins"); list-valued variables are comma-separated.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from egress_resolver.definitions.durations import DurationError
from egress_resolver.ops.setting_values import (
    boolean,
    channel,
    file_mode,
    log_format,
    log_level,
    non_negative_int,
    positive_int,
    redis_url,
    seconds,
)

ENV_PREFIX = "EGRESS_RESOLVER_"


class SettingsError(ValueError):
    """A setting with a value that cannot be used; the message names the setting."""


def _setting(
    default: Any,
    parse: Callable[[str], Any],
    help: str,
    *,
    metavar: str = "VALUE",
    repeated: bool = False,
) -> Any:
    return dataclasses.field(
        default_factory=lambda: list(default) if repeated else default,
        metadata={"parse": parse, "help": help, "metavar": metavar, "repeated": repeated},
    )


@dataclasses.dataclass
class Settings:
    """The server's configuration; field metadata drives the CLI and the env."""

    config: Path | None = _setting(
        None, Path, "TOML file with any of these settings (by field name)", metavar="FILE"
    )
    policy: Path | None = _setting(None, Path, "the Lua policy file to serve", metavar="FILE")
    listen: list[str] = _setting(
        ["127.0.0.1:50051"],
        str,
        "address to listen on: HOST:PORT, [::1]:PORT or unix:PATH (repeatable)",
        metavar="ADDR",
        repeated=True,
    )
    health_listen: str | None = _setting(
        None,
        str,
        "extra HOST:PORT serving only grpc.health.v1 (for Kubernetes gRPC probes)",
        metavar="ADDR",
    )
    cache_size: int = _setting(
        10_000, positive_int, "most definitions kept in the cache (LRU beyond)", metavar="N"
    )
    negative_ttl: float = _setting(
        60.0, seconds, "how long errors and NOT_FOUND are cached; 0 disables", metavar="DURATION"
    )
    transient_error_ttl: float = _setting(
        1.0,
        seconds,
        "how long data-source failures (DATA_SOURCE_*) are cached; at most --negative-ttl",
        metavar="DURATION",
    )
    handler_timeout: float = _setting(
        1.0, seconds, "time budget of one policy handler call", metavar="DURATION"
    )
    lua_memory_mib: int = _setting(
        512, positive_int, "memory cap of the policy's Lua state, in MiB", metavar="MIB"
    )
    max_pending_misses: int = _setting(
        1024, positive_int, "most names resolved at once before RESOURCE_EXHAUSTED", metavar="N"
    )
    workers: int = _setting(
        1, positive_int, "server processes sharing the TCP port (SO_REUSEPORT)", metavar="N"
    )
    metrics: str | None = _setting(
        None, str, "serve Prometheus metrics on HOST:PORT", metavar="ADDR"
    )
    lua_path: list[Path] = _setting(
        [], Path, "extra directory searched by require (repeatable)", metavar="DIR", repeated=True
    )
    dns_servers: list[str] = _setting(
        [],
        str,
        "HOST:PORT name server of the policy's default DNS resolver (repeatable; "
        "default: the machine's, from /etc/resolv.conf)",
        metavar="ADDR",
        repeated=True,
    )
    data_source_limit_mib: int = _setting(
        16,
        positive_int,
        "most MiB of one HTTP body, Redis reply or SQLite result a policy's call may read; "
        "a larger one fails the call with DATA_SOURCE_ERROR",
        metavar="MIB",
    )
    reflection: bool = _setting(True, boolean, "serve gRPC server reflection", metavar="BOOL")
    allow_invalidate: bool = _setting(
        True,
        boolean,
        "serve the Invalidate RPC (anyone who can reach the sidecar may drop cached names)",
        metavar="BOOL",
    )
    reload_warm_names: int = _setting(
        10_000,
        non_negative_int,
        "most recently used cached names re-resolved by a reload before it swaps "
        "(the others are announced stale)",
        metavar="N",
    )
    invalidation_log_size: int = _setting(
        1024,
        positive_int,
        "invalidation events kept for clients that reconnect (older: they drop all)",
        metavar="N",
    )
    invalidation_redis: str | None = _setting(
        None,
        redis_url,
        "Redis to follow for fleet invalidation: its channel's messages drop names here",
        metavar="URL",
    )
    invalidation_channel: str = _setting(
        "egress-resolver:invalidate",
        channel,
        "the pub/sub channel of --invalidation-redis",
        metavar="NAME",
    )
    keepalive_interval: float = _setting(
        30.0,
        seconds,
        "how often idle connections are pinged (keeps WatchInvalidations streams alive)",
        metavar="DURATION",
    )
    shutdown_grace: float = _setting(
        10.0, seconds, "how long SIGTERM waits for in-flight calls", metavar="DURATION"
    )
    watch_interval: float = _setting(
        1.0,
        seconds,
        "how often the policy and its data files are checked for changes; 0 disables",
        metavar="DURATION",
    )
    allow_remote: bool = _setting(
        False, boolean, "allow listening on addresses other than loopback", metavar="BOOL"
    )
    unix_socket_mode: int = _setting(
        0o600, file_mode, "file mode of unix sockets, in octal", metavar="MODE"
    )
    tls_cert: Path | None = _setting(None, Path, "TLS certificate chain (PEM)", metavar="FILE")
    tls_key: Path | None = _setting(None, Path, "TLS private key (PEM)", metavar="FILE")
    tls_client_ca: Path | None = _setting(
        None, Path, "CA (PEM) that client certificates must chain to: mutual TLS", metavar="FILE"
    )
    log_format: str = _setting("json", log_format, "log format: json or console", metavar="FMT")
    log_level: str = _setting("info", log_level, "log level: debug, info, warning, error")

    @staticmethod
    def env_name(field: str) -> str:
        """The environment variable that sets `field`."""
        return ENV_PREFIX + field.upper()

    @staticmethod
    def flag_name(field: str) -> str:
        """The command-line flag that sets `field`."""
        return "--" + field.replace("_", "-")

    @classmethod
    def from_sources(
        cls, flags: Mapping[str, object], environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Build settings from flags (raw strings), over the environment, over the file
        named by --config / EGRESS_RESOLVER_CONFIG, over the defaults."""
        environ = os.environ if environ is None else environ
        config = flags.get("config") or environ.get(cls.env_name("config"))
        from_file = _read_config(Path(str(config))) if config else {}
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = flags.get(field.name)
            origin = cls.flag_name(field.name)
            if raw is None or raw == []:
                raw = environ.get(cls.env_name(field.name))
                origin = cls.env_name(field.name)
                if raw is not None and field.metadata["repeated"]:
                    raw = [part.strip() for part in raw.split(",") if part.strip()]
            if raw is None and field.name in from_file:
                raw, origin = from_file[field.name], f"{config}: {field.name}"
            if raw is None:
                continue
            values[field.name] = _parse_value(field, raw, origin)
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse combinations that cannot work, naming the settings involved."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise SettingsError("--tls-cert and --tls-key must be given together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise SettingsError("--tls-client-ca needs --tls-cert and --tls-key")
        if self.keepalive_interval <= 0:
            raise SettingsError("--keepalive-interval must be more than 0")


def reference_table() -> str:
    """The settings table of docs/operating.md, rendered from the fields (a test keeps
    them equal)."""
    rows = ["| flag | variable | default | meaning |", "|---|---|---|---|"]
    for field in dataclasses.fields(Settings):
        factory = field.default_factory
        default = factory() if callable(factory) else None
        shown = ", ".join(map(str, default)) if isinstance(default, list) else default
        if field.metadata["parse"] is seconds:
            shown = f"{default:g}s"
        elif field.metadata["parse"] is file_mode:
            shown = f"{default:o}"
        rows.append(
            f"| `{Settings.flag_name(field.name)} {field.metadata['metavar']}` "
            f"| `{Settings.env_name(field.name)}` | {'—' if shown in (None, '') else f'`{shown}`'} "
            f"| {field.metadata['help']} |"
        )
    return "\n".join(rows) + "\n"


def _read_config(path: Path) -> dict[str, object]:
    """The settings in a TOML file, as the strings (or lists of strings) flags give."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise SettingsError(f"--config {path}: cannot read: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise SettingsError(f"--config {path}: not valid TOML: {err}") from None
    known = {f.name: f for f in dataclasses.fields(Settings) if f.name != "config"}
    values: dict[str, object] = {}
    for key, value in document.items():
        field = known.get(key)
        if field is None:
            raise SettingsError(
                f"{path}: unknown setting {key!r}; expected one of {', '.join(known)}"
            )
        if field.metadata["repeated"]:
            if not isinstance(value, list):
                raise SettingsError(f"{path}: {key}: expected a list, got {value!r}")
            values[key] = [_toml_text(item) for item in value]
        else:
            values[key] = _toml_text(value)
    return values


def _toml_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value
    raise SettingsError(f"unsupported value {value!r}: use a string, an integer or a boolean")


def _parse_value(field: dataclasses.Field[Any], raw: object, origin: str) -> object:
    parse: Callable[[str], Any] = field.metadata["parse"]
    try:
        if field.metadata["repeated"]:
            assert isinstance(raw, list)
            return [parse(str(item)) for item in raw]
        return parse(str(raw))
    except (ValueError, DurationError) as err:
        raise SettingsError(f"{origin}: invalid value {raw!r}: {err}") from None
