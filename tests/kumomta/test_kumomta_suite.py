"""KumoMTA's own Lua tests and policy-extras module tests, unmodified, as kumod runs them.

Every one of them must pass: 17 crate tests and 5 module tests. The default DNS
resolver of every test is a dnsmasq started here (`dns_server`, records in
datasources.DNS_RECORDS), never the machine's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from datasources import DnsServer

from kumomta.harness import (
    copy_snapshot,
    crate_tests,
    dns_env,
    module_tests,
    run_crate_test,
    run_module_test,
)

MODULES = ("policy_utils", "typing", "sources", "queue", "listener_domains")


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_snapshot(tmp_path_factory.mktemp("kumomta"))


def test_the_snapshot_holds_what_the_acceptance_names() -> None:
    assert len(crate_tests()) == 17
    assert set(MODULES) <= set(module_tests())


@pytest.mark.parametrize("test", crate_tests())
def test_crate(snapshot: Path, dns_server: DnsServer, test: str) -> None:
    result = run_crate_test(snapshot, test, dns_env(dns_server.address))
    assert result.returncode == 0, result.stderr + result.stdout


@pytest.mark.parametrize("name", MODULES)
def test_policy_extras_module(snapshot: Path, dns_server: DnsServer, name: str) -> None:
    result = run_module_test(snapshot, name, dns_env(dns_server.address))
    assert result.returncode == 0, result.stderr + result.stdout
