"""The data source limit on a Redis reply, enforced by the parser while it reads.

redis-py's Python RESP parsers are subclassed and given to every connection as
its `parser_class`: each length prefix is checked before the bytes it
announces are read, so a 1 GiB value is refused after its first line, and the
connection, with the rest of the reply unread, is dropped (redis-py
disconnects on any error while reading). A reply counts its bytes plus 48 per
item, about what an item costs in Python, so a list of many small items is
bounded by what it holds in memory too. A length prefix is the only point
where redis-py can stop a read before it buffers what follows: a socket read
size or a wrapping reader would only see bytes already asked for.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from redis._parsers import _AsyncRESP2Parser, _AsyncRESP3Parser

from egress_resolver.kumo_api.limits import DataSourceLimitError

_ITEM_COST = 48
"""What one item of a reply costs beyond its bytes: a Python object and its list slot."""
_AGGREGATES = {b"*": 1, b"~": 1, b">": 1, b"%": 2}
"""RESP types whose length prefix counts items (a map's, pairs), by items per count."""


class _Budget:
    """What one reply has cost so far, against the limit."""

    __slots__ = ("limit", "spent")

    def __init__(self, limit: int) -> None:
        self.limit, self.spent = limit, 0

    def charge(self, size: int) -> None:
        self.spent += size
        if self.spent > self.limit:
            raise DataSourceLimitError("the reply", self.limit)

    def line(self, line: bytes) -> None:
        """A line just read: an item; an aggregate's count is checked before its
        items are read (each costs at least its item cost)."""
        self.charge(len(line) + 2 + _ITEM_COST)
        per_count = _AGGREGATES.get(line[:1])
        if per_count is not None:
            try:
                count = int(line[1:])
            except ValueError:
                return  # the parser says it is not Redis
            if self.spent + count * per_count * _ITEM_COST > self.limit:
                raise DataSourceLimitError("the reply", self.limit)


class _LimitedRESP2Parser(_AsyncRESP2Parser):
    limit: ClassVar[int] = 0
    _budget: _Budget  # a new one for each reply (read_response)

    async def read_response(self, disable_decoding: bool = False) -> Any:
        self._budget = _Budget(self.limit)
        return await super().read_response(disable_decoding)

    async def _readline(self) -> bytes:
        line = await super()._readline()
        self._budget.line(line)
        return line

    async def _read(self, length: int) -> bytes:
        self._budget.charge(length + 2)  # before the bytes are asked for
        return await super()._read(length)


class _LimitedRESP3Parser(_AsyncRESP3Parser):
    limit: ClassVar[int] = 0
    _budget: _Budget  # a new one for each reply (read_response)

    async def read_response(
        self, disable_decoding: bool = False, push_request: bool = False
    ) -> Any:
        self._budget = _Budget(self.limit)
        return await super().read_response(disable_decoding, push_request)

    async def _readline(self) -> bytes:
        line = await super()._readline()
        self._budget.line(line)
        return line

    async def _read(self, length: int) -> bytes:
        self._budget.charge(length + 2)
        return await super()._read(length)


@functools.cache
def limited_parser_class(protocol: int, limit: int) -> type[_AsyncRESP2Parser | _AsyncRESP3Parser]:
    """The parser every connection of a client gets (redis-py makes one per
    connection from the class, so the limit is a class attribute)."""
    base = _LimitedRESP3Parser if protocol == 3 else _LimitedRESP2Parser
    return type(base.__name__, (base,), {"limit": limit})
