"""llmctl.typed: records, the strict converter, and its errors in words (key path + sentence)."""

from __future__ import annotations

import subprocess
import sys
from typing import Annotated, Literal, Optional, Union

import pytest

from llmctl.typed import FrozenRecord, Invalid, Meta, Record, convert, dump, field, problems, updated


class Link(Record):
    latency_us: Annotated[float, Meta(ge=0)]
    bus: Optional[Annotated[float, Meta(gt=0, le=1)]] = None


class Node(FrozenRecord):
    name: str = "n"
    gpus: Annotated[int, Meta(ge=0, le=64)] | None = None


class Doc(FrozenRecord):
    title: Annotated[str, Meta(min_length=1)]
    kind: Literal["chat", "batch", "embedding"] = "chat"
    nodes: Union[Literal["detect"], Annotated[list[Node], Meta(min_length=1)]] = "detect"
    links: dict[str, Link] = {}
    tags: Annotated[list[str], Meta(max_length=2)] = []
    version: Annotated[str, Meta(pattern=r"^\d+$")] = "1"
    schema_: Literal["doc/v1"] = field(default="doc/v1", name="schema")

    def __post_init__(self) -> None:
        if self.kind == "embedding" and self.nodes == "detect":
            raise ValueError("nodes: an embedding document lists its nodes")


def _err(data) -> Invalid:
    with pytest.raises(Invalid) as exc:
        convert(data, Doc)
    return exc.value


@pytest.mark.parametrize("data, loc, words", [
    ({}, ("title",), "required field is missing"),
    ({"title": ""}, ("title",), "must not be empty"),
    ({"title": "t", "titel": 1}, ("titel",), "unknown key 'titel' — did you mean 'title'? (allowed here: title, kind,"),
    ({"title": "t", "kind": "chatt"}, ("kind",), "must be one of 'chat', 'batch', 'embedding'; got 'chatt' — did you mean 'chat'?"),
    ({"title": "t", "schema": "doc/v2"}, ("schema",), "must be 'doc/v1', got 'doc/v2'"),
    ({"title": 3}, ("title",), "expected text, got 3 (a whole number)"),
    ({"title": "t", "nodes": [{"gpus": True}]}, ("nodes", 0, "gpus"), "expected a whole number, got true (a yes/no value)"),
    ({"title": "t", "nodes": [{"gpus": "2"}]}, ("nodes", 0, "gpus"), "expected a whole number, got '2' (text)"),
    ({"title": "t", "nodes": [{}, {"gpus": 99}]}, ("nodes", 1, "gpus"), "must be less than or equal to 64, got 99"),
    ({"title": "t", "nodes": []}, ("nodes",), "must not be empty"),
    ({"title": "t", "tags": ["a", "b", "c"]}, ("tags",), "must have at most 2 items, got 3"),
    ({"title": "t", "version": "v1"}, ("version",), "must match"),
    # msgspec names a mapping's key `[...]`: the key whose value fails is found and named
    ({"title": "t", "links": {"nvlink": {"latency_us": 1}, "pcie": {"latency_us": 1, "bus": 2}}},
     ("links", "pcie", "bus"), "must be less than or equal to 1, got 2"),
    # a rule of the record's own that names its key first points at that key
    ({"title": "t", "kind": "embedding"}, ("nodes",), "an embedding document lists its nodes"),
])
def test_errors_name_the_key_path_and_say_what_is_wrong(data, loc, words):
    err = _err(data)
    assert err.loc == loc
    assert words in err.message, err.message


def test_a_whole_number_stands_for_a_float_but_nothing_else_is_coerced():
    assert convert({"latency_us": 5}, Link).latency_us == 5.0
    with pytest.raises(Invalid):
        convert({"latency_us": "5"}, Link)


def test_problems_lists_independent_errors_and_stops_where_removal_cannot_help():
    errs = problems({"title": "t", "titel": 1, "kind": "x", "version": "v"}, Doc)
    assert [e.loc for e in errs] == [("titel",), ("kind",), ("version",)]
    assert problems({"title": "t"}, Doc) == []
    # a missing required key ends the list (nothing can be removed to pass it)
    assert [e.loc for e in problems({"kind": "x", "version": "v"}, Doc)] == [("kind",), ("version",), ("title",)]


def test_problems_go_on_past_a_bad_list_item_and_number_the_rest_as_written():
    errs = problems({"title": "t", "nodes": ["x", {"gpus": 99}, 7, {"gpus": -1}], "tags": ["a", 5], "version": "v"}, Doc)
    assert [e.loc for e in errs] == [("nodes", 0), ("nodes", 1, "gpus"), ("nodes", 2), ("nodes", 3, "gpus"),
                                     ("tags", 1), ("version",)]
    assert str(errs[3]) == "nodes.3.gpus: must be greater than or equal to 0, got -1"
    # the list left empty breaks its minimum length: that is the removal's doing, not reported
    assert [e.loc for e in problems({"title": "t", "nodes": ["x"], "version": "v"}, Doc)] == [("nodes", 0), ("version",)]


def test_dump_writes_file_names_and_updated_copies_without_touching_the_original():
    doc = convert({"title": "t", "nodes": [{"gpus": 1}]}, Doc)
    assert dump(doc)["schema"] == "doc/v1" and dump(doc)["nodes"] == [{"name": "n", "gpus": 1}]
    assert dump(Node(), exclude_none=True) == {"name": "n"}
    other = updated(doc, title="u")
    assert (other.title, doc.title) == ("u", "t")
    with pytest.raises(AttributeError):
        updated(doc, colour="red")  # not a field


def test_plan_runs_without_pydantic():
    """The plan path imports no pydantic (its import alone cost ~0.3 G instructions, 8x a bare
    interpreter start): a module that brings it back fails here."""
    code = ("import sys, runpy\n"
            "sys.argv = ['llmctl', 'plan', 'examples/chatbot.yaml']\n"
            "try:\n    runpy.run_module('llmctl', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'jinja2', 'httpx')), file=sys.stderr)")
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120)
    assert r.stderr.strip().splitlines()[-1] == "[]", r.stderr[-2000:]
