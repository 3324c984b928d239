"""The reason catalogue (definitions/errors.py): the reasons the clients raise keep the codes
of their contract. (The table of every reason lives in docs/errors.md, generated from the
catalogue; its own test keeps the two equal.)"""

from __future__ import annotations

import grpc

from egress_resolver.definitions.errors import CLIENT_REASONS, Reason


def test_client_reasons_have_the_codes_of_the_contract() -> None:
    assert {reason: reason.code for reason in CLIENT_REASONS} == {
        Reason.SOURCE_UNPLUMBED: grpc.StatusCode.UNAVAILABLE,
        Reason.PROXY_UNHEALTHY: grpc.StatusCode.UNAVAILABLE,
        Reason.CONNECT_FAILED: grpc.StatusCode.UNAVAILABLE,
        Reason.SOURCE_SUSPENDED: grpc.StatusCode.UNAVAILABLE,
        Reason.POOL_SUSPENDED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
    assert not any(reason.cacheable for reason in CLIENT_REASONS)
