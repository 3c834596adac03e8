"""Every tag of the list of the 100 most-pulled Ollama library tags (the 2026-08-21 ranking) plans offline from
the catalog, with weights within 2% of the tag's published size (data/ollama_top_tags.yaml names its source and
date).

The file's `extra` list holds checked tags outside those 100 (an earlier version of the list); each of them is
checked in the same way."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

from llmctl.catalog import Catalog
from llmctl.estimate.weights import weight_bytes
from llmctl.resolve import resolve_model, set_offline

DATA = Path(__file__).resolve().parent / "data" / "ollama_top_tags.yaml"


@lru_cache(maxsize=1)
def _data() -> dict:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(DATA.read_text())


def top_tags() -> list[dict]:
    return _data()["tags"]


def extra_tags() -> list[dict]:
    return _data().get("extra") or []


def test_the_list_has_100_distinct_tags() -> None:
    tags = [t["tag"] for t in top_tags()]
    assert len(tags) == len(set(tags)) == 100


def test_the_extra_tags_are_distinct_and_not_in_the_list() -> None:
    extra = [t["tag"] for t in extra_tags()]
    assert extra and len(extra) == len(set(extra))
    assert not set(extra) & {t["tag"] for t in top_tags()}


def test_every_row_names_where_its_size_was_seen() -> None:
    # a row without a public copy must say so with `source: null`, never carry an invented one
    for row in top_tags() + extra_tags():
        assert "source" in row, row["tag"]
        assert row["source"] is None or str(row["source"]).startswith("https://"), row["tag"]


SPEC = """name: t
model: {tag}
environment: development
workload:
  concurrency: 1
  prompt_tokens: 256
  output_tokens: 64
  context_length: {context}
hardware:
  - gpu: H100
    gpus: 8
"""


@pytest.mark.parametrize("row", top_tags() + extra_tags(), ids=lambda r: r["tag"])
def test_tag_plans_offline_with_its_published_size(row: dict) -> None:
    from llmctl.planner import Trace, make_plan
    from llmctl.spec import load_spec_text

    set_offline(True)
    cat = Catalog.load()
    model = resolve_model(cat, row["tag"])
    assert model.source == "catalog" and model.kind == "ollama"
    if row.get("quantization"):  # seen on the tags page: the catalog's default for the tag must be that one
        assert model.gguf_quantization.upper() == str(row["quantization"]).upper()
    published = float(row["size_gb"]) * 1e9
    text = SPEC.format(tag=row["tag"], context=min(2048, model.arch.max_position_embeddings or 2048))
    plan = make_plan(load_spec_text(text), catalog=cat)
    assert plan.backend in ("ollama", "llama.cpp", "vllm") and plan.memory.per_gpu_gib.weights > 0
    # the tag as Ollama pulls it (its default quantization) is planned with the tag's published size
    trace = Trace()
    forced = text + f"overrides:\n  backend: ollama\n  quantization: {model.gguf_quantization}\n"
    pulled = make_plan(load_spec_text(forced), catalog=cat, trace=trace)
    assert pulled.quantization == model.gguf_quantization and pulled.model.ollama_tag == row["tag"]
    native = [c for c in trace.ranked if c.backend == "ollama" and c.quant.id == model.gguf_quantization]
    assert native and abs(native[0].weight_bytes_total - published) <= 0.02 * published
    # the architecture behind the tag must be the right one: its own estimate lands near the published size
    # (vision towers, 8-bit embeddings of small models and BERT's ungated MLP explain the wider band)
    estimate = weight_bytes(model.arch, cat.quantization(model.gguf_quantization))
    assert 0.55 * published <= estimate <= 1.35 * published
