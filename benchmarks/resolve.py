"""Model resolution cost: `python -m benchmarks.resolve`.

1. `llmctl plan` of a model resolved online, with a warm cache, against a bare interpreter start:
   target ≤ 15× `python -c pass` (median of N fresh processes).
2. Bytes a cold online resolution reads per model (Hub: model info, config.json, safetensors headers;
   registry: manifest, config blob, the GGUF header up to the tokenizer): target < 1 MB each.
The Hub and the registry are played by the stand-in server of the tests (tests/support/model_hub.py) on
127.0.0.1, serving full-size sparse checkpoints written here.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
RUNS = 5
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "LLMCTL_OFFLINE", "HF_HUB_OFFLINE")}


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr}")
    return elapsed


def _median(argv: list[str], env: dict[str, str]) -> float:
    _time(argv, env)
    return statistics.median(_time(argv, env) for _ in range(RUNS))


def _repo(tmp: Path, cfg: dict, shards: int):
    import json

    from resolve.hub_fixtures import llama_tensors, write_safetensors
    from support.model_hub import Repo

    tensors = llama_tensors(cfg)
    files: dict = {"config.json": json.dumps(cfg).encode()}
    per = -(-len(tensors) // shards)
    for i in range(shards):
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors" if shards > 1 else "model.safetensors"
        write_safetensors(tmp / name, tensors[i * per:(i + 1) * per])
        files[name] = tmp / name
    return Repo(sha="0" * 40, files=files)


def main() -> int:
    from llmctl.catalog import Catalog
    from llmctl.resolve import resolve_model
    from resolve.hub_fixtures import ollama_tag, smol_repo
    from support.ggufs import write_gguf
    from support.model_hub import Hub, HubServer

    ok = True
    with tempfile.TemporaryDirectory() as d, HubServer(Hub()) as server:
        tmp = Path(d)
        hub = server.hub
        env = {**ENV, "HF_ENDPOINT": server.url, "LLMCTL_OLLAMA_REGISTRY": server.url,
               "LLMCTL_CACHE_DIR": str(tmp / "cache"), "HF_HUB_CACHE": str(tmp / "hf"), "HF_HOME": str(tmp / "hf-home"),
               "OLLAMA_MODELS": str(tmp / "ollama")}
        os.environ.update(env)
        llama8b = {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
                   "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
                   "max_position_embeddings": 131072, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
        llama70b = {**llama8b, "hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80,
                    "num_attention_heads": 64}
        (tmp / "s").mkdir()
        hub.repos["bench/smol-135m"], _ = smol_repo(tmp / "s")
        for name, cfg, shards in (("bench/llama-8b-like", llama8b, 4), ("bench/llama-70b-like", llama70b, 30)):
            sub = tmp / name.split("/")[1]
            sub.mkdir()
            hub.repos[name] = _repo(sub, cfg, shards)
        gguf = tmp / "big-vocab.gguf"
        write_gguf(gguf, vocab=128000, merges=100000)
        _, hub.tags["library/bench-chat:8b"] = ollama_tag(gguf.read_bytes())

        rows = []
        for ref, what in (("bench/smol-135m", "Hub, 1 safetensors file"), ("bench/llama-8b-like", "Hub, 4 shards"),
                          ("bench/llama-70b-like", "Hub, 30 shards"), ("bench-chat:8b", "registry, 128k-token GGUF")):
            hub.reset_counts()
            start = time.perf_counter()
            resolve_model(Catalog.load(), ref)
            took = time.perf_counter() - start
            passed = hub.bytes_sent < 1_000_000
            ok &= passed
            rows.append([ref, what, len(hub.requests), f"{hub.bytes_sent:,}", f"{took:.2f}", "< 1 MB",
                         "PASS" if passed else "FAIL"])
        print(tabulate(rows, headers=["model", "source", "requests", "bytes read (cold)", "s", "target", ""]))
        print()

        spec = tmp / "spec.yaml"
        spec.write_text("name: bench\nmodel: bench/llama-8b-like\nworkload:\n  concurrency: 8\n  prompt_tokens: 512\n"
                        "  output_tokens: 128\n  context_length: 4096\nhardware:\n  - gpu: L40S\n    gpus: 1\n")
        bare = _median([sys.executable, "-c", "pass"], env)
        hub.reset_counts()
        plan = _median([sys.executable, "-m", "llmctl", "plan", str(spec), "-o", "json"], env)
        requests = len(hub.requests)
        ratio = plan / bare
        passed = ratio <= 15 and requests == 0
        ok &= passed
        print(tabulate([["python -c pass", f"{bare:.3f}", "", ""],
                        [f"llmctl plan (Hub model, warm cache; {requests} requests)", f"{plan:.3f}", f"{ratio:.1f}×",
                         "PASS" if passed else "FAIL"]],
                       headers=["command", f"median s ({RUNS} runs)", "vs bare start (≤ 15×)", ""]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
