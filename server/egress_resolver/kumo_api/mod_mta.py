"""kumod's functions that only an MTA can act on: they exist here, and say so.

Two kinds, as docs/migrating-from-kumomta.md lists them:

- **Configuring the MTA** (`start_esmtp_listener`, `define_spool`, `configure_log_hook`,
  `set_*_threads`, `spawn_task`, ...): accepted and ignored while the policy loads (top-level
  code, `pre_init`, `init`) and in a script, so an operator's kumod policy loads unmodified;
  one info log line lists the ones called. From a handler or `validate_config` they fail:
  there they would mean the policy expects something to happen that will not.
- **Working on messages or the MTA's state** (`make_message`, `inject_message`, `reject`,
  `kumo.dkim.*`, `kumo.shaping.*`, ...): they fail wherever they are called.

Every failure names the function and says why it is not available. PolicyHost skips a
`validate_config` handler that failed only because it reached one of these (a shaping or DKIM
helper's check must not block an egress policy), using `PolicyState.refusals`.
"""

from __future__ import annotations

from egress_resolver.kumo_api.context import LOAD, SCRIPT, ApiContext, LuaModule

CONFIGURE = (
    "configure_accounting_db_path",
    "configure_bounce_classifier",
    "configure_local_logs",
    "configure_log_disposition_hook",
    "configure_log_hook",
    "configure_redis_throttles",
    "define_spool",
    "enable_memory_callstack_tracking",
    "set_diagnostic_log_filter",
    "set_httpinject_recipient_rate_limit",
    "set_httpinject_threads",
    "set_logging_threads",
    "set_lruttl_cache_capacity",
    "set_lua_gc_on_put",
    "set_max_lua_context_age",
    "set_max_lua_context_use_count",
    "set_max_spare_lua_contexts",
    "set_memory_hard_limit",
    "set_memory_low_thresh",
    "set_memory_soft_limit",
    "set_qmaint_threads",
    "set_ready_qmaint_threads",
    "set_readyq_threads",
    "set_smtpsrv_threads",
    "set_spoolin_threads",
    "set_timeq_spawn_reinsertion",
    "spawn_task",
    "spawn_thread_pool",
    "start_esmtp_listener",
    "start_http_listener",
    "start_proxy_listener",
    "suspend_delivery_when_spool_unhealthy",
)
"""Top-level `kumo` functions that configure kumod itself."""

MESSAGE_ONLY = (
    "apply_supplemental_trace_header",
    "compute_egress_path_config_constraints",
    "compute_queue_config_constraints",
    "delay_message_if_throttled",
    "disconnect",
    "format_egress_path_config_constraints",
    "format_egress_path_config_toml",
    "format_queue_config_toml",
    "generate_rfc3464_message",
    "get_memory_hard_limit",
    "get_memory_low_thresh",
    "get_memory_soft_limit",
    "inject_message",
    "invoke_get_egress_path_config",
    "invoke_get_queue_config",
    "prometheus_metrics",
    "reject",
)
"""Top-level `kumo` functions that act on messages, queues or kumod's own process."""

SUBMODULES = {
    "aaa": "authentication belongs to the MTA's listeners",
    "amqp": "it publishes from the MTA (log hooks)",
    "api": "it calls kumod's own HTTP API",
    "dkim": "signing works on messages, which only the MTA has",
    "dmarc": "it checks received messages, which only the MTA has",
    "file_type": "it inspects message parts, which only the MTA has",
    "jsonl": "it tails kumod's log files",
    "kafka": "it publishes from the MTA (log hooks)",
    "mimepart": "it builds and parses message parts, which only the MTA has",
    "mpsc": "its queues connect kumod's own tasks",
    "nats": "it publishes from the MTA (log hooks)",
    "shaping": "traffic shaping is applied by the MTA (and its TSA daemon)",
    "spf": "it checks received messages, which only the MTA has",
    "tsa": "traffic shaping automation runs beside the MTA",
    "xfer": "it moves queued messages between MTA nodes",
}
"""`kumo.<module>` tables whose every function needs an MTA, with the reason."""

_SHIM = """
local py = ...
local kumo = {}
for _, name in ipairs(py.configure) do
  kumo[name] = function() return py.configure_called(name) end
end
for _, name in ipairs(py.message_only) do
  kumo[name] = function() py.refuse('kumo.' .. name, 'message') end
end
for module, why in pairs(py.submodules) do
  kumo[module] = setmetatable({}, {
    __name = 'kumo.' .. module,
    __index = function(_, key)
      return function() py.refuse('kumo.' .. module .. '.' .. tostring(key), why) end
    end,
  })
end
return kumo
"""

_WHY = {
    "message": "it acts on messages, queues or kumod's own process, which only the MTA has",
    "configure": "it configures the MTA itself, so egress-resolver ignores it while the policy "
    "loads (top-level code, pre_init, init) and refuses it from a handler",
}


class MtaFunctions:
    """The Python half of the MTA-only functions for one Lua runtime."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx
        self._state = ctx.state

    def build(self) -> object:
        """The functions and tables, to add to `kumo`."""
        runtime = self._ctx.runtime
        return self._ctx.shim(
            _SHIM,
            {
                "configure": runtime.table_from(list(CONFIGURE)),
                "message_only": runtime.table_from(list(MESSAGE_ONLY)),
                "submodules": runtime.table_from(SUBMODULES),
                "configure_called": self.configure_called,
                "refuse": self.refuse,
            },
        )

    def configure_called(self, name: str) -> None:
        """An MTA-configuration function: ignored while loading, refused after."""
        if self._state.phase in (LOAD, SCRIPT):
            self._state.ignored_calls.append(f"kumo.{name}")
            return
        self.refuse(f"kumo.{name}", "configure")

    def refuse(self, function: str, why: str) -> None:
        """Fail the call, naming the function and why it is not available here."""
        self._state.refuse(function, _WHY.get(why, why))


MODULE = LuaModule("kumo", lambda ctx: MtaFunctions(ctx).build())
