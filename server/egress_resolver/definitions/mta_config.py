"""The fields of kumod's MTA configuration objects, as its Rust structs declare them.

`kumo.make_egress_path` and `kumo.make_listener_domain` build these (and
`kumo.make_queue_config` queue_config.py's, with the enums shared here); each list is
the struct's fields in declaration order (serde's order for "expected one of"), with
its type and the default kumod serializes when the key is absent. Sources (KumoMTA,
2026-08): `EgressPathConfig` in crates/kumo-api-types/src/egress_path.rs (with
`SmtpClientTimeouts` flattened in, crates/rfc5321/src/client_types.rs), `EsmtpDomain`
in crates/kumod/src/smtp_server.rs. Reading is serde_shapes.py's.
"""

from __future__ import annotations

from egress_resolver.definitions.kumo_values import CIDR_SET, DURATION, LIMIT, THROTTLE
from egress_resolver.definitions.serde_errors import SerdeError, invalid_type, invalid_value
from egress_resolver.definitions.serde_shapes import (
    BOOL,
    STRING,
    U16,
    USIZE,
    Custom,
    Enum,
    Field,
    Map,
    Opt,
    Seq,
    Struct,
    untagged,
)

MEMORY_REDUCTION = Enum("MemoryReductionPolicy", ("ShrinkDataAndMeta", "ShrinkData", "NoShrink"))
REFRESH_STRATEGY = Enum("ConfigRefreshStrategy", ("Ttl", "Epoch"))
WAKEUP_STRATEGY = Enum("WakeupStrategy", ("Aggressive", "Relaxed"))

_ANY = Custom(lambda value, content: value)
_KEY_SOURCE_TABLE = untagged(
    "KeySource",
    Struct("Data", (Field("key_data", STRING, required=True),), deny_unknown_fields=False),
    Struct(
        "Vault",
        (
            Field("vault_address", Opt(STRING)),
            Field("vault_token", Opt(STRING)),
            Field("vault_mount", STRING, required=True),
            Field("vault_path", STRING, required=True),
            Field("vault_key", STRING, default="key"),
        ),
        deny_unknown_fields=False,
    ),
    Struct(
        "Event",
        (Field("event_name", STRING, required=True), Field("event_args", Seq(_ANY), required=True)),
        deny_unknown_fields=False,
    ),
)


def _key_source(value: object, content: bool) -> object:
    """`KeySource` (crates/data-loader): a file name, or a table naming where the key is."""
    return value if isinstance(value, str) else _KEY_SOURCE_TABLE.read(value, content)


KEY_SOURCE = Custom(_key_source)

# --- EgressPathConfig --------------------------------------------------------------

SSL_OPTIONS = (
    "ALL", "ALLOW_UNSAFE_LEGACY_RENEGOTIATION", "CIPHER_SERVER_PREFERENCE", "COOKIE_EXCHANGE",
    "DONT_INSERT_EMPTY_FRAGMENTS", "ENABLE_MIDDLEBOX_COMPAT", "IGNORE_UNEXPECTED_EOF",
    "NO_COMPRESSION", "NO_DTLSV1", "NO_DTLSV1_2", "NO_QUERY_MTU", "NO_RENEGOTIATION",
    "NO_SESSION_RESUMPTION_ON_RENEGOTIATION", "NO_SSLV2", "NO_SSLV3", "NO_SSL_MASK", "NO_TICKET",
    "NO_TLSV1", "NO_TLSV1_1", "NO_TLSV1_2", "NO_TLSV1_3", "PRIORITIZE_CHACHA", "SINGLE_DH_USE",
    "SINGLE_ECDH_USE", "TLS_ROLLBACK_BUG",
)  # fmt: skip
"""The openssl crate's `SslOptions` flag names (sorted, as kumod lists them)."""

RUSTLS_CIPHER_SUITES = (
    "TLS13_AES_256_GCM_SHA384", "TLS13_AES_128_GCM_SHA256", "TLS13_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
)  # fmt: skip


def _ssl_options(value: object, content: bool) -> object:
    text = str(STRING.read(value, content))
    for option in text.split("|"):
        if option not in SSL_OPTIONS:
            allowed = ", ".join(f"`{name}`" for name in SSL_OPTIONS)
            raise SerdeError(
                f"`{option}` is not a valid SslOption name. Possible values are {allowed} "
                "joined together by the pipe `|` character."
            )
    return text


def _cipher_suites(value: object, content: bool) -> object:
    suites = Seq(STRING).read(value, content)
    for suite in suites:  # type: ignore[attr-defined]
        if suite.upper() not in RUSTLS_CIPHER_SUITES:
            raise SerdeError(f"`{suite}` is not a valid rustls cipher suite")
    return suites


_TIMEOUT_DEFAULTS = (
    ("connect", "1m"), ("banner", "1m"), ("ehlo", "5m"), ("mail_from", "5m"),
    ("rcpt_to", "5m"), ("data", "5m"), ("data_dot", "5m"), ("rset", "5s"),
    ("idle", "5s"), ("starttls", "5s"), ("auth", "1m"),
)  # fmt: skip
SMTP_CLIENT_TIMEOUTS = Struct(
    "SmtpClientTimeouts",
    tuple(Field(f"{name}_timeout", DURATION, default=value) for name, value in _TIMEOUT_DEFAULTS),
    deny_unknown_fields=False,
)
TLS = Enum(
    "Tls", ("Opportunistic", "OpportunisticInsecure", "Required", "RequiredInsecure", "Disabled")
)

_THROTTLES = Map(THROTTLE)
EGRESS_PATH_CONFIG = Struct(
    "EgressPathConfig",
    (
        Field("connection_limit", LIMIT, default={"limit": 32, "force_local": False}),
        Field("additional_connection_limits", Map(LIMIT), default={}),
        Field("enable_tls", TLS, default="Opportunistic"),
        Field("enable_mta_sts", BOOL, default=True),
        Field("enable_dane", BOOL, default=False),
        Field("enable_pipelining", BOOL, default=True),
        Field("enable_rset", BOOL, default=True),
        Field("tls_prefer_openssl", BOOL, default=False),
        Field("tls_certificate", Opt(KEY_SOURCE)),
        Field("tls_private_key", Opt(KEY_SOURCE)),
        Field("openssl_cipher_list", Opt(STRING)),
        Field("openssl_cipher_suites", Opt(STRING)),
        Field("openssl_options", Opt(Custom(_ssl_options)), serialized=False),
        Field("rustls_cipher_suites", Custom(_cipher_suites), default=[], serialized=False),
        Field("system_shutdown_timeout", Opt(DURATION)),
        Field("max_ready", USIZE, default=1024),
        Field("consecutive_connection_failures_before_delay", USIZE, default=100),
        Field("smtp_port", U16, default=25),
        Field("smtp_auth_plain_username", Opt(STRING)),
        Field("smtp_auth_plain_password", Opt(KEY_SOURCE)),
        Field("allow_smtp_auth_plain_without_tls", BOOL, default=False),
        Field("allow_smtp_auth_plain_without_valid_certificate", BOOL, default=False),
        Field("max_message_rate", Opt(THROTTLE)),
        Field("additional_message_rate_throttles", _THROTTLES, default={}),
        Field("source_selection_rate", Opt(THROTTLE)),
        Field("additional_source_selection_rates", _THROTTLES, default={}),
        Field("max_connection_rate", Opt(THROTTLE)),
        Field("max_deliveries_per_connection", USIZE, default=1024),
        Field("max_recipients_per_batch", USIZE, default=100),
        Field("prohibited_hosts", CIDR_SET, default=["0.0.0.0", "127.0.0.0/8", "::", "::1"]),
        Field("skip_hosts", CIDR_SET, default=[]),
        Field(
            "ip_lookup_strategy",
            Enum(
                "IpLookupStrategy",
                ("Ipv4Only", "Ipv6Only", "Ipv4AndIpv6", "Ipv6ThenIpv4", "Ipv4ThenIpv6"),
            ),
            default="Ipv4AndIpv6",
        ),
        Field("ehlo_domain", Opt(STRING)),
        Field("aggressive_connection_opening", BOOL, default=False),
        Field("refresh_interval", DURATION, default="1m"),
        Field("refresh_strategy", REFRESH_STRATEGY, default="Ttl"),
        Field("dispatcher_wakeup_strategy", WAKEUP_STRATEGY, default="Aggressive"),
        Field("maintainer_wakeup_strategy", WAKEUP_STRATEGY, default="Aggressive"),
        Field("provider_name", Opt(STRING)),
        Field("remember_broken_tls", Opt(DURATION)),
        Field("opportunistic_tls_reconnect_on_failed_handshake", BOOL, default=False),
        Field("use_lmtp", BOOL, default=False),
        Field(
            "reconnect_strategy",
            Enum("ReconnectStrategy", ("TerminateSession", "ReconnectSameHost", "ConnectNextHost")),
            default="ConnectNextHost",
        ),
        Field("readyq_pool_name", Opt(STRING)),
        Field("low_memory_reduction_policy", MEMORY_REDUCTION, default="ShrinkDataAndMeta"),
        Field("no_memory_reduction_policy", MEMORY_REDUCTION, default="ShrinkDataAndMeta"),
        Field("try_next_host_on_transport_error", BOOL, default=False),
        Field("ignore_8bit_checks", BOOL, default=False),
        Field("dispatcher_progress_watchdog_timeout", Opt(DURATION)),
    ),
    flatten=SMTP_CLIENT_TIMEOUTS,
)

# --- EsmtpDomain (kumo.make_listener_domain) ---------------------------------------


def _log_disposition(value: object, content: bool) -> object:
    """`LogReportDisposition`: a boolean (true: LogThenRelay) or one of its names."""
    expected = "a boolean value or one of 'Ignore', 'LogThenDrop' or 'LogThenRelay'"
    if isinstance(value, bool):
        return "LogThenRelay" if value else "Ignore"
    if isinstance(value, str):
        if value in ("Ignore", "LogThenDrop", "LogThenRelay"):
            return value
        raise invalid_value(value, expected)
    raise invalid_type(value, expected)


_LOG_DISPOSITION = Custom(_log_disposition)
ESMTP_DOMAIN = Struct(
    "EsmtpDomain",
    (
        Field("log_oob", _LOG_DISPOSITION, default="Ignore"),
        Field("log_arf", _LOG_DISPOSITION, default="Ignore"),
        Field("relay_to", BOOL, default=False),
        Field("relay_from", CIDR_SET, default=[]),
        Field("ttl", DURATION, default="1m"),
    ),
)
