"""Ollama pulls by tag, and the library does not publish every quantization of every model: a plan proposes only
the ones profiles/ollama_library.yaml lists for the tag (a scrape of https://ollama.com/library, source and date in
the file), says so when the tag's list is not recorded, and refuses a forced quantization the library lacks.

No Ollama server or registry is involved: the plans are checked against the recorded list, the way `ollama pull`
would check them against the library."""

from __future__ import annotations

import dataclasses
import re
from functools import lru_cache

import pytest

from llmctl.catalog import Catalog
from llmctl.engines.ollama_library import bare_tag, library, published
from llmctl.model_refs import exact, library_tag
from llmctl.planner import Trace, make_plan
from llmctl.resolve import set_offline
from llmctl.spec import load_spec_text


@lru_cache(maxsize=1)
def cat() -> Catalog:
    return Catalog.load()


def listed_models() -> list:
    return [m for m in cat().models if m.ollama and published(m.ollama) is not None]


def spec(model: str, gpu: str = "H100", gpus: int = 1, extra: str = "", backend: str | None = "ollama",
         context: int = 2048) -> str:
    text = (f"name: t\nmodel: {model}\nenvironment: development\nworkload:\n  concurrency: 1\n  prompt_tokens: 256\n"
            f"  output_tokens: 64\n  context_length: {context}\nhardware:\n  - gpu: {gpu}\n    gpus: {gpus}\n")
    ov = (f"  backend: {backend}\n" if backend else "") + extra
    return text + ("overrides:\n" + ov if ov else "")


def plan(text: str, catalog: Catalog | None = None):
    set_offline(True)
    trace = Trace()
    return make_plan(load_spec_text(text), catalog=catalog or cat(), trace=trace), trace


def ollama_tags(trace: Trace) -> dict[str, str]:
    """quantization -> the tag the Ollama plug-in would render for each Ollama candidate the planner weighed."""
    from llmctl.engines import get_engine

    eng = get_engine("ollama")
    return {c.quant.id: eng.plan_model_tag(trace.context, c) for c in trace.ranked if c.backend == "ollama"}


# --------------------------------------------------------------------------- the recorded list


def test_the_list_names_its_source_and_date() -> None:
    s = library().source
    assert s.repository == "https://github.com/auditomatic/ollama-models-registry" and s.path == "data/models.json"
    assert re.fullmatch(r"[0-9a-f]{40}", s.commit) and re.fullmatch(r"\d{4}-\d\d-\d\dT.*", s.scraped)


def test_every_entry_is_a_catalog_tag_with_its_default_and_catalog_quantizations() -> None:
    bare = {bare_tag(m.ollama): m for m in cat().models if m.ollama and m.ollama.get("names")}
    gguf = {q.id for q in cat().quantizations if q.is_gguf}
    for tag, quants in library().published.items():
        assert tag in bare, tag
        o = bare[tag].ollama
        assert set(quants) <= gguf, (tag, set(quants) - gguf)
        assert quants[o["default_quantization"]] == tag, tag  # the bare tag pulls the default


def test_most_catalog_models_have_a_list() -> None:
    # the scrape of 2026-08-21 lists every library model the catalog had then; a newer one gets no entry
    assert len(listed_models()) >= 120


@pytest.mark.parametrize("model", listed_models(), ids=lambda m: m.id)
def test_every_listed_quantization_renders_its_published_tag(model) -> None:
    """The catalog's spelling (quant_tag, f16_word) reaches exactly the tag the scrape lists, and that tag resolves
    back to the same quantization."""
    for q, tag in published(model.ollama).items():
        assert library_tag(model.ollama, q) == tag, (model.id, q)
        back = exact(cat(), tag)
        assert back is not None and back.arch.id == model.id, (tag, back)
        # F16 and BF16-GGUF share the one 16-bit tag where the library spells it bf16 (f16_word): same size
        same = {q} | ({"F16", "BF16-GGUF"} if tag.endswith("bf16") and q in ("F16", "BF16-GGUF") else set())
        assert back.gguf_quantization in same, (tag, back.gguf_quantization)


# Library tags whose quantization tags come in two builds, and the one the bare tag is: in the scrape (source in
# profiles/ollama_library.yaml) the bare tag's manifest digest is that of its default quantization spelled out as
# below, not that of the other spelling (comments: same digest, then the other spelling's)
SAME_BUILD = {
    "mistral:7b": "mistral:7b-instruct-v0.3-q4_K_M",  # 6577803aa9a0; 7b-instruct-q4_K_M: 1a85656b534f
    "gemma:7b": "gemma:7b-instruct-v1.1-q4_0",  # a72c7f4d0a15; 7b-instruct-q4_0 (v1.0): 430ed3535049
    "qwen3-vl:2b": "qwen3-vl:2b-thinking-q4_K_M",  # 0635d9d857d4; 2b-instruct-q4_K_M: ea422f1e7365
    "qwen3-vl:4b": "qwen3-vl:4b-thinking-q4_K_M",  # 1343d82ebee3; 4b-instruct-q4_K_M: ee4b975b58c1
    "qwen3-vl:8b": "qwen3-vl:8b-thinking-q4_K_M",  # 901cae732162; 8b-instruct-q4_K_M: 0533d74300e4
}


@pytest.mark.parametrize("bare", sorted(SAME_BUILD))
def test_other_quantizations_are_tags_of_the_bare_tags_build(bare: str) -> None:
    """A plan that picks another quantization than the bare tag's serves the same fine-tune: the catalog spells
    its tags as the bare tag's own build (Qwen3-VL's bare tags are the Thinking models; gemma:7b is v1.1)."""
    model = next(m for m in cat().models if m.ollama and bare_tag(m.ollama) == bare)
    o = model.ollama
    spelled = library_tag({**o, "default_quantization": None}, o["default_quantization"])
    assert spelled == SAME_BUILD[bare]
    prefix = spelled.rsplit("-", 1)[0] + "-"
    assert all(tag == bare or tag.startswith(prefix) for tag in published(o).values()), published(o)


@pytest.mark.parametrize("model", listed_models(), ids=lambda m: m.id)
def test_every_ollama_plan_pulls_a_published_tag(model) -> None:
    """Every quantization the planner weighs for Ollama, on a GPU where all of them fit, renders a tag the library
    publishes; so does the chosen plan."""
    listed = published(model.ollama)
    context = min(2048, model.max_position_embeddings or 2048)  # the embedding models take 512
    p, trace = plan(spec(bare_tag(model.ollama), gpu="H200", gpus=8, context=context))
    tags = ollama_tags(trace)
    assert tags, model.id
    for q, tag in tags.items():
        assert q in listed and tag == listed[q], (model.id, q, tag)
    if p.backend == "ollama":
        assert p.model.ollama_tag in listed.values()


# --------------------------------------------------------------------------- what the planner proposes


@pytest.mark.parametrize("model,gpu", [("qwen3:8b", "H100"), ("qwen3:14b", "RTX4060-8GB"),
                                       ("gemma3:12b", "RTX4060-8GB")])
def test_a_model_published_in_three_quantizations_never_gets_q6_k(model: str, gpu: str) -> None:
    """qwen3 is published in q4_K_M, q8_0 and fp16 only; before the list, an 8 GB card got qwen3:14b-instruct-q6_K
    and gemma3:12b-instruct-q6_K, tags that do not exist."""
    p, trace = plan(spec(model, gpu=gpu))
    weighed = set(ollama_tags(trace))
    assert weighed <= {"Q4_K_M", "Q8_0", "F16"} and "Q6_K" not in weighed
    assert p.feasible and p.quantization in weighed
    assert p.model.ollama_tag in published(exact(cat(), model).arch.ollama).values()


def test_qwen3_on_a_big_gpu_still_gets_its_full_precision_tag() -> None:
    p, _ = plan(spec("qwen3:8b"))
    assert p.quantization == "F16" and p.model.ollama_tag == "qwen3:8b-fp16"


def test_llama31_8b_keeps_every_quantization_and_gets_fp16_or_q8_when_there_is_room() -> None:
    p, trace = plan(spec("llama3.1:8b"))
    assert {"F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M"} <= set(ollama_tags(trace))
    assert p.quantization == "F16" and p.model.ollama_tag == "llama3.1:8b-instruct-fp16"
    q8, _ = plan(spec("llama3.1:8b", extra="  quantization: Q8_0\n"))
    assert q8.feasible and q8.model.ollama_tag == "llama3.1:8b-instruct-q8_0"


def test_a_forced_unpublished_quantization_says_why_instead_of_rendering_a_missing_tag() -> None:
    p, _ = plan(spec("qwen3:8b", extra="  quantization: Q6_K\n"))
    assert not p.feasible
    text = " ".join(p.problems)
    assert "publishes qwen3:8b only in Q4_K_M, Q8_0, F16" in text and "qwen3:8b-q6_K does not exist" in text
    assert "2026-08-21" in text and "ollama create" in text


def test_without_a_forced_engine_the_ollama_alternative_carries_the_reason() -> None:
    p, _ = plan(spec("qwen3:8b", extra="  quantization: Q6_K\n", backend=None))
    assert p.feasible and p.backend == "llama.cpp"  # bartowski's repository holds a Q6_K file
    assert any(a.backend == "ollama" and "qwen3:8b-q6_K does not exist" in a.rejected_because for a in p.alternatives)


def test_a_tag_spelling_an_unpublished_quantization_is_not_planned_on_ollama() -> None:
    p, _ = plan(spec("qwen3:8b-q6_K"))  # forced onto Ollama
    assert not p.feasible
    assert "qwen3:8b-q6_K: the Ollama library publishes qwen3:8b only in Q4_K_M, Q8_0, F16" in " ".join(p.problems)
    p, _ = plan(spec("qwen3:8b-q6_K", backend=None))
    assert p.feasible and p.backend == "llama.cpp" and p.quantization == "Q6_K"
    assert any(a.backend == "ollama" and "would refuse it" in a.rejected_because for a in p.alternatives)
    p, _ = plan(spec("qwen3:8b-q8_0"))  # published: pulled as written
    assert p.feasible and p.model.ollama_tag == "qwen3:8b-q8_0" and p.quantization == "Q8_0"


def _catalog_with_unlisted_model() -> Catalog:
    """The catalog plus a library model newer than the scrape: Qwen3-8B's architecture under a name it lacks."""
    c = Catalog.load().copy()
    a = c.model_by_id("qwen3-8b")
    c.models = [*c.models, dataclasses.replace(a, id="qwen9-8b", hf_id=None, hf_aliases=(),
                                               ollama=dict(a.ollama, names=["qwen9"]))]
    return c


def test_an_unlisted_tag_plans_its_default_only_and_says_so() -> None:
    p, trace = plan(spec("qwen9:8b"), _catalog_with_unlisted_model())
    assert set(ollama_tags(trace)) == {"Q4_K_M"}  # on an H100 that would otherwise be F16
    assert p.quantization == "Q4_K_M" and p.model.ollama_tag == "qwen9:8b"
    said = [w for w in p.warnings if "qwen9:8b" in w]
    assert said and "not recorded" in said[0] and "overrides.quantization" in said[0] and "ollama create" in said[0]


def test_an_unlisted_tag_renders_a_forced_quantization_with_a_warning() -> None:
    p, _ = plan(spec("qwen9:8b", extra="  quantization: Q8_0\n"), _catalog_with_unlisted_model())
    assert p.feasible and p.model.ollama_tag == "qwen9:8b-q8_0"
    assert any("unchecked" in w and "qwen9:8b-q8_0" in w for w in p.warnings)


# --------------------------------------------------------------------------- what it does not touch


def test_an_hf_co_reference_keeps_its_own_quantization() -> None:
    ref = "hf.co/Qwen/Qwen3-8B-GGUF:Q6_K"  # the library's qwen3:8b has no q6_K; this repository's file is used
    p, _ = plan(spec(ref))
    assert p.feasible and p.quantization == "Q6_K" and p.model.ollama_tag == ref
    assert not [w for w in p.warnings if "not recorded" in w]


def test_llama_cpp_still_weighs_quantizations_the_ollama_library_lacks() -> None:
    _, trace = plan(spec("qwen3:8b", backend="llama.cpp"))
    assert "Q6_K" in {c.quant.id for c in trace.ranked if c.backend == "llama.cpp" and c.feasible}


def test_vllm_to_ollama_picks_a_published_tag_or_names_the_list() -> None:
    from llmctl.errors import InputError
    from llmctl.migrate.reverse import ollama_tag_for

    assert ollama_tag_for("Qwen/Qwen3-8B", "Q8_0")[0] == "qwen3:8b-q8_0"
    with pytest.raises(InputError) as err:
        ollama_tag_for("Qwen/Qwen3-8B", "Q6_K")
    assert err.value.where == "--quant" and "only in Q4_K_M, Q8_0, F16" in str(err.value)


def test_migrate_to_ollama_refuses_a_quantization_the_library_does_not_publish() -> None:
    """`llmctl migrate vllm-to-ollama --quant` names the same list as the planner instead of writing a
    Modelfile FROM a tag that does not exist."""
    from llmctl.errors import InputError
    from llmctl.migrate.reverse import ollama_tag_for

    with pytest.raises(InputError, match="publishes qwen3:8b only in Q4_K_M, Q8_0, F16") as exc:
        ollama_tag_for("Qwen/Qwen3-8B", "Q6_K")
    assert "qwen3:8b-q6_K does not exist" in str(exc.value) and exc.value.where == "--quant"
    assert ollama_tag_for("Qwen/Qwen3-8B", "Q8_0")[:2] == ("qwen3:8b-q8_0", "Q8_0")
