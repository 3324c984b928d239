"""kumo.uuid: the Uuid object's fields, the uuid crate's parse, and each version's layout."""

from pathlib import Path

import pytest
import uuid_utils

from support import SHOW_AND_FAILS, validate_config_output

_PRELUDE = SHOW_AND_FAILS


def lua_lines(tmp_path: Path, body: str) -> list[str]:
    """What a validate_config handler running `body` printed, line by line."""
    return validate_config_output(tmp_path, body, _PRELUDE)


def test_the_documented_object(tmp_path: Path) -> None:
    assert lua_lines(
        tmp_path,
        """
        local u = kumo.uuid.parse '69994630-3e27-11ef-91fc-cc28aa0a5c5a'
        show(u)
        show(u.hyphenated)
        show(u.simple)
        show(u.braced)
        show(u.urn)
        show(u.bytes == '\\x69\\x99\\x46\\x30\\x3e\\x27\\x11\\xef'
          .. '\\x91\\xfc\\xcc\\x28\\xaa\\x0a\\x5c\\x5a')
        show(kumo.encode.base64url_nopad_encode(u.bytes))
        show(u.nope)
        show(getmetatable(u).__name)
        fails(function() u.simple = 'x' end)
        """,
    ) == [
        "69994630-3e27-11ef-91fc-cc28aa0a5c5a",
        "69994630-3e27-11ef-91fc-cc28aa0a5c5a",
        "699946303e2711ef91fccc28aa0a5c5a",
        "{69994630-3e27-11ef-91fc-cc28aa0a5c5a}",
        "urn:uuid:69994630-3e27-11ef-91fc-cc28aa0a5c5a",
        "true",
        "aZlGMD4nEe-R_MwoqgpcWg",
        "nil",
        "Uuid",
        "error: Uuid is read-only",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "{69994630-3e27-11ef-91fc-cc28aa0a5c5a}",
        "urn:uuid:69994630-3e27-11ef-91fc-cc28aa0a5c5a",
        "699946303E2711EF91FCCC28AA0A5C5A",
        "69994630-3E27-11EF-91FC-CC28AA0A5C5A",
    ],
)
def test_parse_accepts_the_uuid_crates_forms(tmp_path: Path, text: str) -> None:
    assert lua_lines(tmp_path, f"show(kumo.uuid.parse('{text}').hyphenated)") == [
        "69994630-3e27-11ef-91fc-cc28aa0a5c5a"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nope",
        "69994630-3e27-11ef-91fc-cc28aa0a5c5",  # short
        "6999463-03e27-11ef-91fc-cc28aa0a5c5a",  # hyphen misplaced
        "{699946303e2711ef91fccc28aa0a5c5a}",  # braces around the simple form
        "urn:uuid:699946303e2711ef91fccc28aa0a5c5a",
        "URN:UUID:69994630-3e27-11ef-91fc-cc28aa0a5c5a",
        "69994630-3e27-11ef-91fc-cc28aa0a5c5g",
        " 69994630-3e27-11ef-91fc-cc28aa0a5c5a",
    ],
)
def test_parse_refuses_the_rest(tmp_path: Path, text: str) -> None:
    assert lua_lines(tmp_path, f"fails(kumo.uuid.parse, '{text}')") == [
        "error: kumo.uuid.parse: failed to parse a UUID"
    ]


def test_parse_needs_text(tmp_path: Path) -> None:
    assert lua_lines(tmp_path, "fails(kumo.uuid.parse, nil)") == [
        "error: kumo.uuid.parse: bad argument #1: error converting Lua nil to String "
        "(expected string or number)"
    ]


def test_new_uuids_have_their_versions_layout(tmp_path: Path) -> None:
    out = lua_lines(
        tmp_path,
        """
        for _, v in ipairs { 'new_v1', 'new_v4', 'new_v6', 'new_v7' } do
          local a, b = kumo.uuid[v](), kumo.uuid[v]()
          show(a.simple)
          show(a.hyphenated ~= b.hyphenated)
        end
        """,
    )
    node = f"{uuid_utils.getnode():012x}"
    for version, simple, differs in zip("1467", out[0::2], out[1::2], strict=True):
        assert differs == "true"
        assert len(simple) == 32
        assert simple[12] == version
        assert simple[16] in "89ab"  # the RFC 9562 variant
        if version in "16":
            assert simple[20:] == node  # kumod's v1/v6 carry this machine's MAC address
    v7 = uuid_utils.UUID(hex=out[6])
    assert abs(v7.timestamp - uuid_utils.uuid7().timestamp) < 60_000  # milliseconds
