"""Every Ollama tag the catalog lists (profiles/models.yaml: each name with each size tag, and the bare
`:latest` where one is the default) maps to a Hugging Face repository, and the migration's vLLM spec
for it is planned by vLLM: the tag's decisions are built as `migrate` builds them, the spec goes
through the normal loader and planner, on hardware large enough for the largest model."""

from __future__ import annotations

import pytest

from llmctl.catalog import Catalog
from llmctl.errors import InputError
from llmctl.fileio import to_yaml
from llmctl.migrate import decide, mapping
from llmctl.migrate.inventory import _from_catalog
from llmctl.planner import make_plan
from llmctl.spec import load_spec_text


def catalog_tags() -> list[str]:
    tags = []
    for m in Catalog.load().models:
        o = m.ollama or {}
        for name in o.get("names", []):
            tags += [f"{name}:{size}" for size in o.get("size_tags", [])]
            if o.get("latest"):
                tags.append(f"{name}:latest")
    return tags


TAGS = catalog_tags()
# four nodes of 8 H100s: the largest catalog model (671B) fits as FP8 with pipeline parallelism
HARDWARE = [{"name": "node", "gpu": "H100-80GB", "gpus": 8, "count": 4}]


def test_the_catalog_has_tags():
    assert len(TAGS) > 100 and "llama3.2:1b" in TAGS and "qwen2.5:7b" in TAGS


@pytest.mark.parametrize("tag", TAGS)
def test_tag_maps_and_vllm_plans_it(tag):
    model = _from_catalog(tag, "catalog")
    mp = mapping.map_model(model, {})
    assert mp["hf_repo"] and mp["confidence"] == "catalog", mp
    inventory = {"server": {"env": {}}, "models": [model], "native_api_seen": True}
    arch = Catalog.load().resolve_model(mp["hf_repo"]).arch
    ctx = min(4096, arch.max_position_embeddings or 4096)
    model["parameters"] = {"num_ctx": ctx, "temperature": 0.6}
    d = decide.decide(inventory, model, mp, name="m", hardware=HARDWARE)
    spec = load_spec_text(to_yaml(d["spec"]), "vllm.yaml")
    assert spec.serving.served_names[0] == model["name"]
    plan = make_plan(spec)
    assert plan.backend == "vllm"
    assert plan.feasible, plan.problems
    assert plan.max_model_len == ctx
    from llmctl.render import build_service

    argv = build_service(plan, spec).argv
    i = argv.index("--served-model-name")
    assert argv[i + 1] == model["name"]
    assert ("--runner" in argv) == ("embedding" in model["capabilities"])
    assert '{"temperature":0.6}' in argv


def test_default_tag_gets_the_bare_name_as_alias():
    from llmctl.model_refs import exact

    model = _from_catalog("llama3.2:3b", "catalog")
    found = exact(Catalog.load(), "llama3.2:3b")
    names = decide.aliases(model, {"models": [model]})
    if (found.arch.ollama or {}).get("latest"):
        assert names == ["llama3.2", "llama3.2:latest"]
    latest = _from_catalog("llama3.2:latest", "catalog")
    assert decide.aliases(latest, {"models": [latest]}) == ["llama3.2"]


def test_hf_co_tags_map_to_the_catalog_model():
    mp = mapping.map_model({"name": "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "model_info": {}}, {})
    assert mp["hf_repo"] == "meta-llama/Llama-3.2-1B-Instruct" and mp["confidence"] == "catalog"


def test_provenance_and_user_maps():
    info = {"general.base_model.0.repo_url": "https://huggingface.co/Qwen/Qwen2.5-7B-Instruct"}
    mp = mapping.map_model({"name": "my-finetune:latest", "model_info": info}, {})
    assert mp["confidence"] == "provenance" and mp["hf_repo"] == "Qwen/Qwen2.5-7B-Instruct"
    maps = mapping.parse_maps(["my-finetune=acme/finetune@0123abc"])
    mp = mapping.map_model({"name": "my-finetune:latest", "model_info": info}, maps)
    assert mp == {"hf_repo": "acme/finetune", "revision": "0123abc", "confidence": "user",
                  "how": "--map my-finetune=acme/finetune"}
    assert mapping.map_model({"name": "unknown-thing:7b", "model_info": {}}, {})["hf_repo"] is None
    with pytest.raises(InputError, match="--map unknown-thing:7b=ORG/REPO"):
        raise mapping.unmapped_error(["unknown-thing:7b"])
