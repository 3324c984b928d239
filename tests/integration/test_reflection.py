"""Server reflection as grpcurl and ghz use it: no .proto files on the caller's side."""

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from egress_resolver.settings import Settings
from support import DEADLINE, InProcessServer, fixture

SERVICE = "kumo.egress.v1.EgressResolverService"


def settings(policy: str) -> Settings:
    return Settings(policy=fixture(policy), listen=["127.0.0.1:0"])


def ask(channel: grpc.Channel, **request: Any) -> reflection_pb2.ServerReflectionResponse:
    call = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
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


@pytest.mark.parametrize(
    ("symbol", "file"),
    [
        (f"{SERVICE}.GetEgressSource", "kumo/egress/v1/resolver_service.proto"),  # what ghz asks
        (SERVICE, "kumo/egress/v1/resolver_service.proto"),  # what grpcurl asks
        ("kumo.egress.v1.EgressSource", "kumo/egress/v1/egress_source.proto"),
    ],
)
def test_file_containing_symbol(symbol: str, file: str) -> None:
    with InProcessServer(settings("seed_source_address.lua")) as srv:
        channel = grpc.insecure_channel(srv.target)
        response = ask(channel, file_containing_symbol=symbol)
        channel.close()
    assert response.WhichOneof("message_response") == "file_descriptor_response"
    names = [
        descriptor_pb2.FileDescriptorProto.FromString(raw).name
        for raw in response.file_descriptor_response.file_descriptor_proto
    ]
    assert names[0] == file
    assert "google/protobuf/duration.proto" in names


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
    """The README's ghz command, with no .proto files: every call gets the expected status."""
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
