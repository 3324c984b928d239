"""Server reflection as grpcurl and ghz use it: no .proto files on the caller's side."""

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from egress_resolver.ops.settings import Settings
from egress_resolver.serving.reflection import v1_file_descriptor
from support import DEADLINE, InProcessServer, fixture

SERVICE = "kumo.egress.v1.EgressResolverService"


def settings(policy: str) -> Settings:
    return Settings(policy=fixture(policy), listen=["127.0.0.1:0"])


def ask(
    channel: grpc.Channel, version: str = "v1alpha", **request: Any
) -> reflection_pb2.ServerReflectionResponse:
    """One reflection request on `grpc.reflection.<version>`; v1's messages are v1alpha's."""
    call = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    responses = call(iter([reflection_pb2.ServerReflectionRequest(**request)]), timeout=DEADLINE)
    return next(iter(responses))


def test_reflection_call_like_grpcurl() -> None:
    """Discover the service by reflection and call it with dynamic messages."""
    with InProcessServer(settings("seed_source_address.lua")) as srv:
        channel = grpc.insecure_channel(srv.target)
        database = ProtoReflectionDescriptorDatabase(channel)
        assert SERVICE in database.get_services()
        pool = descriptor_pool.DescriptorPool(database)
        service = pool.FindServiceByName(SERVICE)
        method = service.methods_by_name["GetEgressSource"]
        request_cls = message_factory.GetMessageClass(method.input_type)
        response_cls = message_factory.GetMessageClass(method.output_type)
        call: grpc.UnaryUnaryMultiCallable[Any, Any] = channel.unary_unary(
            f"/{service.full_name}/{method.name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_cls.FromString,
        )
        response = call(request_cls(name="ip-1"), timeout=DEADLINE)
        assert response.source.source_address == "10.0.0.1"
        assert response.source.ttl.seconds == 60
        channel.close()


SERVICES = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    SERVICE,
]


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_both_reflection_versions_list_the_services(version: str) -> None:
    with InProcessServer(settings("seed_source_address.lua")) as srv:
        channel = grpc.insecure_channel(srv.target)
        response = ask(channel, version, list_services="")
        channel.close()
    assert sorted(s.name for s in response.list_services_response.service) == SERVICES


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection_off_serves_neither_version(version: str) -> None:
    config = Settings(
        policy=fixture("seed_source_address.lua"), listen=["127.0.0.1:0"], reflection=False
    )
    with (
        InProcessServer(config) as srv,
        grpc.insecure_channel(srv.target) as channel,
        pytest.raises(grpc.RpcError) as err,
    ):
        ask(channel, version, list_services="")
    assert err.value.code() is grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
@pytest.mark.parametrize(
    ("symbol", "file"),
    [
        (f"{SERVICE}.GetEgressSource", "kumo/egress/v1/resolver_service.proto"),  # what ghz asks
        (SERVICE, "kumo/egress/v1/resolver_service.proto"),  # what grpcurl asks
        ("kumo.egress.v1.EgressSource", "kumo/egress/v1/egress_source.proto"),
        ("grpc.reflection.v1.ServerReflection", "grpc/reflection/v1/reflection.proto"),
    ],
)
def test_file_containing_symbol(version: str, symbol: str, file: str) -> None:
    with InProcessServer(settings("seed_source_address.lua")) as srv:
        channel = grpc.insecure_channel(srv.target)
        response = ask(channel, version, file_containing_symbol=symbol)
        channel.close()
    assert response.WhichOneof("message_response") == "file_descriptor_response"
    names = [
        descriptor_pb2.FileDescriptorProto.FromString(raw).name
        for raw in response.file_descriptor_response.file_descriptor_proto
    ]
    assert names[0] == file
    if file.startswith("kumo/"):
        assert "google/protobuf/duration.proto" in names


def test_v1_file_is_v1alpha_renamed() -> None:
    v1 = v1_file_descriptor()
    alpha = descriptor_pb2.FileDescriptorProto.FromString(reflection_pb2.DESCRIPTOR.serialized_pb)
    assert (v1.name, v1.package) == ("grpc/reflection/v1/reflection.proto", "grpc.reflection.v1")
    assert [m.name for m in v1.message_type] == [m.name for m in alpha.message_type]
    for ours, theirs in zip(v1.message_type, alpha.message_type, strict=True):
        assert [(f.name, f.number, f.type) for f in ours.field] == [
            (f.name, f.number, f.type) for f in theirs.field
        ]
    assert "v1alpha" not in v1.SerializeToString().decode("utf-8", "replace")


@pytest.mark.parametrize(
    "symbol", [f"{SERVICE}.NoSuchMethod", "kumo.egress.v1.NoSuchService.GetEgressSource", "x"]
)
def test_unknown_symbols_are_not_found(symbol: str) -> None:
    with InProcessServer(settings("seed_source_address.lua")) as srv:
        channel = grpc.insecure_channel(srv.target)
        response = ask(channel, file_containing_symbol=symbol)
        channel.close()
    assert response.WhichOneof("message_response") == "error_response"
    assert response.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


def ghz_binary() -> Path:
    """The ghz `make test` installs (GHZ=bin/ghz); the test is skipped only without it."""
    path = os.environ.get("GHZ")
    if not path:
        pytest.skip("GHZ is not set: `make test` installs ghz and sets it")
    assert Path(path).is_file(), f"GHZ={path} does not exist"
    return Path(path)


@pytest.mark.parametrize(
    ("name", "status"), [("ip-1", "OK"), ("nope", "FailedPrecondition"), ("", "InvalidArgument")]
)
def test_ghz_by_reflection(name: str, status: str) -> None:
    """docs/index.md's ghz command, with no .proto files: every call gets the expected status."""
    ghz = ghz_binary()
    with InProcessServer(settings("seed_source_address.lua")) as srv:
        completed = subprocess.run(
            [
                str(ghz),
                "--insecure",
                f"--call={SERVICE}.GetEgressSource",
                f"--data={json.dumps({'name': name})}",
                "--total=200",
                "--concurrency=4",
                "--timeout=30s",
                "--format=json",
                srv.target,
            ],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
    assert completed.returncode == 0, completed.stderr + completed.stdout
    report = json.loads(completed.stdout)
    assert report["count"] == 200
    assert report["statusCodeDistribution"] == {status: 200}


def grpcurl_binary() -> Path:
    """The grpcurl `make test` installs (GRPCURL=bin/grpcurl); skipped only without it."""
    path = os.environ.get("GRPCURL")
    if not path:
        pytest.skip("GRPCURL is not set: `make test` installs grpcurl and sets it")
    assert Path(path).is_file(), f"GRPCURL={path} does not exist"
    return Path(path)


def grpcurl(target: str, *args: str, flags: tuple[str, ...] = ()) -> str:
    """`grpcurl -plaintext [flags] target args...`; its output, which must be a success."""
    completed = subprocess.run(
        [str(grpcurl_binary()), "-plaintext", "-max-time", "30", *flags, target, *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr + completed.stdout
    return completed.stdout


@pytest.fixture(scope="module")
def live_target() -> Iterator[str]:
    with InProcessServer(settings("suspend_and_proxy_hosts.lua")) as srv:
        yield srv.target


def test_grpcurl_list(live_target: str) -> None:
    assert grpcurl(live_target, "list").split() == SERVICES
    methods = grpcurl(live_target, "list", SERVICE).split()
    assert f"{SERVICE}.GetEgressSource" in methods
    assert f"{SERVICE}.WatchInvalidations" in methods


def test_grpcurl_describe_egress_source(live_target: str) -> None:
    described = grpcurl(live_target, "describe", "kumo.egress.v1.EgressSource")
    assert described.startswith("kumo.egress.v1.EgressSource is a message:\n")
    assert "optional string ha_proxy_server = 5;" in described
    assert ".kumo.egress.v1.SuspendOnFailure suspend_when_unplumbed = 12;" in described
    assert ".kumo.egress.v1.SuspendOnFailure suspend_when_proxy_unhealthy = 13;" in described
    rule = grpcurl(live_target, "describe", "kumo.egress.v1.SuspendOnFailure")
    assert "oneof trigger {" in rule
    assert ".google.protobuf.Empty immediate = 1;" in rule
    assert "string threshold = 2;" in rule
    assert ".google.protobuf.Duration duration = 3;" in rule


def test_grpcurl_describe_reflection_v1(live_target: str) -> None:
    described = grpcurl(live_target, "describe", "grpc.reflection.v1.ServerReflection")
    assert (
        "rpc ServerReflectionInfo ( stream .grpc.reflection.v1.ServerReflectionRequest ) "
        "returns ( stream .grpc.reflection.v1.ServerReflectionResponse );"
    ) in described


def test_grpcurl_calls_by_reflection(live_target: str) -> None:
    """The grpcurl command of docs/index.md: no .proto files, JSON in and out."""
    out = grpcurl(live_target, f"{SERVICE}/GetEgressSource", flags=("-d", '{"name": "both"}'))
    source = json.loads(out)["source"]
    assert source["ha_proxy_server"] == "proxy.example.com:1080"
    assert source["suspend_when_unplumbed"] == {"immediate": {}, "duration": "90s"}
    assert source["suspend_when_proxy_unhealthy"] == {
        "threshold": "local:1000/h,max_burst=5",
        "duration": "3600s",
    }
