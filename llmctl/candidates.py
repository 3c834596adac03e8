"""Candidates: every engine × quantization × KV dtype × layout the hardware allows, each with its
memory estimate, or the reason it cannot work."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from llmctl.catalog import Catalog, KvDtype, Quantization, ResolvedModel
from llmctl.engines import all_engines, get_engine
from llmctl.engines.base import Engine
from llmctl.estimate.memory import MemoryEstimate
from llmctl.estimate.performance import Deployment, PerfEstimate
from llmctl.estimate.weights import weight_bytes
from llmctl.plan import SlaCheck
from llmctl.pools import Pool
from llmctl.rules import QUALITY_FLOOR, Lean
from llmctl.spec import Spec
from llmctl.typed import updated


@dataclass
class Candidate:
    backend: str
    quant: Quantization
    kv: KvDtype
    pool: Pool
    tp: int = 1
    pp: int = 1
    devices: int = 1  # devices per replica
    num_parallel: int = 1  # llama.cpp/Ollama slots
    mem: MemoryEstimate | None = None
    perf: PerfEstimate | None = None
    replicas: int = 1
    max_conc_sla: int = 0  # users one replica serves within the SLA; set for the candidates a plan shows
    sla_met: bool = False
    violation: float = 0.0  # worst SLA ratio at the planned load: predicted / target, ≤ 1 is met
    reject: str | None = None
    usd_per_hour: float = 0.0
    preference: float = 0.0
    weight_bytes_total: float = 0.0
    dep: Deployment | None = None
    tuning: dict[str, Any] = field(default_factory=dict)  # engine knobs the planner searched (vLLM: chunk budget)
    tuning_note: str | None = None  # why that tuning, for the rationale
    pruned: bool = False  # feasible, left unweighed: it could not change the plan (llmctl/weigh.py)

    @property
    def feasible(self) -> bool:
        return self.reject is None

    @property
    def engine(self) -> Engine:
        return get_engine(self.backend)

    def label(self) -> str:
        return f"{self.backend} {self.quant.id} {self.engine.layout_label(self)} on {self.pool.device.id}"

    def key(self) -> tuple:
        """Sort key, best first when reversed: feasible, meets the SLA, cheaper, preferred, better quality."""
        if not self.feasible:
            return (0, 0, 0, 0, 0, 0)
        if self.pruned:  # after every weighed candidate
            return (1, -1)
        itl = -round(self.perf.itl_p95_ms, 1) if self.perf else 0.0
        return self.key_with(self.sla_met, self.usd_per_hour, self.violation, itl)

    def key_with(self, sla_met: bool, usd_per_hour: float, violation: float, neg_itl: float) -> tuple:
        """key() of this feasible candidate had it been weighed to these figures (llmctl/weigh.py bounds a
        candidate's key with the best figures it could reach). `neg_itl`: minus its rounded ITL p95."""
        kv_penalty = 0.5 if self.kv.bytes_per_value < 2 else 0.0
        if sla_met:
            # same cost: the smallest TP (more, independent replicas), then the lower latency
            return (1, 1, -round(usd_per_hour, 4), self.preference, self.quant.quality_rank - kv_penalty,
                    -self.tp * self.pp, neg_itl, -self.devices)
        # missing the SLA: closest first (the smallest overshoot at the planned load)
        return (1, 0, -round(violation, 2), self.preference, self.quant.quality_rank - kv_penalty, neg_itl)


@dataclass
class Context:
    """What every candidate is judged against: the spec, the resolved model, the hardware, the SLA."""

    spec: Spec
    catalog: Catalog
    model: ResolvedModel
    pools: list[Pool]
    max_model_len: int
    sla: dict[str, float]
    sla_defaulted: bool
    leans: list[Lean]
    # size candidates even when a reason their size cannot change rules them out first. Off: such a
    # candidate costs a memory estimate nobody reads. On when nothing can work (planner.make_plan):
    # the plan then reports the closest candidate that has an estimate.
    size_rejected: bool = False
    # what engines keep for reuse across pools and candidates (see once(); llmctl/engines/gguf_plan.py)
    memo: dict[tuple, Any] = field(default_factory=dict, repr=False)
    # performance predictions by deployment, then users per replica, see planner.predict_at
    predictions: dict[Any, dict[int, Any]] = field(default_factory=dict, repr=False)
    # (prompt_tokens, output_tokens, requests_per_minute, arrival, lengths) for the hot paths, read
    # once from the spec (which is frozen; another workload is another Context, see with_workload)
    load: tuple[int, int, float | None, str | None, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        w = self.spec.workload
        self.load = (w.prompt_tokens, w.output_tokens, w.requests_per_minute, w.arrival, w.lengths)

    def once(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """`compute()` the first time `key` is asked for in this plan, the remembered answer after (for
        what engines work out per plan rather than per pool or candidate; None is remembered too)."""
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]

    def with_workload(self, workload: Any) -> "Context":
        """The same context for another workload (a sweep point)."""
        from dataclasses import replace

        return replace(self, spec=updated(self.spec, workload=workload), predictions={})


def _quant_options(ctx: Context, engine: Engine, pool: Pool) -> list[Quantization]:
    cat, model, ov = ctx.catalog, ctx.model, ctx.spec.overrides
    if ov.quantization:
        q = cat.quantization(ov.quantization, where="overrides.quantization")
        return [q] if engine.name in q.engines else []
    if (model.arch.ollama or {}).get("default_quantization") == "MXFP4":
        return [cat.quantization("MXFP4")]  # gpt-oss ships its experts in MXFP4 for every engine
    return engine.quant_options(ctx, pool)


def _kv_options(ctx: Context, engine: Engine) -> list[KvDtype]:
    forced = ctx.spec.overrides.kv_cache_dtype
    if forced:
        k = ctx.catalog.kv_dtype(forced, where="overrides.kv_cache_dtype")
        return [k] if engine.name in k.engines else []
    return engine.kv_options(ctx)


def _engines(ctx: Context) -> list[Engine]:
    forced = ctx.spec.overrides.backend
    return [get_engine(forced)] if forced else all_engines()


def enumerate_candidates(ctx: Context) -> list[Candidate]:
    out: list[Candidate] = []
    cat, ov = ctx.catalog, ctx.spec.overrides
    floor = cat.quantization(QUALITY_FLOOR).quality_rank
    bf16, auto = cat.quantization("BF16"), cat.kv_dtype("auto")
    engines = _engines(ctx)
    kv_options = {engine.name: _kv_options(ctx, engine) for engine in engines}  # the same for every pool
    for pool in ctx.pools:
        for engine in engines:
            placeholder = (bf16, auto, pool)
            why = engine.unavailable_on(pool.device)
            if why is not None:
                out.append(Candidate(engine.name, *placeholder, reject=why))
                continue
            quants = _quant_options(ctx, engine, pool)
            if not quants:
                why = f"{engine.name} cannot load {ov.quantization}" if ov.quantization else engine.no_quant_reason(ctx)
                out.append(Candidate(engine.name, *placeholder, reject=why))
                continue
            for q in quants:
                if q.quality_rank < floor and not ov.quantization and not _is_the_files(ctx, q):
                    out.append(Candidate(engine.name, q, auto, pool, reject=(
                        f"{q.id} is below the quality floor ({QUALITY_FLOOR}); set overrides.quantization to allow it")))
                    continue
                kvs = kv_options[engine.name]
                if not kvs:
                    out.append(Candidate(engine.name, q, auto, pool,
                                         reject=f"{engine.name} cannot use kv_cache_dtype {ov.kv_cache_dtype}"))
                    continue
                out.extend(engine.candidates(ctx, pool, q, kvs))
    return out


def _is_the_files(ctx: Context, q: Quantization) -> bool:
    """The model's own files are in `q` (a local GGUF, a pulled tag): no choice to make."""
    return ctx.model.gguf_quantization == q.id and (ctx.model.kind == "gguf-file" or ctx.model.source == "ollama-store")


def weights_of(ctx: Context, q: Quantization) -> float:
    """Bytes of the weights in format `q`: exact where the model's own files are in that format. The
    same for every pool and engine: worked out once per plan."""
    return ctx.once(("weights", q.id), lambda: _weights_of(ctx, q))


def _weights_of(ctx: Context, q: Quantization) -> float:
    m = ctx.model
    if m.weight_bytes and (m.gguf_quantization == q.id or m.hf_quantization == q.id or
                           (m.kind in ("hf-folder", "hf-cache") and q.id in ("BF16", "FP16") and not m.hf_quantization)):
        return float(m.weight_bytes)
    return weight_bytes(m.arch, q)


# --------------------------------------------------------------------------- the SLA


def sla_ratio(ctx: Context, p: PerfEstimate) -> float:
    """How the worst SLA check stands: predicted / target (≤ 1 is met). Cheap: the search below asks
    it for thousands of candidates, so it builds no SlaCheck records."""
    worst = 0.0
    for metric, target in ctx.sla.items():
        if metric == "output_tokens_per_second":
            ratio = target / max(p.output_tokens_per_s_per_user, 1e-9)
        else:
            ratio = getattr(p, metric) / target
        if ratio > worst:  # max(worst, ratio) without the call
            worst = ratio
    return worst


def sla_checks(ctx: Context, p: PerfEstimate) -> list[SlaCheck]:
    checks: list[SlaCheck] = []
    for metric, target in ctx.sla.items():
        if metric == "output_tokens_per_second":
            predicted = p.output_tokens_per_s_per_user
            met = predicted >= target
        else:
            predicted = getattr(p, metric)
            met = predicted <= target
        checks.append(SlaCheck(metric=metric, target=target, predicted=round(predicted, 2), met=met))
    return checks
