"""Raising from Python into Lua without keeping Lua objects alive.

A Python function that Lua calls and that raises hands lupa an exception whose
traceback holds the function's frames, and so its arguments: Lua tables wrapped
as lupa objects. lupa remembers, in each such object, the Lua thread it was
created on; a handler runs in its own coroutine, and once that coroutine has
been collected, freeing the object later (when Lua collects the error value a
`pcall` caught, say) unrefs it through the dead thread and corrupts the heap.
A handler that `pcall`s a failing kumo function a few hundred times (as
KumoMTA's policy-extras do to probe kumod's option names) crashed the process.

`detached(fn)` is `fn` for Lua to call: its exception is raised again with no
traceback, cause or context, from a frame that no longer holds the arguments.
An exception that is not a ValueError (a bug rather than a refusal) keeps its
traceback as text, in a note.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable, Mapping
from typing import ParamSpec, TypeVar

import lupa.lua54 as lua

P = ParamSpec("P")
T = TypeVar("T")


def detached(fn: Callable[P, T]) -> Callable[P, T]:
    """`fn`, raising its exceptions without the frames (and Lua objects) behind them."""

    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # re-raised below, detached from its frames
            problem = err
            if not isinstance(err, ValueError):
                err.add_note("".join(traceback.format_exception(err)).rstrip())
        del args, kwargs
        problem.__traceback__ = None
        problem.__cause__ = None
        problem.__context__ = None
        raise problem

    return call


def detached_all(functions: Mapping[str, object]) -> dict[str, object]:
    """The Python functions of a shim table, each `detached`; other values (Lua tables,
    which are callable too) as they are."""
    return {
        name: detached(f) if callable(f) and lua.lua_type(f) is None else f
        for name, f in functions.items()
    }
