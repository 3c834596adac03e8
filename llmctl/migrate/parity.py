"""Parity between the old server (Ollama) and the new one (vLLM): the same prompts through both.

1. Greedy decoding of raw prompts (no chat template) with the top-N alternatives of every token: at the first token where the two
   differ, each side's token must be among the other side's top N; the share of agreeing top tokens
   must reach the profile's threshold (1.0 — exact — when both load the same weights).
2. A small task set with regex-checkable answers, compared between the sides.
3. Embedding cosine per input, for embedding models.
4. The chat template: the same message should become as many tokens on both sides (reported).
5. TTFT / ITL side by side from the smoke harness (llmctl/smoke.py), and single-stream decode
   throughput from the parity requests' `usage`. Reported, not gated.

Where each API puts its logprobs (normalised by `token_steps`):
- OpenAI chat shape, `choices[0].logprobs.content[i] = {token, logprob, top_logprobs: [{token,
  logprob}]}`: vLLM and llama.cpp's server on /v1/chat/completions; Ollama on /v1/chat/completions
  *and* /v1/completions (ollama v0.32.15 openai/openai.go: ChoiceLogprobs{Content []api.Logprob},
  used by Choice, ChunkChoice and CompleteChunkChoice).
- OpenAI legacy completions shape, `choices[0].logprobs = {tokens, token_logprobs, top_logprobs:
  [{token: logprob}]}`: vLLM on /v1/completions.
- Ollama native, top-level `logprobs: [{token, logprob, top_logprobs}]` on /api/chat and
  /api/generate, asked for with `logprobs: true, top_logprobs: N` (N in 0..20; ollama v0.32.15
  api/types.go ChatRequest/GenerateRequest, Logprob, TokenLogprob).
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmctl.errors import CheckFailed, InputError
from llmctl.migrate.profile import ParityProfile, Thresholds, migration_profile
from llmctl.typed import dump

SCHEMA = "llmctl.migrate.parity/v1"
OLLAMA_API = "ollama"  # Ollama's native API (/api/...), as llmctl.smoke names it
APIS = ("openai", OLLAMA_API)
WEIGHTS = ("same", "quantized")


@dataclass
class Side:
    name: str  # "ollama" (old) or "vllm" (new)
    base_url: str  # without /v1
    model: str  # the name this side serves the model under
    api: str = "openai"  # openai: /v1/chat/completions; ollama: /api/chat
    api_key: str | None = None

    def __post_init__(self) -> None:
        if self.api not in APIS:
            raise InputError(f"parity: API {self.api!r} of the {self.name} side is not one of {', '.join(APIS)}")
        self.base_url = self.base_url.rstrip("/")


@dataclass
class Step:
    token: str
    logprob: float | None
    top: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------- logprob shapes


def token_steps(body: dict[str, Any]) -> list[Step]:
    """The generated tokens with their top alternatives, from any of the three answer shapes."""
    if isinstance(body.get("logprobs"), list):  # Ollama native
        return [_step(e) for e in body["logprobs"]]
    choices = body.get("choices") or []
    lp = (choices[0] if choices else {}).get("logprobs")
    if lp is None:
        return []
    if isinstance(lp, dict) and isinstance(lp.get("content"), list):  # OpenAI chat shape
        return [_step(e) for e in lp["content"]]
    if isinstance(lp, dict) and isinstance(lp.get("tokens"), list):  # OpenAI legacy completions
        tops = lp.get("top_logprobs") or [{}] * len(lp["tokens"])
        lps = lp.get("token_logprobs") or [None] * len(lp["tokens"])
        return [Step(t, lps[i], {str(k): float(v) for k, v in (tops[i] or {}).items()})
                for i, t in enumerate(lp["tokens"])]
    raise CheckFailed(f"parity: unknown logprobs shape: {json.dumps(lp)[:200]}")


def _step(entry: dict[str, Any]) -> Step:
    top = {str(a.get("token")): float(a.get("logprob")) for a in entry.get("top_logprobs") or []
           if isinstance(a, dict) and a.get("logprob") is not None}
    lp = entry.get("logprob")
    return Step(str(entry.get("token")), None if lp is None else float(lp), top)


def _text(body: dict[str, Any]) -> str:
    if "message" in body and isinstance(body["message"], dict):  # Ollama /api/chat
        return body["message"].get("content") or ""
    choice = (body.get("choices") or [{}])[0]
    if "text" in choice:
        return choice.get("text") or ""
    return (choice.get("message") or {}).get("content") or ""


def _completion_tokens(body: dict[str, Any]) -> int | None:
    if "eval_count" in body:  # Ollama native
        return body.get("eval_count")
    return (body.get("usage") or {}).get("completion_tokens")


# --------------------------------------------------------------------------- requests


class _Client:
    def __init__(self, side: Side, prof: ParityProfile) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {side.api_key}"} if side.api_key else {}
        self.side = side
        self.prof = prof
        self.http = httpx.Client(headers=headers, timeout=prof.request_timeout_s, trust_env=False)

    def close(self) -> None:
        self.http.close()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        url = self.side.base_url + path
        try:
            r = self.http.post(url, json=body)
        except httpx.HTTPError as exc:
            raise CheckFailed(f"parity: the {self.side.name} side ({url}) did not answer: {exc}") from None
        if r.status_code != 200:
            raise CheckFailed(f"parity: the {self.side.name} side answered HTTP {r.status_code} on {path}: {r.text[:300]}")
        try:
            return r.json()
        except ValueError:
            raise CheckFailed(f"parity: the {self.side.name} side answered non-JSON on {path}: {r.text[:200]}") from None

    def complete(self, prompt: str, *, logprobs: bool) -> tuple[dict[str, Any], float]:
        """A greedy completion of the raw prompt (no chat template): the weights and the tokenizer are
        compared, not the template (see `chat_prompt_tokens`). Ollama's /v1/completions renders the
        model's template (ollama v0.32.15 openai/openai.go FromCompleteRequest sets no Raw), so the
        native /api/generate with `raw: true` is the raw path on Ollama."""
        p, s = self.prof, self.side
        if s.api == OLLAMA_API:
            body: dict[str, Any] = {"model": s.model, "prompt": prompt, "raw": True, "stream": False,
                                    "options": {"temperature": 0, "num_predict": p.max_tokens, **p.extra_body}}
            if logprobs:
                body |= {"logprobs": True, "top_logprobs": p.top_n}
            path = "/api/generate"
        else:
            body = {"model": s.model, "prompt": prompt, "max_tokens": p.max_tokens, "temperature": 0,
                    "stream": False, **p.extra_body}
            if logprobs:
                body["logprobs"] = p.top_n  # OpenAI completions: an integer (vLLM, llama.cpp, Ollama)
            path = "/v1/completions"
        started = time.monotonic()
        out = self._post(path, body)
        return out, time.monotonic() - started

    def chat_prompt_tokens(self, prompt: str) -> int | None:
        """How many tokens the side's chat template makes of one user message."""
        s = self.side
        msgs = [{"role": "user", "content": prompt}]
        if s.api == OLLAMA_API:
            out = self._post("/api/chat", {"model": s.model, "messages": msgs, "stream": False,
                                           "options": {"num_predict": 1}})
            return out.get("prompt_eval_count")
        out = self._post("/v1/chat/completions", {"model": s.model, "messages": msgs, "max_tokens": 1})
        return (out.get("usage") or {}).get("prompt_tokens")

    def embed(self, inputs: list[str]) -> list[list[float]]:
        s = self.side
        if s.api == OLLAMA_API:
            out = self._post("/api/embed", {"model": s.model, "input": inputs})
            return [list(map(float, v)) for v in out.get("embeddings") or []]
        out = self._post("/v1/embeddings", {"model": s.model, "input": inputs})
        data = sorted(out.get("data") or [], key=lambda d: d.get("index", 0))
        return [list(map(float, d.get("embedding") or [])) for d in data]


# --------------------------------------------------------------------------- comparisons


def compare_greedy(old: list[Step], new: list[Step], top_n: int, tie_gap: float = 0.0) -> dict[str, Any]:
    """Where the two greedy continuations first differ, and whether each side's token there is among
    the other side's top N. A difference where both sides rate the two tokens within `tie_gap` nats
    of each other is a numerical tie: it counts as agreement, and the comparison ends there (what
    follows a different token is a different continuation)."""
    n = min(len(old), len(new))
    first = next((i for i in range(n) if old[i].token != new[i].token), None)
    out: dict[str, Any] = {"tokens_old": len(old), "tokens_new": len(new), "matched": n if first is None else first,
                           "compared": n if first is None else first + 1, "first_difference": first, "ok": True}
    if first is not None:
        o, w = old[first], new[first]
        missing_top = not o.top or not w.top
        out |= {"old_token": o.token, "new_token": w.token,
                "old_in_new_top": o.token in w.top, "new_in_old_top": w.token in o.top,
                "old_top": _top(o.top, top_n), "new_top": _top(w.top, top_n)}
        out["ok"] = (not missing_top) and out["old_in_new_top"] and out["new_in_old_top"]
        if out["ok"]:
            gaps = (o.top[o.token] - o.top[w.token] if o.token in o.top else math.inf,
                    w.top[w.token] - w.top[o.token] if w.token in w.top else math.inf)
            out["tie"] = max(gaps) <= tie_gap
            out["logprob_gaps"] = [round(g, 5) for g in gaps]
            if out["tie"]:
                out["matched"] = first + 1
        if missing_top:
            out["reason"] = "a side returned no top alternatives at the first difference"
    return out


def _top(top: dict[str, float], n: int) -> list[list]:
    return [[t, round(lp, 4)] for t, lp in sorted(top.items(), key=lambda kv: -kv[1])[:n]]


def cosine(a: list[float], b: list[float]) -> float:
    if len(a) != len(b) or not a:
        raise CheckFailed(f"parity: embeddings of different sizes ({len(a)} and {len(b)}): not the same model")
    dot = sum(x * y for x, y in zip(a, b))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


# --------------------------------------------------------------------------- the run


def run_parity(old: Side, new: Side, *, weights: str = "same", embedding: bool = False, perf: bool = True,
               profile: ParityProfile | None = None) -> dict[str, Any]:
    """Run every check; returns the parity.json document (`passed` tells the verdict)."""
    if weights not in WEIGHTS:
        raise InputError(f"parity: weights must be one of {', '.join(WEIGHTS)}, not {weights!r}")
    prof = profile or migration_profile().parity
    limits: Thresholds = prof.same_weights if weights == "same" else prof.quantized
    started = time.monotonic()
    doc: dict[str, Any] = {
        "schema": SCHEMA, "weights": weights, "thresholds": dump(limits), "top_n": prof.top_n,
        "sides": {s.name: {"base_url": s.base_url, "model": s.model, "api": s.api} for s in (old, new)},
        "checks": {},
    }
    clients = {old.name: _Client(old, prof), new.name: _Client(new, prof)}
    try:
        if embedding:
            doc["checks"]["embedding"] = _embedding(clients[old.name], clients[new.name], prof, limits)
        else:
            doc["checks"]["greedy"] = _greedy(clients[old.name], clients[new.name], prof, limits, doc)
            doc["checks"]["tasks"] = _tasks(clients[old.name], clients[new.name], prof, limits)
            doc["chat_template"] = _chat_template(clients[old.name], clients[new.name], prof)
    finally:
        for c in clients.values():
            c.close()
    if perf and not embedding:
        doc["performance"] = _performance(old, new, doc.get("throughput", {}))
    doc.pop("throughput", None)
    doc["passed"] = all(c["ok"] for c in doc["checks"].values())
    doc["duration_s"] = round(time.monotonic() - started, 2)
    return doc


def _greedy(old: _Client, new: _Client, prof: ParityProfile, limits: Thresholds, doc: dict) -> dict[str, Any]:
    rows, matched, compared = [], 0, 0
    tput: dict[str, list[float]] = {old.side.name: [0, 0.0], new.side.name: [0, 0.0]}
    for prompt in prof.prompts:
        answers = {}
        for c in (old, new):
            body, took = c.complete(prompt, logprobs=True)
            steps = token_steps(body)
            if not steps:
                raise CheckFailed(f"parity: the {c.side.name} side returned no logprobs for a greedy request "
                                  f"({c.side.base_url}); it cannot be compared token by token")
            answers[c.side.name] = (steps, _text(body))
            n = _completion_tokens(body) or len(steps)
            tput[c.side.name][0] += n
            tput[c.side.name][1] += took
        (o_steps, o_text), (n_steps, n_text) = answers[old.side.name], answers[new.side.name]
        row = compare_greedy(o_steps, n_steps, prof.top_n, limits.tie_logprob_gap) | {"prompt": prompt, "old_text": o_text, "new_text": n_text}
        matched += row["matched"]
        compared += row["compared"]
        rows.append(row)
    agreement = matched / compared if compared else 0.0
    top_n_ok = all(r["ok"] for r in rows)
    doc["throughput"] = {k: (v[0] / v[1] if v[1] else None) for k, v in tput.items()}
    return {"ok": top_n_ok and agreement >= limits.min_top1_agreement, "top1_agreement": round(agreement, 4),
            "min_top1_agreement": limits.min_top1_agreement, "first_difference_in_top_n": top_n_ok, "prompts": rows}


def _chat_template(old: _Client, new: _Client, prof: ParityProfile) -> dict[str, Any]:
    """Reported, not gated: the same chat message should become the same number of tokens on both
    sides; a difference means the chat templates differ (or one adds a BOS token the other does not)."""
    prompt = prof.prompts[0]
    counts = {c.side.name: c.chat_prompt_tokens(prompt) for c in (old, new)}
    same = len(set(counts.values())) == 1
    return {"prompt_tokens": counts, "same": same,
            "note": None if same else "the chat templates render the same message differently: check the "
                                      "TEMPLATE decision in report.md before moving chat clients"}


def _tasks(old: _Client, new: _Client, prof: ParityProfile, limits: Thresholds) -> dict[str, Any]:
    rows = []
    for task in prof.tasks:
        pattern = re.compile(task.expect)
        row: dict[str, Any] = {"name": task.name, "expect": task.expect}
        for c in (old, new):
            body, _ = c.complete(task.prompt, logprobs=False)
            text = _text(body)
            row[c.side.name] = {"answer": text, "correct": bool(pattern.search(text))}
        row["same_answer"] = row[old.side.name]["answer"] == row[new.side.name]["answer"]
        row["same_result"] = row[old.side.name]["correct"] == row[new.side.name]["correct"]
        rows.append(row)
    score = {c.side.name: sum(r[c.side.name]["correct"] for r in rows) / max(1, len(rows)) for c in (old, new)}
    same = all(r["same_result"] for r in rows)
    drop = score[old.side.name] - score[new.side.name]
    ok = same if limits.require_same_task_results else drop <= limits.max_task_score_drop + 1e-9
    return {"ok": ok, "score": score, "same_results": same, "same_answers": all(r["same_answer"] for r in rows),
            "require_same_results": limits.require_same_task_results,
            "max_score_drop": limits.max_task_score_drop, "tasks": rows}


def _embedding(old: _Client, new: _Client, prof: ParityProfile, limits: Thresholds) -> dict[str, Any]:
    inputs = list(prof.prompts)
    a, b = old.embed(inputs), new.embed(inputs)
    if len(a) != len(inputs) or len(b) != len(inputs):
        raise CheckFailed(f"parity: asked for {len(inputs)} embeddings, got {len(a)} (old) and {len(b)} (new)")
    cos = [round(cosine(x, y), 6) for x, y in zip(a, b)]
    return {"ok": min(cos) >= limits.min_embedding_cosine, "min_cosine": min(cos), "cosines": cos,
            "threshold": limits.min_embedding_cosine}


def _performance(old: Side, new: Side, throughput: dict[str, float | None]) -> dict[str, Any]:
    from llmctl.smoke import Timeouts, run_smoke

    out = {}
    for s in (old, new):
        rep = run_smoke(s.base_url, s.model, api="openai", api_key=s.api_key, concurrency=2, max_tokens=16,
                        expect_metrics=False, timeouts=Timeouts(total_s=180))
        single, burst = rep.measurements.get("single_stream", {}), rep.measurements.get("burst", {})
        tps = throughput.get(s.name)
        out[s.name] = {"smoke_ok": rep.ok, "ttft_ms": single.get("ttft_ms"), "itl_p50_ms": single.get("itl_p50_ms"),
                       "burst_ttft_p95_ms": burst.get("ttft_p95_ms"), "burst_itl_p95_ms": burst.get("itl_p95_ms"),
                       "decode_tokens_per_s": None if tps is None else round(tps, 1)}
    return out


# --------------------------------------------------------------------------- files


def combine(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """One parity.json for several models: passed when every model passed."""
    return {"schema": SCHEMA, "passed": all(d["passed"] for d in docs), "models": docs}


def write_parity(out_dir: str | Path, doc: dict[str, Any]) -> tuple[Path, Path]:
    from llmctl.fileio import write_atomic

    out = Path(out_dir)
    write_atomic(out / "parity.json", json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False) + "\n")
    write_atomic(out / "parity.md", parity_markdown(doc))
    return out / "parity.json", out / "parity.md"


def parity_markdown(doc: dict[str, Any]) -> str:
    if "models" in doc:
        head = f"# Parity: {'PASSED' if doc['passed'] else 'FAILED'} ({len(doc['models'])} model(s))\n\n"
        return head + "\n".join(_model_markdown(d, "#") for d in doc["models"])
    return _model_markdown(doc)


def _model_markdown(doc: dict[str, Any], deeper: str = "") -> str:
    sides = doc["sides"]
    old, new = list(sides)
    lines = [f"{deeper}# Parity: {old} → {new}" + (f", model `{doc['model']}`" if doc.get("model") else ""), "",
             f"**{'PASSED' if doc['passed'] else 'FAILED'}** — weights: {doc['weights']} "
             f"({'exact agreement required' if doc['weights'] == 'same' else 'quantization-gap thresholds'})", ""]
    for name, s in sides.items():
        lines.append(f"- {name}: {s['base_url']} (model `{s['model']}`, {s['api']} API)")
    g = doc["checks"].get("greedy")
    if g:
        lines += ["", deeper + "## Greedy decoding, top-%d alternatives" % doc["top_n"], "",
                  f"Top-token agreement {g['top1_agreement']:.1%} (needed ≥ {g['min_top1_agreement']:.0%}); "
                  f"first difference within the other side's top {doc['top_n']}: "
                  f"{'yes' if g['first_difference_in_top_n'] else 'NO'}.", "",
                  "| prompt | agree | first difference | old token (in new top-N) | new token (in old top-N) |",
                  "|---|---|---|---|---|"]
        for r in g["prompts"]:
            fd = r["first_difference"]
            fd_text = "-" if fd is None else f"{fd}{' (tie)' if r.get('tie') else ''}"
            lines.append(f"| {_cell(r['prompt'])} | {r['matched']}/{r['compared']} | {fd_text} | "
                         + ("- | - |" if fd is None else
                            f"{_cell(r['old_token'])} ({'yes' if r['old_in_new_top'] else 'no'}) | "
                            f"{_cell(r['new_token'])} ({'yes' if r['new_in_old_top'] else 'no'}) |"))
    t = doc["checks"].get("tasks")
    if t:
        lines += ["", deeper + "## Tasks", "",
                  f"Score {old} {t['score'][old]:.0%}, {new} {t['score'][new]:.0%}; the same task results: "
                  f"{'yes' if t['same_results'] else 'no'} ({'required' if t['require_same_results'] else 'not required'}).",
                  "", f"| task | {old} | {new} | same answer |", "|---|---|---|---|"]
        for r in t["tasks"]:
            lines.append(f"| {r['name']} | {'✓' if r[old]['correct'] else '✗'} {_cell(r[old]['answer'])} | "
                         f"{'✓' if r[new]['correct'] else '✗'} {_cell(r[new]['answer'])} | {'yes' if r['same_answer'] else 'no'} |")
    e = doc["checks"].get("embedding")
    if e:
        lines += ["", deeper + "## Embeddings", "", f"Lowest cosine {e['min_cosine']:.4f} (needed ≥ {e['threshold']})."]
    ct = doc.get("chat_template")
    if ct:
        lines += ["", deeper + "## Chat template (reported, not gated)", "",
                  "Tokens of the same chat message: " + ", ".join(f"{k} {v}" for k, v in ct["prompt_tokens"].items())
                  + (" — the same." if ct["same"] else f" — DIFFERENT: {ct['note']}.")]
    p = doc.get("performance")
    if p:
        lines += ["", deeper + "## Performance (smoke harness; reported, not gated)", "",
                  "| side | TTFT ms | ITL p50 ms | burst TTFT p95 ms | burst ITL p95 ms | decode tok/s |",
                  "|---|---|---|---|---|---|"]
        for name, m in p.items():
            lines.append(f"| {name} | {m['ttft_ms']} | {m['itl_p50_ms']} | {m['burst_ttft_p95_ms']} | "
                         f"{m['burst_itl_p95_ms']} | {m['decode_tokens_per_s']} |")
    return "\n".join(lines) + "\n"


def _cell(text: str, limit: int = 60) -> str:
    text = str(text).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_parity(out_dir: str | Path) -> dict[str, Any] | None:
    path = Path(out_dir) / "parity.json"
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable parity result: {exc}", where=str(path)) from None
    if doc.get("schema") != SCHEMA:
        raise InputError(f"schema {doc.get('schema')!r}, expected {SCHEMA}", where=str(path))
    return doc


__all__ = ["Side", "Step", "compare_greedy", "cosine", "load_parity", "run_parity", "token_steps", "write_parity"]
