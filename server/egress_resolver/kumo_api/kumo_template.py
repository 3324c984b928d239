"""The template engines of `kumo.string.eval_template` (kumod's kumo-template crate).

`Jinja` (the default) is MiniJinja itself, through its Python binding: the same
parser, filters, tests, Python-compatible methods and error messages as kumod,
and the same auto-escaping chosen by the template name (`.html`/`.htm`/`.xml`
escape HTML, `.json`/`.json5`/`.js`/`.yaml`/`.yml` encode JSON, after an
optional `.j2`/`.jinja`/`.jinja2`). The binding prints values the Python way
(`True`, `None`, `{'a': 1}`); a finalizer prints them as MiniJinja in Rust does
(`true`, `[1, "a"]`, `{"a": 1}`), with one difference: `none` prints as
nothing, as an undefined value does (a Lua table holds no nil, so only a
template's own `none` literal is affected). minijinja-contrib's filters that
the binding lacks (wordcount, wordwrap, datetimeformat, dateformat, timeformat,
random, and the functions now, randrange, lipsum) and kumod's
normalize_smtp_response filter are not available. `Static` returns the source
unchanged; `Handlebars` is kumo_handlebars.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import minijinja

from egress_resolver.bridge.values import to_python
from egress_resolver.kumo_api import kumo_handlebars

DIALECTS = ("Jinja", "Static", "Handlebars")
_FNAME = "kumo.string.eval_template"


def _rust_repr(value: Any) -> str:
    """A value inside a list or map, as MiniJinja's Debug form prints it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_rust_repr(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_rust_repr(k)}: {_rust_repr(v)}" for k, v in value.items()) + "}"
    return str(value)


def _float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 2**53:
        return f"{int(value)}.0"
    return repr(value)


@minijinja.pass_state
def _finalize(state: Any, value: Any) -> Any:
    if state.auto_escape == "json" or isinstance(value, str):
        return value  # JSON mode serializes; strings (and safe markup) print as they are
    if value is None:
        return ""
    if isinstance(value, bool | float | list | tuple | dict):
        return _rust_repr(value)
    return value


def _jinja() -> minijinja.Environment:
    return minijinja.Environment(debug=False, finalizer=_finalize, pycompat=True)


def _context(context: object) -> Any:
    try:
        return to_python(context)
    except UnicodeDecodeError:
        raise ValueError(f"{_FNAME}: the context holds a string that is not UTF-8") from None


def evaluator() -> Callable[[str, str, object, object], str]:
    """`eval_template(name, source, context, dialect)`, with its own MiniJinja environment."""
    env: list[minijinja.Environment] = []

    def eval_template(name: str, source: str, context: object, dialect: object) -> str:
        if dialect is None:
            dialect = "Jinja"
        if dialect not in DIALECTS:
            shown = f"`{dialect}`" if isinstance(dialect, str) else f"a {type(dialect).__name__}"
            raise ValueError(
                f"{_FNAME}: unknown variant {shown}, "
                "expected one of `Jinja`, `Static`, `Handlebars`"
            )
        if dialect == "Static":
            return source
        data = _context(context)
        if dialect == "Handlebars":
            try:
                return kumo_handlebars.render(name, source, data, escape=name.endswith(".html"))
            except kumo_handlebars.HandlebarsError as err:
                raise ValueError(f"{_FNAME}: {err}") from None
        if not env:
            env.append(_jinja())
        variables = (
            {k: v for k, v in data.items() if isinstance(k, str)} if isinstance(data, dict) else {}
        )
        try:
            return env[0].render_str(source, name, **variables)
        except minijinja.TemplateError as err:
            raise ValueError(f"{_FNAME}: {str(err).splitlines()[0]}") from None

    return eval_template
