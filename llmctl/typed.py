"""Typed records (msgspec structs) and checking plain data against them, with errors in words.

Every file llmctl reads (a spec, the profiles, a saved plan, a calibration overlay, front.json) is
parsed to plain data, then `convert(data, Type)` checks it in full and builds the records, or raises
`Invalid`: the key path of the first error (("hardware", 0, "gpus")) and what is wrong with it
("must be less than or equal to 64, got 99"). `problems()` lists several errors of one document.

msgspec rather than pydantic: a struct costs microseconds to define and checking runs in C, where a
pydantic model costs 1–5 ms to define and pydantic itself ~0.3 G instructions to import — most of what
`llmctl plan` spent before planning.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import msgspec
from msgspec import Meta, field  # noqa: F401  (re-exported: the record modules' vocabulary)

T = TypeVar("T")


class _KeywordFields(type(msgspec.Struct)):  # msgspec.StructMeta
    """Every record class takes its fields by keyword: a required field may follow one with a default,
    so fields stay in the order files and output show them (msgspec does not inherit kw_only)."""

    def __new__(mcls, name: str, bases: tuple, namespace: dict, **options: Any):
        options.setdefault("kw_only", True)
        return super().__new__(mcls, name, bases, namespace, **options)


class Record(msgspec.Struct, metaclass=_KeywordFields, forbid_unknown_fields=True):
    """Plain data with typed fields; a key the type does not declare is an error."""


class FrozenRecord(Record, frozen=True):
    """A Record that cannot change once built (profiles, the spec)."""


class Invalid(ValueError):
    """`data` does not fit the type: `loc` is the key path, `message` what is wrong, in words."""

    def __init__(self, loc: tuple[Any, ...], message: str) -> None:
        super().__init__(f"{dotted(loc)}: {message}")
        self.loc = loc
        self.message = message


def convert(data: Any, type_: type[T]) -> T:
    """`data` checked and built as `type_`, strictly: `true` is not 1 and "2" is not 2 (a whole number
    may still stand for a float)."""
    try:
        return msgspec.convert(data, type_, strict=True)
    except msgspec.ValidationError as exc:
        raise explain(exc, data, type_) from None


def problems(data: Any, type_: type, limit: int = 12) -> list[Invalid]:
    """Up to `limit` errors of `data` (empty when it fits): after each, the offending key or list item
    is taken out of a copy and the rest checked again (a rule of a whole record takes the record out,
    and with it any later error inside). Errors keep their places in `data`: the items after one taken
    out are numbered as written. An error on a list that lost an item, or on what holds it, is not
    reported (taking the item out may be what broke the rule, as a minimum length) but taken out too.
    Stops at an error no removal can pass (a missing key)."""
    import copy

    found: list[Invalid] = []
    work = copy.deepcopy(data)
    taken: dict[tuple, list[int]] = {}  # a list's place in `data` -> the indices (in `data`) of items taken out
    while len(found) < limit:
        try:
            msgspec.convert(work, type_, strict=True)
            break
        except msgspec.ValidationError as exc:
            err = explain(exc, work, type_)
        loc = _as_written(err.loc, taken)
        if any(e.loc == loc for e in found):
            break
        if not any(p[:len(loc)] == loc for p in taken):
            found.append(err if loc == err.loc else Invalid(loc, err.message))
        parent = _value_at(work, err.loc[:-1]) if err.loc else None
        last = err.loc[-1] if err.loc else None
        if isinstance(parent, dict) and last in parent:
            del parent[last]
        elif isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
            del parent[last]
            taken.setdefault(loc[:-1], []).append(loc[-1])
        else:
            break
    return found


def _as_written(loc: tuple[Any, ...], taken: dict[tuple, list[int]]) -> tuple[Any, ...]:
    """`loc` in the copy problems() checks, as the place in the original data: a list index counts the
    items taken out before it."""
    out: list[Any] = []
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            for gone in sorted(taken.get(tuple(out), ())):
                if gone <= part:
                    part += 1
        out.append(part)
    return tuple(out)


def dump(record: Any, *, exclude_none: bool = False) -> Any:
    """`record` as JSON-ready plain data, keys by their file names (a field renamed `schema` is
    written `schema`)."""
    data = msgspec.to_builtins(record)
    return _drop_none(data) if exclude_none else data


def updated(record: T, **changes: Any) -> T:
    """A shallow copy of `record` with `changes`, which are not checked again (as a copy of checked
    data with values the code computed; a struct's own rules run when data is converted)."""
    import copy

    new = copy.copy(record)
    for name, value in changes.items():
        msgspec.structs.force_setattr(new, name, value)
    return new


def default_of(type_: type, name: str) -> Any:
    """The default of the field `name` of a struct type."""
    return next(f.default for f in msgspec.structs.fields(type_) if f.name == name)


def field_names(type_: type) -> list[str]:
    """The keys a struct type accepts, as written in files."""
    return list(type_.__struct_encode_fields__)


def dotted(loc: tuple[Any, ...]) -> str:
    """("hardware", 0, "gpus") -> "hardware.0.gpus"; () -> "(top level)"."""
    return ".".join(str(p) for p in loc) or "(top level)"


# --------------------------------------------------------------------------- errors in words

_TYPE_WORDS = {"int": "a whole number", "float": "a number", "str": "text", "bool": "true or false",
               "array": "a list", "object": "a mapping of keys", "null": "nothing (null)"}
_OPS = {">=": "greater than or equal to", ">": "greater than", "<=": "less than or equal to", "<": "less than"}


def explain(exc: msgspec.ValidationError, data: Any, type_: type) -> Invalid:
    """msgspec's error ("Expected `int` >= 1 - at `$.workload.concurrency`") as an Invalid with the
    key path and a sentence that shows the value found."""
    text = str(exc)
    message, _, where = text.rpartition(" - at `")
    if not _:
        message, where = text, "$`"
    loc = _resolve(_parse_path(where.rstrip("`")), data, type_)
    got = _value_at(data, loc)
    m = re.fullmatch(r"Object contains unknown field `(.*)`", message)
    if m:
        key = m.group(1)
        allowed = field_names(struct) if (struct := _struct_at(type_, loc)) else []
        close = suggest(key, allowed)
        words = f"unknown key {key!r}" + (f" — did you mean {close!r}?" if close else "")
        return Invalid((*loc, key), words + (f" (allowed here: {', '.join(allowed)})" if allowed else ""))
    m = re.fullmatch(r"Object missing required field `(.*)`", message)
    if m:
        return Invalid((*loc, m.group(1)), "required field is missing")
    if message.startswith("Invalid enum value"):
        choices = [str(c) for c in _literals(_type_at(type_, loc))]
        if len(choices) == 1:
            return Invalid(loc, f"must be {choices[0]!r}, got {got!r}")
        words = f"must be one of {', '.join(repr(c) for c in choices)}; got {got!r}" if choices else message
        close = suggest(str(got), choices)
        return Invalid(loc, words + (f" — did you mean {close!r}?" if close else ""))
    m = re.fullmatch(r"Expected `([^`]*)`, got `(\w+)`", message)
    if m:
        want = " or ".join(_TYPE_WORDS.get(w, w) for w in m.group(1).split(" | ") if w != "null")
        kind = ("a yes/no value" if isinstance(got, bool) else "text" if isinstance(got, str)
                else _TYPE_WORDS.get(m.group(2), m.group(2)))
        return Invalid(loc, f"expected {want}, got {yaml_repr(got)} ({kind})")
    m = re.fullmatch(r"Expected `(?:int|float)[^`]*` (>=|>|<=|<) (\S+)", message)
    if m:
        bound = m.group(2).removesuffix(".0")
        return Invalid(loc, f"must be {_OPS[m.group(1)]} {bound}, got {yaml_repr(got)}")
    m = re.fullmatch(r"Expected `(str|array|object)[^`]*` of length (>=|<=) (\d+)", message)
    if m:
        unit = {"str": "characters", "array": "items", "object": "keys"}[m.group(1)]
        if m.group(2) == ">=" and m.group(3) == "1":
            return Invalid(loc, "must not be empty")
        least = "at least" if m.group(2) == ">=" else "at most"
        return Invalid(loc, f"must have {least} {m.group(3)} {unit}, got {len(got) if hasattr(got, '__len__') else got}")
    m = re.fullmatch(r"Expected `str` matching regex (.*)", message)
    if m:
        return Invalid(loc, f"must match {m.group(1)}, got {yaml_repr(got)}")
    # a rule of the record's own (__post_init__), in words; one that names its key first
    # ("arrival: open needs requests_per_minute") points at that key
    m = re.fullmatch(r"([A-Za-z_]\w*)((?:\[\d+\])*): (.*)", message, re.S)
    struct = _struct_at(type_, loc)
    if m and struct is not None and m.group(1) in field_names(struct):
        return Invalid((*loc, m.group(1), *map(int, re.findall(r"\d+", m.group(2)))), m.group(3))
    return Invalid(loc, message)


def yaml_repr(value: Any) -> str:
    """A value as it would be written in YAML, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value)[:80] if isinstance(value, str) else str(value)[:80]


def suggest(got: str, choices: list[str]) -> str | None:
    """The choice `got` was probably meant to be: close in spelling (kubernets → kubernetes), a
    prefix (prod → production), or close to one word of it (tools → tool_calling)."""
    import difflib

    g = got.strip().lower()
    if not g or not choices:
        return None
    best, score = None, 0.0
    for choice in choices:
        c = choice.lower()
        s = difflib.SequenceMatcher(None, g, c).ratio()
        if len(g) >= 3 and c.startswith(g):
            s = max(s, 0.9)
        for part in re.split(r"[_.\-]", c):
            if len(part) >= 3:
                s = max(s, difflib.SequenceMatcher(None, g, part).ratio() - 0.05)
        if s > score:
            best, score = choice, s
    return best if score >= 0.75 else None


# --------------------------------------------------------------------------- paths and types

_ANY_KEY = object()  # msgspec writes a mapping's key as `[...]`


def _parse_path(path: str) -> list[Any]:
    """"$.hardware[0].gpus" -> ["hardware", 0, "gpus"]; "[...]" (a mapping's key) -> _ANY_KEY."""
    parts: list[Any] = []
    for name, index in re.findall(r"\.([^.\[]+)|\[([^\]]*)\]", path.removeprefix("$")):
        if name:
            parts.append(name)
        elif index == "...":
            parts.append(_ANY_KEY)
        else:
            parts.append(int(index))
    return parts


def _resolve(parts: list[Any], data: Any, type_: Any) -> tuple[Any, ...]:
    """The path with each mapping key msgspec left out filled in: the first key whose value fails."""
    loc: list[Any] = []
    for i, part in enumerate(parts):
        if part is _ANY_KEY:
            here, value_type = _value_at(data, tuple(loc)), _type_at(type_, (*loc, _ANY_KEY))
            part = "…"
            if isinstance(here, dict):
                for key, value in here.items():
                    try:
                        msgspec.convert(value, value_type, strict=True)
                    except msgspec.ValidationError:
                        part = key
                        break
        loc.append(part)
    return tuple(loc)


def _value_at(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def _type_at(type_: Any, loc: tuple[Any, ...]) -> Any:
    """The declared type of the value at `loc` (None when the path leaves the type)."""
    for part in loc:
        type_ = _step(type_, part)
        if type_ is None:
            return None
    return _bare(type_)


def _struct_at(type_: Any, loc: tuple[Any, ...]) -> Any:
    """The struct type the value at `loc` is read as (None when it is not a struct)."""
    return next((t for t in _alternatives(_type_at(type_, loc)) if hasattr(t, "__struct_fields__")), None)


def _step(type_: Any, part: Any) -> Any:
    for t in _alternatives(type_):
        if hasattr(t, "__struct_fields__") and isinstance(part, str):
            for f in msgspec.structs.fields(t):
                if f.encode_name == part:
                    return f.type
        origin, args = get_origin(t), get_args(t)
        if origin in (list, tuple, set, frozenset) and isinstance(part, int) and args:
            return args[0]
        if origin is dict and not isinstance(part, int) and len(args) == 2:
            return args[1]
    return None


def _bare(type_: Any) -> Any:
    while get_origin(type_) is Annotated:
        type_ = get_args(type_)[0]
    return type_


def _alternatives(type_: Any) -> list[Any]:
    """The types a value may take: the members of a union, without None."""
    type_ = _bare(type_)
    if get_origin(type_) is Union or type(type_).__name__ == "UnionType":
        return [a for t in get_args(type_) if t is not type(None) for a in _alternatives(t)]
    return [type_]


def _literals(type_: Any) -> list[Any]:
    return [v for t in _alternatives(type_) if get_origin(t) is Literal for v in get_args(t)]


def _drop_none(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _drop_none(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [_drop_none(v) for v in data]
    return data
