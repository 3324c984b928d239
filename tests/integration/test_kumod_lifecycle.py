"""A kumod policy's life here: pre_init and init, MTA-only functions, validate_config
skips, get_event_registrars, invoke through the cache, bump_config_epoch, and `script`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from egress_client import Resolver, ResolverError
from egress_resolver.ops.settings import Settings
from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc
from support import DEADLINE, InProcessServer, ServerProcess, fixture, lua_chunk_name, watch

POLICY = fixture("lifecycle/kumod_policy.lua")


@pytest.fixture(scope="module")
def server() -> Iterator[InProcessServer]:
    with InProcessServer(Settings(policy=POLICY, listen=["127.0.0.1:0"])) as srv:
        yield srv


def _error(target: str, name: str) -> ResolverError:
    with Resolver(target, timeout=DEADLINE) as resolver, pytest.raises(ResolverError) as err:
        resolver.get(name)
    return err.value


def test_pre_init_then_init_run_once_before_serving(server: InProcessServer) -> None:
    with Resolver(server.target, timeout=DEADLINE) as resolver:
        assert resolver.get("order").ehlo_domain == "pre_init-init"


@pytest.mark.parametrize(
    ("name", "function"),
    [
        ("listener", "kumo.start_http_listener"),
        ("inject", "kumo.inject_message"),
        ("dkim", "kumo.dkim.rsa_sha256_signer"),
    ],
)
def test_an_mta_only_function_in_a_handler_fails_that_call(
    server: InProcessServer, name: str, function: str
) -> None:
    err = _error(server.target, name)
    assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "HANDLER_ERROR")
    assert err.message.startswith(f"get_egress_source '{name}': {function} is not available")
    with Resolver(server.target, timeout=DEADLINE) as resolver:
        assert resolver.get("still-fine").name == "still-fine"


def test_invoke_from_a_handler_goes_through_the_cache(server: InProcessServer) -> None:
    with Resolver(server.target, timeout=DEADLINE) as resolver:
        first = resolver.get("cached-x").ehlo_domain
        assert resolver.get("via-cached-x").ehlo_domain == first
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.EgressResolverServiceStub(channel)
        explained = stub.ExplainEgressSource(
            pb.ExplainEgressSourceRequest(name="fresh-y"), timeout=DEADLINE
        )
        assert explained.cache_hit is False
        via = stub.ExplainEgressSource(
            pb.ExplainEgressSourceRequest(name="via-other-z"), timeout=DEADLINE
        )
        assert via.source.ehlo_domain.startswith("call-")
        # the invoked name was loaded into the sidecar's cache on the way
        other = stub.ExplainEgressSource(
            pb.ExplainEgressSourceRequest(name="other-z"), timeout=DEADLINE
        )
        assert other.cache_hit is True
        assert other.source.ehlo_domain == via.source.ehlo_domain


def test_bump_config_epoch_drops_everything_and_announces_it(server: InProcessServer) -> None:
    channel, stream = watch(server.target)
    with channel:
        next(stream)  # the hello
        with Resolver(server.target, timeout=DEADLINE) as resolver:
            resolver.get("bump")
        event = next(stream)
        assert event.all is True


def test_the_load_logs_the_ignored_functions_and_the_skipped_check() -> None:
    with ServerProcess("--policy", str(POLICY), "--listen", "127.0.0.1:0") as srv:
        ignored = srv.wait_for_event(
            "policy called functions that only configure kumod; they do nothing here"
        )
        skipped = srv.wait_for_event("validate_config handler skipped")
    assert ignored["functions"] == [
        "kumo.configure_log_hook",
        "kumo.define_spool",
        "kumo.set_lruttl_cache_capacity",
        "kumo.start_esmtp_listener",
    ]
    assert skipped["handler"] == f"{lua_chunk_name(POLICY)}:17"
    assert "kumo.shaping.load is not available in egress-resolver" in str(skipped["error"])


def test_check_reports_the_skipped_handler_and_the_ignored_functions() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "egress_resolver", "check", "--policy", str(POLICY), "order"],
        capture_output=True, text=True, timeout=DEADLINE, check=False,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert out.returncode == 0, out.stdout
    assert report["validation"]["ok"] is True
    shaping, dkim = report["validation"]["skipped"]
    assert "kumo.shaping.load is not available" in shaping
    assert dkim.startswith(f"{lua_chunk_name(POLICY)}:43: kumo.dkim.rsa_sha256_signer is not")
    assert report["validation"]["output"][0].startswith("cannot build the signer: kumo.dkim")
    assert "kumo.define_spool" in report["ignored"]
    assert report["results"][0]["source"]["ehlo_domain"] == "pre_init-init"


def test_a_failing_init_is_a_failed_load() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "egress_resolver", "check", "--policy",
         str(fixture("lifecycle/init_fails.lua"))],
        capture_output=True, text=True, timeout=DEADLINE, check=False,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert out.returncode == 1
    assert report["error"].startswith("init: ")
    assert "the spool directory is missing" in report["error"]


def test_get_event_registrars_gives_each_registration_stack() -> None:
    policy = fixture("lifecycle/registrars.lua")
    settings = Settings(policy=policy, listen=["127.0.0.1:0"])
    with InProcessServer(settings) as srv, Resolver(srv.target, timeout=DEADLINE) as resolver:
        text = resolver.get("r").ehlo_domain
    stacks, missing = text.split("|")
    first, second = stacks.split(";")
    chunk = lua_chunk_name(policy)
    assert first.split(",")[:2] == [f"{chunk}:3", f"{chunk}:5"]
    assert second.split(",")[0] == f"{chunk}:6"
    assert missing == "nil"


def _script(tmp_path: Path, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.lua"
    script.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "egress_resolver", "script", str(script), *args],
        capture_output=True, text=True, timeout=DEADLINE, check=False, cwd=tmp_path,
    )  # fmt: skip


def test_script_runs_the_file_then_main_with_its_arguments(tmp_path: Path) -> None:
    done = _script(
        tmp_path,
        "local kumo = require 'kumo'\n"
        "print('top level')\n"
        "kumo.on('init', function() error('init must not run') end)\n"
        "kumo.on('validate_config', function() error('nor validate_config') end)\n"
        "kumo.on('main', function(a, b) print('main', a, b) print('bin\\255ary') end)\n",
        "one",
        "two",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["top level", "main\tone\ttwo", "bin\\xffary"]


def test_script_failure_exits_1_with_the_lua_error(tmp_path: Path) -> None:
    done = _script(
        tmp_path,
        "local kumo = require 'kumo'\nkumo.on('main', function() error('it broke') end)\n",
    )
    assert done.returncode == 1
    assert "main: " in done.stderr
    assert "it broke" in done.stderr
