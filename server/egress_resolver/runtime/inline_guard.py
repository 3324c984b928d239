"""Which kumo functions may run inside a handler running inline on the event loop.

A handler runs inline (runtime/dispatch.py) under a slice that the budget's
count hook enforces, but no hook can interrupt a call that blocks the thread:
a file read on a FIFO or a network mount, a glob over a slow directory. So
every function of the `kumo` table is guarded (the prelude's `guarded`: inline,
the handler first waits for MOVE, a request that does nothing, so that the
host resumes it on the Lua thread, where the call is made), except those
listed here: they only compute, or (sleep) wait by
yielding the handler (kumo_api/io.py), which ends the inline part by itself.
Data sources (http, dns, redis, sqlite) also yield to wait, but may read
files as they start (certificates, resolv.conf): they are guarded.
Lua's own io, os and code loading are guarded in the prelude.

A function missing from this list costs speed, not safety: a policy whose
handler calls it runs its handlers on the Lua thread.
"""

from __future__ import annotations

from collections.abc import Callable

import lupa.lua54 as lua

from egress_resolver.kumo_api.io import IoRequest


async def _nothing() -> None:
    return None


MOVE = IoRequest(what="inline", run=_nothing, timeout=None)
"""What a guarded call waits for inline: nothing, but the handler goes on on the Lua thread."""

INLINE_SAFE = frozenset(
    {
        "make_egress_source",
        "make_egress_pool",
        "string",
        "digest",
        "encode",
        "uuid",
        "regex",
        "time",
        "json_encode",
        "json_encode_pretty",
        "json_parse",
        "toml_encode",
        "toml_encode_pretty",
        "toml_parse",
        "serde.json_encode",
        "serde.json_encode_pretty",
        "serde.json_parse",
        "serde.toml_encode",
        "serde.toml_encode_pretty",
        "serde.toml_parse",
        "serde.yaml_encode",
        "serde.yaml_parse",
        "sleep",
        "on",
    }
)
"""Paths in the `kumo` table (a sub-table's name covers all of it)."""


def guard_blocking(kumo: object, guarded: Callable[[object], object]) -> None:
    """Replace every function of the `kumo` table (recursively) that is not
    INLINE_SAFE with `guarded(function)`."""
    seen: set[int] = set()

    def walk(table: object, prefix: str) -> None:
        if id(table) in seen:
            return
        seen.add(id(table))
        for key, value in list(table.items()):  # type: ignore[attr-defined]
            if not isinstance(key, str) or f"{prefix}{key}" in INLINE_SAFE:
                continue
            kind = lua.lua_type(value)
            if kind == "table":
                walk(value, f"{prefix}{key}.")
            elif kind == "function" or (kind is None and callable(value)):
                table[key] = guarded(value)  # type: ignore[index]

    walk(kumo, "")
