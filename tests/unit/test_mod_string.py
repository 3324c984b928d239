"""kumo.string: Rust's str methods (edge cases included), wrap, psl_*, eval_template."""

from pathlib import Path

import pytest

from support import validate_config_output

_PRELUDE = """
local function show(v)
  if type(v) == 'table' and getmetatable(v) == nil then print(kumo.json_encode(v))
  elseif type(v) == 'string' then print(string.format('%q', v))
  else print(tostring(v)) end
end
local function fails(f, ...)
  local ok, err = pcall(f, ...)
  print(ok and 'no error' or 'error: ' .. tostring(err))
end
"""


def lua_lines(tmp_path: Path, body: str) -> list[str]:
    """What a validate_config handler running `body` printed, line by line."""
    return validate_config_output(tmp_path, body, _PRELUDE)


def show(tmp_path: Path, *exprs: str) -> list[str]:
    return lua_lines(tmp_path, "\n".join(f"show({e})" for e in exprs))


def test_the_documented_examples(tmp_path: Path) -> None:
    assert show(
        tmp_path,
        "kumo.string.split('Mary had a little lamb', ' ')",
        "kumo.string.rsplit('Mary had a little lamb', ' ')",
        "kumo.string.splitn('Mary had a little lamb', 3, ' ')",
        "kumo.string.rsplitn('Mary had a little lamb', 3, ' ')",
        "kumo.string.split_whitespace 'Mary had a little lamb'",
        "kumo.string.split_ascii_whitespace 'Mary had a little lamb'",
        r"kumo.string.trim '\n Hello\tworld\t\n'",
        r"kumo.string.trim_end '\n Hello\tworld\t\n'",
        r"kumo.string.trim_start '\n Hello\tworld\t\n'",
        "kumo.string.replace('this is old', 'old', 'new')",
        "kumo.string.replacen('foo foo 123 foo', 'foo', 'new', 2)",
        "kumo.string.starts_with('hello world', 'hello')",
        "kumo.string.ends_with('hello world', 'world')",
        "kumo.string.psl_domain 'www.example.com'",
        "kumo.string.psl_suffix 'www.example.com'",
    ) == [
        '["Mary","had","a","little","lamb"]',
        '["lamb","little","a","had","Mary"]',
        '["Mary","had","a little lamb"]',
        '["lamb","little","Mary had a"]',
        '["Mary","had","a","little","lamb"]',
        '["Mary","had","a","little","lamb"]',
        '"Hello\\9world"',
        '"\\\n Hello\\9world"',
        '"Hello\\9world\\9\\\n"',
        '"this is new"',
        '"new new 123 foo"',
        "true",
        "true",
        '"example.com"',
        '"com"',
    ]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # an empty string is one empty piece; a trailing separator leaves an empty piece
        ("kumo.string.split('', ',')", '[""]'),
        ("kumo.string.split('a,b,', ',')", '["a","b",""]'),
        # an empty pattern matches around every character (not byte)
        ("kumo.string.split('aé', '')", '["","a","\\u00e9",""]'),
        ("kumo.string.split('', '')", '["",""]'),
        ("kumo.string.rsplit('abc', '')", '["","c","b","a",""]'),
        ("kumo.string.splitn('abc', 2, '')", '["","abc"]'),
        ("kumo.string.splitn('abc', 3, '')", '["","a","bc"]'),
        ("kumo.string.splitn('abc', 9, '')", '["","a","b","c",""]'),
        ("kumo.string.rsplitn('abc', 2, '')", '["","abc"]'),
        ("kumo.string.rsplitn('abc', 3, '')", '["","c","ab"]'),
        # limits: 0 pieces is an empty table; 1 is the whole string
        ("kumo.string.splitn('a,b', 0, ',')", "{}"),
        ("kumo.string.splitn('a,b', 1, ',')", '["a,b"]'),
        ("kumo.string.rsplitn('a,b,c', 2, ',')", '["c","a,b"]'),
        ("kumo.string.splitn('a,b,c', 2.9, ',')", '["a","b,c"]'),
        ("kumo.string.splitn('a,b,c', '2', ',')", '["a","b,c"]'),
        # overlapping matches: leftmost from the front, rightmost from the back
        ("kumo.string.split('aaa', 'aa')", '["","a"]'),
        ("kumo.string.rsplit('aaa', 'aa')", '["","a"]'),
        # numbers are accepted as their tostring
        ("kumo.string.split(12321, 2)", '["1","3","1"]'),
        ("kumo.string.split(1.5, '.')", '["1","5"]'),
        # Unicode White_Space, not Python's isspace: \x1c is not whitespace, U+3000 is
        ("kumo.string.split_whitespace(' a\\u{3000}b\\x1cc \\u{a0}')", '["a","b\\u001cc"]'),
        ("kumo.string.split_whitespace('')", "{}"),
        # Rust's ASCII whitespace has no vertical tab
        ("kumo.string.split_ascii_whitespace('a\\vb c\\x0cd')", '["a\\u000bb","c","d"]'),
        ("kumo.string.trim('\\u{2003} x \\u{85}')", '"x"'),
        ("kumo.string.trim('\\x1cx')", '"\\28x"'),
        ("kumo.string.replace('abc', '', '-')", '"-a-b-c-"'),
        ("kumo.string.replacen('abc', '', '-', 2)", '"-a-bc"'),
        ("kumo.string.replacen('aaa', 'a', 'b', 0)", '"aaa"'),
        ("kumo.string.starts_with('\\xff\\x00ab', '\\xff\\x00')", "true"),
        ("kumo.string.ends_with('\\xff\\x00ab', '\\x00a')", "false"),
        ("kumo.string.starts_with('', '')", "true"),
        ("kumo.string.psl_domain 'WWW.Example.CO.UK.'", '"example.co.uk"'),
        ("kumo.string.psl_suffix 'www.example.co.uk'", '"co.uk"'),
        ("kumo.string.psl_domain 'foo.github.io'", '"foo.github.io"'),
        ("kumo.string.psl_domain 'a.b.not-a-real-tld'", '"b.not-a-real-tld"'),
        ("kumo.string.psl_suffix 'a.b.not-a-real-tld'", '"not-a-real-tld"'),
        ("kumo.string.psl_domain 'com'", "nil"),
        ("kumo.string.psl_suffix ''", "nil"),
    ],
)
def test_edge_cases_behave_as_the_rust_methods(tmp_path: Path, expr: str, expected: str) -> None:
    assert show(tmp_path, expr) == [expected]


def test_wrap_fills_soft_and_breaks_hard(tmp_path: Path) -> None:
    # kumo-wrap's own cases (soft 10, hard 15), the documented ones, and binary input
    assert show(
        tmp_path,
        "kumo.string.wrap('foo', 10, 15)",
        "kumo.string.wrap('hello world ', 10, 15)",
        "kumo.string.wrap('hello world foo bar baz woot woot', 10, 15)",
        "kumo.string.wrap('hi there breakmepleaseIamtoolong', 10, 15)",
        "kumo.string.wrap(string.rep('A', 200), 75, 100) == string.rep('A', 100) .. '\\r\\n\\t' "
        ".. string.rep('A', 100)",
        "kumo.encode.hex_encode(kumo.string.wrap('\\xff\\xfe \\x00', 1, 2))",
        "kumo.string.wrap '  '",
        "#kumo.string.wrap(string.rep('word ', 400))",
    ) == [
        '"foo"',
        '"hello\\13\\\n\\9world"',
        '"hello\\13\\\n\\9world foo\\13\\\n\\9bar baz\\13\\\n\\9woot woot"',
        '"hi there\\13\\\n\\9breakmepleaseIa\\13\\\n\\9mtoolong"',
        "true",
        '"fffe0d0a0900"',
        '""',
        str(400 * 5 - 1 + 26 * 2),  # 27 lines of 74 characters: 26 breaks of 3 bytes replace spaces
    ]


def test_bad_arguments_are_errors_in_mluas_words(tmp_path: Path) -> None:
    assert lua_lines(
        tmp_path,
        """
        fails(kumo.string.split, nil, ',')
        fails(kumo.string.split, 'a', {})
        fails(kumo.string.trim, '\\xff')
        fails(kumo.string.splitn, 'a', -1, ',')
        fails(kumo.string.splitn, 'a', 'x', ',')
        fails(kumo.string.starts_with, 'a', nil)
        fails(kumo.string.wrap, 'a', -2)
        """,
    ) == [
        "error: kumo.string.split: bad argument #1: error converting Lua nil to String "
        "(expected string or number)",
        "error: kumo.string.split: bad argument #2: error converting Lua table to String "
        "(expected string or number)",
        "error: kumo.string.trim: bad argument #1: error converting Lua string to String "
        "(invalid utf-8 sequence)",
        "error: kumo.string.splitn: bad argument #2: error converting Lua number to usize "
        "(out of range)",
        "error: kumo.string.splitn: bad argument #2: error converting Lua string to usize "
        "(expected number or string coercible to number)",
        "error: kumo.string.starts_with: bad argument #2: error converting Lua nil to string "
        "(expected string or number)",
        "error: kumo.string.wrap: bad argument #2: error converting Lua number to usize "
        "(out of range)",
    ]


def test_jinja_escapes_by_the_templates_extension(tmp_path: Path) -> None:
    assert show(
        tmp_path,
        "kumo.string.eval_template('example.json', [[{{ name }}]], { name = 'John' })",
        "kumo.string.eval_template('x.json', [[{{ m }}]], { m = { a = { 1, 2 } } })",
        "kumo.string.eval_template('x.html', [[{{ name }}]], { name = '<b> & \"' })",
        "kumo.string.eval_template('x.html.j2', [[{{ name|safe }}]], { name = '<b>' })",
        "kumo.string.eval_template('x.yaml', [[{{ name }}]], { name = 'a' })",
        "kumo.string.eval_template('x.txt', [[{{ name }}]], { name = 'John & Co' })",
        "kumo.string.eval_template('x.txt', [[{{ name }}]], { name = 'x' }, 'Jinja')",
        "kumo.string.eval_template('x.txt', [[{{ name }}]], { name = 'x' }, 'Static')",
    ) == [
        '"\\"John\\""',
        '"{\\"a\\":[1,2]}"',
        '"&lt;b&gt; &amp; &quot;"',
        '"<b>"',
        '"\\"a\\""',
        '"John & Co"',
        '"x"',
        '"{{ name }}"',
    ]


def test_jinja_prints_values_and_runs_filters_as_minijinja_does(tmp_path: Path) -> None:
    assert show(
        tmp_path,
        "kumo.string.eval_template('x.txt', '{{ t }} {{ f }} {{ l }} {{ m }} [{{ nope }}]', "
        "{ t = true, f = 1.5, l = { 1, 'a', false }, m = { k = 'v' } })",
        "kumo.string.eval_template('x.txt', '{% for k, v in m|items %}{{ k }}={{ v }};"
        '{% endfor %}{{ "a,b".split(",")|join("+") }}|{{ 3|pluralize }}\', '
        "{ m = { only = 1 } })",
        "kumo.string.eval_template('x.txt', 'plain', nil)",
    ) == ['"true 1.5 [1, \\"a\\", false] {\\"k\\": \\"v\\"} []"', '"only=1;a+b|s"', '"plain"']


def test_template_errors(tmp_path: Path) -> None:
    assert lua_lines(
        tmp_path,
        """
        fails(kumo.string.eval_template, 'a.txt', '{% for %}', {})
        fails(kumo.string.eval_template, 'a.txt', '{{ x|nope }}', {})
        fails(kumo.string.eval_template, 'a.txt', '{{ x }}', {}, 'Mustache')
        fails(kumo.string.eval_template, 'a.txt', '{{#if x}}', {}, 'Handlebars')
        fails(kumo.string.eval_template, 'a.txt', '{{> partial}}', {}, 'Handlebars')
        fails(kumo.string.eval_template, 'a.txt', '{{shout x}}', {}, 'Handlebars')
        fails(kumo.string.eval_template, 'a.txt', '{{ x }}', { x = '\\xff' })
        """,
    ) == [
        "error: kumo.string.eval_template: syntax error: unexpected end of block, expected in "
        "(in a.txt:1)",
        "error: kumo.string.eval_template: unknown filter: filter nope is unknown (in a.txt:1)",
        "error: kumo.string.eval_template: unknown variant `Mustache`, "
        "expected one of `Jinja`, `Static`, `Handlebars`",
        "error: kumo.string.eval_template: a.txt: unclosed block {{#if}}",
        "error: kumo.string.eval_template: a.txt: partials, decorators and raw blocks are not "
        "supported",
        "error: kumo.string.eval_template: helper not defined: shout",
        "error: kumo.string.eval_template: the context holds a string that is not UTF-8",
    ]


def test_handlebars(tmp_path: Path) -> None:
    def hbs(name: str, source: str, context: str) -> str:
        return f"kumo.string.eval_template('{name}', [=[{source}]=], {context}, 'Handlebars')"

    ctx = "{ name = 'A & B', items = { 'x', 'y<' }, map = { k = 'v' }, n = 0, top = 'T' }"
    assert show(
        tmp_path,
        hbs("t.json", "{{name}}", ctx),
        hbs("t.html", "{{name}} {{{name}}} {{&name}}", ctx),
        hbs(
            "t.html",
            "{{#each items}}{{@index}}{{this}}{{#if @last}}.{{else}},{{/if}}{{/each}}",
            ctx,
        ),
        hbs(
            "t.txt",
            "{{#each map}}{{@key}}={{this}}{{/each}}|{{#each nope}}x{{else}}none{{/each}}",
            ctx,
        ),
        hbs("t.txt", "{{#if n}}yes{{else if name}}name{{else}}no{{/if}}|{{^n}}zero{{/n}}", ctx),
        hbs("t.txt", "{{#with map}}{{k}}/{{../top}}/{{top}}/{{@root.name}}{{/with}}", ctx),
        hbs("t.txt", "{{#each items as |item i|}}{{i}}={{item}} {{/each}}", ctx),
        hbs(
            "t.txt",
            "{{#if (eq n 0)}}eq{{/if}} {{len items}} {{lookup map 'k'}} {{items}} {{map}}",
            ctx,
        ),
        hbs("t.txt", "{{! note }}{{!-- {{x}} --}}a {{~ name ~}} b \\{{raw}}", ctx),
        hbs("t.txt", "list:\n{{#each items}}\n- {{this}}\n{{/each}}\nend", ctx),
    ) == [
        '"A & B"',
        '"A &amp; B A & B A & B"',
        '"0x,1y&lt;."',
        '"k=v|none"',
        '"name|zero"',
        '"v/T/T/A & B"',
        '"0=x 1=y< "',
        '"eq 2 v [x, y<] [object]"',
        '"aA & Bb {{raw}}"',
        '"list:\\\n- x\\\n- y<\\\nend"',
    ]
