"""ReportSourceFailure's request checks and the reason a suspension keeps (serving/reports.py)."""

from __future__ import annotations

import pytest

from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.serving.reports import (
    MAX_ADDRESS_BYTES,
    MAX_MESSAGE_BYTES,
    check_failure_class,
    failure_reason,
    truncate,
)
from kumo.egress.v1 import resolver_service_pb2 as pb


def test_truncate_cuts_bytes_never_inside_a_character() -> None:
    assert truncate("abc", 3) == "abc"
    assert truncate("é" * 10, 5) == "éé"  # 2 bytes each: the third would be cut
    assert len(truncate("x" * 5000, MAX_MESSAGE_BYTES).encode()) == MAX_MESSAGE_BYTES


def test_the_reason_is_the_message_led_by_the_address_it_does_not_name() -> None:
    message = "source ip-9: bind 192.0.2.1:0 failed: [Errno 99] Cannot assign requested address"
    assert failure_reason("192.0.2.1", message) == message
    assert failure_reason("127.0.0.1:1080", "connection refused") == (
        "127.0.0.1:1080: connection refused"
    )
    assert failure_reason("", "refused") == "refused"
    assert failure_reason("127.0.0.1:1080", "") == "127.0.0.1:1080"
    long = failure_reason("a" * 1000, "m" * 5000)
    assert long == "a" * MAX_ADDRESS_BYTES + ": " + "m" * MAX_MESSAGE_BYTES


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (pb.FAILURE_CLASS_UNSPECIFIED, "give a failure_class: FAILURE_CLASS_SOURCE_UNPLUMBED, "),
        (7, "failure_class 7 is unknown; expected FAILURE_CLASS_SOURCE_UNPLUMBED, "),
    ],
)
def test_a_failure_class_that_is_none_is_an_invalid_request(value: int, words: str) -> None:
    with pytest.raises(ResolveError) as caught:
        check_failure_class(value)
    assert caught.value.reason is Reason.INVALID_REQUEST
    assert caught.value.message.startswith(words)


def test_the_three_classes_are_accepted() -> None:
    for value in (
        pb.FAILURE_CLASS_SOURCE_UNPLUMBED,
        pb.FAILURE_CLASS_PROXY_UNHEALTHY,
        pb.FAILURE_CLASS_CONNECT_FAILED,
    ):
        check_failure_class(value)
