"""The typed form of one engine's block in profiles/engines.yaml.

Every key an engine reads is declared here, so a typo or a missing value fails when the profile is
loaded, naming the file and the key, instead of deep inside a render.
"""

from __future__ import annotations

from typing import Any

from llmctl.errors import InputError
from llmctl.typed import FrozenRecord as _Block
from llmctl.typed import Invalid, convert


class Runs(_Block):
    """Where the engine can run: device kinds (gpu, cpu, apple) and GPU vendors, with the reason it cannot."""

    kinds: tuple[str, ...]
    vendors: tuple[str, ...] = ()
    refusals: dict[str, str] = {}  # kind or vendor -> sentence


class EngineProfile(_Block):
    title: str                                  # how people write it in prose: "vLLM"
    aliases: tuple[str, ...] = ()               # other spellings a spec may use
    version: str                                # the engine release the images are pinned to
    checked: str                                # where and when the pins and defaults were read
    images: dict[str, str]                      # gpu / rocm / cpu -> pinned image
    port: int
    health_path: str
    metrics_path: str | None = None
    metrics_need_api_key: bool = False
    model_cache: str
    run_as_user: int | None = None
    container_command: tuple[str, ...]
    native_command: tuple[str, ...]
    healthcheck: tuple[str, ...]
    install_hint: str
    runs: Runs
    preference: dict[str, float] = {}   # rule id -> points (llmctl/rules.py)
    multinode: bool = False
    autoscale_metric: str | None = None
    # the engine's own time per output token (llmctl bench): two Prometheus series, [seconds, tokens or
    # requests], whose growth over a step divides into the mean
    tpot_metric: tuple[str, str] | None = None
    kv_cache_types: tuple[str, ...] = ()
    # vLLM
    shutdown_timeout_s: int | None = None
    quantization_methods: tuple[str, ...] = ()
    dtypes: dict[str, str] = {}
    kv_cache_dtypes: tuple[str, ...] = ()
    # chunked-prefill budgets (max_num_batched_tokens) the planner also tries when the default needs
    # more than one replica or misses the SLA: smaller budgets lower ITL and raise TTFT
    chunk_budgets: tuple[int, ...] = ()
    lora_ranks: tuple[int, ...] = ()
    lora_rank_unknown: int = 64
    shm_gib: dict[str, float] = {}
    # Ollama
    keep_alive: dict[str, str] = {}
    max_loaded_models: int | None = None
    pull_port: int | None = None
    ready_file: str = "/tmp/llmctl-model-loaded"


def parse_profile(name: str, block: Any, where: str) -> EngineProfile:
    try:
        return convert(block, EngineProfile)
    except Invalid as exc:
        raise InputError(f"{'.'.join(str(p) for p in (name, *exc.loc))}: {exc.message}", where=where) from None
