"""Smoke test of a running endpoint: is it up, does it serve the model, how fast is it, does it meet the SLA.

`run_smoke()` is used by `llmctl smoke` and by `llmctl up`. Every request has an httpx timeout and the
whole run has a deadline, so it always ends by itself; the number of requests is bounded
(readiness polls + 1 chat + 1 stream + `concurrency` burst requests + 1 metrics read).

APIs:
* ``openai`` — OpenAI-compatible servers (vLLM, llama.cpp, Ollama's /v1): readiness on /health
  (falling back to /v1/models where /health does not exist), /v1/models, /v1/chat/completions with
  and without ``stream`` (server-sent events), /metrics where the engine exports it.
* ``ollama`` — Ollama's native API: /api/version, /api/tags, /api/chat (streaming is NDJSON).
"""

from __future__ import annotations

import json
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator

from llmctl.errors import InputError
from llmctl.sse import EventStream
from llmctl.term import count

SCHEMA = "llmctl.smoke/v1"  # of `llmctl smoke -o json`
PASS, FAIL, SKIP = "pass", "fail", "skip"
MAX_CONCURRENCY = 512  # a smoke test, not a load test: the burst sends at most this many requests
READY_PROBE_S = 5.0  # one readiness GET: a server that accepted the connection answers /health sooner
# Outside a readiness window (nothing is starting), how long "nothing answers" is retried: long enough
# for a server that is binding its port, short enough that a dead endpoint fails at once.
UNREACHABLE_GRACE_S = 3.0

# A short, plain prompt; the reply's content does not matter, only that text comes back.
PROMPT = "Say hello and count from one to ten."


@dataclass(frozen=True)
class SlaTargets:
    ttft_p95_ms: float | None = None
    itl_p95_ms: float | None = None


@dataclass(frozen=True)
class Timeouts:
    total_s: float = 120.0  # deadline of the whole smoke test (readiness included)
    request_s: float = 60.0  # one request (connect, and each read of a streamed reply)
    connect_s: float = 5.0


@dataclass
class Check:
    name: str
    status: str  # pass | fail | skip
    detail: str = ""
    measured: float | None = None
    target: float | None = None
    unit: str = ""


@dataclass
class StreamResult:
    ok: bool
    ttft_ms: float | None = None
    itl_ms: list[float] = field(default_factory=list)
    chunks: int = 0
    text: str = ""
    error: str | None = None
    total_ms: float | None = None
    gone: bool = False  # failed because the server went away or fell silent


@dataclass
class SmokeReport:
    base_url: str
    model: str
    api: str
    concurrency: int
    checks: list[Check] = field(default_factory=list)
    measurements: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return all(c.status != FAIL for c in self.checks) and any(c.status == PASS for c in self.checks)

    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "ok": self.ok,
            "base_url": self.base_url,
            "model": self.model,
            "api": self.api,
            "concurrency": self.concurrency,
            "duration_s": round(self.duration_s, 3),
            "checks": [asdict(c) for c in self.checks],
            "measurements": self.measurements,
        }

    def table(self, *, wide: bool = False) -> str:
        from llmctl.term import paint, table, verdict_word

        rows = []
        for c in self.checks:
            measured = "" if c.measured is None else f"{_fmt(c.measured)}{(' ' + c.unit) if c.unit else ''}"
            target = "" if c.target is None else f"≤ {_fmt(c.target)}{(' ' + c.unit) if c.unit else ''}"
            rows.append([c.name, verdict_word(c.status.upper()), measured, target, c.detail])
        head = f"smoke test of {self.base_url} (model {self.model}, api {self.api}, {self.duration_s:.1f}s)"
        n = len(self.failed())
        verdict = paint("PASSED", "pass") if self.ok else paint(f"FAILED ({n} check{'s' if n != 1 else ''} failed)", "fail")
        body = table(rows, ["check", "result", "measured", "target", "detail"], wrap=["detail"], wide=wide,
                     optional=["target"])
        return f"{head}\n{body}\n{verdict}"


def _fmt(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


# --------------------------------------------------------------------------- helpers


def normalize_base_url(url: str) -> str:
    """`http://host:port`, `http://host:port/`, `http://host:port/v1` → `http://host:port` (no trailing /)."""
    from urllib.parse import urlsplit

    raw = url.strip()
    if "://" not in raw:
        raise InputError(f"--url: {url!r} is not an http(s) URL", hint="e.g. http://127.0.0.1:8000")
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"--url: {url!r} is not an http(s) URL", hint="e.g. http://127.0.0.1:8000")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InputError(f"--url: {url!r} has an invalid port") from None
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return f"{parts.scheme}://{parts.netloc}{path}"


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100), like numpy's default; None for no values."""
    if not values:
        return None
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    value = xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
    return min(max(value, xs[lo]), xs[hi])  # no rounding past the neighbouring samples


def _short(exc: BaseException) -> str:
    """The cause of a failed request, in words: refused, silent, cut off mid-reply, an HTTP error."""
    import httpx

    if isinstance(exc, httpx.ConnectError):
        text = str(exc)
        if "refused" in text.lower() or "errno 111" in text.lower():
            return "cannot connect: connection refused (nothing listens there)"
        return f"cannot connect ({text})" if text else "cannot connect"
    if isinstance(exc, httpx.ConnectTimeout):
        return "cannot connect: no TCP answer in time (host down or a firewall drops the packets)"
    if isinstance(exc, (httpx.ReadTimeout, httpx.PoolTimeout, httpx.WriteTimeout)):
        return "timed out: the server accepted the connection but sent no answer in time"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the server closed the connection mid-reply ({exc})" if str(exc) else \
            "the server closed the connection mid-reply"
    if isinstance(exc, httpx.ReadError):
        return f"the connection broke mid-reply ({exc or type(exc).__name__})"
    if isinstance(exc, httpx.HTTPStatusError):
        body = exc.response.text[:200].strip() if exc.response is not None else ""
        return f"HTTP {exc.response.status_code}" + (f": {body}" if body else "")
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def _unreachable(exc: BaseException) -> bool:
    """The server is gone or silent (as opposed to answering with an error)."""
    import httpx

    return isinstance(exc, (httpx.TransportError, TimeoutError, ConnectionError))


class _Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def expired(self) -> bool:
        return self.left() <= 0


# --------------------------------------------------------------------------- the API dialects


class _Api:
    """Requests of one API dialect; every call is bounded by httpx timeouts and the deadline."""

    def __init__(self, client, base_url: str, model: str, timeouts: Timeouts, deadline: _Deadline,
                 max_tokens: int):
        self.client = client
        self.base = base_url
        self.model = model
        self.timeouts = timeouts
        self.deadline = deadline
        self.max_tokens = max_tokens

    def timeout(self):
        import httpx

        left = max(0.5, self.deadline.left())
        per = min(self.timeouts.request_s, left)
        return httpx.Timeout(per, connect=min(self.timeouts.connect_s, per))

    # readiness: paths to try in order
    ready_paths: tuple[str, ...] = ()
    metrics_path = "/metrics"

    def list_models(self) -> list[str]:
        raise NotImplementedError

    def chat(self) -> str:
        raise NotImplementedError

    def stream(self, on_first_token: Callable[[], None] | None = None) -> StreamResult:
        """One streamed request; per-chunk arrival times give TTFT and inter-token latency."""
        start = time.monotonic()
        times: list[float] = []
        text: list[str] = []
        try:
            for piece in self._stream_pieces():
                now = time.monotonic()
                if piece:
                    if not times and on_first_token is not None:
                        on_first_token()
                    times.append(now)
                    text.append(piece)
                if self.deadline.expired():
                    raise TimeoutError("smoke test deadline reached while streaming")
        except Exception as exc:  # noqa: BLE001 - every failure becomes a reported error
            error = _short(exc)
            if times and _unreachable(exc):
                error += f" after {count(len(times), 'chunk')}"
            return StreamResult(ok=False, error=error, chunks=len(times), text="".join(text),
                                ttft_ms=(times[0] - start) * 1000 if times else None, gone=_unreachable(exc))
        if not times:
            return StreamResult(ok=False, error="the stream ended without any text", chunks=0)
        itl = [(b - a) * 1000 for a, b in zip(times, times[1:])]
        return StreamResult(ok=True, ttft_ms=(times[0] - start) * 1000, itl_ms=itl, chunks=len(times),
                            text="".join(text), total_ms=(times[-1] - start) * 1000)

    def _stream_pieces(self) -> Iterator[str]:
        raise NotImplementedError


class _OpenAI(_Api):
    ready_paths = ("/health", "/v1/models")

    def list_models(self) -> list[str]:
        r = self.client.get(self.base + "/v1/models", timeout=self.timeout())
        r.raise_for_status()
        return [str(m.get("id")) for m in r.json().get("data", []) if isinstance(m, dict)]

    def _body(self, stream: bool) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": self.max_tokens,
            "temperature": 0,
            "stream": stream,
        }

    def chat(self) -> str:
        r = self.client.post(self.base + "/v1/chat/completions", json=self._body(False), timeout=self.timeout())
        r.raise_for_status()
        choice = (r.json().get("choices") or [{}])[0]
        msg = choice.get("message") or {}
        # reasoning models may put their first words in a separate field
        return msg.get("content") or msg.get("reasoning_content") or msg.get("reasoning") or ""

    def _stream_pieces(self) -> Iterator[str]:
        with self.client.stream("POST", self.base + "/v1/chat/completions", json=self._body(True),
                                timeout=self.timeout()) as r:
            if r.status_code >= 400:
                r.read()
                r.raise_for_status()
            stream = EventStream()
            for line in _lines(r, self.deadline):
                event = stream.event(line)
                if stream.done:
                    break
                for choice in (event or {}).get("choices") or []:
                    delta = choice.get("delta") or {}
                    yield delta.get("content") or delta.get("reasoning_content") or delta.get("reasoning") or ""
            stream.close()


class _Ollama(_Api):
    ready_paths = ("/api/version", "/api/tags")

    def list_models(self) -> list[str]:
        r = self.client.get(self.base + "/api/tags", timeout=self.timeout())
        r.raise_for_status()
        names = []
        for m in r.json().get("models") or []:
            for key in ("name", "model"):
                if isinstance(m, dict) and m.get(key):
                    names.append(str(m[key]))
        return names

    def _body(self, stream: bool) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [{"role": "user", "content": PROMPT}],
            "stream": stream,
            "options": {"num_predict": self.max_tokens, "temperature": 0},
        }

    def chat(self) -> str:
        r = self.client.post(self.base + "/api/chat", json=self._body(False), timeout=self.timeout())
        r.raise_for_status()
        data = r.json()
        if data.get("error"):
            raise RuntimeError(str(data["error"]))
        return (data.get("message") or {}).get("content") or ""

    def _stream_pieces(self) -> Iterator[str]:
        with self.client.stream("POST", self.base + "/api/chat", json=self._body(True), timeout=self.timeout()) as r:
            if r.status_code >= 400:
                r.read()
                r.raise_for_status()
            done = False
            for line in _lines(r, self.deadline):
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("error"):
                    raise RuntimeError(f"server error in stream: {event['error']}")
                yield (event.get("message") or {}).get("content") or ""
                if event.get("done"):
                    done = True
                    break
            if not done:
                raise RuntimeError('the stream ended without its closing `"done": true`')


def _lines(response, deadline: _Deadline) -> Iterator[str]:
    """Lines of a streamed body; the deadline is checked on every network read, so a server that
    trickles bytes without ever finishing a line cannot hold the smoke test past it."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    buffer = ""
    for chunk in response.iter_bytes():
        if deadline.expired():
            raise TimeoutError("smoke test deadline reached while streaming")
        buffer += decoder.decode(chunk)
        *complete, buffer = buffer.split("\n")
        for line in complete:
            yield line.rstrip("\r")
    buffer += decoder.decode(b"", final=True)
    if buffer:
        yield buffer.rstrip("\r")


# the Ollama-native API (a protocol, which the compatibility layers of other servers can speak too)
OLLAMA_API = "ollama"


def model_listed(wanted: str, names: list[str], api: str) -> bool:
    if wanted in names:
        return True
    if api == OLLAMA_API and ":" not in wanted:
        return f"{wanted}:latest" in names  # Ollama lists `llama3` as `llama3:latest`
    return False


# --------------------------------------------------------------------------- the smoke test


def run_smoke(
    base_url: str,
    model: str,
    *,
    api: str = "openai",
    api_key: str | None = None,
    concurrency: int = 1,
    sla: SlaTargets | None = None,
    timeouts: Timeouts | None = None,
    max_tokens: int = 32,
    health_path: str | None = None,
    metrics_path: str | None = None,
    expect_metrics: bool | None = None,
    on_event: Callable[[str], None] | None = None,
    ready_window_s: float = 0.0,
    on_progress: Callable[[str], None] | None = None,
) -> SmokeReport:
    """Check a running endpoint; never raises for what the server does (that is a failed check).

    health_path: the engine's readiness path (default /health, or /api/version for Ollama); the
    model list (/v1/models, /api/tags) is the fallback where it answers 404.
    metrics_path: where Prometheus metrics are (default /metrics).
    expect_metrics: True — metrics must answer (vLLM: with `vllm:` series); False — do not read it;
    None — read it, and skip the check when the server has no /metrics.
    on_event: called with "burst-first-token" when the first token of the burst arrives (tests use
    it to kill a server mid-burst), and "ready" once readiness passed.
    ready_window_s: how long the server may still be starting (refusing connections, or silent);
    past it, and past UNREACHABLE_GRACE_S, an endpoint where nothing answers fails at once.
    on_progress: called with what the test is doing or waiting for, as it changes.
    """
    import httpx

    if api not in ("openai", OLLAMA_API):
        raise InputError(f"--api: unknown API {api!r}", hint="openai or ollama")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InputError(f"--concurrency: {concurrency} is outside 1..{MAX_CONCURRENCY}")
    if not model:
        raise InputError("--model: give the served model name")
    base = normalize_base_url(base_url)
    sla = sla or SlaTargets()
    timeouts = timeouts or Timeouts()
    started = time.monotonic()
    deadline = _Deadline(timeouts.total_s)
    report = SmokeReport(base_url=base, model=model, api=api, concurrency=concurrency)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    emit = on_event or (lambda _e: None)

    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    with httpx.Client(headers=headers, limits=limits, follow_redirects=False, trust_env=False) as client:
        dialect = (_OpenAI if api == "openai" else _Ollama)(client, base, model, timeouts, deadline, max_tokens)
        if health_path:
            fallback = dialect.ready_paths[-1]
            dialect.ready_paths = (health_path,) if health_path == fallback else (health_path, fallback)
        dialect.metrics_path = metrics_path or "/metrics"
        try:
            _run(report, dialect, client, sla, deadline, concurrency, expect_metrics, emit,
                 max(0.0, ready_window_s), on_progress or (lambda _s: None))
        finally:
            report.duration_s = time.monotonic() - started
    return report


def _run(report: SmokeReport, api: _Api, client, sla: SlaTargets, deadline: _Deadline, concurrency: int,
         expect_metrics: bool | None, emit: Callable[[str], None], window_s: float,
         progress: Callable[[str], None]) -> None:
    add = report.checks.append

    # 1. readiness ----------------------------------------------------------------------------
    progress(f"waiting for {api.base}{api.ready_paths[0]} to answer")
    ready, detail, waited = _wait_ready(api, client, deadline, window_s, progress)
    add(Check("ready", PASS if ready else FAIL, detail, measured=round(waited, 2), unit="s"))
    if not ready:
        for name in ("model listed", "chat completion", "streaming", f"burst x{concurrency}"):
            add(Check(name, SKIP, "not run: the server is not ready"))
        return
    emit("ready")

    # 2. model list ---------------------------------------------------------------------------
    progress("listing the served models")
    try:
        names = api.list_models()
        if model_listed(api.model, names, report.api):
            add(Check("model listed", PASS, f"{api.model!r} among {count(len(names), 'model')}"))
        else:
            shown = ", ".join(repr(n) for n in names[:8]) or "none"
            add(Check("model listed", FAIL, f"{api.model!r} is not served; the server lists: {shown}"))
    except Exception as exc:  # noqa: BLE001
        add(Check("model listed", FAIL, _short(exc)))

    # 3. one chat completion ------------------------------------------------------------------
    progress("one chat completion")
    gone = None  # why the server cannot be asked anything more (it went away or fell silent)
    try:
        t0 = time.monotonic()
        text = api.chat()
        ms = (time.monotonic() - t0) * 1000
        if text.strip():
            add(Check("chat completion", PASS, f"{len(text)} characters: {text.strip()[:40]!r}", round(ms, 1), unit="ms"))
        else:
            add(Check("chat completion", FAIL, "the reply has no text", round(ms, 1), unit="ms"))
    except Exception as exc:  # noqa: BLE001
        add(Check("chat completion", FAIL, _short(exc)))
        if _unreachable(exc):
            gone = f"chat completion: {_short(exc)}"
    if gone:
        for name in ("streaming", f"burst x{concurrency}"):
            add(Check(name, SKIP, f"not run: the server stopped answering ({gone})"))
        return

    # 4. one streamed completion --------------------------------------------------------------
    progress("one streamed completion")
    single = api.stream()
    if single.ok:
        itl50 = percentile(single.itl_ms, 50)
        add(Check("streaming", PASS,
                  f"{single.chunks} chunks; TTFT {single.ttft_ms:.1f} ms"
                  + (f", ITL p50 {itl50:.1f} ms" if itl50 is not None else ""),
                  round(single.ttft_ms or 0, 1), unit="ms"))
    else:
        add(Check("streaming", FAIL, single.error or "failed"))
    report.measurements["single_stream"] = {
        "ok": single.ok, "ttft_ms": _r(single.ttft_ms), "chunks": single.chunks,
        "itl_p50_ms": _r(percentile(single.itl_ms, 50)), "error": single.error,
    }

    if single.gone:
        add(Check(f"burst x{concurrency}", SKIP, f"not run: the server stopped answering (streaming: {single.error})"))
        return

    # 5. a bounded burst at the planned concurrency -------------------------------------------
    progress(f"a burst of {count(concurrency, 'streamed request')}")
    results = _burst(api, concurrency, deadline, emit)
    errors = [r for r in results if not r.ok]
    ttfts = [r.ttft_ms for r in results if r.ok and r.ttft_ms is not None]
    itls = [x for r in results if r.ok for x in r.itl_ms]
    burst = {
        "requests": len(results),
        "errors": len(errors),
        "error_samples": sorted({e.error or "failed" for e in errors})[:5],
        "ttft_p50_ms": _r(percentile(ttfts, 50)),
        "ttft_p95_ms": _r(percentile(ttfts, 95)),
        "itl_p50_ms": _r(percentile(itls, 50)),
        "itl_p95_ms": _r(percentile(itls, 95)),
        "output_chunks": sum(r.chunks for r in results),
    }
    report.measurements["burst"] = burst
    name = f"burst x{concurrency}"
    summary = (f"TTFT p50/p95 {_ms(burst['ttft_p50_ms'])}/{_ms(burst['ttft_p95_ms'])}, "
               f"ITL p50/p95 {_ms(burst['itl_p50_ms'])}/{_ms(burst['itl_p95_ms'])}")
    if errors:
        add(Check(name, FAIL, f"{len(errors)} of {len(results)} requests failed: "
                  + "; ".join(burst["error_samples"]) + f" | {summary}", float(len(errors)), 0.0, "errors"))
    else:
        add(Check(name, PASS, f"{len(results)} requests, 0 errors | {summary}", 0.0, 0.0, "errors"))

    # 6. the SLA (over every successful stream: the single one and the burst) -----------------
    all_ttft = ttfts + ([single.ttft_ms] if single.ok and single.ttft_ms is not None else [])
    all_itl = itls + (single.itl_ms if single.ok else [])
    for metric, target, values in (("ttft_p95_ms", sla.ttft_p95_ms, all_ttft), ("itl_p95_ms", sla.itl_p95_ms, all_itl)):
        if target is None:
            continue
        p95 = percentile(values, 95)
        label = f"SLA {metric.replace('_p95_ms', '').upper()} p95"
        if p95 is None:
            add(Check(label, FAIL, "nothing measured (no successful stream"
                      + (" with two or more chunks" if metric == "itl_p95_ms" else "") + ")", None, target, "ms"))
        else:
            ok = p95 <= target
            add(Check(label, PASS if ok else FAIL,
                      f"p95 of {len(values)} samples " + ("meets" if ok else "misses") + " the target",
                      round(p95, 2), target, "ms"))

    # 7. Prometheus metrics ------------------------------------------------------------------
    if expect_metrics is not False and report.api == "openai":
        progress(f"reading {api.metrics_path}")
        add(_metrics_check(api, client, expect_metrics))


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f} ms"


def _wait_ready(api: _Api, client, deadline: _Deadline, window_s: float = 0.0,
                progress: Callable[[str], None] = lambda _s: None) -> tuple[bool, str, float]:
    """Poll the readiness paths until one answers 2xx; a path answering 404/405 is dropped.

    An HTTP answer that is not ready yet (503 while a model loads) is waited for until the deadline.
    No answer at all (refused, silent, reset) is waited for only within the readiness window, or
    UNREACHABLE_GRACE_S without one: then the endpoint is dead, and waiting longer helps nobody.
    """
    import httpx

    start = time.monotonic()
    give_up_unreachable = start + max(window_s, UNREACHABLE_GRACE_S)
    paths = list(api.ready_paths)
    last = "no answer"
    delay = 0.1
    while True:
        unreachable = False
        for path in list(paths):
            per = max(0.5, min(READY_PROBE_S, deadline.left()))
            try:
                r = client.get(api.base + path, timeout=httpx.Timeout(per, connect=min(2.0, per)))
            except Exception as exc:  # noqa: BLE001
                last = f"{api.base}{path}: {_short(exc)}"
                unreachable = _unreachable(exc)
                break  # the server is not answering at all: no point trying the next path now
            if 200 <= r.status_code < 300:
                return True, f"{path} answered {r.status_code}", time.monotonic() - start
            if r.status_code in (401, 403):  # up, but wants a (different) API key: later checks say so
                return True, f"{path} answered {r.status_code} (API key refused or missing)", time.monotonic() - start
            if r.status_code in (404, 405) and len(paths) > 1:
                paths.remove(path)  # this server has no such endpoint (e.g. an OpenAI-compatible proxy without /health)
                last = f"{path} answered {r.status_code}"
                continue
            last = f"{api.base}{path} answered HTTP {r.status_code}"  # e.g. 503 while loading
            break
        now = time.monotonic()
        waited = now - start
        if unreachable and now >= give_up_unreachable:
            why = ("its readiness window is over" if window_s > UNREACHABLE_GRACE_S
                   else "nothing is starting there")
            return False, f"{last} (gave up after {waited:.1f}s: {why})", waited
        if deadline.left() <= 0:
            return False, f"not ready after {waited:.1f}s: {last}", waited
        progress(f"waiting for readiness: {last}")
        time.sleep(min(delay, max(0.0, deadline.left())))
        delay = min(delay * 2, 2.0)


def _burst(api: _Api, concurrency: int, deadline: _Deadline, emit: Callable[[str], None]) -> list[StreamResult]:
    if deadline.expired():
        return [StreamResult(ok=False, error="not run: smoke test deadline reached")] * concurrency
    fired = threading.Event()

    def first_token() -> None:
        if not fired.is_set():
            fired.set()
            emit("burst-first-token")

    gate = threading.Barrier(concurrency)

    def one(_i: int) -> StreamResult:
        try:
            gate.wait(timeout=10)  # start together: that is what a burst is
        except threading.BrokenBarrierError:
            pass
        return api.stream(on_first_token=first_token)

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="smoke") as pool:
        return list(pool.map(one, range(concurrency)))


def _metrics_check(api: _Api, client, expect: bool | None) -> Check:
    try:
        r = client.get(api.base + api.metrics_path, timeout=api.timeout())
    except Exception as exc:  # noqa: BLE001
        return Check("metrics", FAIL if expect else SKIP, f"{api.metrics_path}: {_short(exc)}")
    if r.status_code == 404 or (r.status_code >= 400 and not expect):
        return Check("metrics", FAIL if expect else SKIP,
                     f"{api.metrics_path} answered HTTP {r.status_code}" + ("" if expect else " (this server exports none)"))
    if r.status_code >= 400:
        return Check("metrics", FAIL, f"{api.metrics_path} answered HTTP {r.status_code}")
    from llmctl.prometheus import series

    families = sorted(series(r.text)[0])
    prefixes = sorted({f.split(":", 1)[0] + ":" for f in families if ":" in f})
    engine_series = [f for f in families if ":" in f]
    if not families:
        return Check("metrics", FAIL, "/metrics answered with no series")
    if expect and not engine_series:
        return Check("metrics", FAIL, f"/metrics has {len(families)} series but none of the engine's (e.g. vllm:…)")
    detail = f"{len(families)} series" + (f", engine series {', '.join(prefixes)} ({len(engine_series)})" if prefixes else "")
    return Check("metrics", PASS, detail, float(len(families)), unit="series")


# --------------------------------------------------------------------------- a planned service


@dataclass
class SmokeTarget:
    """What to smoke-test for a planned service: where it answers, what it serves, what it promised."""

    base_url: str
    model: str
    api: str = "openai"
    concurrency: int = 1
    sla: SlaTargets = field(default_factory=SlaTargets)
    health_path: str | None = None
    metrics_path: str | None = None
    expect_metrics: bool | None = None
    predicted: dict[str, float] = field(default_factory=dict)
    ready_window_s: float = 0.0  # how long the server may still be starting (see run_smoke)


def target_for_service(svc, spec, plan=None, *, base_url: str | None = None) -> SmokeTarget:
    """The smoke target of a ServiceSpec built from `spec` (and its Plan, for predicted latencies).

    Without `base_url`, the service's first published port on this host: endpoint.bind, or
    127.0.0.1 when it binds every address. Pass `base_url` for another host or a Kubernetes Service.
    """
    if base_url is None:
        if not svc.ports:
            raise InputError("the planned service publishes no port; give the URL to test (--url)")
        port = svc.ports[0]
        host = port.bind if port.bind not in ("", "0.0.0.0", "::", "[::]") else "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        base_url = f"http://{host}:{port.host}"
    predicted: dict[str, float] = {}
    if plan is not None:
        perf = plan.performance
        for key in ("ttft_p95_ms", "itl_p95_ms"):
            if getattr(perf, key, None) is not None:
                predicted[key] = getattr(perf, key)
    sla = spec.workload.sla
    return SmokeTarget(
        base_url=base_url,
        model=svc.served_model_name,
        api="openai",  # every engine serves the OpenAI API (Ollama at /v1 too)
        concurrency=min(spec.workload.concurrency, MAX_CONCURRENCY),
        sla=SlaTargets(ttft_p95_ms=sla.ttft_p95_ms, itl_p95_ms=sla.itl_p95_ms),
        health_path=svc.health.path,
        metrics_path=svc.metrics_path,
        expect_metrics=bool(svc.metrics_path),
        predicted=predicted,
    )


def smoke_target(target: SmokeTarget, *, api_key: str | None = None, timeouts: Timeouts | None = None,
                 max_tokens: int = 32, on_event: Callable[[str], None] | None = None,
                 on_progress: Callable[[str], None] | None = None) -> SmokeReport:
    """run_smoke() for a SmokeTarget (what `llmctl up` calls after the service is ready)."""
    report = run_smoke(
        target.base_url, target.model, api=target.api, api_key=api_key, concurrency=target.concurrency,
        sla=target.sla, timeouts=timeouts, max_tokens=max_tokens, health_path=target.health_path,
        metrics_path=target.metrics_path, expect_metrics=target.expect_metrics, on_event=on_event,
        ready_window_s=target.ready_window_s, on_progress=on_progress,
    )
    if target.predicted:
        report.measurements["predicted"] = dict(target.predicted)
    return report
