"""kumo.encode: RFC 4648 vectors, binary round trips, data-encoding's strictness, charsets."""

import base64
from pathlib import Path

import pytest

from egress_resolver.kumo_api import mod_encode
from support import SHOW_AND_FAILS, validate_config_output

_PRELUDE = SHOW_AND_FAILS + "local hex = kumo.encode.hex_encode\n"

CODECS = [
    "base32",
    "base32_nopad",
    "base32hex",
    "base32hex_nopad",
    "base64",
    "base64_nopad",
    "base64url",
    "base64url_nopad",
    "hex",
]


def lua_lines(tmp_path: Path, body: str) -> list[str]:
    """What a validate_config handler running `body` printed, line by line."""
    return validate_config_output(tmp_path, body, _PRELUDE)


def test_rfc4648_vectors(tmp_path: Path) -> None:
    body = (
        "\n".join(f"show(kumo.encode.{name}_encode('foobar'))" for name in CODECS)
        + "\nshow(kumo.encode.base64_encode(''))"
    )
    assert lua_lines(tmp_path, body) == [
        "MZXW6YTBOI======",
        "MZXW6YTBOI",
        "CPNMUOJ1E8======",
        "CPNMUOJ1E8",
        "Zm9vYmFy",
        "Zm9vYmFy",
        "Zm9vYmFy",
        "Zm9vYmFy",
        "666f6f626172",
        "",
    ]


@pytest.mark.parametrize("name", CODECS)
def test_binary_round_trips(tmp_path: Path, name: str) -> None:
    data = bytes(range(256)) + b"\xff\xfe"
    literal = "".join(f"\\x{b:02x}" for b in data)
    out = lua_lines(
        tmp_path,
        f"""
        local data = '{literal}'
        local encoded = kumo.encode.{name}_encode(data)
        show(encoded)
        show(kumo.encode.{name}_decode(encoded) == data)
        show(kumo.encode.{name}_decode('') == '')
        """,
    )
    assert out == [mod_encode.encode(name, data).decode(), "true", "true"]
    assert mod_encode.decode(name, out[0]) == data


def test_binary_encodings_match_pythons(tmp_path: Path) -> None:
    assert lua_lines(tmp_path, r"show(kumo.encode.base64url_encode('\xfb\xff\xbf'))") == [
        base64.urlsafe_b64encode(b"\xfb\xff\xbf").decode()
    ]


def test_decoding_is_as_strict_as_data_encoding(tmp_path: Path) -> None:
    assert lua_lines(
        tmp_path,
        """
        show(kumo.encode.base64_decode('MmVtYWlsLmxvZwAuY3N2'))
        show(kumo.encode.base64_decode('MmVtYWlsLmxvZwAuY3N2==='))
        show(kumo.encode.base32_decode('MZXW6YQ'))
        show(hex(kumo.encode.hex_decode(1234)))
        fails(kumo.encode.base64_decode, 'AAB=')
        fails(kumo.encode.base64_decode, 'AAAAA')
        fails(kumo.encode.base64_decode, 'AA\\nA')
        fails(kumo.encode.base64_nopad_decode, 'AA==')
        fails(kumo.encode.base64_decode, '-_')
        fails(kumo.encode.base64url_decode, '+/')
        fails(kumo.encode.base32_decode, 'mzxw6yq')
        fails(kumo.encode.base32_decode, 'MZX')
        fails(kumo.encode.hex_decode, 'ABCD')
        fails(kumo.encode.hex_decode, 'abc')
        fails(kumo.encode.hex_decode, nil)
        fails(kumo.encode.hex_decode, '\\xff')
        fails(kumo.encode.base64_encode, 12)
        fails(kumo.encode.base64_encode)
        """,
    ) == [
        "2email.log\x00.csv",
        "2email.log\x00.csv",
        "foob",
        "1234",
        "error: kumo.encode.base64_decode: non-zero trailing bits at 2",
        "error: kumo.encode.base64_decode: invalid length at 4",
        "error: kumo.encode.base64_decode: invalid symbol at 2",
        "error: kumo.encode.base64_nopad_decode: invalid symbol at 2",
        "error: kumo.encode.base64_decode: invalid symbol at 0",
        "error: kumo.encode.base64url_decode: invalid symbol at 0",
        "error: kumo.encode.base32_decode: invalid symbol at 0",
        "error: kumo.encode.base32_decode: invalid length at 2",
        "error: kumo.encode.hex_decode: invalid symbol at 0",
        "error: kumo.encode.hex_decode: invalid length at 2",
        "error: kumo.encode.hex_decode: bad argument #1: error converting Lua nil to String "
        "(expected string or number)",
        "error: kumo.encode.hex_decode: bad argument #1: error converting Lua string to String "
        "(invalid utf-8 sequence)",
        "error: kumo.encode.base64_encode: parameter must be a string",
        "error: kumo.encode.base64_encode: parameter must be a string",
    ]


def test_charsets(tmp_path: Path) -> None:
    assert lua_lines(
        tmp_path,
        """
        show(kumo.encode.charset_decode('iso-8859-1', '\\xa9'))
        show(hex(kumo.encode.charset_encode('iso-8859-1', '©')))
        show(hex(kumo.encode.charset_encode('LATIN1', '€')))
        show(kumo.encode.charset_decode('windows-1252', '\\x80\\x81') == '€\\u{81}')
        show(hex(kumo.encode.charset_encode('cp1252', '\\u{81}')))
        show(kumo.encode.charset_decode('Shift_JIS', '\\x82\\xa0'))
        show(hex(kumo.encode.charset_encode('sjis', 'あ')))
        show(kumo.encode.charset_decode('koi8-r', '\\xc1'))
        show(kumo.encode.charset_decode('gbk', '\\xc4\\xe3'))
        show(hex(kumo.encode.charset_encode('utf-16le', 'a€')))
        show(hex(kumo.encode.charset_encode('utf-16be', 'a')))
        show(kumo.encode.charset_decode('iso-8859-2', '\\xef\\xbb\\xbf\\xc3\\xa9'))
        show(hex(kumo.encode.charset_encode('ascii', '©')))
        show(kumo.encode.charset_encode('iso-8859-2', '©x'))
        show(kumo.encode.charset_encode('iso-8859-2', '©x', true))
        fails(kumo.encode.charset_encode, 'iso-8859-2', '©x', false)
        fails(kumo.encode.charset_decode, 'ascii', 'ab\\xa9')
        fails(kumo.encode.charset_decode, 'utf-8', '\\xff')
        fails(kumo.encode.charset_decode, 'utf-8', 'ab\\xff')
        fails(kumo.encode.charset_decode, 'iso-8859-1 ', 'a')
        fails(kumo.encode.charset_encode, 'klingon', 'a')
        show(kumo.encode.charset_encode('iso-8859-2', '©', 0))
        """,
    ) == [
        "©",
        "a9",
        "80",
        "true",
        "81",
        "あ",
        "82a0",
        "\u0430",  # CYRILLIC SMALL LETTER A
        "你",
        "6100ac20",
        "0061",
        "é",
        "c2a9",
        "&#169;x",
        "&#169;x",
        "error: kumo.encode.charset_encode: input string did not encode into iso-8859-2 bytes: "
        "encoding replaced chars. used=ISO-8859-2, [26, 23, 31, 36, 39, 3b, 78]",
        "error: kumo.encode.charset_decode: input string did not decode from ascii bytes: "
        "8-bit input detected as index 2",
        "error: kumo.encode.charset_decode: input string did not decode from utf-8 bytes: "
        "invalid sequence at 1",
        "error: kumo.encode.charset_decode: input string did not decode from utf-8 bytes: "
        "incomplete sequence at 3",
        "error: kumo.encode.charset_decode: unknown charset iso-8859-1 ",
        "error: kumo.encode.charset_encode: unknown charset klingon",
        "&#169;",  # any true value (mlua reads a bool as Lua truth) ignores errors
    ]
