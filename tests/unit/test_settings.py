"""Settings: flags over variables over defaults, messages that name the setting."""

import re
from pathlib import Path

import pytest

from egress_resolver.ops.app import api_options
from egress_resolver.ops.settings import Settings, SettingsError, reference_table
from support import REPO


def test_defaults() -> None:
    settings = Settings.from_sources({}, {})
    assert settings.listen == ["127.0.0.1:50051"]
    assert settings.negative_ttl == 60.0
    assert settings.handler_timeout == 1.0
    assert settings.reflection is True
    assert settings.workers == 1


def test_flag_beats_variable_beats_default() -> None:
    env = {"EGRESS_RESOLVER_CACHE_SIZE": "50", "EGRESS_RESOLVER_NEGATIVE_TTL": "5 mins"}
    settings = Settings.from_sources({"cache_size": "7"}, env)
    assert settings.cache_size == 7
    assert settings.negative_ttl == 300.0


def test_zero_durations_need_no_unit() -> None:
    settings = Settings.from_sources({"negative_ttl": "0", "watch_interval": "0s"}, {})
    assert (settings.negative_ttl, settings.watch_interval) == (0.0, 0.0)


def test_the_data_source_limit_reaches_the_lua_api_in_bytes() -> None:
    assert api_options(Settings.from_sources({}, {})).data_source_limit == 16 * 1024 * 1024
    env = {"EGRESS_RESOLVER_DATA_SOURCE_LIMIT_MIB": "4"}
    assert api_options(Settings.from_sources({}, env)).data_source_limit == 4 * 1024 * 1024
    flags = {"data_source_limit_mib": "2"}
    assert api_options(Settings.from_sources(flags, env)).data_source_limit == 2 * 1024 * 1024


def test_list_variables_are_comma_separated() -> None:
    env = {"EGRESS_RESOLVER_LISTEN": "127.0.0.1:1, unix:/tmp/x.sock"}
    assert Settings.from_sources({}, env).listen == ["127.0.0.1:1", "unix:/tmp/x.sock"]
    assert Settings.from_sources({"listen": ["[::1]:2"]}, env).listen == ["[::1]:2"]


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        ({"negative_ttl": "60"}, {}, "--negative-ttl: invalid value '60': "),
        ({}, {"EGRESS_RESOLVER_HANDLER_TIMEOUT": "-1s"}, "EGRESS_RESOLVER_HANDLER_TIMEOUT"),
        ({"cache_size": "0"}, {}, "--cache-size: invalid value '0': must be at least 1"),
        ({"workers": "two"}, {}, "--workers: invalid value 'two'"),
        ({"data_source_limit_mib": "0"}, {}, "--data-source-limit-mib: invalid value '0': must be"),
        ({"log_format": "xml"}, {}, "--log-format: invalid value 'xml': must be 'json' or"),
        ({"reflection": "maybe"}, {}, "--reflection: invalid value 'maybe': must be true or"),
        ({}, {"EGRESS_RESOLVER_LOG_LEVEL": "loud"}, "EGRESS_RESOLVER_LOG_LEVEL: invalid"),
    ],
)
def test_invalid_values_name_the_setting(
    flags: dict[str, object], env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_sources(flags, env)


def test_the_operating_page_settings_table_matches_the_settings_module() -> None:
    page = (REPO / "docs" / "operating.md").read_text()
    table = page.split("<!-- settings:begin -->\n", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert table == reference_table()


def test_config_file_is_below_variables_and_flags(tmp_path: Path) -> None:
    config = tmp_path / "egress.toml"
    config.write_text(
        'policy = "/etc/p.lua"\nlisten = ["unix:/run/e.sock"]\ncache_size = 5\n'
        'negative_ttl = "2 mins"\nreflection = false\nunix_socket_mode = "660"\n'
    )
    settings = Settings.from_sources(
        {"config": str(config), "cache_size": "7"}, {"EGRESS_RESOLVER_NEGATIVE_TTL": "5s"}
    )
    assert settings.policy == Path("/etc/p.lua")
    assert settings.listen == ["unix:/run/e.sock"]
    assert settings.cache_size == 7  # flag over file
    assert settings.negative_ttl == 5.0  # variable over file
    assert settings.reflection is False
    assert settings.unix_socket_mode == 0o660
    from_env = Settings.from_sources({}, {"EGRESS_RESOLVER_CONFIG": str(config)})
    assert from_env.cache_size == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cache_sise = 5\n", "unknown setting 'cache_sise'; expected one of policy, listen"),
        ('listen = "127.0.0.1:1"\n', "listen: expected a list"),
        ("cache_size = 0\n", "egress.toml: cache_size: invalid value '0': must be at least 1"),
        ('negative_ttl = "60"\n', "negative_ttl: invalid value '60': "),
        ("cache_size = [\n", "not valid TOML"),
        ("cache_size = 1.5\n", "unsupported value 1.5"),
    ],
)
def test_config_file_errors_name_the_setting(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "egress.toml"
    config.write_text(text)
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_sources({"config": str(config)}, {})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        Settings.from_sources({"config": str(tmp_path / "absent.toml")}, {})


def test_example_config_file_is_valid() -> None:
    settings = Settings.from_sources(
        {"config": str(REPO / "examples" / "egress-resolver.toml")}, {}
    )
    assert settings.metrics == "127.0.0.1:9464"
    assert settings.listen[1] == "unix:/tmp/egress-resolver.sock"
