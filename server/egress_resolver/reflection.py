"""Server reflection that also answers for method names, as ghz asks.

grpcio-reflection looks every symbol up in protobuf's descriptor pool, whose
`FindFileContainingSymbol` knows messages, fields, enums and services but not
methods. grpcurl asks for a service (`pkg.Service`) and is served; ghz asks for
the method it will call (`pkg.Service.Method`) and would get NOT_FOUND
("Symbol not found"). The reflection protocol lets any fully-qualified symbol
be asked for, so a method name is answered with the file of its service.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_reflection.v1alpha import reflection


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


def add_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Serve `grpc.reflection.v1alpha.ServerReflection` for `service_names` and itself."""
    reflection.enable_server_reflection(
        (*service_names, reflection.SERVICE_NAME),
        server,
        pool=_MethodAwarePool(descriptor_pool.Default()),  # type: ignore[arg-type]  # duck-typed
    )
