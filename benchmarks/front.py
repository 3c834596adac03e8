"""The Ollama-compatible front's cost: `python -m benchmarks.front [REQUESTS]`.

Starts the real llama-server on the tiny GGUF and the front (`python -m llmctl.migrate.front`) on top
of it, then prints:

* latency of REQUESTS (default 40) sequential short chats, straight to llama-server's
  /v1/chat/completions and through the front's /api/chat, streamed (time to the first text chunk)
  and not streamed (whole answer): median and p95, and the difference the front adds;
* throughput of one long stream through the front (a synthetic OpenAI stream of 8,000 chunks of
  1 KB, since the tiny model's answers are short): chunks per second and MB/s;
* the front's resident memory idle and after the runs.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _timed_stream(client: httpx.Client, path: str, body: dict) -> tuple[float, float]:
    """(seconds to the first line carrying text, seconds to the end)."""
    start = time.perf_counter()
    first = None
    with client.stream("POST", path, json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if first is None and ('"content":"' in line and '"content":""' not in line):
                first = time.perf_counter() - start
    return (first if first is not None else float("nan")), time.perf_counter() - start


def main() -> int:
    from migrate.test_front_real import EndlessBackend, front_config, running_front
    from support import servers
    from support.tiny_models import ensure_tiny_models

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    gguf = ensure_tiny_models()[1]
    msgs = [{"role": "user", "content": "hello"}]
    with tempfile.TemporaryDirectory(prefix="llmctl-bench-front-") as tmp:
        work = Path(tmp)
        backend = servers.start_llama_server(gguf, work, alias="tiny")
        try:
            with running_front(front_config(backend.port), work / "front") as front, \
                    httpx.Client(timeout=60) as c:
                idle_rss = front.rss_kib() / 1024
                direct_body = {"model": "tiny", "messages": msgs, "max_tokens": 16, "temperature": 0}
                front_body = {"model": "plain", "messages": msgs, "options": {"num_predict": 16, "temperature": 0}}
                for _ in range(3):  # warm both paths
                    c.post(backend.base_url + "/v1/chat/completions", json=direct_body).raise_for_status()
                    c.post(front.url + "/api/chat", json={**front_body, "stream": False}).raise_for_status()
                res: dict[str, list[float]] = {k: [] for k in ("d_whole", "f_whole", "d_ttft", "f_ttft")}
                for _ in range(n):
                    t = time.perf_counter()
                    c.post(backend.base_url + "/v1/chat/completions", json=direct_body).raise_for_status()
                    res["d_whole"].append(time.perf_counter() - t)
                    t = time.perf_counter()
                    c.post(front.url + "/api/chat", json={**front_body, "stream": False}).raise_for_status()
                    res["f_whole"].append(time.perf_counter() - t)
                    res["d_ttft"].append(_timed_stream(c, backend.base_url + "/v1/chat/completions",
                                                       {**direct_body, "stream": True})[0])
                    res["f_ttft"].append(_timed_stream(c, front.url + "/api/chat", front_body)[0])
                rss_after = front.rss_kib() / 1024
        finally:
            backend.stop()

        synth = EndlessBackend(8000, "q" * 1000).start()
        try:
            with running_front(front_config(synth.port), work / "front2") as front, httpx.Client(timeout=120) as c:
                start = time.perf_counter()
                lines = 0
                nbytes = 0
                with c.stream("POST", front.url + "/api/chat", json={"model": "plain", "messages": msgs}) as r:
                    for line in r.iter_lines():
                        lines += 1
                        nbytes += len(line) + 1
                took = time.perf_counter() - start
                last = json.loads(line)
                assert last["done"] is True and lines == 8001, (lines, last)
                stream_rss = front.rss_kib() / 1024
        finally:
            synth.stop()

    ms = lambda v: f"{v * 1000:.1f}"  # noqa: E731
    rows = [
        ["whole answer (16 tokens), median ms", ms(statistics.median(res["d_whole"])),
         ms(statistics.median(res["f_whole"])),
         ms(statistics.median(res["f_whole"]) - statistics.median(res["d_whole"]))],
        ["whole answer, p95 ms", ms(_pct(res["d_whole"], 0.95)), ms(_pct(res["f_whole"], 0.95)),
         ms(_pct(res["f_whole"], 0.95) - _pct(res["d_whole"], 0.95))],
        ["first text chunk, median ms", ms(statistics.median(res["d_ttft"])), ms(statistics.median(res["f_ttft"])),
         ms(statistics.median(res["f_ttft"]) - statistics.median(res["d_ttft"]))],
        ["first text chunk, p95 ms", ms(_pct(res["d_ttft"], 0.95)), ms(_pct(res["f_ttft"], 0.95)),
         ms(_pct(res["f_ttft"], 0.95) - _pct(res["d_ttft"], 0.95))],
    ]
    print(f"{n} sequential requests each way, tiny model on llama-server (1 thread)")
    print(tabulate(rows, headers=["", "llama-server direct", "through the front", "front adds"]))
    print()
    print(tabulate([
        ["one stream of 8,000 chunks x 1 KB", f"{lines / took:,.0f} chunks/s", f"{nbytes / took / 1e6:.1f} MB/s"],
        ["front resident memory", f"idle {idle_rss:.0f} MiB, after chats {rss_after:.0f} MiB",
         f"after the long stream {stream_rss:.0f} MiB"],
    ], headers=["", "", ""]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
