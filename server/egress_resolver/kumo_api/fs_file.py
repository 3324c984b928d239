"""kumo.fs's file object and metadata, done with plain file I/O on the Lua thread.

kumod's `async-file` is a tokio `BufStream` over the file: reads go to the
file, writes are buffered (8 KiB) until `flush`, `seek`, `close`, or the
buffer fills. This one keeps the same write buffer and reads straight from
the file descriptor, so `read(n)` may return fewer bytes than asked, as
kumod's does. One difference: pending writes are flushed before a read on
the same handle (kumod reads from the file position before them).

Errors are worded as kumod's: Rust's `io::Error` text is
`<strerror> (os error <errno>)`.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import stat

WRITE_BUFFER_SIZE = 8 * 1024
_READ_CHUNK = 64 * 1024

_READ, _WRITE, _BOTH, _CREATE = os.O_RDONLY, os.O_WRONLY, os.O_RDWR, os.O_CREAT
OPEN_MODES = {
    "r": _READ,
    "rb": _READ,
    "w": _WRITE | _CREATE,  # kumod's "w" creates but does not truncate
    "wb": _WRITE | _CREATE,
    "a": _WRITE | os.O_APPEND | _CREATE,
    "ab": _WRITE | os.O_APPEND | _CREATE,
    "r+": _BOTH | _CREATE,
    "r+b": _BOTH | _CREATE,
    "w+": _BOTH | os.O_TRUNC | _CREATE,
    "w+b": _BOTH | os.O_TRUNC | _CREATE,
    "a+": _BOTH | os.O_APPEND | _CREATE,
    "a+b": _BOTH | os.O_APPEND | _CREATE,
}
_WHENCE = {"set": os.SEEK_SET, "cur": os.SEEK_CUR, "end": os.SEEK_END}


class FsError(ValueError):
    """A kumo.fs call that failed; the message is kumod's."""


def io_message(err: OSError) -> str:
    """`err` as Rust's io::Error displays it."""
    if err.errno is None:
        return str(err)
    return f"{os.strerror(err.errno)} (os error {err.errno})"


class AsyncFile:
    """An open file: `read`, `write`, `flush`, `seek`, `close` (kumo.fs.open's object)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd
        self._pending = bytearray()

    @classmethod
    def open(cls, filename: str, mode: str | None) -> AsyncFile:
        """Open `filename` with a kumod mode (default "r")."""
        mode = "r" if mode is None else mode
        if mode not in OPEN_MODES:
            raise FsError(f"unsupported file mode `{mode}`")
        try:
            fd = os.open(filename, OPEN_MODES[mode] | os.O_CLOEXEC, 0o666)
        except OSError as err:
            raise FsError(
                f"failed to open {filename} with mode {mode}: {io_message(err)}"
            ) from None
        return cls(fd)

    def _handle(self, what: str) -> int:
        if self._fd is None:
            raise FsError(f"attempt to {what} a closed file handle")
        return self._fd

    def _drain(self, fd: int) -> None:
        pending, self._pending = self._pending, bytearray()
        _write_all(fd, bytes(pending))

    def close(self) -> None:
        """Flush and close; closing a closed file does nothing."""
        fd = self._fd
        if fd is None:
            return
        self._fd = None
        try:
            self._drain(fd)
        finally:
            os.close(fd)

    def flush(self) -> None:
        """Write out what is buffered."""
        self._drain(self._handle("flush"))

    def read(self, size: int | None) -> bytes:
        """Up to `size` bytes (one read), or everything up to the end of the file."""
        fd = self._handle("flush")  # kumod's wording for read, write and flush alike
        self._drain(fd)
        try:
            if size is not None:
                return os.read(fd, size)
            chunks = []
            while chunk := os.read(fd, _READ_CHUNK):
                chunks.append(chunk)
            return b"".join(chunks)
        except OSError as err:
            raise FsError(io_message(err)) from None

    def write(self, data: bytes) -> None:
        """Buffer `data` (written out when the buffer fills)."""
        fd = self._handle("flush")
        if len(self._pending) + len(data) > WRITE_BUFFER_SIZE:
            self._drain(fd)
        if len(data) >= WRITE_BUFFER_SIZE:
            _write_all(fd, data)
        else:
            self._pending += data

    def seek(self, whence: str, offset: int) -> int:
        """Flush, move to `offset` from `whence` ("set", "cur", "end"); the new position."""
        fd = self._handle("seek")
        self._drain(fd)
        try:
            return os.lseek(fd, offset, _WHENCE[whence])
        except OSError as err:
            raise FsError(io_message(err)) from None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as err:
        raise FsError(io_message(err)) from None


def seek_params(params: tuple[object, ...]) -> tuple[str, int]:
    """`file:seek(...)`'s arguments, in either order: (whence, offset)."""
    whence: str | None = None
    offset: int | None = None
    for param in params:
        if isinstance(param, str):
            if whence is not None:
                raise FsError("whence already set")
            if param not in _WHENCE:
                raise FsError("invalid whence/offset parameters to seek")
            whence = param
        elif type(param) is int:
            if offset is not None:
                raise FsError("offset already set")
            offset = param
        else:
            raise FsError("invalid whence/offset parameters to seek")
    whence, offset = whence or "cur", offset or 0
    if whence == "set" and offset < 0:
        raise FsError(f"start-relative offset {offset} is out of range")
    return whence, offset


def metadata(path: str, follow_symlinks: bool) -> dict[str, object]:
    """kumod's metadata fields; the times in nanoseconds since the epoch."""
    try:
        info = os.stat(path) if follow_symlinks else os.lstat(path)
    except OSError as err:
        raise FsError(io_message(err)) from None
    return {
        "path": path,
        "is_file": stat.S_ISREG(info.st_mode),
        "is_dir": stat.S_ISDIR(info.st_mode),
        "is_symlink": stat.S_ISLNK(info.st_mode),
        "len": info.st_size,
        "readonly": info.st_mode & 0o222 == 0,
        "dev": info.st_dev,
        "ino": info.st_ino,
        "mode": info.st_mode,
        "nlink": info.st_nlink,
        "uid": info.st_uid,
        "gid": info.st_gid,
        "rdev": info.st_rdev,
        "size": info.st_size,
        "blksize": info.st_blksize,
        "blocks": info.st_blocks,
        "atime": info.st_atime_ns,
        "mtime": info.st_mtime_ns,
        "ctime": info.st_ctime_ns,
    }


def time_fields(nanos: int) -> dict[str, object]:
    """The fields of kumod's Time for `nanos` since the epoch (used until kumo.time exists)."""
    seconds, rest = divmod(nanos, 1_000_000_000)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    fraction = "" if rest == 0 else f".{rest:09d}"
    for digits in (3, 6):
        if rest and rest % 10 ** (9 - digits) == 0:
            fraction = f".{rest // 10 ** (9 - digits):0{digits}d}"
            break
    return {
        "year": moment.year,
        "month": moment.month,
        "day": moment.day,
        "hour": moment.hour,
        "minute": moment.minute,
        "second": moment.second,
        "unix_timestamp": seconds,
        "unix_timestamp_millis": nanos // 1_000_000,
        "rfc2822": f"{moment:%a}, {moment.day} {moment:%b %Y %H:%M:%S} +0000",
        "rfc3339": moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "+00:00",
    }
