"""Reading a Lua table as kumod's serde does, with serde's words for what is wrong.

kumod turns the table given to `kumo.make_queue_config` (and the other makers) into a
Rust struct with serde, through mlua's deserializer. KumoMTA's policy-extras helpers
look at the words of the error ("invalid type", "invalid", "unknown field") to tell an
unknown key from a bad value, so the messages here are serde's and mlua's own:

- `invalid type: string "yes", expected a boolean` (serde's `Unexpected` and the
  visitor's `expecting`); `invalid value: integer `70000`, expected u16`;
- `unknown field `x`, expected one of `a`, `b`` and `missing field `x``;
- `unknown variant `X`, expected `A` or `B``; mlua's `bad enum value` for an enum given
  something other than a string or a table;
- a struct with a `#[serde(flatten)]` field (EgressPathConfig) reads its values through
  serde's buffered `Content`, which words enums differently (`expected string or map`)
  and names unknown keys without the list of fields (`unknown field `x``).

A shape's `read(value, content)` returns the value as kumod serializes it (durations in
humantime's words, throttle specs in canonical form); `content` is True inside a struct
with a flattened field. Keys are read in the table's order and the first problem wins,
as in serde. The words of the errors are serde_errors.py's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from egress_resolver.definitions.serde_errors import (
    SerdeError,
    invalid_type,
    invalid_value,
    one_of,
    untagged_failure,
)


class Shape:
    """How one Rust type reads a value; subclasses say which."""

    expecting = "a value"

    def read(self, value: object, content: bool) -> object:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Bool(Shape):
    expecting = "a boolean"

    def read(self, value: object, content: bool) -> object:
        if not isinstance(value, bool):
            raise invalid_type(value, self.expecting)
        return value


@dataclasses.dataclass(frozen=True)
class Int(Shape):
    """An integer type (`u16`, `usize`, ...): Lua integers only, in range."""

    name: str
    low: int
    high: int

    def read(self, value: object, content: bool) -> object:
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid_type(value, self.name)
        if not self.low <= value <= self.high:
            raise invalid_value(value, self.name)
        return value


U16 = Int("u16", 0, 2**16 - 1)
U32 = Int("u32", 0, 2**32 - 1)
U64 = Int("u64", 0, 2**64 - 1)
USIZE = Int("usize", 0, 2**64 - 1)


@dataclasses.dataclass(frozen=True)
class Str(Shape):
    expecting = "a string"

    def read(self, value: object, content: bool) -> object:
        if isinstance(value, bytes):
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                raise invalid_type(value, self.expecting) from None
        if not isinstance(value, str):
            raise invalid_type(value, self.expecting)
        return value


STRING = Str()
BOOL = Bool()


@dataclasses.dataclass(frozen=True)
class Opt(Shape):
    """`Option<T>`: absent (nil) is None, anything else is read as T."""

    inner: Shape

    def read(self, value: object, content: bool) -> object:
        return None if value is None else self.inner.read(value, content)


@dataclasses.dataclass(frozen=True)
class Seq(Shape):
    """`Vec<T>`: a Lua sequence (an empty table is an empty one)."""

    inner: Shape
    expecting = "a sequence"

    def read(self, value: object, content: bool) -> object:
        if value == {}:
            return []
        if not isinstance(value, list):
            raise invalid_type(value, self.expecting)
        return [self.inner.read(item, content) for item in value]


@dataclasses.dataclass(frozen=True)
class Map(Shape):
    """`HashMap<String, T>` / `OrderMap<String, T>`."""

    inner: Shape
    expecting = "a map"

    def read(self, value: object, content: bool) -> object:
        if value == []:
            return {}
        if not isinstance(value, dict):
            raise invalid_type(value, self.expecting)
        return {STRING.read(k, content): self.inner.read(v, content) for k, v in value.items()}


@dataclasses.dataclass(frozen=True)
class Enum(Shape):
    """An externally tagged enum of unit variants, given as the variant's name."""

    name: str
    variants: tuple[str, ...]

    def read(self, value: object, content: bool) -> object:
        if isinstance(value, list) and not content:
            value = {str(i): v for i, v in enumerate(value, 1)}  # mlua reads keys as strings
        if isinstance(value, dict):
            if len(value) != 1:
                raise invalid_value(value, "map with a single key")
            ((variant, inner),) = value.items()
            if variant in self.variants:
                if content:
                    raise invalid_type(inner, "unit variant")
                raise SerdeError("invalid type: newtype variant, expected unit variant")
            value = variant
        if not isinstance(value, str):
            if content:
                raise invalid_type(value, "string or map")
            raise SerdeError("bad enum value")
        if value not in self.variants:
            raise SerdeError(f"unknown variant `{value}`, expected {one_of(self.variants)}")
        return value


@dataclasses.dataclass(frozen=True)
class Custom(Shape):
    """A type with its own reader (a parser over a string, an untagged enum, ...)."""

    reader: Callable[[object, bool], object]

    def read(self, value: object, content: bool) -> object:
        return self.reader(value, content)


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    shape: Shape
    default: object = None
    """The serialized default; None: an `Option` left unset (or required, see below)."""
    required: bool = False
    serialized: bool = True
    """False for `skip_serializing` fields: read, checked, but not shown."""


@dataclasses.dataclass(frozen=True)
class Struct(Shape):
    """A `#[derive(Deserialize)]` struct; `flatten` is a struct whose fields it also takes."""

    name: str
    fields: tuple[Field, ...]
    deny_unknown_fields: bool = True
    flatten: Struct | None = None

    @property
    def expecting(self) -> str:  # type: ignore[override]
        return f"struct {self.name}"

    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def read(self, value: object, content: bool) -> object:
        if value == []:
            value = {}
        if not isinstance(value, dict):
            raise invalid_type(value, self.expecting)
        return self.read_map(value, content)

    def read_map(self, params: Mapping[Any, object], content: bool = False) -> dict[str, object]:
        """The struct's serialized form with defaults; raises SerdeError as serde would."""
        content = content or self.flatten is not None
        by_name = {f.name: f for f in self.fields}
        found: dict[str, object] = {}
        rest: dict[object, object] = {}
        for key, value in params.items():
            name = self._field_name(key)
            field = by_name.get(name) if name is not None else None
            if field is None:
                if self.flatten is None and self.deny_unknown_fields:
                    if name is None:
                        raise SerdeError("unexpected map key")
                    raise SerdeError(f"unknown field `{name}`, expected {one_of(self.names())}")
                rest[key] = value
                continue
            found[field.name] = field.shape.read(value, content)
        result: dict[str, object] = {}
        for field in self.fields:
            if field.name in found:
                result[field.name] = found[field.name]
            elif field.required:
                raise SerdeError(f"missing field `{field.name}`")
            else:
                result[field.name] = field.default
            if not field.serialized:
                del result[field.name]
        if self.flatten is not None:
            inner = {k: v for k, v in rest.items() if k in self.flatten.names()}
            result.update(self.flatten.read_map(inner, content=True))
            for key in rest:
                if key not in inner and self.deny_unknown_fields:
                    if not isinstance(key, str):
                        raise SerdeError("unexpected map key")
                    raise SerdeError(f"unknown field `{key}`")
        return {k: v for k, v in result.items() if v is not None}

    def _field_name(self, key: object) -> str | None:
        """serde's field identifier: a name, or (outside `Content`) a field index."""
        if isinstance(key, str):
            return key
        if isinstance(key, int) and not isinstance(key, bool) and self.flatten is None:
            if 0 <= key < len(self.fields):
                return self.fields[key].name
            raise invalid_value(key, f"field index 0 <= i < {len(self.fields)}")
        return None


def untagged(name: str, *variants: Struct) -> Custom:
    """`#[serde(untagged)]` over struct variants: the first that reads the value wins."""

    def read(value: object, content: bool) -> object:
        if isinstance(value, dict):
            for variant in variants:
                try:
                    return variant.read_map(value, True)
                except SerdeError:
                    continue
        raise untagged_failure(name)

    return Custom(read)
