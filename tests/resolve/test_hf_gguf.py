"""`hf.co/{user}/{repo}[:{quant}]` references (Ollama's form for GGUF repositories on Hugging Face), resolved
against a stand-in Hub on 127.0.0.1.

The Hub cannot be reached from the test machines; tests/support/model_hub.py answers the file list and
serves the GGUF files written here (with llama.cpp's `gguf` package) with Range support, redirecting
them to a CDN path as the Hub does for LFS files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llmctl.catalog import Catalog
from llmctl.errors import InputError
from llmctl.resolve import hf_gguf, resolve_model, set_offline
from support.ggufs import write_gguf
from support.model_hub import Hub, HubServer, Repo

REPO = "acme/Nano-4L-GGUF"  # a name the catalog has no entry or near match for
SHA = "5d2b3c8e9f0a1b2c3d4e5f60718293a4b5c6d7e8"
SHAPE = {"layers": 4, "hidden": 256, "ffn": 1024, "heads": 4, "kv": 2}


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch):
    state = Hub()
    with HubServer(state) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield state


def gguf_repo(tmp: Path, quants: tuple[str, ...] = ("Q4_K_M", "Q8_0"), split: str | None = None) -> tuple[Repo, dict]:
    """A GGUF repo named like bartowski's (`<Model>-<QUANT>.gguf`); `split` writes that quant as 3 parts."""
    files: dict = {"README.md": b"# Nano\n", ".gitattributes": b"*.gguf filter=lfs\n"}
    totals = {}
    for i, q in enumerate(quants):
        path = tmp / f"Nano-4L-{q}.gguf"
        if q == split:
            totals[q] = write_gguf(path, **SHAPE, split_max_tensors=13)  # 39 tensors: 3 parts
            parts = sorted(tmp.glob(f"Nano-4L-{q}-*-of-*.gguf"))
            assert len(parts) == 3
            files.update({p.name: p for p in parts})
        else:
            totals[q] = write_gguf(path, **{**SHAPE, "layers": SHAPE["layers"] + i}, f16=(i % 2 == 1))
            files[path.name] = path
    return Repo(sha=SHA, files=files), totals


def cat() -> Catalog:
    return Catalog.load()


def test_reference_forms() -> None:
    assert hf_gguf.parse_ref("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q8_0") == (
        "bartowski/Llama-3.2-1B-Instruct-GGUF", "Q8_0")
    assert hf_gguf.parse_ref("huggingface.co/a/b") == ("a/b", None)
    assert hf_gguf.parse_ref("hf.co/a") is None and hf_gguf.parse_ref("a/b") is None
    assert hf_gguf.quant_of("Llama-3.2-1B-Instruct-IQ4_XS.gguf") == "IQ4_XS"
    assert hf_gguf.quant_of("Q8_0/Llama-3.3-70B-Instruct-Q8_0-00001-of-00002.gguf") == "Q8_0"
    assert hf_gguf.quant_of("gpt-oss-20b-UD-Q4_K_XL.gguf") == "UD-Q4_K_XL"
    assert hf_gguf.quant_of("mmproj-model-f16.gguf") is None and hf_gguf.quant_of("README.md") is None


def test_quant_resolves_with_exact_tensor_bytes_without_reading_weights(hub: Hub, tmp_path: Path) -> None:
    hub.repos[REPO], totals = gguf_repo(tmp_path)
    m = resolve_model(cat(), f"hf.co/{REPO}:Q8_0")
    assert m.weight_bytes == totals["Q8_0"] and m.gguf_quantization == "Q8_0"
    assert (m.arch.num_hidden_layers, m.arch.hidden_size, m.arch.num_key_value_heads) == (5, 256, 2)
    assert m.arch.architecture == "gguf:llama" and m.revision == SHA
    assert m.gguf_source == f"{REPO}:Q8_0" and m.ollama_tag == f"hf.co/{REPO}:Q8_0"
    assert hub.bytes_sent < totals["Q8_0"] / 4  # the header, not the weights
    assert not any("Q4_K_M" in r for r in hub.requests)


def test_default_quant_and_the_long_domain(hub: Hub, tmp_path: Path) -> None:
    hub.repos[REPO], totals = gguf_repo(tmp_path)
    m = resolve_model(cat(), f"huggingface.co/{REPO}")
    assert m.gguf_quantization == "Q4_K_M" and m.weight_bytes == totals["Q4_K_M"]
    assert m.arch.num_hidden_layers == 4 and m.ollama_tag == f"huggingface.co/{REPO}"


def test_split_file_sums_its_parts(hub: Hub, tmp_path: Path) -> None:
    hub.repos[REPO], totals = gguf_repo(tmp_path, quants=("Q4_K_M", "Q8_0"), split="Q8_0")
    m = resolve_model(cat(), f"hf.co/{REPO}:q8_0")
    assert m.weight_bytes == totals["Q8_0"] and m.arch.num_hidden_layers == 4
    assert m.gguf_source == f"{REPO}:Q8_0"
    assert sum("-of-00003.gguf" in r for r in hub.requests if r.startswith("/cdn/")) == 3


def test_missing_quant_lists_what_the_repo_has(hub: Hub, tmp_path: Path) -> None:
    hub.repos[REPO], _ = gguf_repo(tmp_path)
    with pytest.raises(InputError) as exc:
        resolve_model(cat(), f"hf.co/{REPO}:Q2_K", where="model")
    assert exc.value.exit_code == 2
    assert "no Q2_K" in str(exc.value) and "Q4_K_M, Q8_0" in str(exc.value)


def test_missing_quant_through_the_cli_exits_2(hub: Hub, tmp_path: Path) -> None:
    from support.cli import run_llmctl

    hub.repos[REPO], _ = gguf_repo(tmp_path)
    spec = tmp_path / "llmctl.yaml"
    spec.write_text(f"name: t\nmodel: hf.co/{REPO}:Q5_K_M\nworkload:\n  concurrency: 1\n  prompt_tokens: 64\n"
                    "  output_tokens: 16\n  context_length: 1024\nhardware:\n  - gpu: RTX 4090\n    gpus: 1\n")
    r = run_llmctl("plan", str(spec))
    assert r.code == 2, r.output
    assert "no Q5_K_M" in r.stderr and "Q4_K_M, Q8_0" in r.stderr and "Traceback" not in r.output


def test_cached_then_offline(hub: Hub, tmp_path: Path) -> None:
    hub.repos[REPO], totals = gguf_repo(tmp_path)
    ref = f"hf.co/{REPO}:Q8_0"
    set_offline(True)
    with pytest.raises(InputError) as exc:  # before caching: offline cannot answer
        resolve_model(cat(), ref, where="model")
    assert "unknown model" in str(exc.value) and "not asked: --offline" in str(exc.value)
    assert hub.requests == []
    set_offline(False)
    first = resolve_model(cat(), ref)
    hub.reset_counts()
    again = resolve_model(cat(), ref)
    assert hub.requests == [] and again.weight_bytes == first.weight_bytes == totals["Q8_0"]
    assert any("(cached)" in n for n in again.notes)
    set_offline(True)
    off = resolve_model(cat(), ref)
    assert hub.requests == [] and off.weight_bytes == totals["Q8_0"] and off.gguf_source == f"{REPO}:Q8_0"


@pytest.mark.parametrize("backend", ["llama.cpp", "ollama"])
def test_plans_on_llamacpp_and_ollama(hub: Hub, tmp_path: Path, backend: str) -> None:
    from llmctl.planner import make_plan
    from llmctl.spec import load_spec_text

    hub.repos[REPO], totals = gguf_repo(tmp_path)
    ref = f"hf.co/{REPO}:Q8_0"
    spec = load_spec_text(f"name: t\nmodel: {ref}\nworkload:\n  concurrency: 2\n  prompt_tokens: 256\n"
                          "  output_tokens: 64\n  context_length: 2048\nhardware:\n  - gpu: RTX 4090\n    gpus: 1\n"
                          f"overrides:\n  backend: {backend}\n")
    plan = make_plan(spec)
    assert plan.feasible and plan.quantization == "Q8_0"
    want = f"{REPO}:Q8_0" if backend == "llama.cpp" else ref
    assert plan.model.source == want
    hub.reset_counts()
    again = make_plan(spec)  # the second plan makes no request
    assert hub.requests == [] and again.model.source == want


def test_corrupt_gguf_header_is_a_clear_error(hub: Hub, tmp_path: Path) -> None:
    bad = tmp_path / "Nano-4L-Q4_K_M.gguf"
    bad.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + (1 << 40).to_bytes(8, "little") * 2)
    hub.repos[REPO] = Repo(sha=SHA, files={bad.name: bad})
    with pytest.raises(InputError) as exc:
        resolve_model(cat(), f"hf.co/{REPO}", where="model")
    assert exc.value.exit_code == 2 and "GGUF header" in str(exc.value) and "corrupt" in str(exc.value)


def test_dead_hub_is_fast_and_clear(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("LLMCTL_NET_TIMEOUT", "1")
    hub.mode = "dead"
    start = time.monotonic()
    with pytest.raises(InputError) as exc:
        resolve_model(cat(), f"hf.co/{REPO}:Q8_0", where="model")
    assert time.monotonic() - start < 10
    assert exc.value.exit_code == 2 and "unreachable" in str(exc.value)
