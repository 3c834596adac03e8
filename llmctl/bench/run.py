"""The bounded load generator behind `llmctl bench`.

A run is a list of steps, each a fixed number of requests at one load:
* ``concurrency`` c — a closed loop: c users, each sending its next request when the last one is
  answered, until the step's requests are sent;
* ``rate`` r — an open loop: requests arrive at r per second, Poisson (seeded exponential gaps), however
  many are in flight.

Bounds: each request has an httpx timeout, the whole run a deadline (requests not sent by then are not
sent, and the step says so), the number of requests is fixed. A warm-up request (not counted) runs
first: rounds of
the largest step's users at once (a fresh server compiles kernels for each batch shape it meets).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Callable

from llmctl.bench import prompts as P
from llmctl.bench.client import DIALECTS, Api, Record
from llmctl.bench.stats import step_stats
from llmctl.errors import CheckFailed

SCHEMA = "llmctl.bench/v1"


@dataclass
class Load:
    kind: str  # concurrency | rate
    value: float

    @property
    def label(self) -> str:
        return f"{self.value:g} concurrent" if self.kind == "concurrency" else f"{self.value:g} req/s"


@dataclass
class BenchConfig:
    base_url: str
    model: str | None
    api: str = "openai"
    api_key: str | None = None
    loads: list[Load] = field(default_factory=lambda: [Load("concurrency", 1)])
    requests: int | None = None  # per step; None: 4 per concurrent user, at least 8
    prompt_tokens: int = 128
    output_tokens: int = 64
    prompts_file: str | None = None
    seed: int = 0
    timeout_s: float = 120.0  # one request
    deadline_s: float = 900.0  # the whole run
    warmup: int = 1


def requests_for(cfg: BenchConfig, load: Load) -> int:
    if cfg.requests:
        return cfg.requests
    return max(8, 4 * int(load.value)) if load.kind == "concurrency" else max(8, int(4 * load.value))


async def _prompts(api: Api, cfg: BenchConfig, n: int) -> P.PromptSet:
    if cfg.prompts_file:
        return P.from_file(cfg.prompts_file, n)
    target = cfg.prompt_tokens
    method, measured, note = "estimate", None, ""
    words = max(1, round(target / P.TOKENS_PER_WORD_GUESS))
    cache: dict[str, int | None] = {}

    async def count(text: str) -> int | None:
        if text not in cache:
            cache[text] = await api.count_tokens(text)
        return cache[text]

    first = await count(P.words_text(8, cfg.seed))
    if first is not None:
        # a synchronous search over an async counter: collect the texts it asks for one at a time
        words, measured = await _search(count, target, cfg.seed)
        method = "tokenize"
    else:
        ratio = None
        for _ in range(3):  # tokens per word from the server's usage counts, refined
            got = await api.usage_tokens(P.words_text(words, cfg.seed))
            if not got:
                break
            ratio = got / words
            measured = got
            if got == target:
                break
            words = max(1, round(target / ratio)) if ratio > 0 else words
        if ratio:
            method = "usage"
        else:
            note = f"the server has no /tokenize and reports no usage: ~{P.TOKENS_PER_WORD_GUESS} tokens per word assumed"
    base = P.words_text(words, cfg.seed)
    texts = [P.shuffled(base, cfg.seed + 1 + i) for i in range(n)]
    return P.PromptSet(texts=texts, target_tokens=target, method=method, measured_tokens=measured, note=note)


async def _search(count, target: int, seed: int) -> tuple[int, int]:
    lo_w, lo_t = 1, await count(P.words_text(1, seed)) or 1
    if lo_t >= target:
        return lo_w, lo_t
    hi_w = hi_t = None
    guess = max(2, int(target / P.TOKENS_PER_WORD_GUESS))
    for _ in range(P.MAX_SEARCH):
        t = await count(P.words_text(guess, seed))
        if t is None:
            break
        if t == target:
            return guess, t
        if t < target:
            lo_w, lo_t = guess, t
        else:
            hi_w, hi_t = guess, t
        if hi_w is None:
            guess = min(max(lo_w + 1, int(lo_w * target / max(lo_t, 1)) + 1), 4 * target)
        elif hi_w - lo_w <= 1:
            break
        else:
            guess = lo_w + max(1, min(hi_w - lo_w - 1, int((target - lo_t) * (hi_w - lo_w) / max(hi_t - lo_t, 1))))
    return lo_w, lo_t


async def _step(api: Api, cfg: BenchConfig, load: Load, texts: list[str], end: float,
                progress: Callable[[int], None]) -> tuple[list[Record], float, int]:
    n = len(texts)
    records: list[Record] = []
    skipped = 0
    t0 = time.monotonic()

    async def send(i: int) -> None:
        rec = await api.generate(texts[i], cfg.output_tokens)
        records.append(rec)
        progress(len(records))

    if load.kind == "concurrency":
        queue = iter(range(n))

        async def user() -> None:
            nonlocal skipped
            for i in queue:
                if time.monotonic() >= end:
                    skipped += 1
                    continue
                await send(i)

        await asyncio.gather(*(user() for _ in range(max(1, int(load.value)))))
    else:
        rng = random.Random(cfg.seed)
        tasks = []
        at = time.monotonic()
        for i in range(n):
            at += rng.expovariate(load.value)
            wait = at - time.monotonic()
            if at >= end:
                skipped = n - i
                break
            if wait > 0:
                await asyncio.sleep(wait)  # the arrival schedule itself, not synchronisation
            tasks.append(asyncio.create_task(send(i)))
        if tasks:
            await asyncio.gather(*tasks)
    return records, time.monotonic() - t0, skipped


async def _run(cfg: BenchConfig, on_step: Callable[[str, int, int], None]) -> dict:
    import httpx

    from llmctl.smoke import _short, _unreachable

    headers = {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}
    most = max((int(load.value) if load.kind == "concurrency" else requests_for(cfg, load)) for load in cfg.loads)
    limits = httpx.Limits(max_connections=most + 8, max_keepalive_connections=most + 8)
    started_wall = time.time()
    end = time.monotonic() + cfg.deadline_s
    async with httpx.AsyncClient(headers=headers, limits=limits, trust_env=False) as client:
        api = DIALECTS[cfg.api](client, cfg.base_url, cfg.model or "", cfg.timeout_s)
        try:
            names = await api.models()
        except Exception as exc:  # noqa: BLE001
            what = "cannot reach" if _unreachable(exc) else "cannot list the models of"
            why = _short(exc)
            if isinstance(exc, httpx.ConnectError) and "refused" not in why:
                # the async client's own words ("All connection attempts failed") hide the cause
                why = "cannot connect: nothing accepts connections there (refused, or the host is unreachable)"
            raise CheckFailed(f"{what} {cfg.base_url}{api.models_path}: {why}") from None
        if not cfg.model:
            if not names:
                raise CheckFailed(f"{cfg.base_url} serves no model; give one with --model")
            api.model = names[0]
        version = await _server_version(client, cfg.base_url)
        from llmctl.bench import server_time

        own_metric = server_time.metric_for(version.get("engine"))
        total = sum(requests_for(cfg, load) for load in cfg.loads)
        prompts = await _prompts(api, cfg, total)
        if cfg.warmup:
            # uncounted: rounds of the largest step's users at once, full length (a fresh server compiles
            # kernels for each batch shape it meets, and the first of them would read as latency)
            users = min(16, max(int(load.value) if load.kind == "concurrency" else 4 for load in cfg.loads))
            for _ in range(cfg.warmup):
                on_step("warm-up", 0, users)
                recs = await asyncio.gather(*(api.generate(prompts.texts[i % len(prompts.texts)], cfg.output_tokens)
                                              for i in range(users)))
                if not any(r.ok for r in recs):
                    raise CheckFailed(f"the warm-up requests to {cfg.base_url} failed: {recs[0].error}")
        steps = []
        offset = 0
        for load in cfg.loads:
            n = requests_for(cfg, load)
            texts = prompts.texts[offset:offset + n]
            offset += n
            on_step(load.label, 0, n)
            before = await server_time.read(client, cfg.base_url, *own_metric) if own_metric else None
            records, wall, skipped = await _step(api, cfg, load, texts, end,
                                                 lambda done, label=load.label, n=n: on_step(label, done, n))
            stats = step_stats(records, wall_s=wall)
            stats = {"load": load.kind, "value": load.value, **stats, "not_sent": skipped}
            if before is not None:
                after = await server_time.read(client, cfg.base_url, *own_metric)
                stats["server_tpot"] = server_time.over_step(before, after, *own_metric)
            steps.append(stats)
            if records and all(not r.ok for r in records) and any(r.error and "connect" in r.error for r in records):
                break  # the server went away: no point loading it further
    return {
        "schema": SCHEMA,
        "base_url": cfg.base_url,
        "api": cfg.api,
        "model": api.model,
        "server_version": version,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_wall)),
        "duration_s": round(time.time() - started_wall, 3),
        "workload": {"prompt_tokens": cfg.prompt_tokens if not cfg.prompts_file else None,
                     "output_tokens": cfg.output_tokens, "seed": cfg.seed, "warmup_requests": cfg.warmup},
        "prompts": {"method": prompts.method, "target_tokens": prompts.target_tokens or None,
                    "first_prompt_tokens": prompts.measured_tokens, "note": prompts.note},
        "steps": steps,
    }


async def _server_version(client, base: str) -> dict:
    """The engine's own version where it says it: vLLM GET /version, Ollama GET /api/version,
    llama-server GET /props (build_info)."""
    for path, key, engine in (("/version", "version", "vllm"), ("/api/version", "version", "ollama"),
                              ("/props", "build_info", "llama.cpp")):
        try:
            r = await client.get(base + path, timeout=5.0)
        except Exception:  # noqa: BLE001 - best effort
            return {}
        if r.status_code == 200:
            try:
                data = r.json()
            except ValueError:
                continue
            if isinstance(data, dict) and data.get(key):
                return {"engine": engine, "version": str(data[key])}
    return {}


def run_bench(cfg: BenchConfig, on_step: Callable[[str, int, int], None] = lambda *_: None) -> dict:
    return asyncio.run(_run(cfg, on_step))
