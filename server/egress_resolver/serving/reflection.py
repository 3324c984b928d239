"""Server reflection on `grpc.reflection.v1` and `v1alpha`, answering for method names too.

Two gaps of grpcio-reflection (1.85) are filled here:

- It serves only `grpc.reflection.v1alpha.ServerReflection`. grpcurl, ghz,
  Postman and grpc-go's tools ask `grpc.reflection.v1.ServerReflection` first
  (newer ones only that). v1 is v1alpha with its package renamed: the same
  messages, field for field, so the wire bytes are identical. So the one
  servicer answers both services, and v1's file descriptor, which the package
  does not ship, is derived from v1alpha's by renaming the package (so that
  `grpcurl describe grpc.reflection.v1.ServerReflection` works too).
- It looks every symbol up in protobuf's descriptor pool, whose
  `FindFileContainingSymbol` knows messages, fields, enums and services but
  not methods. grpcurl asks for a service (`pkg.Service`) and is served; ghz
  asks for the method it will call (`pkg.Service.Method`) and would get
  NOT_FOUND ("Symbol not found"). The reflection protocol lets any
  fully-qualified symbol be asked for, so a method name is answered with the
  file of its service.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
V1ALPHA_SERVICE_NAME: str = reflection.SERVICE_NAME
V1_FILE = "grpc/reflection/v1/reflection.proto"
_V1ALPHA_PACKAGE = "grpc.reflection.v1alpha"
_V1_PACKAGE = "grpc.reflection.v1"


class _MethodAwarePool:
    """The default descriptor pool, seen through `FindFileContainingSymbol`
    with a fallback for `Service.Method`; every other lookup goes straight to it."""

    def __init__(self, pool: descriptor_pool.DescriptorPool) -> None:
        self._pool = pool

    def FindFileContainingSymbol(self, symbol: str) -> FileDescriptor:  # noqa: N802 (protobuf's name)
        try:
            return self._pool.FindFileContainingSymbol(symbol)
        except KeyError:
            service_name, _, method = symbol.rpartition(".")
            if service_name:
                try:
                    service = self._pool.FindServiceByName(service_name)
                except KeyError:
                    pass
                else:
                    if method in service.methods_by_name:
                        return service.file
            raise

    def __getattr__(self, name: str) -> object:
        return getattr(self._pool, name)


def v1_file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """`grpc/reflection/v1/reflection.proto`: v1alpha's file with the package renamed."""
    proto = descriptor_pb2.FileDescriptorProto.FromString(reflection_pb2.DESCRIPTOR.serialized_pb)
    proto.name = V1_FILE
    proto.package = _V1_PACKAGE
    proto.ClearField("options")  # v1alpha's java/go package names would be wrong here
    old, new = f".{_V1ALPHA_PACKAGE}.", f".{_V1_PACKAGE}."
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(old):
                field.type_name = new + field.type_name.removeprefix(old)
    for service in proto.service:
        for method in service.method:
            method.input_type = new + method.input_type.removeprefix(old)
            method.output_type = new + method.output_type.removeprefix(old)
    return proto


def _ensure_v1_file(pool: descriptor_pool.DescriptorPool) -> None:
    try:
        pool.FindFileByName(V1_FILE)
    except KeyError:
        pool.AddSerializedFile(v1_file_descriptor().SerializeToString())


def add_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Serve reflection (v1 and v1alpha) for `service_names` and for itself."""
    pool = descriptor_pool.Default()
    _ensure_v1_file(pool)
    names = (*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME)
    servicer = reflection.aio.ReflectionServicer(names, pool=_MethodAwarePool(pool))
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    for service in (V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME):
        handlers = {"ServerReflectionInfo": handler}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
        server.add_registered_method_handlers(service, handlers)
