"""`require 'sqlite'`: kumod's sqlite module (crates/mod-sqlite).

`sqlite.open(path, busy_timeout_ms)` opens the file (default busy timeout
500 ms) in autocommit mode, as the `sqlite` crate does; `db:execute(sql, ...)`
binds positional parameters, or named ones (`:name`) from one table, and
returns kumod's shapes: the number of rows changed when the statement has no
result columns, a flat list when it has one column, a list of row tables
otherwise. `db:close()` closes it.

Queries run in the default thread pool (as kumod runs them with
spawn_blocking), one at a time per connection, while the handler waits; a
handler whose time runs out interrupts its query. A locked or unreadable
database is a data-source failure (DATA_SOURCE_ERROR); SQL errors are
ordinary errors.

A result over the data source limit (`--data-source-limit-mib`,
kumo_api/limits.py) is DATA_SOURCE_ERROR too: rows are fetched `_BATCH` at a
time and counted as they come (their values' size in Python, so many small
values count what they cost), and the query stops, its statement reset,
once the count passes the limit (the refused rows' memory is given back to
the system at once, see `_give_back`). One value larger than the limit is never
read at all: the connection's SQLITE_LIMIT_LENGTH is the limit, so SQLite
refuses it (`SQLITE_TOOBIG`) before Python holds it; the same limit refuses
to write a string, a blob or a row longer than that.

Differences from kumod: a query with result columns but no rows returns an
empty table (kumod's code reads one row of NULLs there), and a relative path
is resolved against the policy's directory.
"""

from __future__ import annotations

import asyncio
import ctypes
import sqlite3
import sys
import threading
from typing import Any

from egress_resolver.bridge.values import is_lua_table, to_python
from egress_resolver.definitions.errors import Reason
from egress_resolver.kumo_api.context import ApiContext, LuaModule
from egress_resolver.kumo_api.io import IoRequest
from egress_resolver.kumo_api.limits import DataSourceLimitError

NAME = "sqlite"
_BATCH = 256
"""Rows fetched at a time while a result is counted against the limit."""
DEFAULT_BUSY_TIMEOUT_MS = 500

_SHIM = """
local py, await = ...
local Connection = { __name = 'sqlite.Connection' }
Connection.__index = Connection
function Connection:execute(sql, ...) return await(py.execute(self[1], sql, ...)) end
function Connection:close() py.close(self[1]) end
local sqlite = {}
function sqlite.open(path, busy_timeout)
  return setmetatable({ py.open(path, busy_timeout) }, Connection)
end
return sqlite
"""


def _libc_malloc_trim() -> Any:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # not glibc (musl has none): nothing to do
        return None


_MALLOC_TRIM = _libc_malloc_trim()


def _give_back() -> None:
    """Return the memory of refused rows to the system now.

    Queries run in the default thread pool, and glibc keeps what a thread freed
    in that thread's own arena: without this, each pool thread that ever held
    a result up to the limit would keep about that much, and a sidecar's memory
    would climb by up to the limit per thread (with a 4 MiB limit, 32 refusals
    4 at a time left RSS +10 MiB without this, +4 MiB with it; SQLite's page
    cache is most of the rest). Only refusals pay for it.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class _Database:
    """One connection; queries on it run one at a time."""

    def __init__(self, path: str, busy_timeout_ms: int, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.conn: sqlite3.Connection | None = sqlite3.connect(
            path,
            timeout=busy_timeout_ms / 1000,
            isolation_level=None,  # autocommit, as the sqlite crate
            check_same_thread=False,
            uri=path.startswith("file:"),
        )
        longest = self.conn.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, min(longest, limit))
        self.lock = threading.Lock()

    def query(self, sql: str, params: list[Any] | dict[str, Any]) -> Any:
        with self.lock:
            conn = self.conn
            if conn is None:
                raise sqlite3.ProgrammingError("connection was closed")
            try:
                cursor = conn.execute(sql, params)
                try:
                    if cursor.description is None:
                        return max(cursor.rowcount, 0)
                    names = [column[0] for column in cursor.description]
                    rows = self._fetch(cursor)
                finally:
                    cursor.close()  # resets the statement: a query stopped here ends
            except sqlite3.DataError as err:
                if getattr(err, "sqlite_errorname", None) == "SQLITE_TOOBIG":
                    raise DataSourceLimitError("a value", self.limit) from None
                raise
        if len(names) == 1:
            return [row[0] for row in rows]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def _fetch(self, cursor: sqlite3.Cursor) -> list[tuple[Any, ...]]:
        """Every row, counted as it is fetched: stops at the limit."""
        rows: list[tuple[Any, ...]] = []
        size = 0
        while batch := cursor.fetchmany(_BATCH):
            for row in batch:
                size += sys.getsizeof(row) + sum(map(sys.getsizeof, row))
            if size > self.limit:
                rows.clear()
                batch.clear()
                _give_back()
                raise DataSourceLimitError("the result", self.limit)
            rows.extend(batch)
        return rows

    def interrupt(self) -> None:
        if self.conn is not None:
            self.conn.interrupt()

    def close(self) -> None:
        with self.lock:
            if self.conn is not None:
                self.conn.close()
                self.conn = None


def _classify(err: BaseException) -> Reason | None:
    if isinstance(err, DataSourceLimitError):
        return Reason.DATA_SOURCE_ERROR
    if isinstance(err, sqlite3.OperationalError):
        text = str(err)
        if "locked" in text or "busy" in text or "unable to open" in text or "disk I/O" in text:
            return Reason.DATA_SOURCE_ERROR
    return None


def _param(value: object, where: str) -> object:
    if value is None or isinstance(value, str | bytes | float) or type(value) is int:
        return value
    raise ValueError(
        f"sqlite: only numbers, strings and nil can be passed as parameter values ({where})"
    )


def _params(args: tuple[object, ...]) -> list[Any] | dict[str, Any]:
    if len(args) == 1 and is_lua_table(args[0]):
        value = to_python(args[0])
        if isinstance(value, dict):
            return {str(k): _param(v, f":{k}") for k, v in value.items()}
        assert isinstance(value, list)
        return [_param(v, f"parameter {i}") for i, v in enumerate(value, 1)]
    return [_param(v, f"parameter {i}") for i, v in enumerate(args, 1)]


class SqliteModule:
    """The Python half of `require 'sqlite'` for one Lua runtime."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx

    def build(self) -> object:
        """The module's Lua table."""
        functions = {"open": self.open, "execute": self.execute, "close": self.close}
        return self._ctx.shim(_SHIM, functions)

    def open(self, path: object, busy_timeout: object = None) -> _Database:
        """`sqlite.open(path, [busy_timeout_ms])`."""
        if not isinstance(path, str):
            raise ValueError(f"sqlite.open: expected a path string, got {path!r}")
        timeout = DEFAULT_BUSY_TIMEOUT_MS if busy_timeout is None else busy_timeout
        if type(timeout) is not int or timeout < 0:
            raise ValueError(f"sqlite.open: busy_timeout must be milliseconds, got {timeout!r}")
        try:
            limit = self._ctx.state.options.data_source_limit
            return _Database(self._ctx.resolve_path(path), timeout, limit)
        except sqlite3.Error as err:
            raise ValueError(f"sqlite.open {path}: {err}") from None

    def execute(self, db: object, sql: object, *args: object) -> IoRequest:
        """`db:execute(sql, ...)`: the query, to be awaited."""
        if not isinstance(db, _Database):
            raise ValueError("sqlite: execute must be called as db:execute(sql, ...)")
        if not isinstance(sql, str):
            raise ValueError(f"sqlite: expected an SQL string, got {sql!r}")
        params = _params(args)
        runtime = self._ctx.runtime

        async def run() -> Any:
            return await asyncio.get_running_loop().run_in_executor(None, db.query, sql, params)

        def to_lua(result: Any) -> object:
            if isinstance(result, int):
                return result
            return runtime.table_from(
                [runtime.table_from(row) if isinstance(row, dict) else row for row in result]
            )

        return IoRequest(
            NAME, run, None, to_lua=to_lua, classify=_classify, on_timeout=db.interrupt
        )

    def close(self, db: object) -> None:
        """`db:close()`."""
        if isinstance(db, _Database):
            db.close()


MODULE = LuaModule("sqlite", lambda ctx: SqliteModule(ctx).build())
