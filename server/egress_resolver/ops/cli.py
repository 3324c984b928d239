"""The `egress-resolver` command: serve, check, script, resolve and invalidate."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from egress_resolver.definitions.json_view import message_json
from egress_resolver.ops import logs
from egress_resolver.ops.app import api_options, serve
from egress_resolver.ops.settings import Settings, SettingsError
from egress_resolver.ops.workers import run_workers
from egress_resolver.runtime.policy_check import check_policy
from egress_resolver.runtime.script import run_script

DEFAULT_TARGET = "127.0.0.1:50051"


def _add_settings(parser: argparse.ArgumentParser) -> None:
    for field in dataclasses.fields(Settings):
        meta = field.metadata
        default = (
            field.default_factory() if field.default_factory is not dataclasses.MISSING else None
        )
        parser.add_argument(
            Settings.flag_name(field.name),
            dest=field.name,
            action="append" if meta["repeated"] else "store",
            metavar=meta["metavar"],
            help=f"{meta['help']} [env {Settings.env_name(field.name)}; default {default}]",
        )


def build_parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per verb (each has its page, docs/cli/<verb>.md)."""
    parser = argparse.ArgumentParser(
        prog="egress-resolver",
        description="gRPC sidecar serving KumoMTA egress sources from a Lua policy",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="serve the policy over gRPC")
    _add_settings(serve_cmd)
    check_cmd = commands.add_parser(
        "check", help="load and validate a policy, optionally resolve names offline (JSON out)"
    )
    _add_settings(check_cmd)
    check_cmd.add_argument("names", nargs="*", metavar="NAME")
    check_cmd.add_argument(
        "--pool",
        action="append",
        default=[],
        dest="pools",
        metavar="NAME",
        help="also resolve this egress pool and its sources (repeatable)",
    )
    script_cmd = commands.add_parser(
        "script", help="run a Lua file and then its `main` handlers, as `kumod --script` does"
    )
    script_cmd.add_argument("--lua-path", action="append", dest="lua_path", metavar="DIR")
    script_cmd.add_argument("--dns-servers", action="append", dest="dns_servers", metavar="ADDR")
    script_cmd.add_argument("file", metavar="FILE")
    script_cmd.add_argument("args", nargs=argparse.REMAINDER, metavar="ARG")
    resolve_cmd = commands.add_parser("resolve", help="ask a running sidecar (JSON lines out)")
    resolve_cmd.add_argument("--target", default=DEFAULT_TARGET, help="HOST:PORT or unix:PATH")
    resolve_cmd.add_argument("--timeout", type=float, default=5.0, help="seconds per call")
    resolve_cmd.add_argument(
        "--explain",
        action="store_true",
        help="also say where each answer came from: cache hit, age, ttl left, policy generation",
    )
    resolve_cmd.add_argument("names", nargs="+", metavar="NAME")
    invalidate_cmd = commands.add_parser(
        "invalidate",
        help="make a running sidecar drop cached names (or all) and announce them to clients",
    )
    invalidate_cmd.add_argument("--target", default=DEFAULT_TARGET, help="HOST:PORT or unix:PATH")
    invalidate_cmd.add_argument("--timeout", type=float, default=5.0, help="seconds per call")
    invalidate_cmd.add_argument(
        "--pool", action="store_true", help="the names are egress pool names"
    )
    invalidate_cmd.add_argument("--all", action="store_true", help="drop every cached name")
    invalidate_cmd.add_argument("names", nargs="*", metavar="NAME")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "invalidate":
        if bool(args.names) == args.all:
            parser.error("invalidate: give NAMEs or --all (not both)")
        return _invalidate(args)
    if args.command == "script":
        return _script(args)
    if args.command == "resolve":
        if args.explain:
            return _explain(args.target, args.names, args.timeout)
        return _resolve(args.target, args.names, args.timeout)
    try:
        settings = Settings.from_sources(vars(args))
    except SettingsError as err:
        print(f"egress-resolver: {err}", file=sys.stderr)
        return 2
    if settings.policy is None:
        print("egress-resolver: --policy (or EGRESS_RESOLVER_POLICY) is required", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    if args.command == "check":
        return _check(settings, args.names, args.pools)
    if settings.workers > 1:
        return run_workers(settings)
    try:
        asyncio.run(serve(settings))
    except SettingsError as err:
        print(f"egress-resolver: {err}", file=sys.stderr)
        return 2
    return 0


def _script(args: argparse.Namespace) -> int:
    flags = {"lua_path": args.lua_path, "dns_servers": args.dns_servers}
    try:
        settings = Settings.from_sources(flags)
    except SettingsError as err:
        print(f"egress-resolver: {err}", file=sys.stderr)
        return 2
    logs.configure("console", settings.log_level)
    return run_script(
        Path(args.file),
        args.args,
        lua_paths=settings.lua_path,
        options=api_options(settings),
    )


def _check(settings: Settings, names: Sequence[str], pools: Sequence[str]) -> int:
    assert settings.policy is not None
    report = check_policy(
        settings.policy,
        names,
        pools,
        lua_paths=settings.lua_path,
        handler_timeout=settings.handler_timeout,
        memory_limit=settings.lua_memory_mib * 1024 * 1024,
        options=api_options(settings),
    )
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


def _resolve(target: str, names: Sequence[str], timeout: float) -> int:
    from egress_client import Resolver, ResolverError

    failed = False
    with Resolver(target, timeout=timeout) as resolver:
        for name in names:
            try:
                print(json.dumps(message_json(resolver.get(name))), flush=True)
            except ResolverError as err:
                failed = True
                reason = f" [{err.reason}]" if err.reason else ""
                prefix = f"{name}: " if len(names) > 1 else ""
                print(f"{prefix}{err.code.name}: {err.message}{reason}", file=sys.stderr)
    return 1 if failed else 0


def _invalidate(args: argparse.Namespace) -> int:
    import grpc

    from egress_client import ResolverError
    from kumo.egress.v1 import resolver_service_pb2 as pb
    from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc

    names = [] if args.pool else list(args.names)
    pools = list(args.names) if args.pool else []
    request = pb.InvalidateRequest(names=names, pool_names=pools, all=args.all)
    with grpc.insecure_channel(args.target) as channel:
        try:
            response = pb_grpc.EgressResolverServiceStub(channel).Invalidate(
                request, timeout=args.timeout
            )
        except grpc.RpcError as rpc_error:
            err = ResolverError.from_rpc_error(rpc_error)
            reason = f" [{err.reason}]" if err.reason else ""
            print(f"{err.code.name}: {err.message}{reason}", file=sys.stderr)
            return 1
    print(json.dumps({"sequence": response.sequence, "dropped": response.dropped}))
    return 0


def _explain(target: str, names: Sequence[str], timeout: float) -> int:
    import grpc

    from kumo.egress.v1 import resolver_service_pb2 as pb
    from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc

    failed = False
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.EgressResolverServiceStub(channel)
        for name in names:
            try:
                response = stub.ExplainEgressSource(
                    pb.ExplainEgressSourceRequest(name=name), timeout=timeout
                )
            except grpc.RpcError as err:
                print(f"{name}: {err.code().name}: {err.details()}", file=sys.stderr)
                failed = True
                continue
            failed = failed or response.HasField("error")
            print(json.dumps(message_json(response)), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
