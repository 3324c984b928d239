"""kumo.make_message: an in-memory message's envelope, metadata, data and header fields;
what needs the MTA is refused by name."""

from __future__ import annotations

import pytest

from egress_resolver.kumo_api.mod_message import parse_address
from egress_resolver.runtime.lua_host import PolicyHost
from support import fixture

BODY = (
    "Subject: =?utf-8?q?h=C3=A9llo?=\\r\\nX-Tenant: one\\r\\n  folded\\r\\n"
    "x-tenant: two\\r\\nTo: b@example.org\\r\\n\\r\\nHi\\r\\nX-Tenant: not a header\\r\\n"
)


@pytest.fixture(scope="module")
def host() -> PolicyHost:
    return PolicyHost(fixture("lua_eval.lua"))


def run(host: PolicyHost, body: str) -> str:
    """Run `body` with `msg` a fresh message: 'ok: ...' or 'error: ...'."""
    make = f"local msg = kumo.make_message('a@example.com', '<b@example.org>', '{BODY}')"
    answer = host.resolve_source(f"(function() {make} {body} end)()").ehlo_domain
    assert answer is not None
    return answer


def test_envelope(host: PolicyHost) -> None:
    body = """local r = msg:recipient()
      return table.concat({ tostring(msg:sender()), r.user, r.domain, r.email, meta(r),
        #msg:recipient_list() }, '|')"""
    assert run(host, body) == "ok: a@example.com|b|example.org|b@example.org|EnvelopeAddress|1"


def test_set_recipient_takes_a_list_an_address_or_a_string(host: PolicyHost) -> None:
    body = """msg:set_recipient { 'a@example.com', 'b@example.net' }
      local list = msg:recipient_list()
      local many = msg:recipient()
      msg:set_recipient(list[2])
      local one = msg:recipient()
      msg:set_sender 'x@example.com'
      return table.concat({ #list, list[1].domain, #many, one.email, msg:sender().user }, '|')"""
    assert run(host, body) == "ok: 2|example.com|2|b@example.net|x"


def test_meta(host: PolicyHost) -> None:
    body = """msg:set_meta('tenant', 'mytenant')
      msg:set_meta('obj', { key = 'value' })
      local obj = msg:get_meta 'obj'
      obj.key = 'changed'
      return table.concat({ msg:get_meta 'tenant', msg:get_meta('obj').key,
        tostring(msg:get_meta 'nope') }, '|')"""
    assert run(host, body) == "ok: mytenant|value|nil"


def test_header_fields(host: PolicyHost) -> None:
    body = """return table.concat({ msg:get_first_named_header_value 'subject',
      kumo.json_encode(msg:get_all_named_header_values 'X-TENANT'),
      tostring(msg:get_first_named_header_value 'Missing') }, '|')"""
    assert run(host, body) == 'ok: héllo|["one  folded","two"]|nil'


def test_remove_all_named_headers_keeps_the_body(host: PolicyHost) -> None:
    body = "msg:remove_all_named_headers 'x-tenant' return msg:get_data()"
    assert run(host, body) == (
        "ok: Subject: =?utf-8?q?h=C3=A9llo?=\r\nTo: b@example.org\r\n\r\nHi\r\n"
        "X-Tenant: not a header\r\n"
    )


def test_data_and_id(host: PolicyHost) -> None:
    body = """msg:set_data 'Subject: new\\r\\n\\r\\nbody'
      return msg:get_first_named_header_value('Subject') .. '|' .. #msg:id()"""
    assert run(host, body) == "ok: new|32"


@pytest.mark.parametrize("method", ["dkim_sign", "set_scheduling", "import_scheduling_header"])
def test_what_needs_the_mta_is_refused_by_name(host: PolicyHost, method: str) -> None:
    answer = run(host, f"return msg:{method}()")
    assert answer.startswith(f"error: message:{method} is not available in egress-resolver: ")


def test_bad_arguments(host: PolicyHost) -> None:
    answer = host.resolve_source("kumo.make_message('a@example.com', 5, 'x')").ehlo_domain
    assert answer == "error: bad argument #2 to make_message: expected a string, got number"
    answer = host.resolve_source("kumo.make_message('nobody', 'b@x', 'x')").ehlo_domain
    assert answer == "error: invalid envelope address 'nobody': expected user@domain"


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("user@example.com", ("user", "example.com", "user@example.com")),
        ("<user@example.com>", ("user", "example.com", "user@example.com")),
        ('"info@"@example.com', ("info@", "example.com", '"info@"@example.com')),
        ("<@relay.example:user@example.com>", ("user", "example.com", "user@example.com")),
        ("<>", ("", "", "")),
        ("", ("", "", "")),
        ("Postmaster", ("postmaster", "", "Postmaster")),
    ],
)
def test_envelope_addresses(text: str, parsed: tuple[str, str, str]) -> None:
    assert parse_address(text) == parsed


@pytest.mark.parametrize("text", ["no-at-sign", "@example.com", "user@", "a b@example.com"])
def test_invalid_envelope_addresses(text: str) -> None:
    with pytest.raises(ValueError, match="invalid envelope address"):
        parse_address(text)
