"""`egress-resolver check`: load a policy offline, validate it, resolve names; a JSON report.

Like `kumod --validate`, the check runs the policy's `validate_config`
handlers and reports what they printed (KumoMTA's helpers print each problem
they find) and whether they called `kumo.validation_failed()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from egress_resolver.definitions.codec import pool_message
from egress_resolver.definitions.errors import ResolveError
from egress_resolver.definitions.json_view import message_json
from egress_resolver.definitions.pools import pool_source_failure
from egress_resolver.definitions.source_message import source_message
from egress_resolver.definitions.validation import check_name
from egress_resolver.kumo_api import ApiOptions, PolicyLoadError
from egress_resolver.runtime.lua_host import POOL_EVENT, SOURCE_EVENT, PolicyHost
from egress_resolver.runtime.policy_runner import NO_SOURCE_HANDLER


def check_policy(
    policy: Path,
    sources: Sequence[str],
    pools: Sequence[str] = (),
    *,
    lua_paths: Sequence[Path] = (),
    handler_timeout: float = 1.0,
    memory_limit: int = 0,
    options: ApiOptions | None = None,
) -> dict[str, Any]:
    """The report of `check`; its `ok` says whether the exit status is 0. The keyword
    arguments are PolicyHost's (the caller takes them from the settings)."""
    report: dict[str, Any] = {"policy": str(policy)}
    try:
        host = PolicyHost(
            policy,
            lua_paths=lua_paths,
            handler_timeout=handler_timeout,
            memory_limit=memory_limit,
            options=options,
        )
    except PolicyLoadError as err:
        report.update(ok=False, error=str(err))
        return report
    if not host.handlers(SOURCE_EVENT):
        report.update(ok=False, error=NO_SOURCE_HANDLER)
        return report
    validation = host.validate_config()
    report["files"] = sorted(str(f) for f in host.files)
    report["handlers"] = {
        e: len(host.handlers(e)) for e in (SOURCE_EVENT, POOL_EVENT, "validate_config")
    }
    report["validation"] = {"ok": validation.ok, "output": validation.output}
    if validation.error is not None:
        report["validation"]["error"] = validation.error
    if validation.skipped:
        report["validation"]["skipped"] = validation.skipped
    if host.state.ignored_calls:
        report["ignored"] = sorted(set(host.state.ignored_calls))
    report["results"] = [_source_result(host, name) for name in sources]
    report["pools"] = [_pool_result(host, name) for name in pools]
    report["ok"] = validation.ok and all(
        "error" not in r for r in (*report["results"], *report["pools"])
    )
    return report


def _source_result(host: PolicyHost, name: str) -> dict[str, Any]:
    try:
        check_name(name)
        source = source_message(host.resolve_source(name))
    except ResolveError as err:
        return {"name": name, "error": error_json(err)}
    return {"name": name, "source": message_json(source)}


def _pool_result(host: PolicyHost, name: str) -> dict[str, Any]:
    try:
        check_name(name)
        definition = host.resolve_pool(name)
        for entry in definition.entries:
            try:
                check_name(entry.name)
                host.resolve_source(entry.name)
            except ResolveError as err:
                raise pool_source_failure(name, err) from None
    except ResolveError as err:
        return {"name": name, "error": error_json(err)}
    return {"name": name, "pool": message_json(pool_message(definition))}


def error_json(err: ResolveError) -> dict[str, str]:
    """An error as the CLI prints it."""
    return {"code": err.code.name, "reason": err.reason.value, "message": err.message}
