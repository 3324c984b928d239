"""Binding the listeners: loopback or unix sockets unless told otherwise, TLS opt-in,
keepalive that never cuts an idle stream."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import grpc

from egress_resolver.ops.settings import Settings, SettingsError

_LOOPBACK_NAMES = frozenset({"localhost"})


def credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS server credentials (mutual when --tls-client-ca is set), or None."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    client_ca = settings.tls_client_ca.read_bytes() if settings.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    host = host.strip("[]")
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(server: grpc.aio.Server, address: str, settings: Settings) -> str:
    """Add one listener; returns the bound address (with the real port)."""
    creds = credentials(settings)
    if address.startswith("unix:"):
        path = Path(address.removeprefix("unix:"))
        target = f"unix:{path}"
        _ = server.add_secure_port(target, creds) if creds else server.add_insecure_port(target)
        return target
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise SettingsError(f"--listen {address!r}: expected HOST:PORT, [::1]:PORT or unix:PATH")
    if not is_loopback(host) and not settings.allow_remote:
        raise SettingsError(
            f"--listen {address!r}: not a loopback address; "
            "pass --allow-remote true to listen there (and consider --tls-cert/--tls-key)"
        )
    bound = server.add_secure_port(address, creds) if creds else server.add_insecure_port(address)
    if bound == 0:
        raise OSError(f"--listen {address!r}: cannot bind")
    return f"{host}:{bound}"


def secure_unix_sockets(addresses: list[str], mode: int) -> None:
    """Set the configured mode on the unix sockets just created."""
    for address in addresses:
        if address.startswith("unix:"):
            os.chmod(address.removeprefix("unix:"), mode)


def keepalive_options(interval: float) -> list[tuple[str, int]]:
    """Server keepalive: ping idle connections every `interval` (so a dead
    client's WatchInvalidations stream is noticed), and accept client pings
    at any rate, so an idle stream is never cut with GOAWAY too_many_pings."""
    return [
        ("grpc.keepalive_time_ms", max(1, round(interval * 1000))),
        ("grpc.keepalive_timeout_ms", max(1000, round(interval * 1000))),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 0),
        ("grpc.http2.min_ping_interval_without_data_ms", max(1, round(interval * 1000))),
        ("grpc.http2.max_ping_strikes", 0),
    ]
