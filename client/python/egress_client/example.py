"""The scriptable example: `python -m egress_client.example [--target ADDR] [--cache] [NAME]`.

With NAME it resolves that name once and prints the source as one JSON line
(or the error on stderr, exit 1). Without NAME it reads JSON commands on
stdin, one per line, and writes one JSON line per command, flushed, in order
(the same protocol in every language's example; tests/conformance drives it):

    {"get": NAME}              -> {"source": {...}} | {"error": {...}}
    {"pool": NAME}             -> {"pool": {"name", "entries": [{"name", "weight"}], "ttl"}}
    {"select": POOL, "n": N}   -> {"sources": [N names in selection order]}
    {"bench": NAME, "n": N}    -> {"ns_per_call": X}   (N gets, timed in process)
    {"bench_select": POOL, "n": N} -> {"ns_per_call": X}   (N selects, timed in process)
    {"stats": {}}              -> {"rpcs": R, "entries": E, "watching": B}
    {"connect": SOURCE, "to": "HOST:PORT"} -> {"connected": {"source": NAME, "ehlo": SENT}}
        (connects, reads the banner, says EHLO and QUIT; optional "timeout": S)
    {"connect_pool": POOL, "to": "HOST:PORT"} -> select, then as connect
    {"suspended": {}}          -> {"names": [suspended source names, sorted]}
    {"bench_connect": SOURCE, "to": "HOST:PORT", "n": N}
                               -> {"ns_per_call": X, "plain_ns_per_call": Y} (medians)
    {"wait_suspended": NAME, "timeout": S} -> {"at_ns": T}   (when the client knew)
    {"get_many": [NAMES]}      -> {"results": [{"source": {...}} | {"error": {...}}, ...]}
                                  (one BatchGetEgressSources call, in request order)
    {"concurrent_get": NAME, "n": K} -> {"sources": K} | the first error
                                  (K gets of NAME started at once, one thread each)
    {"cached": {}}             -> {"names": [cached source names, least to most recently used]}
    {"options": {}}            -> {"options": {"target": ..., "timeout": "2s", "cache": B,
                                  "max_entries": N, "stale_if_error": "0s",
                                  "keepalive_interval": "30s", "connect_timeout": "60s"}}

Errors are {"error": {"code": "NOT_FOUND", "reason": "SOURCE_NOT_FOUND", "message": "..."}}.
Options: EXAMPLE_OPTIONS, a JSON object of option name -> value (durations
as "500ms" or seconds, numbers, booleans), and `--target` and `--cache` when
given (they win over the same key), are given to the Resolver in code; the
others come from the EGRESS_CLIENT_* variables, else the defaults
(docs/clients/spec.md). An option or variable that cannot be used is
reported on stderr (exit 2).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from egress_client._blocking import Resolver
from egress_client._connect import prepare
from egress_client._core import BatchResult
from egress_client._errors import ResolverError
from egress_client._json_view import message_json
from egress_client._options import OptionError, parse_seconds
from kumo.egress.v1.egress_pool_pb2 import EgressPool

OPTIONS_VARIABLE = "EXAMPLE_OPTIONS"
DURATION_OPTIONS = frozenset({"timeout", "stale_if_error", "keepalive_interval", "connect_timeout"})
CODE_OPTIONS = frozenset({"target", "cache", "max_entries"}) | DURATION_OPTIONS
MAX_CONCURRENT = 1024
"""The most gets `concurrent_get` starts at once (a thread each)."""


def pool_json(pool: EgressPool) -> dict[str, Any]:
    """A pool as protobuf JSON with every entry's weight, even 0."""
    return message_json(pool, every_field=True)


def error_json(error: ResolverError) -> dict[str, Any]:
    """The error object of the protocol."""
    return {
        "error": {"code": error.code.name, "reason": error.reason or "", "message": error.message}
    }


def _bad(message: str) -> dict[str, Any]:
    return {"error": {"code": "INVALID_ARGUMENT", "reason": "BAD_COMMAND", "message": message}}


def answer(resolver: Resolver, line: str) -> dict[str, Any]:
    """The reply to one command line."""
    try:
        command = json.loads(line)
    except json.JSONDecodeError as err:
        return _bad(f"not JSON: {err}")
    if not isinstance(command, dict):
        return _bad("a command is a JSON object")
    handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "get": lambda c: {"source": message_json(resolver.get(_text(c, "get")))},
        "pool": lambda c: {"pool": pool_json(resolver.get_pool(_text(c, "pool")))},
        "select": lambda c: {
            "sources": [resolver.select(_text(c, "select")) for _ in range(_count(c))]
        },
        "bench_select": lambda c: {
            "ns_per_call": _timed(resolver.select, _text(c, "bench_select"), _count(c))
        },
        "bench": lambda c: {"ns_per_call": _timed(resolver.get, _text(c, "bench"), _count(c))},
        "stats": lambda _c: resolver.stats(),
        "connect": lambda c: _connect(resolver, _text(c, "connect"), c),
        "connect_pool": lambda c: _connect(resolver, resolver.select(_text(c, "connect_pool")), c),
        "suspended": lambda _c: {"names": sorted(s.name for s in resolver.suspended())},
        "bench_connect": lambda c: _bench_connect(resolver, _text(c, "bench_connect"), c),
        "wait_suspended": lambda c: _wait_suspended(resolver, _text(c, "wait_suspended"), c),
        "get_many": lambda c: {
            "results": [_result_json(r) for r in resolver.get_many(_names(c, "get_many"))]
        },
        "concurrent_get": lambda c: _concurrent_get(resolver, _text(c, "concurrent_get"), c),
        "cached": lambda _c: {"names": resolver.cached_names()},
        "options": lambda _c: {"options": resolver.options.describe()},
    }
    for key, handler in handlers.items():
        if key in command:
            try:
                return handler(command)
            except ResolverError as err:
                return error_json(err)
            except ValueError as err:
                return _bad(str(err))
            except OSError as err:  # the SMTP exchange or a plain connect of bench_connect
                return {"error": {"code": "UNKNOWN", "reason": "", "message": str(err)}}
    return _bad(f"unknown command {line.strip()!r}; expected one of {', '.join(handlers)}")


def _text(command: dict[str, Any], key: str) -> str:
    value = command[key]
    if not isinstance(value, str):
        raise ValueError(f"{key!r} takes a string")
    return value


def _names(command: dict[str, Any], key: str) -> list[str]:
    value = command[key]
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ValueError(f"{key!r} takes a list of strings")
    return value


def _result_json(result: BatchResult) -> dict[str, Any]:
    """One get_many result: the source, or the error."""
    if isinstance(result, ResolverError):
        return error_json(result)
    return {"source": message_json(result)}


def _concurrent_get(resolver: Resolver, name: str, command: dict[str, Any]) -> dict[str, Any]:
    """K gets of `name` on K threads, released together by a barrier: with
    the cache on, the misses share one call (single-flight)."""
    n = _count(command)
    if n > MAX_CONCURRENT:
        raise ValueError(f"'n' takes at most {MAX_CONCURRENT} for concurrent_get")
    if n == 0:
        return {"sources": 0}
    start = threading.Barrier(n)

    def one() -> object:
        start.wait()
        return resolver.get(name)

    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as threads:
        calls = [threads.submit(one) for _ in range(n)]
    for call in calls:  # the first error in start order, if any
        error = call.exception()
        if error is not None:
            raise error
    return {"sources": n}


def code_options(text: str) -> dict[str, Any]:
    """EXAMPLE_OPTIONS (a JSON object of option name -> value) as Resolver
    arguments; durations may be strings ("500ms", "2s", "2") or seconds."""
    if not text.strip():
        return {}
    try:
        given = json.loads(text)
    except json.JSONDecodeError as err:
        raise OptionError(f"{OPTIONS_VARIABLE}: {text!r} is not JSON ({err})") from None
    if not isinstance(given, dict):
        raise OptionError(f"{OPTIONS_VARIABLE}: {text!r} is not a JSON object")
    options: dict[str, Any] = {}
    for key, value in given.items():
        if key not in CODE_OPTIONS:
            known = ", ".join(sorted(CODE_OPTIONS))
            raise OptionError(f"{OPTIONS_VARIABLE}: unknown option {key!r} (one of {known})")
        if key in DURATION_OPTIONS and isinstance(value, str):
            value = parse_seconds(value, f"{OPTIONS_VARIABLE} {key}")
        options[key] = value
    return options


def _count(command: dict[str, Any]) -> int:
    value = command.get("n", 1)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("'n' takes an integer of 0 or more")
    return value


def _timed(call: Callable[[str], object], name: str, n: int) -> float:
    call(name)  # a first call may be a miss; the figure is for what follows
    start = time.perf_counter_ns()
    for _ in range(n):
        call(name)
    return (time.perf_counter_ns() - start) / max(n, 1)


def _seconds(command: dict[str, Any], key: str) -> float | None:
    value = command.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{key!r} takes a number of seconds above 0")
    return float(value)


def _connect(resolver: Resolver, name: str, command: dict[str, Any]) -> dict[str, Any]:
    """Connect through `name`, then the SMTP greeting: banner, EHLO, QUIT."""
    timeout = _seconds(command, "timeout")
    sock, ehlo = resolver.connect(name, _text(command, "to"), timeout=timeout)
    _greet(sock, ehlo, timeout or resolver.options.connect_timeout)
    return {"connected": {"source": name, "ehlo": ehlo}}


def _greet(sock: socket.socket, ehlo: str, timeout: float) -> None:
    """Read the banner, say EHLO and QUIT (each reply read), close."""
    with sock:
        sock.settimeout(timeout)
        with sock.makefile("rwb") as stream:
            _reply(stream, "banner")
            stream.write(f"EHLO {ehlo}\r\n".encode())
            stream.flush()
            _reply(stream, "EHLO")
            stream.write(b"QUIT\r\n")
            stream.flush()
            _reply(stream, "QUIT")


def _reply(stream: Any, after: str) -> str:
    """One SMTP reply (its lines until `NNN `); OSError when there is none."""
    lines = []
    while True:
        line = stream.readline().decode(errors="replace")
        if not line:
            raise ConnectionError(f"the server closed the connection before the {after} reply")
        lines.append(line.rstrip("\r\n"))
        if len(line) < 4 or line[3] != "-":
            return "\n".join(lines)


def _bench_connect(resolver: Resolver, name: str, command: dict[str, Any]) -> dict[str, Any]:
    """Medians of N connect + close, and of N plain connects + close to the same address."""
    to, n = _text(command, "to"), max(_count(command), 1)
    source = resolver.get(name)
    destination = prepare(source, to).destination
    timeout = resolver.options.connect_timeout
    resolver.connect(source, to).sock.close()  # the first may warm caches
    through, plain = [], []
    for _ in range(n):
        start = time.perf_counter_ns()
        resolver.connect(source, to).sock.close()
        through.append(time.perf_counter_ns() - start)
        start = time.perf_counter_ns()
        socket.create_connection((destination.host, destination.port), timeout).close()
        plain.append(time.perf_counter_ns() - start)
    return {
        "ns_per_call": statistics.median(through),
        "plain_ns_per_call": statistics.median(plain),
    }


def _wait_suspended(resolver: Resolver, name: str, command: dict[str, Any]) -> dict[str, Any]:
    timeout = _seconds(command, "timeout") or 0.0
    at_ns = resolver.wait_suspended(name, timeout)
    if at_ns is None:
        message = f"{name} was not known suspended within {timeout:g}s"
        return {"error": {"code": "DEADLINE_EXCEEDED", "reason": "", "message": message}}
    return {"at_ns": at_ns}


def serve_lines(resolver: Resolver, lines: TextIO, out: TextIO) -> None:
    """Answer every command line until end of input."""
    for line in lines:
        if line.strip():
            out.write(json.dumps(answer(resolver, line)) + "\n")
            out.flush()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="egress-example", description=__doc__.split("\n")[0])
    parser.add_argument("--target", help="sidecar address (default: EGRESS_CLIENT_TARGET)")
    parser.add_argument("--cache", action="store_true", help="turn the client cache on")
    parser.add_argument("name", nargs="?", help="resolve this name once and exit")
    args = parser.parse_args(argv)
    flags = {"target": args.target, "cache": True if args.cache else None}
    try:
        options = code_options(os.environ.get(OPTIONS_VARIABLE, ""))
        options |= {key: value for key, value in flags.items() if value is not None}
        resolver = Resolver(**options)
    except OptionError as err:
        print(f"egress-example: {err}", file=sys.stderr)
        return 2
    with resolver:
        if args.name is None:
            serve_lines(resolver, sys.stdin, sys.stdout)
            return 0
        try:
            print(json.dumps(message_json(resolver.get(args.name))))
        except ResolverError as err:
            reason = f" [{err.reason}]" if err.reason else ""
            print(f"{err.code.name}: {err.message}{reason}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
