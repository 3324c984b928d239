"""require 'sqlite': kumod's shapes, parameters, a locked file, close."""

import json
import sqlite3
import time
from pathlib import Path

import pytest

from egress_resolver.definitions.errors import Reason, ResolveError
from egress_resolver.kumo_api import ApiOptions
from egress_resolver.runtime.lua_host import PolicyHost


def printed(tmp_path: Path, body: str) -> list[str]:
    """What a validate_config handler running `body` printed."""
    policy = tmp_path / "policy.lua"
    policy.write_text(
        "local sqlite = require 'sqlite'\n"
        "local function show(v) print(kumo.json_encode(v)) end\n"
        f"kumo.on('validate_config', function()\n{body}\nend)\n"
    )
    validation = PolicyHost(policy).validate_config()
    assert validation.error is None, validation.error
    return validation.output


def test_results_are_shaped_as_kumod_shapes_them(tmp_path: Path) -> None:
    out = printed(
        tmp_path,
        """
        local db = sqlite.open 'people.db'
        show(db:execute 'CREATE TABLE people (name, age)')
        show(db:execute('INSERT INTO people (name, age) values (?, ?)', 'john', 42))
        show(db:execute('INSERT INTO people (name, age) values (:name, :age)',
                        { name = 'fred', age = 32 }))
        show(db:execute('INSERT INTO people (name, age) values (?, ?)', { 'ann', 1.5 }))
        show(db:execute 'select age from people order by age')
        show(db:execute 'select name, age from people order by age')
        show(db:execute('select name from people where age > ?', 100))
        show(db:execute 'delete from people')
        """,
    )
    assert [json.loads(line) for line in out] == [
        0,
        1,
        1,
        1,
        [1.5, 32, 42],
        [{"name": "ann", "age": 1.5}, {"name": "fred", "age": 32}, {"name": "john", "age": 42}],
        {},  # no rows: an empty table (json_encode writes an empty table as {})
        3,
    ]
    assert (tmp_path / "people.db").exists()  # relative to the policy's directory


def test_bad_parameters_and_closed_connections_are_errors(tmp_path: Path) -> None:
    out = printed(
        tmp_path,
        """
        local db = sqlite.open ':memory:'
        print(pcall(db.execute, db, 'select ?', true))
        print(pcall(db.execute, db, 'select nope from nowhere'))
        db:close()
        print(pcall(db.execute, db, 'select 1'))
        """,
    )
    assert "only numbers, strings and nil can be passed as parameter values" in out[0]
    assert out[1].startswith("false")
    assert "no such table: nowhere" in out[1]
    assert out[2].startswith("false")
    assert "connection was closed" in out[2]


def test_a_locked_database_is_a_data_source_error_within_its_busy_timeout(tmp_path: Path) -> None:
    db = tmp_path / "sources.db"
    with sqlite3.connect(db) as setup:
        setup.execute("CREATE TABLE sources (name, source_address, ehlo_domain)")
        setup.execute("INSERT INTO sources VALUES ('ip-1', '10.0.0.1', 'a.example')")
    policy = tmp_path / "policy.lua"
    policy.write_text((Path(__file__).parent.parent / "fixtures/live/sqlite.lua").read_text())
    host = PolicyHost(policy, handler_timeout=5.0)
    assert host.resolve_source("ip-1").source_address == "10.0.0.1"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(ResolveError) as caught:
            host.resolve_source("ip-1")
        elapsed = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert caught.value.reason is Reason.DATA_SOURCE_ERROR
    assert caught.value.code.name == "FAILED_PRECONDITION"
    assert "sqlite: database is locked" in caught.value.message
    assert 0.15 < elapsed < 3.0  # the policy's busy timeout is 200 ms
    assert host.resolve_source("ip-1").ehlo_domain == "a.example"  # the lock is gone: answers again


def test_missing_rows_are_not_found(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "sources.db") as setup:
        setup.execute("CREATE TABLE sources (name, source_address, ehlo_domain)")
    policy = tmp_path / "policy.lua"
    policy.write_text((Path(__file__).parent.parent / "fixtures/live/sqlite.lua").read_text())
    with pytest.raises(ResolveError) as caught:
        PolicyHost(policy).resolve_source("ghost")
    assert caught.value.reason is Reason.SOURCE_NOT_FOUND


def test_a_result_over_the_data_source_limit_fails_the_call(tmp_path: Path) -> None:
    limit = 1024 * 1024
    with sqlite3.connect(tmp_path / "sources.db") as setup:
        setup.execute("CREATE TABLE sources (name, source_address, padding)")
        setup.execute("INSERT INTO sources VALUES ('ip-1', '10.0.0.1', '')")
        rows = [("many", "10.0.0.2", "p" * 100)] * 10_000  # ~1.5 MB as Python holds it
        setup.executemany("INSERT INTO sources VALUES (?, ?, ?)", rows)
        setup.execute("INSERT INTO sources VALUES ('huge', '10.0.0.3', zeroblob(?))", (limit + 1,))
        setup.execute("INSERT INTO sources VALUES ('fits', '10.0.0.4', zeroblob(?))", (limit // 2,))
    policy = tmp_path / "policy.lua"
    policy.write_text(
        """
        local db = require('sqlite').open 'sources.db'
        kumo.on('get_egress_source', function(name)
          local sql = 'SELECT source_address, padding FROM sources WHERE name = ?'
          local rows = db:execute(sql, name)
          return kumo.make_egress_source { name = name, source_address = rows[1].source_address }
        end)
        """
    )
    host = PolicyHost(policy, handler_timeout=30.0, options=ApiOptions(data_source_limit=limit))
    for name, what in (("many", "the result"), ("huge", "a value")):
        with pytest.raises(ResolveError) as caught:
            host.resolve_source(name)
        assert caught.value.reason is Reason.DATA_SOURCE_ERROR, caught.value.message
        assert caught.value.code.name == "FAILED_PRECONDITION"
        assert (
            f"sqlite: {what} is larger than the data source limit of 1 MiB "
            "(--data-source-limit-mib)" in caught.value.message
        )
        assert host.resolve_source("ip-1").source_address == "10.0.0.1"  # the connection goes on
    assert host.resolve_source("fits").source_address == "10.0.0.4"
