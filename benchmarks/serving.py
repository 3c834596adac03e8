"""Serving under concurrent load, predicted vs measured: `python -m benchmarks.serving`.

Every row of benchmarks/calibration/vllm_serving_sweeps.yaml (vLLM under `vllm bench serve` load, each
row with its public source and the quoted benchmark output) is predicted with `performance.predict` from
the row's own settings: model, GPU, TP, the KV cache the start-up log reports, `max_num_batched_tokens`.
The row's `load.kind` sets the arrival:

- `burst`: `--num-prompts N`, request rate inf, no `--max-concurrency` — all N arrive at t=0,
  `arrival="burst"` (one request's prompt already cached by the client's warm-up request);
- `closed`: `--max-concurrency C` of `--num-prompts N` at request rate inf — the client keeps C requests
  in flight, sending the next as one finishes: C users in a closed loop, `arrival="closed"` (the steady
  state; the run's ramp-up and final drain, a few requests out of N, are not modelled). A ShareGPT
  dataset (`load.dataset: sharegpt`) has per-request lengths spread around the totals' means:
  `lengths="sharegpt"`.

Four figures per row:

- total output throughput (tokens/s over the run),
- per-user speed: 1000 / median TPOT (tokens/s a typical user sees while streaming),
- median TTFT,
- mean TPOT (time per output token after the first).

The constants in profiles/performance.yaml were fitted on the TRAIN rows only (Qwen2-7B, 1024-token
prompts and answers, TP 1 at utilisation 0.5 and TP 2 at 0.25 on an A100; Qwen3-14B on one H100 SXM,
S57–S60, for the one constant the A100 cannot inform: the share of the tensor peak a newer family
reaches); the TEST rows — a KV cache five times smaller (preemption), TP 2 with a larger cache, other
prompt/answer lengths (128–7168), bursts of 500–1000, Qwen2.5-32B on one and two GPUs, Qwen2-72B on
two, Qwen3-32B and Qwen3-235B-A22B on H100, everything on A100 SXM — were not used to fit anything.
Medians are printed for both, so over-fitting shows. `--fit` re-runs the fit on the train rows,
prints the constants it finds and the table with them.

Rows on other GPUs (S57 on):
- S57–S75: vLLM 0.11.0 bursts of 100–1000 from one public performance lab on H100 SXM (Qwen3-14B —
  train — and Qwen3-32B on one GPU, Qwen3-235B-A22B at TP 8) and, as a control from the same source and
  method, on A100 SXM 80GB (Qwen3-32B, Qwen3-235B-A22B at TP 8);
- S76–S79 (test): closed loops of 1, 2, 4 and 8 users from the same lab: Qwen3-8B on one H100 SXM, vLLM
  0.11.0, 100 ShareGPT conversations through the chat endpoint;
- S80–S84 (test): Qwen2.5-7B-Instruct on one GeForce RTX 4090, vLLM 0.25.1, ShareGPT: one user (200
  conversations, completions endpoint) and 8, 16, 32 and 64 users (400 conversations, chat endpoint,
  `--ignore-eos`, prefix cache off; the source's saved result files).
A row names its catalog GPU in `gpu_id`; the TP ranks use that GPU's own link. These sources give no
start-up log (`kv_cache: not stated`): the KV cache is then llmctl's own vLLM memory estimate for the
row's settings and release, marked `*` in the table. Medians are printed per GPU and split.

Row mapping (the source states what is mapped, the catalog has the rest):
- Qwen/Qwen2-7B-Instruct → catalog `qwen2.5-7b` (identical config.json sizes: 28 layers, hidden
  3584, 4 KV heads; the start-up log's 464,848 tokens in 24.83 GiB = 56 KiB per token confirms it);
  Qwen/Qwen2-72B → `qwen2.5-72b` (80 layers, hidden 8192, 8 KV heads, MLP 29568 in both).
- Qwen/Qwen2.5-7B-Instruct → `qwen2.5-7b`; Qwen/Qwen3-8B, Qwen/Qwen3-14B, Qwen/Qwen3-32B → `qwen3-8b`,
  `qwen3-14b`, `qwen3-32b`; Qwen/Qwen3-235B-A22B-Instruct-2507 →
  `qwen3-235b-a22b` (94 layers, hidden 4096, 4 KV heads, 128 experts with 8 active in both; the 2507
  release raises max_position_embeddings to 262144, which the rows give as their max_model_len).
- Where a section gives only the KV GiB (32B, 72B), the tokens are GiB over the bytes per token.
- "NVIDIA A100 80GB", form factor not stated → `A100-80GB-PCIe`: the two TP ranks run in two pods
  and their start-up log says "Custom allreduce is disabled because your platform lacks GPU P2P
  capability": the all-reduce crosses PCIe through host memory (link `pcie_host`).
- vLLM's benchmark client sends the first prompt once before the run (its warm-up request); V1's
  prefix cache then holds that prompt, so one request per burst computes no prompt (`warm_prompts=1`).
- The engine log lines the source pastes show prefix-cache hit rates of 39–56 %, counted since the
  server started: the runs follow one another on one server and the random prompts of one burst share
  no prefix, so the hits are earlier runs' prompts met again. Which ones is not recorded; the rows are
  predicted with no hits beyond the warm-up prompt (`prefix_cache_hit=0`), which is why a few median
  TTFTs measured far below the prediction (S03, S46, S47: prompts cached by the previous run).
"""

from __future__ import annotations

import argparse
import copy
import math
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.descent import coordinate_descent
from llmctl.catalog import Catalog
from llmctl.estimate import performance as perf
from llmctl.estimate.kv import kv_shape
from llmctl.estimate.weights import lookup_bytes_per_gpu, weight_bytes, weight_bytes_per_gpu

HERE = Path(__file__).resolve().parent
DATA = HERE / "calibration" / "vllm_serving_sweeps.yaml"
# Fitted on: the 7B bursts of 1024/1024 tokens at TP 1 (utilisation 0.5) and at TP 2 (0.25, N = 1–200):
# the TP 2 rows are what the PCIe-through-host link is fitted on; and Qwen3-14B on one H100 (S57–S60),
# which is what the non-Ampere compute efficiency is fitted on. Everything else is the test.
TRAIN = {f"S{i:02d}" for i in range(1, 10)} | {f"S{i:02d}" for i in range(14, 19)} | {"S57", "S58", "S59", "S60"}
TARGETS = {"throughput": 10.0, "per_user": 12.0, "ttft_p50": 25.0, "tpot_mean": 12.0}  # median |error|, %
METRICS = ("throughput", "per_user", "ttft_p50", "tpot_mean")
MODELS = {"Qwen/Qwen2-7B-Instruct": "qwen2.5-7b", "Qwen/Qwen2.5-7B-Instruct": "qwen2.5-7b",
          "Qwen/Qwen2.5-32B": "qwen2.5-32b", "Qwen/Qwen2-72B": "qwen2.5-72b",
          "Qwen/Qwen3-8B": "qwen3-8b", "Qwen/Qwen3-14B": "qwen3-14b", "Qwen/Qwen3-32B": "qwen3-32b",
          "Qwen/Qwen3-235B-A22B-Instruct-2507": "qwen3-235b-a22b"}
LOADS = ("burst", "closed")  # load.kind: see the module doc
GPU = "A100-80GB-PCIe"  # rows without `gpu_id` (the A100 series)
PREFIX_HIT = 0.0
GiB = 1024**3


@dataclass
class Row:
    id: str
    sweep: str
    gpu: str
    n: int
    dep: perf.Deployment
    prompt: int
    output: int
    measured: dict[str, float]
    predicted: dict[str, float] = field(default_factory=dict)
    kv_estimated: bool = False  # the source gives no start-up log: the KV cache is llmctl's own estimate
    kind: str = "burst"  # load.kind: "burst" (N at once) or "closed" (--max-concurrency users)
    users: int = 0  # requests in flight: N for a burst, --max-concurrency for a closed loop
    lengths: str = "fixed"  # "sharegpt" for a closed loop replaying ShareGPT (lengths spread around the means)

    @property
    def split(self) -> str:
        return "train" if self.id in TRAIN else "test"

    def error(self, metric: str) -> float:
        return (self.predicted[metric] - self.measured[metric]) / self.measured[metric] * 100


def load() -> list[dict]:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(DATA.read_text(encoding="utf-8"))["serving"]


def _kv_tokens(row: dict, per_token: float) -> int:
    """The start-up log's KV cache in tokens, or its GiB over the bytes per token."""
    text = row["kv_cache"]
    m = re.search(r"([\d,]+) tokens", text)
    if m:
        return int(m.group(1).replace(",", ""))
    gib = float(re.search(r"([\d.]+) GiB", text).group(1))
    return int(gib * GiB / per_token)


def _version(row: dict) -> str:
    """The release the row states, as x.y.z ("0.10.1.1 (startup log …)" → "0.10.1")."""
    return re.search(r"\d+\.\d+\.\d+", str(row["engine_version"])).group(0)


def _setting(settings: dict, key: str) -> int | None:
    m = re.match(r"\d+", str(settings.get(key, "")))
    return int(m.group(0)) if m else None


def rows(cat: Catalog) -> list[Row]:
    from llmctl.estimate.memory import vllm_defaults, vllm_memory

    out = []
    for r in load():
        gpu = r.get("gpu_id", GPU)
        dev = cat.gpu(gpu)
        version = _version(r)
        batched, seqs = vllm_defaults(dev, version)
        arch = cat.model_by_id(MODELS[r["model"]])
        tp = int(r["tensor_parallel"])
        per_tok = kv_shape(arch, dtype_bytes=2.0, tp=tp).bytes_per_token_full
        settings = r.get("engine_settings") or {}
        budget = _setting(settings, "max_num_batched_tokens") or batched
        wbytes = weight_bytes(arch, cat.quantization("BF16"))
        estimated = "not stated" in r["kv_cache"]
        if estimated:  # no start-up log: what llmctl's vLLM memory model gives for the row's settings
            util = settings.get("gpu_memory_utilization")
            kv = vllm_memory(arch, weight_bytes_total=wbytes, gpu=dev, tp=tp, max_model_len=_setting(settings, "max_model_len"),
                             gpu_memory_utilization=float(util) if util else None, max_num_batched_tokens=budget,
                             engine_version=version).kv_cache_tokens
        else:
            kv = _kv_tokens(r, per_tok)
        dep = perf.Deployment(
            arch=arch, backend="vllm", budget_includes_decode=True, paged_kv=True, device=dev, tp=tp, pp=1,
            weight_bytes_per_gpu=weight_bytes_per_gpu(arch, wbytes, tp, 1),
            lookup_bytes_per_gpu=lookup_bytes_per_gpu(arch, cat.quantization("BF16"), tp, 1),
            kv_bytes_per_token=per_tok, max_batch=seqs, max_num_batched_tokens=budget,
            max_num_seqs=seqs, kv_cache_tokens=kv, engine_version=version,
            # the A100 series' TP ranks sit in two pods without P2P (see the module doc); others use the GPU's link
            link="pcie_host" if tp > 1 and gpu == GPU else None,
        )
        m = r["measured"]
        measured = {"throughput": m["output_tok_s"], "per_user": 1000 / m["tpot_ms"]["median"],
                    "ttft_p50": m["ttft_ms"]["median"], "tpot_mean": m["tpot_ms"]["mean"]}
        spec = r["load"]
        kind = spec.get("kind", "burst")
        if kind not in LOADS:
            raise ValueError(f"row {r['id']}: load.kind {kind!r} is not one of {', '.join(LOADS)}")
        n = int(spec["num_prompts"])
        users = int(spec["max_concurrency"]) if kind == "closed" else n
        lengths = "sharegpt" if kind == "closed" and spec.get("dataset") == "sharegpt" else "fixed"
        # lengths as sent where the source gives the totals (answers may stop before the limit)
        prompt = round(m["total_input_tokens"] / n) if "total_input_tokens" in m else int(spec["input_tokens"])
        answer = round(m["total_generated_tokens"] / n) if "total_generated_tokens" in m else int(spec["output_tokens"])
        out.append(Row(r["id"], r["sweep"], gpu, n, dep, prompt, answer, measured, kv_estimated=estimated, kind=kind,
                       users=users, lengths=lengths))
    return out


def predict_all(rs: list[Row]) -> None:
    for r in rs:
        if r.kind == "closed":  # the steady state of `users` users (the run's ramp-up and drain are not modelled)
            est = perf.predict(r.dep, concurrency=r.users, prompt_tokens=r.prompt, output_tokens=r.output,
                               arrival="closed", lengths=r.lengths, prefix_cache_hit=PREFIX_HIT)
        else:
            est = perf.predict(r.dep, concurrency=r.users, prompt_tokens=r.prompt, output_tokens=r.output,
                               arrival="burst", warm_prompts=1, prefix_cache_hit=PREFIX_HIT)
        r.predicted = {"throughput": est.throughput_tokens_per_s, "per_user": 1000 / est.itl_p50_ms,
                       "ttft_p50": est.ttft_p50_ms, "tpot_mean": est.itl_mean_ms}


def medians(rs: list[Row]) -> dict[str, float]:
    return {m: statistics.median(abs(r.error(m)) for r in rs) if rs else math.nan for m in METRICS}


# --------------------------------------------------------------------------- fitting (train rows only)

FREE = [  # (path in the constants, lower, upper): physical bounds
    (("engines", "vllm", "memory_efficiency", "ampere"), 0.4, 0.8),
    (("engines", "vllm", "kv_efficiency", "gpu"), 0.3, 0.9),
    (("engines", "vllm", "compute_efficiency", "ampere"), 0.3, 0.8),
    (("engines", "vllm", "compute_efficiency", "gpu"), 0.2, 0.8),  # every other family; fitted on Hopper
    (("engines", "vllm", "layer_overhead_ms", "gpu"), 0.0, 0.2),
    (("engines", "vllm", "step_overhead_ms"), 0.0, 10.0),
    (("engines", "vllm", "request_overhead_ms"), 0.0, 100.0),
    (("engines", "vllm", "seq_overhead_us"), 0.0, 200.0),
    (("interconnect", "links", "pcie_host", "latency_us"), 5.0, 200.0),
    (("interconnect", "links", "pcie_host", "bus_efficiency"), 0.05, 0.5),
    (("interconnect", "links", "pcie_host", "small_message_bus_efficiency"), 0.02, 0.5),
]


def _get(c: dict, path: tuple) -> float:
    for p in path[:-1]:
        c = c[p]
    return float(c.get(path[-1], 0.0) if isinstance(c, dict) else c)


def _set(c: dict, path: tuple, v: float) -> None:
    for p in path[:-1]:
        c = c.setdefault(p, {})
    c[path[-1]] = v


def _loss(rs: list[Row]) -> float:
    predict_all(rs)
    return sum(abs(math.log(r.predicted[m] / r.measured[m])) for r in rs for m in METRICS) / (len(rs) * len(METRICS))


def fit(rs: list[Row], base: dict) -> dict:
    c = copy.deepcopy(base)
    for path, lo, hi in FREE:
        if isinstance(c["engines"]["vllm"].get(path[2]), (int, float)) and len(path) == 4:
            c["engines"]["vllm"][path[2]] = {"gpu": c["engines"]["vllm"][path[2]]}
    x = [min(hi, max(lo, _get(c, p) or (lo + hi) / 2)) for p, lo, hi in FREE]

    def loss_at(vals: list[float]) -> float:
        trial = copy.deepcopy(c)
        for (p, _, _), v in zip(FREE, vals):
            _set(trial, p, v)
        _tie(trial)
        with perf.override_constants(trial):
            return _loss(rs)

    x = coordinate_descent(x, loss_at, [(lo, hi) for _, lo, hi in FREE], step=0.25, rounds=40, tol=0.01,
                           zero_step=lambda lo, hi: (hi - lo) / 4)
    for (p, _, _), v in zip(FREE, x):
        _set(c, p, round(v, 3))
    _tie(c)
    return c


def _tie(c: dict) -> None:
    """Constants that follow a fitted one: Ada takes Ampere's compute share (same tensor-core
    instructions; profiles/performance.yaml says why), not a value of its own."""
    comp = c["engines"]["vllm"]["compute_efficiency"]
    if isinstance(comp, dict) and "ampere" in comp:
        comp["ada"] = comp["ampere"]


# --------------------------------------------------------------------------- report


def print_table(rs: list[Row]) -> None:
    head = f"{'row':4} {'split':5} {'gpu':14} {'sweep':27} {'load':>5}"
    for m in METRICS:
        head += f" | {m:>9} meas  pred   err"
    print(head)
    for r in rs:
        load = f"{'c' if r.kind == 'closed' else ''}{r.users}"
        line = f"{r.id:4} {r.split:5} {r.gpu:14} {r.sweep + ('*' if r.kv_estimated else ''):27} {load:>5}"
        for m in METRICS:
            line += f" | {r.measured[m]:9.1f} {r.predicted[m]:9.1f} {r.error(m):+5.0f}%"
        print(line)


def print_per_gpu(rs: list[Row]) -> None:
    """Median |error| per GPU and split: a GPU family the constants were not fitted on shows apart."""
    print(f"{'median |error| per GPU':24} {'split':5} {'rows':>4} | " + " | ".join(f"{m:>10}" for m in METRICS))
    for gpu in dict.fromkeys(r.gpu for r in rs):
        for split in ("train", "test"):
            sub = [r for r in rs if r.gpu == gpu and r.split == split]
            if sub:
                med = medians(sub)
                print(f"{gpu:24} {split:5} {len(sub):4d} | " + " | ".join(f"{med[m]:9.1f}%" for m in METRICS))


def shape_checks(cat: Catalog) -> list[tuple[str, bool, str]]:
    """The curve's shape, not only its points."""
    out = []
    arch = cat.model_by_id("qwen2.5-7b")
    dev = cat.gpu(GPU)
    per_tok = kv_shape(arch, dtype_bytes=2.0).bytes_per_token_full
    kv = 93_872  # the small-cache sweep's start-up log
    dep = perf.Deployment(arch=arch, backend="vllm", budget_includes_decode=True, paged_kv=True, device=dev, tp=1, pp=1,
                          weight_bytes_per_gpu=weight_bytes(arch, cat.quantization("BF16")), kv_bytes_per_token=per_tok,
                          lookup_bytes_per_gpu=lookup_bytes_per_gpu(arch, cat.quantization("BF16"), 1, 1),
                          max_batch=256, max_num_batched_tokens=2048, max_num_seqs=256, kv_cache_tokens=kv)
    users = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    tput = [perf.predict(dep, concurrency=u, prompt_tokens=1024, output_tokens=1024).throughput_tokens_per_s for u in users]
    grows = all(b >= a * 0.999 for a, b in zip(tput, tput[1:]))
    knee = kv / 1536
    flat = [t for u, t in zip(users, tput) if u >= 2 * knee]
    plateau = bool(flat) and max(flat) <= min(flat) * 1.05
    out.append(("vLLM closed loop: throughput never falls as users rise", grows,
                " ".join(f"{u}:{t:.0f}" for u, t in zip(users, tput))))
    out.append((f"vLLM closed loop: throughput flat beyond the KV limit (~{knee:.0f} sequences)", plateau,
                f"{min(flat):.0f}–{max(flat):.0f} tokens/s at ≥ {2 * knee:.0f} users" if flat else "no point"))
    q = cat.quantization("Q4_K_M")
    llama = cat.model_by_id("llama-3.1-8b")
    per_user = []
    for slots in (1, 2, 4, 8, 16):
        od = perf.Deployment(arch=llama, backend="ollama", device=cat.gpu("RTX 4090"), tp=1, pp=1,
                             weight_bytes_per_gpu=weight_bytes(llama, q),
                             kv_bytes_per_token=kv_shape(llama, dtype_bytes=2.0).bytes_per_token_full,
                             max_batch=slots, max_num_batched_tokens=2048)
        per_user.append(perf.predict(od, concurrency=slots, prompt_tokens=512, output_tokens=256).output_tokens_per_s_per_user)
    falls = all(b < a for a, b in zip(per_user, per_user[1:]))
    out.append(("Ollama: per-user speed falls as slots rise", falls,
                " ".join(f"{s}:{v:.1f}" for s, v in zip((1, 2, 4, 8, 16), per_user))))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="re-fit the vLLM constants on the train rows and print them")
    args = ap.parse_args(argv)
    cat = Catalog.load()
    rs = rows(cat)
    consts = None
    if args.fit:
        consts = fit([r for r in rs if r.split == "train"], perf.constants())
        print("fitted on the train rows (the table below uses these, not profiles/performance.yaml):")
        for p, _, _ in FREE:
            print(f"  {'.'.join(p)} = {_get(consts, p)}")
        print()
    with perf.override_constants(consts or perf.constants()):
        return report(cat, rs)


def report(cat: Catalog, rs: list[Row]) -> int:
    predict_all(rs)
    print(f"predicted vs measured, {len(rs)} rows of {DATA.relative_to(HERE.parent)} "
          f"(load: N = a burst of N requests, cC = C users in a closed loop; err = (pred − meas) / meas)\n")
    print_table(rs)
    if any(r.kv_estimated for r in rs):
        print("* the source gives no start-up log: the KV cache is llmctl's vLLM memory estimate for the row's settings")
    print()
    ok = True
    for split in ("train", "test"):
        med = medians([r for r in rs if r.split == split])
        print(f"median |error| {split:5} ({sum(r.split == split for r in rs)} rows): "
              + ", ".join(f"{m} {v:.1f}%" for m, v in med.items()))
        if split == "test":
            for m, v in med.items():
                ok &= v <= TARGETS[m]
    print("targets on the test rows: " + ", ".join(f"{m} ≤ {v:g}%" for m, v in TARGETS.items()))
    print()
    print_per_gpu(rs)
    print()
    for name, good, detail in shape_checks(cat):
        ok &= good
        print(f"{'PASS' if good else 'FAIL'}: {name} ({detail})")
    print("\n" + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
