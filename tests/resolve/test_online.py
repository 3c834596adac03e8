"""Online resolution against a stand-in Hugging Face Hub and Ollama registry on 127.0.0.1.

The real services cannot be reached from the test machines; tests/support/model_hub.py answers in their
shapes (see its docstring for the recorded sources) and serves range requests from files written here.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from llmctl.catalog import Catalog
from llmctl.errors import InputError
from llmctl.resolve import resolve_model, set_offline
from support.ggufs import write_gguf
from support.model_hub import Hub, HubServer

from .hub_fixtures import SMOL, SMOL_PARAMS, ollama_tag, smol_repo


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch):
    state = Hub()
    with HubServer(state) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("LLMCTL_OLLAMA_REGISTRY", server.url)
        yield state


def cat() -> Catalog:
    return Catalog.load()


# ---------------------------------------------------------------- Hugging Face Hub


@pytest.mark.parametrize("shards", [1, 3])
def test_unknown_repo_resolves_online_exact_to_the_byte(hub: Hub, tmp_path: Path, shards: int) -> None:
    hub.repos[SMOL], total = smol_repo(tmp_path, shards=shards)
    assert total == 2 * SMOL_PARAMS
    m = resolve_model(cat(), SMOL)
    assert m.source == "hub" and m.kind == "hf-cache" and m.hf_id == SMOL
    assert m.weight_bytes == 2 * SMOL_PARAMS == 269_030_016
    assert (m.arch.num_hidden_layers, m.arch.hidden_size, m.arch.num_key_value_heads) == (30, 576, 3)
    assert m.arch.tie_word_embeddings is True
    assert m.revision == hub.repos[SMOL].sha
    assert hub.bytes_sent < 1_000_000  # a cold resolution reads well under 1 MB


def test_online_model_plans_with_exact_weight_bytes(hub: Hub, tmp_path: Path) -> None:
    from llmctl.planner import Trace, make_plan
    from llmctl.spec import load_spec_text

    hub.repos[SMOL], _ = smol_repo(tmp_path)
    spec = load_spec_text(f"name: t\nmodel: {SMOL}\nworkload:\n  concurrency: 4\n  prompt_tokens: 256\n"
                          "  output_tokens: 64\n  context_length: 2048\nhardware:\n  - gpu: L4\n    gpus: 1\n")
    trace = Trace()
    plan = make_plan(spec, trace=trace)
    assert plan.feasible
    bf16 = [c for c in trace.ranked if c.backend == "vllm" and c.quant.id == "BF16"]
    assert bf16 and all(c.weight_bytes_total == 2 * SMOL_PARAMS for c in bf16)
    hub.reset_counts()
    again = make_plan(spec)  # the second plan of the same model makes no request
    assert hub.requests == [] and again.memory.per_gpu_gib.weights == plan.memory.per_gpu_gib.weights


def test_second_resolution_makes_no_request(hub: Hub, tmp_path: Path) -> None:
    hub.repos[SMOL], _ = smol_repo(tmp_path, shards=2)
    first = resolve_model(cat(), SMOL)
    assert len(hub.requests) >= 4  # model info, config.json, two shard headers
    hub.reset_counts()
    again = resolve_model(cat(), SMOL)
    assert hub.requests == [] and again.weight_bytes == first.weight_bytes
    assert any("cache" in n for n in again.notes)


def test_offline_forbids_the_network(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.repos["acme/nano-135m"], _ = smol_repo(tmp_path)  # a name the catalog has no near match for
    set_offline(True)
    with pytest.raises(InputError) as exc:
        resolve_model(cat(), "acme/nano-135m", where="model")
    assert "not asked: --offline" in str(exc.value) and hub.requests == []
    set_offline(False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError, match="HF_HUB_OFFLINE=1"):
        resolve_model(cat(), "acme/nano-135m")
    assert hub.requests == []


def test_offline_falls_back_to_a_catalog_near_match(hub: Hub, tmp_path: Path) -> None:
    hub.repos[SMOL], _ = smol_repo(tmp_path)
    set_offline(True)
    m = resolve_model(cat(), SMOL)  # the base of the catalog's SmolLM2-135M-Instruct
    assert m.source == "catalog" and m.arch.id == "smollm2-135m" and hub.requests == []


def test_gated_repo_without_a_token_says_how_to_get_access(hub: Hub, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    hub.repos["acme/Gated-1B"], _ = smol_repo(tmp_path, gated="manual")
    with pytest.raises(InputError) as exc:
        resolve_model(cat(), "acme/Gated-1B", where="model")
    text = str(exc.value)
    assert exc.value.exit_code == 2 and "gated" in text and "HF_TOKEN" in text and "acme/Gated-1B" in text
    monkeypatch.setenv("HF_TOKEN", "hf_example_token")
    m = resolve_model(cat(), "acme/Gated-1B")
    assert m.weight_bytes == 2 * SMOL_PARAMS and m.gated


def test_corrupt_safetensors_header_is_a_clear_error(hub: Hub, tmp_path: Path) -> None:
    hub.repos["acme/Broken"], _ = smol_repo(tmp_path, corrupt=True)
    with pytest.raises(InputError) as exc:
        resolve_model(cat(), "acme/Broken", where="model")
    assert exc.value.exit_code == 2 and "corrupt" in str(exc.value)


def test_repo_not_on_the_hub_is_unknown(hub: Hub) -> None:
    with pytest.raises(InputError) as exc:
        resolve_model(cat(), "acme/does-not-exist", where="model")
    assert "unknown model" in str(exc.value) and "not on Hugging Face" in str(exc.value)


@pytest.mark.parametrize("mode", ["dead", "stall"])
def test_network_failure_is_fast_and_clear(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           mode: str) -> None:
    monkeypatch.setenv("LLMCTL_NET_TIMEOUT", "1")
    hub.mode = mode
    start = time.monotonic()
    with pytest.raises(InputError) as exc:
        resolve_model(cat(), "acme/nano-135m", where="model")
    assert time.monotonic() - start < 10
    assert exc.value.exit_code == 2 and "unreachable" in str(exc.value)


def test_network_failure_falls_back_to_the_catalog_with_a_warning(hub: Hub, capsys: pytest.CaptureFixture) -> None:
    hub.mode = "dead"
    m = resolve_model(cat(), "someone/Llama-3.1-8B-Instruct-AWQ")
    assert m.source == "catalog" and m.arch.id == "llama-3.1-8b" and m.hf_quantization == "AWQ"
    err = capsys.readouterr().err
    assert "warning:" in err and "could not reach" in err


# ---------------------------------------------------------------- Ollama registry


def test_unknown_tag_resolves_from_the_registry(hub: Hub, tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    write_gguf(gguf, vocab=30000, merges=30000)  # a tokenizer big enough that reading it all would cost
    data = gguf.read_bytes()
    _, tag = ollama_tag(data)
    hub.tags["library/tinychat:1b"] = tag
    m = resolve_model(cat(), "tinychat:1b")
    assert m.source == "registry" and m.kind == "ollama" and m.ollama_tag == "tinychat:1b"
    assert m.weight_bytes == len(data)  # the model layer's size from the manifest
    assert (m.arch.num_hidden_layers, m.arch.hidden_size, m.arch.vocab_size) == (2, 64, 30000)
    assert m.ollama_manifest.params == {"stop": ["<|eot_id|>"]} and m.ollama_manifest.template == "{{ .Prompt }}"
    assert hub.bytes_sent < 200_000 < len(data) // 4  # header read stopped at the tokenizer
    hub.reset_counts()
    again = resolve_model(cat(), "tinychat:1b")
    assert hub.requests == [] and again.weight_bytes == m.weight_bytes


def test_registry_tag_not_found_is_unknown(hub: Hub) -> None:
    with pytest.raises(InputError) as exc:
        resolve_model(cat(), "nosuchmodel:7b", where="model")
    assert "unknown model" in str(exc.value) and "not in the Ollama registry" in str(exc.value)


def test_registry_corrupt_header(hub: Hub) -> None:
    _, tag = ollama_tag(b"GGUF\x03\x00\x00\x00" + b"\xff" * 200)
    hub.tags["library/broken:1b"] = tag
    with pytest.raises(InputError) as exc:
        resolve_model(cat(), "broken:1b", where="model")
    assert exc.value.exit_code == 2 and "corrupt" in str(exc.value)


def test_float32_checkpoint_is_planned_in_16_bit(hub: Hub, tmp_path: Path) -> None:
    import json

    from support.model_hub import Repo

    from .hub_fixtures import DATA, llama_tensors, write_safetensors

    cfg = json.loads((DATA / "HuggingFaceTB--SmolLM2-135M.config.json").read_text())
    stored = write_safetensors(tmp_path / "model.safetensors", llama_tensors(cfg), dtype="F32", width=4)
    hub.repos["acme/f32-135m"] = Repo(sha="1" * 40, files={"config.json": json.dumps(cfg).encode(),
                                                            "model.safetensors": tmp_path / "model.safetensors"})
    m = resolve_model(cat(), "acme/f32-135m")
    assert stored == 4 * SMOL_PARAMS and m.weight_bytes == 2 * SMOL_PARAMS
