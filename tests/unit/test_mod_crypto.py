"""kumo.crypto: AES blocks with KeySource keys, BinaryResult, and AWS SigV4 as kumod signs."""

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from egress_resolver.kumo_api import aws_sigv4, kumo_time
from egress_resolver.runtime.lua_host import PolicyHost

Printer = Callable[[str], list[str]]

# Lua helpers for binary data, without kumo.encode.
HEX = """
local function unhex(h)
  return (h:gsub('..', function(c) return string.char(tonumber(c, 16)) end))
end
local function hex(s)
  return (s:gsub('.', function(c) return string.format('%02x', c:byte()) end))
end
"""


@pytest.fixture
def lua(tmp_path: Path) -> Printer:
    """Run Lua in a validate_config handler; the lines it printed."""

    def run(body: str) -> list[str]:
        policy = tmp_path / "policy.lua"
        policy.write_text(f"{HEX}\nkumo.on('validate_config', function()\n{body}\nend)\n")
        validation = PolicyHost(policy).validate_config()
        assert validation.error is None, validation.error
        return [re.sub(r"\S*policy\.lua:", "policy.lua:", line) for line in validation.output]

    return run


def test_ecb_matches_the_nist_vector_and_round_trips(lua: Printer) -> None:
    # NIST SP 800-38A F.1.1: AES-128 ECB of one block; PKCS#7 then adds a whole block.
    out = lua(
        """
        local key = { key = { key_data = unhex '2b7e151628aed2a6abf7158809cf4f3c' } }
        local plain = unhex '6bc1bee22e409f96e93d7e117393172a'
        local sealed = kumo.crypto.aes_encrypt_block('Ecb', plain, key)
        print(type(sealed), #sealed, hex(sealed):sub(1, 32))
        local opened = kumo.crypto.aes_decrypt_block('Ecb', sealed, key)
        print(opened.bytes == plain, opened.hex)
        """
    )
    assert out == [
        "string\t32\t3ad77bb40d7a3660a89ecaf32466ef97",
        "true\t6bc1bee22e409f96e93d7e117393172a",
    ]


def test_cbc_puts_a_fresh_iv_first(lua: Printer) -> None:
    out = lua(
        """
        local key = { key = { key_data = unhex(string.rep('603deb1015ca71be', 4)) } }
        local binary = string.char(0, 1, 2, 255, 254, 128, 0)
        local a = kumo.crypto.aes_encrypt_block('Cbc', binary, key)
        local b = kumo.crypto.aes_encrypt_block('Cbc', binary, key)
        print(#a, a ~= b, a:sub(1, 16) ~= b:sub(1, 16))
        print(kumo.crypto.aes_decrypt_block('Cbc', a, key).bytes == binary,
              kumo.crypto.aes_decrypt_block('Cbc', b, key).bytes == binary)
        print(#kumo.crypto.aes_encrypt_block('Cbc', '', key))
        """
    )
    assert out == ["32\ttrue\ttrue", "true\ttrue", "32"]


def test_keys_come_from_keysources(lua: Printer, tmp_path: Path) -> None:
    (tmp_path / "aes.key").write_bytes(bytes(range(16)))
    out = lua(
        """
        local sealed = kumo.crypto.aes_encrypt_block('Ecb', 'from a file', { key = 'aes.key' })
        local inline = { key = { key_data = unhex '000102030405060708090a0b0c0d0e0f' } }
        print(kumo.crypto.aes_decrypt_block('Ecb', sealed, inline).bytes)
        print(#kumo.secrets.load { key_data = string.char(255, 0, 1) })
        """
    )
    assert out == ["from a file", "3"]


def test_binary_result_fields(lua: Printer) -> None:
    out = lua(
        """
        local key = { key = { key_data = '1234567890abcdef' } }
        local r = kumo.crypto.aes_decrypt_block('Ecb',
          kumo.crypto.aes_encrypt_block('Ecb', 'hello?', key), key)
        print(tostring(r), r.bytes, r.hex, r.base64, r.base64_nopad, r.base64url,
              r.base64url_nopad, r.base32, r.base32_nopad, r.base32hex, r.base32hex_nopad,
              r.other, type(r))
        """
    )
    assert out == [
        "68656c6c6f3f\thello?\t68656c6c6f3f\taGVsbG8/\taGVsbG8/\taGVsbG8_\taGVsbG8_\t"
        "NBSWY3DPH4======\tNBSWY3DPH4\tD1IMOR3F7S======\tD1IMOR3F7S\tnil\ttable"
    ]


def test_aes_errors_use_kumods_wording(lua: Printer) -> None:
    out = lua(
        """
        local key = { key = { key_data = '1234567890abcdef' } }
        local function show(...) print(select(2, pcall(...))) end
        show(kumo.crypto.aes_encrypt_block, 'cbc', 'x', key)
        show(kumo.crypto.aes_encrypt_block, 'Cbc', 'x', { key = { key_data = 'short' } })
        show(kumo.crypto.aes_encrypt_block, 'Cbc', 'x', {})
        show(kumo.crypto.aes_encrypt_block, 'Cbc', 'x', 'key.bin')
        show(kumo.crypto.aes_encrypt_block, 'Cbc', nil, key)
        show(kumo.crypto.aes_encrypt_block, 'Ecb', 'x', { key = 'missing.key' })
        show(kumo.crypto.aes_encrypt_block, 'Ecb', 'x', { key = { vault_path = 'p' } })
        show(kumo.crypto.aes_decrypt_block, 'Cbc', 'too short', key)
        show(kumo.crypto.aes_decrypt_block, 'Ecb', '0123456789abcdef', key)
        show(kumo.crypto.aes_decrypt_block, 'Cbc', string.rep('x', 20), key)
        """
    )
    enc, dec = "kumo.crypto.aes_encrypt_block", "kumo.crypto.aes_decrypt_block"
    wrong = "the data is not a whole number of blocks, or its padding is wrong (wrong key?)"
    assert out == [
        f"{enc}: unknown variant `cbc`, expected `Ecb` or `Cbc`",
        f"{enc}: Key length must be 16 or 32 bytes",
        f"{enc}: missing field `key`",
        f"{enc}: expected {{ key = KEYSOURCE }}, got 'key.bin'",
        f"{enc}: expected a string to work on, got a nil",
        "KeySource failed to load data from file `missing.key`: "
        "No such file or directory (os error 2)",
        f"{enc}: HashiCorp Vault key sources are not supported by egress-resolver "
        "(it has no Vault client); use a file path or { key_data = ... }",
        f"{dec}: ciphertext must be prefixed by iv with len at least 16",
        f"{dec}: Decryption failed with AES ECB mode: {wrong}",
        f"{dec}: Decryption failed with AES CBC mode: {wrong}",
    ]


SIGN = """
local function sign(extra)
  local params = {
    access_key = { key_data = 'AKIDEXAMPLE' },
    secret_key = { key_data = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
    region = 'us-east-1', service = 'service', method = 'GET', uri = '/',
    headers = { host = 'example.amazonaws.com' },
    timestamp = '2015-08-30T12:36:00Z',
  }
  for k, v in pairs(extra or {}) do params[k] = v end
  if extra and extra.no_timestamp then params.timestamp = nil; params.no_timestamp = nil end
  return kumo.crypto.aws_sign_v4(params)
end
local function show(result) print(kumo.json_encode(result)) end
"""


def _signed(lua: Printer, body: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in lua(SIGN + body)]


def test_aws_sign_v4_matches_the_aws_test_suite(lua: Printer) -> None:
    get, post = _signed(lua, "show(sign())\nshow(sign { method = 'POST' })")
    assert get == {
        "authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
        "aws4_request, SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "timestamp": "20150830T123600Z",
        "signature": "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "canonical_request": "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z"
        "\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "string_to_sign": "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/"
        "aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
    }
    assert post["signature"] == "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"


def test_aws_sign_v4_headers_query_and_service_rules(lua: Printer) -> None:
    mixed, s3, token, query, spaced = _signed(
        lua,
        """
        show(sign { headers = { Host = 'example.amazonaws.com' } })
        show(sign { service = 's3', uri = '/my bucket/a+b.txt', payload = 'body' })
        show(sign { session_token = 'TOKEN' })
        show(sign { query_params = { b = 'x y', a = 'caf\\u{e9}/^' } })
        show(sign { headers = { host = 'h', ['X-Custom'] = '  a   b  "c   d"  ' } })
        """,
    )
    assert mixed["signature"] == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    assert s3["canonical_request"].splitlines()[:2] == ["GET", "/my%20bucket/a%2Bb.txt"]
    body_hash = "230d8358dc8e8890b4c58deeb62912ee2f20357ae92a5cc861b98e68fe31acb5"
    assert f"x-amz-content-sha256:{body_hash}" in s3["canonical_request"]
    assert s3["canonical_request"].endswith(f"\nhost;x-amz-content-sha256;x-amz-date\n{body_hash}")
    assert "SignedHeaders=host;x-amz-date;x-amz-security-token," in token["authorization"]
    assert "\nx-amz-security-token:TOKEN\n" in token["canonical_request"]
    assert query["canonical_request"].splitlines()[2] == "a=caf%C3%A9%2F^&b=x%20y"
    assert '\nx-custom:a b "c   d"\n' in spaced["canonical_request"]


def test_aws_sign_v4_timestamps(lua: Printer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kumo_time, "WALL_CLOCK", lambda: 1_440_938_160 * 10**9 + 123)
    now, as_time = _signed(
        lua,
        """
        show(sign { no_timestamp = true })
        show(sign { timestamp = kumo.time.with_ymd_hms(2015, 8, 30, 12, 36, 0) })
        """,
    )
    assert now["timestamp"] == as_time["timestamp"] == "20150830T123600Z"
    assert now["signature"] == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"


def test_aws_sign_v4_errors(lua: Printer) -> None:
    out = lua(
        SIGN
        + """
        local function fails(extra) print(select(2, pcall(sign, extra))) end
        fails { headers = { ['content-type'] = 'text/plain' } }
        fails { region = 5 }
        fails { query_params = { Version = 2 } }
        fails { headers = 'host' }
        fails { timestamp = 'yesterday' }
        fails { timestamp = 1440938160 }
        fails { secret_key = { key_data = string.char(255) } }
        fails { access_key = { vault_mount = 'm', vault_path = 'p' } }
        print(select(2, pcall(kumo.crypto.aws_sign_v4, { region = 'r' })))
        print(select(2, pcall(kumo.crypto.aws_sign_v4, 'params')))
        """
    )
    where = "kumo.crypto.aws_sign_v4"
    assert out == [
        f"{where}: headers must include 'host'",
        f"{where}: region: expected a string, got 5",
        f"{where}: query_params: expected string keys and values, got 'Version' = 2",
        f"{where}: headers: expected a table of strings",
        f"{where}: timestamp: input contains invalid characters",
        f"{where}: timestamp: expected an RFC 3339 string or a Time",
        f"{where}: secret_key must be valid UTF-8",
        f"{where}: HashiCorp Vault key sources are not supported by egress-resolver "
        "(it has no Vault client); use a file path or { key_data = ... }",
        f"{where}: missing field `access_key`",
        f"{where}: expected a table of parameters, got string",  # pcall'd: no line to blame
    ]


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("test", "test"),
        ("test value", "test%20value"),
        ("a/b", "a%2Fb"),
        ("-_.~", "-_.~"),
        ("<>^`{|}", "<>^`{|}"),  # kumod's set leaves these as they are
        ("é", "%C3%A9"),
        ("\x7f\x00", "%7F%00"),
    ],
)
def test_uri_encoding_is_kumods(text: str, encoded: str) -> None:
    assert aws_sigv4.uri_encode(text) == encoded


@pytest.mark.parametrize(
    ("value", "trimmed"),
    [
        ("  foo  ", "foo"),
        ("foo   bar  baz", "foo bar baz"),
        ("\tfoo\t\tbar\t", "foo bar"),
        ('  a   "keep  these   spaces"   b  ', 'a "keep  these   spaces" b'),
        ("", ""),
        ("   ", ""),
    ],
)
def test_trimall(value: str, trimmed: str) -> None:
    assert aws_sigv4.trimall(value) == trimmed


def test_signing_key_derivation_matches_the_aws_example() -> None:
    key = aws_sigv4.signing_key(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "iam"
    )
    assert key.hex() == "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
