"""A policy's life in a PolicyHost, as in kumod: load, `pre_init`, `init`, `validate_config`,
and `main` for a script.

- Loading runs the file's top-level code, then every `pre_init` handler, then every `init`
  handler, each under LOAD_BUDGET_SECONDS (a script: no budget); a failure of any is a
  failed load (PolicyLoadError), named by the event. The MTA-configuration functions the
  policy called meanwhile do nothing here (kumo_api/mod_mta.py): one info log line lists them.
- kumod runs `validate_config` only under `--validate`; here every load runs it, and it gates
  the load. A handler that fails only because it reached a function only kumod has (a
  shaping or DKIM helper's check) is skipped, logged and reported, so it never blocks an
  egress policy.
- A script (`egress-resolver script`, kumod's `--script`) runs the top-level code and then
  `main`; no `pre_init`, `init` or `validate_config`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import lupa.lua54 as lua
import structlog

from egress_resolver.kumo_api import PolicyLoadError
from egress_resolver.kumo_api.context import HANDLER, VALIDATE
from egress_resolver.runtime.lua_events import LOAD_BUDGET_SECONDS, ConfigValidation, lua_message

if TYPE_CHECKING:
    from egress_resolver.runtime.lua_host import PolicyHost

_log = structlog.get_logger("egress_resolver.policy")


def start(host: PolicyHost, *, script: bool) -> None:
    """Run the policy's top-level code, then (not for a script) `pre_init` and `init`."""
    budget = math.inf if script else LOAD_BUDGET_SECONDS
    _guarded(host, "", budget, host.compile())
    if not script:
        for event in ("pre_init", "init"):
            for handler in host.handlers(event):
                _guarded(host, event, budget, handler)
        host.state.phase = HANDLER
    if host.state.ignored_calls:
        _log.info(
            "policy called functions that only configure kumod; they do nothing here",
            functions=sorted(set(host.state.ignored_calls)),
        )


def run_main(host: PolicyHost, args: Sequence[str]) -> None:
    """Fire `main` with `args`; PolicyLoadError if it fails."""
    for handler in host.handlers("main"):
        _guarded(host, "main", math.inf, handler, *args)


def validate_config(host: PolicyHost) -> ConfigValidation:
    """Run every `validate_config` handler, capturing what they print.

    A handler that reached a function only kumod has and then failed, or called
    `kumo.validation_failed()` (as the DKIM helper does when its signer cannot be
    built), is skipped: its verdict is dropped, what it printed is kept, and the
    skip is logged and reported with the refusal."""
    state = host.state
    state.printed, state.phase = [], VALIDATE
    error, skipped, failed = None, [], False
    try:
        for index, handler in enumerate(host.handlers("validate_config")):
            refused, state.validation_failed = len(state.refusals), False
            try:
                host.runs.call_on_main_thread(LOAD_BUDGET_SECONDS, handler)
            except lua.LuaMemoryError:
                raise
            except Exception as err:
                message = lua_message(err)
                if not any(r in message for r in state.refusals[refused:]):
                    raise
            else:
                reached = state.refusals[refused:]
                if not (state.validation_failed and reached):
                    failed = failed or state.validation_failed
                    continue
                message = reached[0]
            where = state.registrars["validate_config"][index][0]
            skipped.append(f"{where}: {message}")
            _log.info("validate_config handler skipped", handler=where, error=message)
    except lua.LuaMemoryError:
        host.collect_garbage()
        error = f"validate_config: the Lua memory limit of {host.memory_limit} bytes was hit"
    except Exception as err:
        error = f"validate_config: {lua_message(err)}"
    finally:
        output, state.printed, state.phase = state.printed, None, HANDLER
        state.validation_failed = False
    if error is None and failed:
        error = "validate_config: the policy called kumo.validation_failed()"
    return ConfigValidation(error is None, output, error, skipped)


def _guarded(host: PolicyHost, event: str, seconds: float, fn: object, *args: object) -> None:
    """Run one load-time step; any failure is a PolicyLoadError naming `event`."""
    prefix = f"{event}: " if event else ""
    try:
        host.runs.call_on_main_thread(seconds, fn, *args)
    except lua.LuaMemoryError:
        raise PolicyLoadError(
            f"{prefix}{host.policy}: the Lua memory limit of {host.memory_limit} bytes "
            "was reached while loading"
        ) from None
    except PolicyLoadError:
        raise
    except Exception as err:
        raise PolicyLoadError(f"{prefix}{lua_message(err)}") from None
