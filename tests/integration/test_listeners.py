"""Safe by default: loopback only, unix socket modes, TLS and mutual TLS."""

import dataclasses
from pathlib import Path

import grpc
import pytest
import trustme

from egress_client import Resolver, ResolverError
from egress_resolver.ops.app import App
from egress_resolver.ops.listeners import is_loopback
from egress_resolver.ops.settings import Settings, SettingsError
from support import DEADLINE, InProcessServer, fixture, health_status

POLICY = fixture("seed_source_address.lua")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.9.9.9", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("[::]", False), ("10.0.0.1", False), ("example.com", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


async def test_non_loopback_needs_allow_remote() -> None:
    app = App(Settings(policy=POLICY, listen=["0.0.0.0:0"], watch_interval=0))
    with pytest.raises(SettingsError, match="not a loopback address; pass --allow-remote true"):
        await app.start()
    await app.stop(grace=0)


def test_allow_remote_listens_on_any_address() -> None:
    config = Settings(policy=POLICY, listen=["0.0.0.0:0"], allow_remote=True)
    with InProcessServer(config) as srv:
        port = srv.target.rpartition(":")[2]
        with Resolver(f"127.0.0.1:{port}") as resolver:
            assert resolver.get("ip-1").source_address == "10.0.0.1"


def test_unix_socket_mode_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    config = Settings(policy=POLICY, listen=[f"unix:{path}"], unix_socket_mode=0o660)
    with InProcessServer(config):
        assert path.stat().st_mode & 0o777 == 0o660


def test_tls_settings_must_come_together(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="--tls-cert and --tls-key must be given together"):
        Settings.from_sources({"tls_cert": str(tmp_path / "c.pem")}, {})
    with pytest.raises(SettingsError, match="--tls-client-ca needs --tls-cert"):
        Settings.from_sources({"tls_client_ca": str(tmp_path / "ca.pem")}, {})


@dataclasses.dataclass
class Pki:
    authority: trustme.CA
    ca: Path
    cert: Path
    key: Path


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    authority = trustme.CA()
    server = authority.issue_cert("localhost", "127.0.0.1")
    pki = Pki(authority, tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem")
    authority.cert_pem.write_to_path(str(pki.ca))
    server.private_key_pem.write_to_path(str(pki.key))
    for blob in server.cert_chain_pems:
        blob.write_to_path(str(pki.cert), append=True)
    return pki


def test_tls(pki: Pki) -> None:
    config = Settings(policy=POLICY, listen=["127.0.0.1:0"], tls_cert=pki.cert, tls_key=pki.key)
    with InProcessServer(config) as srv:
        tls = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())
        with Resolver(srv.target, credentials=tls) as resolver:
            assert resolver.get("ip-1").source_address == "10.0.0.1"
        with Resolver(srv.target, timeout=5) as plain, pytest.raises(ResolverError) as err:
            plain.get("ip-1")
        assert err.value.code is grpc.StatusCode.UNAVAILABLE


def test_mutual_tls(pki: Pki) -> None:
    config = Settings(
        policy=POLICY,
        listen=["127.0.0.1:0"],
        tls_cert=pki.cert,
        tls_key=pki.key,
        tls_client_ca=pki.ca,
    )
    client = pki.authority.issue_cert("mta.example")
    ca = pki.ca.read_bytes()
    with InProcessServer(config) as srv:
        with_cert = grpc.ssl_channel_credentials(
            root_certificates=ca,
            private_key=client.private_key_pem.bytes(),
            certificate_chain=b"".join(blob.bytes() for blob in client.cert_chain_pems),
        )
        with Resolver(srv.target, credentials=with_cert, timeout=DEADLINE) as resolver:
            assert resolver.get("ip-1").source_address == "10.0.0.1"
        without = grpc.ssl_channel_credentials(root_certificates=ca)
        with (
            Resolver(srv.target, credentials=without, timeout=5) as resolver,
            pytest.raises(ResolverError) as err,
        ):
            resolver.get("ip-1")
        assert err.value.code is grpc.StatusCode.UNAVAILABLE


def test_health_listener_serves_health_only() -> None:
    config = Settings(policy=POLICY, listen=["127.0.0.1:0"], health_listen="127.0.0.1:0")
    with InProcessServer(config) as srv:
        assert srv.app.health_address is not None
        assert health_status(srv.app.health_address) == 1  # SERVING
        with (
            Resolver(srv.app.health_address, timeout=5) as resolver,
            pytest.raises(ResolverError) as err,
        ):
            resolver.get("ip-1")
        assert err.value.code is grpc.StatusCode.UNIMPLEMENTED
