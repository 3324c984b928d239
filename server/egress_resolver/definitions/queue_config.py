"""The fields of kumod's `QueueConfig`, which `kumo.make_queue_config` builds.

The struct's fields in declaration order (serde's order for "expected one of"), with
their types and the default kumod serializes when a key is absent. Source (KumoMTA,
2026-08): `QueueConfig` in crates/kumod/src/queue/config.rs (and `DeliveryProto`,
delivery_proto.rs). The other configuration objects are mta_config.py's; reading is
serde_shapes.py's.
"""

from __future__ import annotations

from egress_resolver.definitions.kumo_values import DURATION, THROTTLE
from egress_resolver.definitions.mta_config import MEMORY_REDUCTION, REFRESH_STRATEGY
from egress_resolver.definitions.serde_shapes import (
    BOOL,
    STRING,
    U32,
    USIZE,
    Custom,
    Enum,
    Field,
    Opt,
    Seq,
    Struct,
    untagged,
)

_RESOLVED_ADDRESS = untagged(
    "MxListEntry",
    Struct(
        "ResolvedAddress",
        (
            Field("name", STRING, required=True),
            Field("addr", STRING, required=True),
            Field("is_secure", BOOL, default=False),
        ),
        deny_unknown_fields=False,
    ),
)


def _mx_entry(value: object, content: bool) -> object:
    """`MxListEntry`: a host name (or `[address]`), or a resolved `{ name, addr }`."""
    return value if isinstance(value, str) else _RESOLVED_ADDRESS.read(value, content)


_SMTP_PROTOCOL = Struct(
    "SmtpProtocol",
    (
        Field("mx_list", Seq(Custom(_mx_entry)), default=[]),
        Field("treat_mx_list_as_secure", BOOL, default=False),
    ),
    deny_unknown_fields=False,
)
_LUA_PROTOCOL = Struct(
    "LuaDeliveryProtocol",
    (
        Field("constructor", STRING, required=True),
        Field("batch_size", USIZE, default=1),
        Field("min_batch_size", USIZE, default=1),
        Field("max_batch_latency", DURATION, default="0s"),
    ),
)
DELIVERY_PROTO = untagged(
    "DeliveryProto",
    Struct("Smtp", (Field("smtp", _SMTP_PROTOCOL, required=True),), deny_unknown_fields=False),
    Struct(
        "Maildir",
        (
            Field("maildir_path", STRING, required=True),
            Field("dir_mode", Opt(U32)),
            Field("file_mode", Opt(U32)),
        ),
        deny_unknown_fields=False,
    ),
    Struct("Lua", (Field("custom_lua", _LUA_PROTOCOL, required=True),), deny_unknown_fields=False),
    Struct(
        "Xfer",
        (
            Field(
                "xfer",
                Struct(
                    "XferProtocol",
                    (Field("target", STRING, required=True),),
                    deny_unknown_fields=False,
                ),
                required=True,
            ),
        ),
        deny_unknown_fields=False,
    ),
)
_DEFAULT_PROTOCOL = {"smtp": {"mx_list": [], "treat_mx_list_as_secure": False}}

QUEUE_SHRINK_POLICY = Struct(
    "QueueShrinkPolicy",
    (Field("interval", DURATION, required=True), Field("policy", MEMORY_REDUCTION, required=True)),
)

QUEUE_CONFIG = Struct(
    "QueueConfig",
    (
        Field("retry_interval", DURATION, default="20m"),
        Field("max_retry_interval", Opt(DURATION)),
        Field("max_age", DURATION, default="7days"),
        Field("egress_pool", Opt(STRING)),
        Field("max_message_rate", Opt(THROTTLE)),
        Field("protocol", DELIVERY_PROTO, default=_DEFAULT_PROTOCOL),
        Field("reap_interval", DURATION, default="10m"),
        Field("refresh_interval", DURATION, default="1m"),
        Field("timerwheel_tick_interval", Opt(DURATION)),
        Field(
            "strategy",
            Enum(
                "QueueStrategy",
                ("TimerWheel", "SkipList", "SingletonTimerWheel", "SingletonTimerWheelV2"),
            ),
            default="SingletonTimerWheel",
        ),
        Field("refresh_strategy", REFRESH_STRATEGY, default="Ttl"),
        Field("provider_name", Opt(STRING)),
        Field("shrink_policy", Seq(QUEUE_SHRINK_POLICY), default=[]),
    ),
)
