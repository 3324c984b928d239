"""What every kumo_api module is built from: the one registration shape and its context.

A Lua module is one file under kumo_api/ that defines `MODULE = LuaModule(mount, build)`;
`kumo_api/__init__.py` lists them. `build(ctx)` returns the module's Lua table, and
`mount` says where a policy finds it:

- `"kumo"`: the table's entries are added to the `kumo` table itself (`kumo.memoize`);
- `"kumo.NAME"`: `kumo.NAME`, and `require 'kumo.NAME'` (`kumo.string`, `kumo.http`);
- `"NAME"`: `require 'NAME'` only (`sqlite`, `redis`), as kumod registers them.

Most modules are a small Lua chunk (the shim: argument shapes, methods, `await` for
I/O) over Python functions; `ApiContext.shim` runs one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from egress_resolver.bridge.errors import detached_all
from egress_resolver.kumo_api.io import IoContext
from egress_resolver.kumo_api.memoize import MemoStore

LOAD = "load"
"""Phases of a policy's life: its top-level code, `pre_init` and `init`."""
VALIDATE = "validate_config"
HANDLER = "handler"
"""A `get_egress_source` / `get_egress_pool` handler answering a request."""
SCRIPT = "script"
"""`egress-resolver script`: the file's code and its `main`, as `kumod --script`."""


class PolicyLoadError(Exception):
    """The policy cannot be loaded; the message says why."""


@dataclasses.dataclass(frozen=True, slots=True)
class ApiOptions:
    """The sidecar's settings that the Lua API reads."""

    dns_servers: tuple[str, ...] = ()
    """`HOST:PORT` name servers of the default resolver; empty: the machine's."""
    data_source_limit: int = 16 * 1024 * 1024
    """Most bytes of one HTTP body, Redis reply or SQLite result (kumo_api/limits.py)."""


def _refuse_invoke(event: str, name: object) -> object:
    raise ValueError(f"kumo.invoke_{event} is not available here")


@dataclasses.dataclass(eq=False)
class PolicyState:
    """What the policy registered and did while it loaded, shared by the modules and the host."""

    options: ApiOptions = dataclasses.field(default_factory=ApiOptions)
    memo: MemoStore = dataclasses.field(default_factory=MemoStore)
    phase: str = LOAD
    handlers: dict[str, list[object]] = dataclasses.field(default_factory=dict)
    """Registered handlers, by event, in registration order."""
    registrars: dict[str, list[list[str]]] = dataclasses.field(default_factory=dict)
    """The call stack (`short_src:line` frames) of each registration, by event."""
    loaded_files: set[Path] = dataclasses.field(default_factory=set)
    """Files the policy read (modules, data files): changing one reloads the policy."""
    named_files: set[str] = dataclasses.field(default_factory=set)
    """The same files as the policy named them (kumo.eval_config_monitor_globs lists both)."""
    printed: list[str] | None = None
    """Lines `print` wrote while captured (validate_config, check); None: `print` logs."""
    validation_failed: bool = False
    """`kumo.validation_failed()` was called while validate_config ran."""
    monitor_globs: list[str] = dataclasses.field(default_factory=list)
    """`kumo.set_config_monitor_globs`: more files to watch."""
    ignored_calls: list[str] = dataclasses.field(default_factory=list)
    """MTA-configuration functions the policy called while loading, which do nothing here."""
    refusals: list[str] = dataclasses.field(default_factory=list)
    """The messages of MTA-only functions refused so far (see `refuse`)."""
    invoke: Callable[[str, object], object] = _refuse_invoke
    """`kumo.invoke_get_egress_*` where it cannot wait: resolve inside the running call."""
    resolve_cached: Callable[[str, str], Awaitable[object]] | None = None
    """`kumo.invoke_get_egress_*` from a handler, in a server: (event, name) -> the
    definition, through the sidecar's cache (and single-flight)."""
    bump_config_epoch: Callable[[], None] = lambda: None
    """`kumo.bump_config_epoch`: drop every cached definition (and announce it)."""

    def refuse(self, function: str, why: str) -> NoReturn:
        """Fail a call of a function only an MTA can act on, naming it and saying why.

        Every refusal is recorded: lifecycle.validate_config skips a check that
        reached one (a shaping or DKIM helper's check must not block an egress policy)."""
        message = (
            f"{function} is not available in egress-resolver: {why} "
            "(egress-resolver only computes egress sources and pools)"
        )
        self.refusals.append(message)
        raise ValueError(message)


@dataclasses.dataclass(frozen=True, slots=True)
class ApiContext:
    """What each kumo_api module gets to build its Lua table."""

    runtime: Any
    """The policy's lupa LuaRuntime."""
    kumo: Any
    """The `kumo` table being built (modules mounted at "kumo" add to it)."""
    await_io: Any
    """The Lua function that yields an IoRequest and returns its value (or raises)."""
    io: IoContext
    base_dir: Path
    """The policy's directory: relative data paths are resolved against it."""
    state: PolicyState

    def resolve_path(self, path: str) -> str:
        """`path` as given if absolute (or `:memory:`), else under the policy's directory."""
        if path == ":memory:" or path.startswith("/") or path.startswith("file:"):
            return path
        return str(self.base_dir / path)

    def track_file(self, path: str) -> Path:
        """Resolve a data file the policy reads and watch it for changes."""
        resolved = Path(self.resolve_path(path))
        self.state.loaded_files.add(resolved)
        self.state.named_files.add(path)
        return resolved

    def shim(self, code: str, functions: Mapping[str, object], *args: object) -> Any:
        """Run a module's Lua chunk with `...` = (its Python functions as a table, await, *args).

        The functions are `detached` (bridge/errors.py): an error they raise into Lua must
        not keep the Lua objects of a handler's coroutine alive."""
        functions = detached_all(functions)
        return self.runtime.execute(code, self.runtime.table_from(functions), self.await_io, *args)


@dataclasses.dataclass(frozen=True, slots=True)
class LuaModule:
    """One Lua module: where a policy finds it, and how its table is built."""

    mount: str
    build: Callable[[ApiContext], object]
