"""The reason catalogue (definitions/errors.py) and docs/errors.md's reason table say the same."""

from __future__ import annotations

import re

import grpc
import pytest

from egress_resolver.definitions.errors import CLIENT_REASONS, SITUATIONS, Reason, reason_table
from egress_resolver.ops.docs_tables import MissingMarkersError, splice
from support import REPO

ERRORS_PAGE = REPO / "docs" / "errors.md"


def test_the_errors_page_holds_the_generated_table() -> None:
    page = ERRORS_PAGE.read_text()
    table = page.split("<!-- reasons:begin -->\n", 1)[1].split("<!-- reasons:end -->", 1)[0]
    assert table == reason_table(), "docs/errors.md is stale: run `make docs-tables`"


def test_the_table_has_one_row_per_reason_with_its_code_and_caching() -> None:
    rows = reason_table().splitlines()[2:]
    assert len(rows) == len(Reason)
    for reason, row in zip(Reason, rows, strict=True):
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        assert cells[:2] == [f"`{reason.value}`", f"`{reason.code.name}`"], row
        situation, cached = cells[2], cells[3]
        assert situation == SITUATIONS[reason]
        assert situation.startswith("client ") == (reason in CLIENT_REASONS), row
        expected = (
            "— (raised by the clients)"
            if reason in CLIENT_REASONS
            else "`--transient-error-ttl`"
            if reason.transient
            else "`--negative-ttl`"
            if reason.cacheable
            else "no"
        )
        assert cached == expected, row


def test_every_reason_has_a_situation_without_a_pipe() -> None:
    assert set(SITUATIONS) == set(Reason)
    assert not any("|" in text for text in SITUATIONS.values())


def test_splice_replaces_only_between_the_markers() -> None:
    page = "intro\n<!-- t:begin -->\nold\n<!-- t:end -->\noutro\n"
    assert splice(page, "t", "new\n") == "intro\n<!-- t:begin -->\nnew\n<!-- t:end -->\noutro\n"
    with pytest.raises(MissingMarkersError, match=re.escape("no <!-- u:begin -->")):
        splice(page, "u", "new\n")


def test_client_reasons_have_the_codes_of_the_contract() -> None:
    assert {reason: reason.code for reason in CLIENT_REASONS} == {
        Reason.SOURCE_UNPLUMBED: grpc.StatusCode.UNAVAILABLE,
        Reason.PROXY_UNHEALTHY: grpc.StatusCode.UNAVAILABLE,
        Reason.CONNECT_FAILED: grpc.StatusCode.UNAVAILABLE,
        Reason.SOURCE_SUSPENDED: grpc.StatusCode.UNAVAILABLE,
        Reason.POOL_SUSPENDED: grpc.StatusCode.RESOURCE_EXHAUSTED,
        Reason.POOL_HAS_NO_SOURCES: grpc.StatusCode.FAILED_PRECONDITION,
    }
    assert not any(reason.cacheable for reason in CLIENT_REASONS)
