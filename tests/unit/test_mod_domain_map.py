"""kumo.domain_map: kumod's documented examples, copies on lookup, and kumo.memoize
keeping maps (and other objects with __memoize) as themselves."""

from __future__ import annotations

import pytest

from egress_resolver.runtime.lua_host import PolicyHost
from support import fixture


@pytest.fixture(scope="module")
def host() -> PolicyHost:
    return PolicyHost(fixture("lua_eval.lua"))


def run(host: PolicyHost, body: str) -> str:
    """Run `body` (Lua statements ending in a return) in a handler: 'ok: ...' or 'error: ...'."""
    answer = host.resolve_source(f"(function() {body} end)()").ehlo_domain
    assert answer is not None
    return answer


def test_simple_keys(host: PolicyHost) -> None:
    body = """local dmap = kumo.domain_map.new()
      dmap['foo'] = 'bar'
      return tostring(dmap['foo']) .. ' ' .. tostring(dmap['not.set'])"""
    assert run(host, body) == "ok: bar nil"


def test_wildcards_as_documented(host: PolicyHost) -> None:
    body = """local dmap = kumo.domain_map.new { ['*.woot.com'] = 123, ['example.com'] = 24 }
      dmap['*.example.com'] = 42
      dmap['explicit.example.com'] = 'explicit'
      return kumo.json_encode {
        dmap['lemon.example.com'], dmap['example.com'], tostring(dmap['woot.com']),
        dmap['aa.woot.com'], dmap['deep.lemon.example.com'], dmap['explicit.example.com'],
      }"""
    assert run(host, body) == 'ok: [42,24,"nil",123,42,"explicit"]'


def test_an_inner_label_with_no_entry_does_not_fall_back_to_a_wildcard(host: PolicyHost) -> None:
    # kumod's trie: `b.example.com` exists only as a step towards `a.b.example.com`
    body = """local dmap = kumo.domain_map.new {
        ['*.example.com'] = 'w', ['a.b.example.com'] = 'x',
      }
      return tostring(dmap['b.example.com']) .. ' ' .. tostring(dmap['q.b.example.com'])
        .. ' ' .. dmap['z.example.com']"""
    assert run(host, body) == "ok: nil nil w"


def test_lookups_return_copies(host: PolicyHost) -> None:
    body = """local dmap = kumo.domain_map.new { ['example.com'] = { relay_to = true } }
      local got = dmap['example.com']
      got.relay_to = false
      return tostring(dmap['example.com'].relay_to)"""
    assert run(host, body) == "ok: true"


def test_the_map_object(host: PolicyHost) -> None:
    body = "local d = kumo.domain_map.new { a = 1, b = 2 } return meta(d) .. ' ' .. tostring(d)"
    assert run(host, body) == "ok: DomainMap DomainMap(2 entries)"
    assert run(host, "return kumo.domain_map.new { [5] = 'five' }['5']") == "ok: five"


def test_what_cannot_be_stored(host: PolicyHost) -> None:
    assert run(host, "return kumo.domain_map.new { a = print }") == (
        "error: kumo.domain_map: a function cannot be stored in a domain map"
    )
    assert run(host, "return kumo.domain_map.new 'x'").endswith(
        "kumo.domain_map.new: expected a table of entries or nothing, got string"
    )
    assert run(host, "local d = kumo.domain_map.new() d[true] = 1 return d") == (
        "error: kumo.domain_map: keys are domain names (strings), got bool"
    )


def test_memoize_keeps_domain_maps_and_config_objects(host: PolicyHost) -> None:
    body = """local got = cached(function()
        return {
          map = kumo.domain_map.new {
            ['*.example.com'] = kumo.make_listener_domain { relay_to = true },
          },
          plain = { 1, 2 },
        }
      end)
      local entry = got.map['a.example.com']
      return meta(got.map) .. ' ' .. meta(entry) .. ' ' .. tostring(entry.relay_to)
        .. ' ' .. kumo.json_encode(got.plain)"""
    assert run(host, body) == "ok: DomainMap EsmtpDomain true [1,2]"


def test_a_handler_can_pcall_a_failing_function_many_times(host: PolicyHost) -> None:
    # Before bridge.errors.detached, the Lua tables held by the tracebacks of these errors
    # outlived the handler coroutines they were made on, and the heap was corrupted.
    for _ in range(400):
        answer = run(host, "return pcall(kumo.make_queue_config, { tenant = { a = 1 } })")
        assert answer == "ok: false"
