"""`kumo.fs` (crates/mod-filesystem): open, read_dir, glob, uncached_glob, metadata.

kumod's functions are async (tokio file I/O); here they do plain file I/O on
the Lua thread, which is fine for local files (docs/lua/kumo.fs.md says so).
Relative paths are resolved against the process's working directory, as
kumod resolves them, not against the policy's directory. `glob`, `read_dir`
and `uncached_glob` are also `kumo.glob`, `kumo.read_dir` and
`kumo.uncached_glob` (mod_glob.py), sharing one glob cache.
"""

from __future__ import annotations

import os

from egress_resolver.bridge.values import lua_type_name
from egress_resolver.kumo_api import fs_glob
from egress_resolver.kumo_api.context import ApiContext, LuaModule
from egress_resolver.kumo_api.fs_file import (
    AsyncFile,
    FsError,
    io_message,
    metadata,
    seek_params,
    time_fields,
)

_SHIM = """
local py, _, kumo = ...
local File = { __name = 'AsyncFile' }
File.__index = File

local function handle(self, method)
  local h = getmetatable(self) == File and rawget(self, 1)
  if not h then
    error('file:' .. method .. ': expected a file object, call it as file:' .. method .. '(...)', 3)
  end
  return h
end

-- A Lua string as Python can receive it: UTF-8 as it is, other bytes one
-- code point each (Python turns them back into bytes).
local function bytes(buf)
  if utf8.len(buf) then return buf, false end
  local parts = {}
  for i = 1, #buf, 4096 do
    parts[#parts + 1] = utf8.char(string.byte(buf, i, math.min(i + 4095, #buf)))
  end
  return table.concat(parts), true
end

function File:close() py.close(handle(self, 'close')) end
function File:flush() py.flush(handle(self, 'flush')) end
function File:read(size) return py.read(handle(self, 'read'), size) end
function File:seek(...) return py.seek(handle(self, 'seek'), ...) end
function File:write(buf)
  local h = handle(self, 'write')
  if type(buf) == 'number' then buf = tostring(buf) end
  if type(buf) ~= 'string' then
    error('file:write: expected a string, got ' .. type(buf), 2)
  end
  py.write(h, bytes(buf))
end

local function with_times(meta)
  for _, field in ipairs { 'atime', 'mtime', 'ctime' } do
    local nanos = meta[field]
    local time = rawget(kumo, 'time')
    if type(time) == 'table' and time.from_unix_timestamp then
      meta[field] = time.from_unix_timestamp(nanos / 1e9)
    else
      meta[field] = py.time(nanos)
    end
  end
  return meta
end

local fs = {
  read_dir = py.read_dir,
  glob = py.glob,
  uncached_glob = py.uncached_glob,
}
function fs.open(filename, mode)
  return setmetatable({ py.open(filename, mode) }, File)
end
function fs.metadata_for_path(path)
  return with_times(py.metadata(path, true))
end
function fs.symlink_metadata_for_path(path)
  return with_times(py.metadata(path, false))
end
return fs
"""


class FsFunctions:
    """The Python half of kumo.fs (and kumo.glob/read_dir/uncached_glob) for one runtime."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx

    def _list(self, items: list[str]) -> object:
        return self._ctx.runtime.table_from(items)

    def read_dir(self, path: object = None) -> object:
        """`read_dir(path)`: the entries' paths (`path` joined with each name), unsorted."""
        path = _string(path, "read_dir", "path")
        try:
            names = os.listdir(os.fsencode(path))
        except OSError as err:
            raise FsError(io_message(err)) from None
        entries = []
        for name in names:
            entry = os.path.join(os.fsencode(path), name)
            try:
                entries.append(entry.decode("utf-8"))
            except UnicodeDecodeError:
                shown = entry.decode("utf-8", "replace")
                raise FsError(f"path entry {shown} is not representable as utf8") from None
        return self._list(entries)

    def glob(
        self, pattern: object = None, relative_to: object = None, ttl: object = None
    ) -> object:
        """`glob(pattern, [relative_to], [ttl_seconds])`, cached (fs_glob.GLOB_CACHE)."""
        pattern = _string(pattern, "glob", "pattern")
        where = _optional_string(relative_to, "glob", "relative_to")
        if ttl is None:
            seconds = fs_glob.DEFAULT_CACHE_TTL
        elif isinstance(ttl, int | float) and not isinstance(ttl, bool) and ttl >= 0:
            seconds = float(ttl)
        else:
            raise FsError(f"glob: ttl_seconds must be a number of seconds >= 0, got {ttl!r}")
        return self._list(fs_glob.GLOB_CACHE.glob(pattern, where, seconds))

    def uncached_glob(self, pattern: object = None, relative_to: object = None) -> object:
        """`uncached_glob(pattern, [relative_to])`: walks every time."""
        pattern = _string(pattern, "uncached_glob", "pattern")
        where = _optional_string(relative_to, "uncached_glob", "relative_to")
        return self._list(fs_glob.glob(pattern, where))

    def open(self, filename: object = None, mode: object = None) -> AsyncFile:
        return AsyncFile.open(
            _string(filename, "kumo.fs.open", "filename"),
            _optional_string(mode, "kumo.fs.open", "mode"),
        )

    def metadata(self, path: object, follow_symlinks: bool) -> object:
        name = "metadata_for_path" if follow_symlinks else "symlink_metadata_for_path"
        name = "kumo.fs." + name
        fields = metadata(_string(path, name, "path"), follow_symlinks)
        return self._ctx.runtime.table_from(fields)

    def time(self, nanos: int) -> object:
        return self._ctx.runtime.table_from(time_fields(nanos))

    @staticmethod
    def close(file: AsyncFile) -> None:
        file.close()

    @staticmethod
    def flush(file: AsyncFile) -> None:
        file.flush()

    @staticmethod
    def read(file: AsyncFile, size: object = None) -> bytes:
        if isinstance(size, float) and size.is_integer():
            size = int(size)
        if size is not None and (type(size) is not int or size < 0):
            raise FsError(f"file:read: the size must be an integer >= 0, got {size!r}")
        return file.read(size)

    @staticmethod
    def write(file: AsyncFile, text: str, as_bytes: bool) -> None:
        file.write(text.encode("latin-1" if as_bytes else "utf-8"))

    @staticmethod
    def seek(file: AsyncFile, *params: object) -> int:
        return file.seek(*seek_params(params))

    def build(self) -> object:
        """The kumo.fs table."""
        names: tuple[str, ...] = ("read_dir", "glob", "uncached_glob", "open", "metadata", "time")
        names += ("close", "flush", "read", "write", "seek")  # the file object's methods
        return self._ctx.shim(_SHIM, {n: getattr(self, n) for n in names}, self._ctx.kumo)


def _string(value: object, function: str, what: str) -> str:
    if isinstance(value, str):
        return value
    raise FsError(f"{function}: expected a string {what}, got {lua_type_name(value)}")


def _optional_string(value: object, function: str, what: str) -> str | None:
    return None if value is None else _string(value, function, what)


MODULE = LuaModule("kumo.fs", lambda ctx: FsFunctions(ctx).build())
