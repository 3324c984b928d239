"""kumo.http against a real local HTTP server; kumo.secrets."""

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from datasources import SourceHttpServer, free_port

from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.kumo_api import ApiOptions
from egress_resolver.runtime.lua_host import PolicyHost

LIVE = Path(__file__).parent.parent / "fixtures" / "live"


@pytest.fixture(scope="module")
def http_server() -> Iterator[SourceHttpServer]:
    with SourceHttpServer() as server:
        yield server


def http_host(tmp_path: Path, base: str, handler_timeout: float = 5.0) -> PolicyHost:
    (tmp_path / "endpoints.json").write_text(json.dumps({"http": base}))
    policy = tmp_path / "policy.lua"
    policy.write_text((LIVE / "http.lua").read_text())
    return PolicyHost(policy, handler_timeout=handler_timeout)


def failure(host: PolicyHost, name: str) -> tuple[ResolveError, float]:
    started = time.monotonic()
    with pytest.raises(ResolveError) as caught:
        host.resolve_source(name)
    return caught.value, time.monotonic() - started


def test_get_with_builders_and_the_response(tmp_path: Path, http_server: SourceHttpServer) -> None:
    source = http_host(tmp_path, http_server.url).resolve_source("ip-1")
    assert (source.source_address, source.ehlo_domain) == ("10.9.0.1", "test.example")
    headers = {k.lower(): v for k, v in http_server.headers_seen[-1].items()}
    assert headers["x-lookup"] == "ip-1"
    assert headers["authorization"] == "Bearer sekrit"
    assert headers["user-agent"] == "egress-test"


def test_response_methods_post_and_secrets(tmp_path: Path, http_server: SourceHttpServer) -> None:
    (tmp_path / "secret.txt").write_text("from-a-file")
    policy = tmp_path / "policy.lua"
    policy.write_text(
        f"""
        kumo.on('validate_config', function()
          local client = kumo.http.build_client {{}}
          local request = client:post '{http_server.url}/source/posted'
          request:basic_auth('user', kumo.secrets.load 'secret.txt')
          request:body(kumo.secrets.load {{ key_data = 'the body' }})
          local r = request:send()
          print(r:status_code(), r:status_reason(), r:status_is_success(),
                r:status_is_server_error(), r:content_length(), r:headers()['Content-Type'])
          for k, v in pairs(r:headers()) do if k == 'x-served-by' then print(k, v) end end
          print(r:text())
          local bad = client:put('{http_server.url}/source/x'):timeout(1):send()
          print(bad:status_code())
          print(pcall(kumo.secrets.load, {{ vault_mount = 'secret', vault_path = 'p' }}))
        end)
        """
    )
    validation = PolicyHost(policy).validate_config()
    assert validation.error is None, validation.error
    status, body, put, vault = validation.output[0], validation.output[2], *validation.output[3:]
    assert status.split("\t") == ["200", "OK", "true", "false", "48", "application/json"]
    assert validation.output[1] == "x-served-by\ttest"
    assert json.loads(body) == {"name": "posted", "source_address": "10.9.0.1"}
    assert put == "200"
    assert vault.startswith("false")
    assert "Vault key sources are not supported" in vault
    assert http_server.bodies[-2] == b"the body"
    assert http_server.headers_seen[-2]["Authorization"] == "Basic dXNlcjpmcm9tLWEtZmlsZQ=="


def test_faults_have_precise_reasons(tmp_path: Path, http_server: SourceHttpServer) -> None:
    host = http_host(tmp_path, http_server.url, handler_timeout=1.0)
    err, _ = failure(host, "fail-1")  # a 503 the policy turns into an error
    assert err.reason is Reason.DATA_SOURCE_ERROR
    assert err.code.name == "FAILED_PRECONDITION"
    assert err.message == "get_egress_source 'fail-1': lookup of fail-1 answered 503"
    err, elapsed = failure(host, "quick-slow-1")  # the request's own 300 ms timeout
    assert err.reason is Reason.DATA_SOURCE_TIMEOUT
    assert err.code.name == "DEADLINE_EXCEEDED"
    assert "http: no answer within 0.3s" in err.message
    assert elapsed < 0.9
    err, elapsed = failure(host, "slow-1")  # the handler's 1 s budget, before the client's 2 s
    assert err.reason is Reason.HANDLER_TIMEOUT
    assert 0.9 < elapsed < 1.9
    err, _ = failure(host, "garbage-1")
    assert err.reason is Reason.DATA_SOURCE_ERROR
    assert "http: " in err.message
    assert host.resolve_source("ip-2").source_address == "10.9.0.1"  # the host goes on


def test_connection_refused(tmp_path: Path) -> None:
    err, elapsed = failure(http_host(tmp_path, f"http://127.0.0.1:{free_port()}"), "ip-1")
    assert err.reason is Reason.DATA_SOURCE_ERROR
    assert "http: " in err.message
    assert elapsed < 2.0


def limited_host(tmp_path: Path, base: str, limit: int) -> PolicyHost:
    """A policy whose client has kumod's default timeout (60 s): only the
    handler's budget and the data source limit bound an endless body."""
    policy = tmp_path / "limited.lua"
    policy.write_text(
        f"""
        local client = kumo.http.build_client {{}}
        kumo.on('get_egress_source', function(name)
          local body = client:get('{base}/source/' .. name):send():text()
          return kumo.make_egress_source {{
            name = name, source_address = kumo.serde.json_parse(body).source_address,
          }}
        end)
        """
    )
    return PolicyHost(policy, handler_timeout=30.0, options=ApiOptions(data_source_limit=limit))


def test_a_body_over_the_data_source_limit_fails_the_call(
    tmp_path: Path, http_server: SourceHttpServer
) -> None:
    host = limited_host(tmp_path, http_server.url, 1024 * 1024)
    sent_before = http_server.endless_sent
    err, elapsed = failure(host, "endless-1")  # a chunked body that never ends
    assert err.reason is Reason.DATA_SOURCE_ERROR
    assert err.code.name == "FAILED_PRECONDITION"
    assert (
        "http: the response body is larger than the data source limit of 1 MiB "
        "(--data-source-limit-mib)" in err.message
    )
    assert elapsed < 20.0  # stopped at the limit, not at the handler's 30 s
    assert host.resolve_source("ip-1").source_address == "10.9.0.1"  # the pool goes on
    # The server wrote what the client read plus what the sockets' buffers held.
    assert http_server.endless_sent - sent_before < 64 * 1024 * 1024
    # A Content-Length over the limit: refused before the body is read.
    err, _ = failure(limited_host(tmp_path, http_server.url, 40), "ip-2")
    assert err.reason is Reason.DATA_SOURCE_ERROR
    assert "larger than the data source limit of 40 bytes (--data-source-limit-mib)" in err.message
    # A body of exactly the limit is read.
    exact = len(b'{"name": "ip-3", "source_address": "10.9.0.1"}')
    assert limited_host(tmp_path, http_server.url, exact).resolve_source("ip-3").name == "ip-3"
