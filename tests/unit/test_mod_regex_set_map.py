"""kumo.regex_set_map.new: the first matching pattern's value, Rust syntax, read only."""

import json
from pathlib import Path

from support import SHOW_JSON, validate_config_output


def run(tmp_path: Path, body: str) -> list[str]:
    """What a validate_config handler running `body` printed."""
    return validate_config_output(tmp_path, body, SHOW_JSON)


def test_the_documented_example(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        """
        local map = kumo.regex_set_map.new {
          hello = 'hello', bye = 'bye', later = 'bye', ['Good day'] = 'hello',
        }
        show { map['hello there'], map['goodbye'], map['see you later'], map['Good day!'],
               map['not.set'] or false }
        print(type(map))
        """,
    )
    assert json.loads(out[0]) == ["hello", "bye", "bye", "hello", False]
    assert out[1] == "userdata"


def test_kumods_bounce_classification_case(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        r"""
        local quota = 'The email account that you tried to reach is over quota'
        local inactive = 'Recipient address rejected: this mailbox is inactive and has been '
          .. 'disabled'
        local map = kumo.regex_set_map.new {
          [ [[4\.2\.2 ]] .. quota .. [[\.]] ] = 500,
          [ [[4\.2\.1 <.+>: ]] .. inactive ] = 501,
          [ [[4\.1\.1 <.*> 4.2.2 mailbox full\.]] ] = 502,
        }
        show {
          map['400 4.2.2 ' .. quota] or false,
          map['400 4.2.2 ' .. quota .. '.'],
          map['400 4.2.1 <foo>: ' .. inactive],
          map['400 4.1.1 <bar> 4.2.2 mailbox full.'],
        }
        """,
    )
    assert json.loads(out[0]) == [False, 500, 501, 502]


def test_rust_syntax_and_a_defined_order_when_several_match(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        r"""
        local map = kumo.regex_set_map.new {
          [ [[(?<code>\d{3})\z]] ] = 'ends in a code',
          [ [[^5\d\d]] ] = { kind = 'permanent' },
          ['(?i)quota'] = 'quota',
        }
        -- several patterns match: the one that sorts first answers, every time
        show { map['550 over QUOTA 552'], map['over quota'], map['code 421'],
               map['code 421\n'] or false }
        local v = map['550 x']
        v.kind = 'changed'
        show(map['550 x'])
        """,
    )
    assert json.loads(out[0]) == ["ends in a code", "quota", "ends in a code", False]
    assert json.loads(out[1]) == {"kind": "permanent"}


def test_empty_read_only_and_errors(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        """
        local empty = kumo.regex_set_map.new()
        print(empty['anything'])
        print(pcall(function() empty['x'] = 1 end))
        print(pcall(kumo.regex_set_map.new, { ['('] = 1 }))
        print(pcall(kumo.regex_set_map.new, 'x'))
        print(pcall(kumo.regex_set_map.new, { x = print }))
        """,
    )
    assert out[0] == "nil"
    assert out[1] == (
        "false\tkumo.regex_set_map map: a regex set map cannot change after "
        "kumo.regex_set_map.new; build the whole table first"
    )
    assert out[2].startswith("false\tcompiling rules: '(': missing ), unterminated subpattern")
    assert out[3] == "false\tkumo.regex_set_map.new: expected a table of entries, got a string"
    assert out[4] == "false\tkumo.regex_set_map.new: a function value cannot be stored in a map"


def test_memoize_caches_a_regex_set_map(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        """
        local calls = 0
        local rules = kumo.memoize(function()
          calls = calls + 1
          return kumo.regex_set_map.new { ['^4'] = 'transient' }
        end, { name = 'test_mod_regex_set_map', ttl = '1 minute', capacity = 1 })
        show { rules()['421 later'], rules()['421 later'], calls }
        """,
    )
    assert json.loads(out[0]) == ["transient", "transient", 1]
