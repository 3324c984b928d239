"""The reason catalogue (definitions/errors.py) and README's "Errors" table say the same."""

from __future__ import annotations

import re

import grpc

from egress_resolver.definitions.errors import CLIENT_REASONS, Reason
from support import REPO


def readme_errors_table() -> list[list[str]]:
    """The rows of README's "Errors" table, as cells."""
    section = (REPO / "README.md").read_text().split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| situation | status | reason |")
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[1:]]


def test_every_reason_is_in_the_readme_with_its_code_and_caching() -> None:
    seen: dict[str, set[str]] = {}
    for situation, status, reasons, cached in readme_errors_table():
        for reason in re.findall(r"`([A-Z_]+)`", reasons):
            seen.setdefault(reason, set()).add(status.strip("`"))
            member = Reason(reason)
            expected = (
                "—"
                if member in CLIENT_REASONS
                else "`--transient-error-ttl`"
                if member.transient
                else "yes"
                if member.cacheable
                else "no"
            )
            assert cached == expected, (situation, reason)
            assert situation.startswith("client ") == (member in CLIENT_REASONS), situation
    assert set(seen) == {reason.value for reason in Reason}
    for reason in Reason:
        assert seen[reason.value] == {reason.code.name}, reason


def test_client_reasons_have_the_codes_of_the_contract() -> None:
    assert {reason: reason.code for reason in CLIENT_REASONS} == {
        Reason.SOURCE_UNPLUMBED: grpc.StatusCode.UNAVAILABLE,
        Reason.PROXY_UNHEALTHY: grpc.StatusCode.UNAVAILABLE,
        Reason.CONNECT_FAILED: grpc.StatusCode.UNAVAILABLE,
        Reason.SOURCE_SUSPENDED: grpc.StatusCode.UNAVAILABLE,
        Reason.POOL_SUSPENDED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
    assert not any(reason.cacheable for reason in CLIENT_REASONS)
