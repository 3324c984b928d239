"""kumo.digest: every algorithm, arguments fed as bytes or JSON, BinaryResult fields, HMAC keys."""

import hashlib
import hmac
import zlib
from pathlib import Path

import pytest

from egress_resolver.kumo_api.mod_digest import DIGESTS, HMACS
from support import SHOW_AND_FAILS, validate_config_output

_PRELUDE = SHOW_AND_FAILS


def lua_lines(tmp_path: Path, body: str) -> list[str]:
    """What a validate_config handler running `body` printed, line by line."""
    return validate_config_output(tmp_path, body, _PRELUDE)


@pytest.mark.parametrize("name", DIGESTS)
def test_each_digest_of_text_and_binary(tmp_path: Path, name: str) -> None:
    out = lua_lines(
        tmp_path,
        f"""
        show(kumo.digest.{name}('foo').hex)
        show(kumo.digest.{name}('\\xff\\x00', 'é').hex)
        show(kumo.digest.{name}().hex)
        """,
    )
    assert out == [
        hashlib.new(name, b"foo").hexdigest(),
        hashlib.new(name, b"\xff\x00" + "é".encode()).hexdigest(),
        hashlib.new(name, b"").hexdigest(),
    ]


def test_the_documented_binary_result(tmp_path: Path) -> None:
    assert lua_lines(
        tmp_path,
        """
        local d = kumo.digest.sha1 'hello'
        show(tostring(d) == d.hex)
        show(d.hex)
        show(d.bytes == '\\xaa\\xf4\\xc6\\x1d\\xdc\\xc5\\xe8\\xa2\\xda\\xbe'
          .. '\\xde\\x0f\\x3b\\x48\\x2c\\xd9\\xae\\xa9\\x43\\x4d')
        for _, f in ipairs { 'base32', 'base32_nopad', 'base32hex', 'base32hex_nopad', 'base64',
                             'base64_nopad', 'base64url', 'base64url_nopad' } do
          show(d[f])
        end
        show(d.nope)
        fails(function() d.hex = 'x' end)
        """,
    ) == [
        "true",
        "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d",
        "true",
        "VL2MMHO4YXUKFWV63YHTWSBM3GXKSQ2N",
        "VL2MMHO4YXUKFWV63YHTWSBM3GXKSQ2N",
        "LBQCC7ESONKA5MLURO7JMI1CR6NAIGQD",
        "LBQCC7ESONKA5MLURO7JMI1CR6NAIGQD",
        "qvTGHdzF6KLavt4PO0gs2a6pQ00=",
        "qvTGHdzF6KLavt4PO0gs2a6pQ00",
        "qvTGHdzF6KLavt4PO0gs2a6pQ00=",
        "qvTGHdzF6KLavt4PO0gs2a6pQ00",
        "nil",
        "error: BinaryResult is read-only",
    ]


def test_arguments_other_than_strings_are_fed_as_json(tmp_path: Path) -> None:
    out = lua_lines(
        tmp_path,
        """
        show(kumo.digest.sha256('a', 1, true, nil, 1.5, { 1, 'x' }, { k = 'v' }, {}).hex)
        show(kumo.digest.crc32('a', 2).hex)
        fails(kumo.digest.sha256, { f = print })
        """,
    )
    fed = b'a1truenull1.5[1,"x"]{"k":"v"}{}'
    assert out[0] == hashlib.sha256(fed).hexdigest()
    assert out[1] == f"{zlib.crc32(b'a2'):08x}"
    assert out[2].startswith("error: kumo.digest.sha256: cannot encode an argument as JSON")


def test_crc32_is_four_big_endian_bytes(tmp_path: Path) -> None:
    assert lua_lines(
        tmp_path,
        """
        local c = kumo.digest.crc32 'something'
        show(c.hex)
        show(#c.bytes)
        show(c.base64)
        """,
    ) == ["09da31fb", "4", "Cdox+w=="]


@pytest.mark.parametrize("name", HMACS)
def test_hmac_with_each_keysource(tmp_path: Path, name: str) -> None:
    (tmp_path / "hmac.key").write_bytes(b"\x00file key\xff")
    out = lua_lines(
        tmp_path,
        f"""
        show(kumo.digest.hmac_{name}({{ key_data = 'your key' }}, 'your message').hex)
        show(kumo.digest.hmac_{name}({{ key_data = '\\xff\\x01' }}, '\\x00\\xfe').hex)
        show(kumo.digest.hmac_{name}('hmac.key', 42).base64)
        """,
    )
    import base64

    assert out == [
        hmac.new(b"your key", b"your message", name).hexdigest(),
        hmac.new(b"\xff\x01", b"\x00\xfe", name).hexdigest(),
        base64.b64encode(hmac.new(b"\x00file key\xff", b"42", name).digest()).decode(),
    ]


def test_hmac_documented_values_and_errors(tmp_path: Path) -> None:
    assert lua_lines(
        tmp_path,
        """
        show(kumo.digest.hmac_sha1({ key_data = 'your key' }, 'your message').hex)
        fails(kumo.digest.hmac_sha256, 'missing.key', 'm')
        fails(kumo.digest.hmac_sha256, { vault_path = 'x' }, 'm')
        fails(kumo.digest.hmac_sha256, { key_data = 'k' }, nil)
        """,
    ) == [
        "317d0dfd868a5c06c9444ac1328aa3e2bfd29fb2",
        "error: kumo.digest.hmac_sha256: KeySource failed to load data from file `missing.key`: "
        "No such file or directory (os error 2)",
        "error: kumo.digest.hmac_sha256: HashiCorp Vault key sources are not supported by "
        "egress-resolver (it has no Vault client); use a file path or { key_data = ... }",
        "error: kumo.digest.hmac_sha256: bad argument #2: error converting Lua nil to string "
        "(expected string or number)",
    ]
