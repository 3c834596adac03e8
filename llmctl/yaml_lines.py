"""YAML from people (specs): plain Python data plus the line of every key, with limits that make
hostile input fail fast.

Why not ruamel's round-trip loader: it keeps comments, and it joins a run of comment lines by
repeated string concatenation (`c.value = c.value + …` in RoundTripScanner.get_token), which is
quadratic — a spec with 400 KB of comment lines took seconds, 5 MB minutes. The safe loader's
scanner skips comments; its composer still gives every node its start line. From the node graph
this module builds plain dicts and lists itself, which lets it

* count nodes as aliases expand them (a "billion laughs" document is a few hundred bytes that
  expands to 10^9 nodes) and stop at MAX_NODES,
* stop at MAX_DEPTH levels of nesting (a recursive alias, `[[[[…` ×100 000),
* refuse duplicate keys, naming both lines,
* honour merge keys (`<<: *defaults`), as the round-trip loader did.
"""

from __future__ import annotations

import re
from typing import Any

from llmctl.errors import InputError

# A spec has about 60 keys and 4 levels; one listing a thousand hardware nodes (count: does that in
# one entry) would still be below these.
MAX_NODES = 20_000  # keys + values after alias expansion
MAX_DEPTH = 64  # nested mappings/sequences
Lines = dict[tuple[Any, ...], int]  # path of a key or list item -> 1-based line
_BRACKET_RUN = re.compile(r"[\[{](?:[ \t]*[\[{]){%d,}" % MAX_DEPTH)


class _Budget:
    def __init__(self, filename: str, max_nodes: int = MAX_NODES):
        self.filename = filename
        self.nodes = 0
        self.max_nodes = max_nodes

    def spend(self, node: Any) -> None:
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise InputError(
                f"the document expands to more than {self.max_nodes:,} values (aliases repeating aliases, "
                "a \"billion laughs\" document?)", where=_where(self.filename, node),
                hint="write the values out; a spec needs far fewer")


def _where(filename: str, node: Any) -> str:
    mark = getattr(node, "start_mark", None)
    return f"{filename}:{mark.line + 1}" if mark is not None else filename


def load_yaml(text: str, filename: str, *, max_nodes: int = MAX_NODES) -> tuple[Any, Lines]:
    """Parse one YAML document; returns (data, lines). Errors are InputError naming file:line.
    `max_nodes`: a larger budget for documents that are not specs (a benchmark report)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    run = _BRACKET_RUN.search(text)
    if run is not None:  # the scanner would slow down with every open bracket before the parser saw them
        line = text.count("\n", 0, run.start()) + 1
        raise InputError(f"not valid YAML: nested more than {MAX_DEPTH} levels deep ({MAX_DEPTH + 1} or more "
                         "'[' or '{' in a row)", where=f"{filename}:{line}")
    yaml = YAML(typ="safe", pure=True)
    yaml.Parser = _depth_limited_parser(filename)
    try:
        node = yaml.compose(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"not valid YAML: {problem}", where=f"{filename}{line}") from None
    if node is None:
        return None, {}
    lines: Lines = {}
    builder = _Builder(yaml.constructor, _Budget(filename, max_nodes), lines)
    try:
        data = builder.build(node, (), 0)
    except RecursionError:
        raise InputError(f"not valid YAML: nested more than {MAX_DEPTH} levels deep", where=filename) from None
    return data, lines


def _depth_limited_parser(filename: str) -> type:
    """ruamel's parser, stopping at MAX_DEPTH open mappings/sequences. The check runs as events are
    produced, before the scanner has read far: in flow context the pure-Python scanner slows down
    with every open bracket, and ruamel's composer recurses once per level."""
    from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent
    from ruamel.yaml.parser import Parser

    class DepthLimitedParser(Parser):
        depth = 0

        def get_event(self) -> Any:
            event = super().get_event()
            if isinstance(event, CollectionStartEvent):
                self.depth += 1
                if self.depth > MAX_DEPTH:
                    raise InputError(f"not valid YAML: nested more than {MAX_DEPTH} levels deep",
                                     where=f"{filename}:{event.start_mark.line + 1}")
            elif isinstance(event, CollectionEndEvent):
                self.depth -= 1
            return event

    return DepthLimitedParser


class _Builder:
    def __init__(self, constructor: Any, budget: _Budget, lines: Lines):
        self.constructor = constructor
        self.budget = budget
        self.lines = lines
        self.scalars: dict[int, Any] = {}  # id(node) -> value: an alias repeats the same node

    def build(self, node: Any, path: tuple[Any, ...], depth: int) -> Any:
        from ruamel.yaml.nodes import MappingNode, SequenceNode

        self.budget.spend(node)
        if depth > MAX_DEPTH:
            raise InputError(f"nested more than {MAX_DEPTH} levels deep (a recursive alias?)",
                             where=_where(self.budget.filename, node))
        if isinstance(node, MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, SequenceNode):
            out = []
            for i, item in enumerate(node.value):
                self.lines.setdefault((*path, i), item.start_mark.line + 1)
                out.append(self.build(item, (*path, i), depth + 1))
            return out
        return self._scalar(node)

    def _scalar(self, node: Any) -> Any:
        from ruamel.yaml.error import YAMLError

        if id(node) in self.scalars:
            return self.scalars[id(node)]
        try:
            value = self.scalars[id(node)] = self.constructor.construct_object(node, deep=True)
            return value
        except YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise InputError(f"not valid YAML: {problem}", where=_where(self.budget.filename, node)) from None
        except (ValueError, OverflowError) as exc:  # e.g. a timestamp with a day 31 in February
            raise InputError(f"not valid YAML: {node.value!r}: {exc}", where=_where(self.budget.filename, node)) from None

    def _key(self, node: Any) -> str:
        from ruamel.yaml.nodes import ScalarNode

        if not isinstance(node, ScalarNode):
            raise InputError("a key must be a plain word, not a list or mapping", where=_where(self.budget.filename, node))
        self.budget.spend(node)
        key = self._scalar(node)
        return key if isinstance(key, str) else str(key)

    def _pairs(self, node: Any, depth: int) -> list[tuple[Any, Any]]:
        """(key node, value node) pairs with merge keys resolved: explicit keys win over merged ones,
        earlier merged mappings over later ones (YAML merge key spec)."""
        from ruamel.yaml.nodes import MappingNode, SequenceNode

        explicit, merged = [], []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for src in sources:
                    self.budget.spend(src)
                    if not isinstance(src, MappingNode):
                        raise InputError("`<<` merges mappings only", where=_where(self.budget.filename, src))
                    if depth > MAX_DEPTH:
                        raise InputError(f"merge keys nested more than {MAX_DEPTH} levels deep",
                                         where=_where(self.budget.filename, src))
                    merged.extend(self._pairs(src, depth + 1))
            else:
                explicit.append((key_node, value_node))
        if not merged:
            return explicit
        names = {key_node.value for key_node, _ in explicit}
        out = list(explicit)
        for key_node, value_node in merged:
            if key_node.value not in names:
                names.add(key_node.value)
                out.append((key_node, value_node))
        return out

    def _mapping(self, node: Any, path: tuple[Any, ...], depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        seen: dict[str, int] = {}
        for key_node, value_node in self._pairs(node, depth):  # merged keys come deduplicated
            key = self._key(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise InputError(f"duplicate key {key!r} (first on line {seen[key]})",
                                 where=f"{self.budget.filename}:{line}")
            seen[key] = line
            self.lines[(*path, key)] = line
            out[key] = self.build(value_node, (*path, key), depth + 1)
        return out


def load_yaml_cached(text: str, filename: str) -> tuple[Any, Lines]:
    """load_yaml(), remembered under the cache folder by the text's sha256 (as parsed profiles are):
    planning the same spec again skips importing and running the YAML parser (~50 ms). Only plain
    JSON data is cached (a YAML date or binary value is parsed every time); any unreadable or
    unwritable cache entry just means parsing again."""
    import hashlib
    import json
    import os

    from llmctl.profiles_io import cache_dir

    here = os.stat(__file__)
    key = hashlib.sha256(f"{here.st_mtime_ns}:{here.st_size}\0".encode() + text.encode("utf-8")).hexdigest()[:40]
    path = cache_dir().parent / "specs" / f"{key}.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return doc["data"], {tuple(k): v for k, v in doc["lines"]}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    data, lines = load_yaml(text, filename)
    if _plain_json(data, 0):
        try:
            from llmctl.fileio import write_atomic

            write_atomic(path, json.dumps({"data": data, "lines": [[list(k), v] for k, v in lines.items()]}))
        except (OSError, ValueError, TypeError):
            pass
    return data, lines


def _plain_json(value: Any, depth: int) -> bool:
    if depth > MAX_DEPTH:
        return False
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))  # JSON has no NaN or infinity
    if isinstance(value, list):
        return all(_plain_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json(v, depth + 1) for k, v in value.items())
    return False


def line_of(lines: Lines, loc: tuple[Any, ...], default: int | None = 1) -> int | None:
    """1-based line of the deepest key or item along `loc` that exists in the document."""
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return default
