"""The kumo module: require, helpers, logging, aliases, __pairs, and file tracking."""

import pytest

from egress_resolver.runtime.lua_host import PolicyHost
from support import fixture


@pytest.fixture(scope="module")
def helpers() -> PolicyHost:
    return PolicyHost(fixture("helpers.lua"))


@pytest.mark.parametrize(
    ("name", "ehlo"),
    [
        ("toml", None),
        ("json", "from-json"),
        ("yaml", "from-yaml"),
        ("json_parse", "deep"),
        ("toml_parse", "from-toml"),
        ("yaml_parse", "two"),
        ("json_encode", '{"list":[1,2,3]}'),
        ("json_encode_pretty", '{\n  "a": 1\n}'),
        ("extras", "from-extras"),
    ],
)
def test_helpers(helpers: PolicyHost, name: str, ehlo: str | None) -> None:
    source = helpers.resolve_source(name)
    if name == "toml":
        return
    assert source.ehlo_domain == ehlo


def test_toml_load_values(helpers: PolicyHost) -> None:
    # data.toml's address travels through Lua as a string value
    assert helpers.resolve_source("pairs").source_address == "10.9.9.9"


def test_define_egress_source_alias(helpers: PolicyHost) -> None:
    assert helpers.resolve_source("alias").name == "alias"


def test_loaded_files_are_tracked(helpers: PolicyHost) -> None:
    names = {f.name for f in helpers.files}
    assert {"helpers.lua", "data.toml", "data.json", "data.yaml", "sample.lua"} <= names


def test_log_functions_write_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    PolicyHost(fixture("helpers.lua"))
    err = capsys.readouterr().out + capsys.readouterr().err
    assert "helpers policy loaded 42 true" in err


def test_lua_path_directories_are_searched(tmp_path: object) -> None:
    from pathlib import Path

    base = Path(str(tmp_path))
    (base / "lib" / "mine").mkdir(parents=True)
    (base / "lib" / "mine" / "init.lua").write_text("return { value = 'from-lua-path' }\n")
    policy = base / "p.lua"
    policy.write_text(
        "local mine = require 'mine'\n"
        "kumo.on('get_egress_source', function(name)\n"
        "  return kumo.make_egress_source { name = name, ehlo_domain = mine.value }\n"
        "end)\n"
    )
    host = PolicyHost(policy, lua_paths=[base / "lib"])
    assert host.resolve_source("x").ehlo_domain == "from-lua-path"


def test_missing_data_file_is_a_clear_error(tmp_path: object) -> None:
    from pathlib import Path

    from egress_resolver.kumo_api import PolicyLoadError

    policy = Path(str(tmp_path)) / "p.lua"
    policy.write_text("kumo.toml_load 'nope.toml'\n")
    with pytest.raises(PolicyLoadError, match=r"cannot read nope\.toml"):
        PolicyHost(policy)
