"""The data source limit: how much of one answer (an HTTP body, a Redis reply, an
SQLite result) a policy's call may hold in the sidecar's memory.

The Lua memory cap (`--lua-memory-mib`) covers what the policy keeps, not what
Python holds while a module reads an answer, so each module enforces
`ApiOptions.data_source_limit` (`--data-source-limit-mib`) WHILE it reads:
`kumo.http` streams the body and stops at the limit, `redis` checks each length
prefix before it reads what follows, `sqlite` counts rows as it fetches them.
An answer over the limit fails the call with DATA_SOURCE_ERROR (each module's
`classify` says so) and a message that names the limit and the setting.
"""

from __future__ import annotations

MIB = 1024 * 1024
SETTING = "--data-source-limit-mib"


def describe_limit(limit: int) -> str:
    """`16 MiB`, or the bytes when the limit is not a whole number of MiB (tests)."""
    if limit >= MIB and limit % MIB == 0:
        return f"{limit // MIB} MiB"
    return f"{limit} bytes"


class DataSourceLimitError(Exception):
    """An answer larger than the data source limit; a data-source failure."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(
            f"{what} is larger than the data source limit of {describe_limit(limit)} ({SETTING})"
        )
        self.limit = limit
