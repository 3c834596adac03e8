"""The translation tables of profiles/migrate.yaml, typed: a typo or a value vLLM does not accept
fails when the file is read, naming the key."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from llmctl.errors import InputError
from llmctl.typed import FrozenRecord, Invalid, convert


class KvRule(FrozenRecord):
    vllm: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"]  # values of vLLM's CacheDType llmctl plans
    status: Literal["carried", "approximated"]
    reason: str


class MigrateRules(FrozenRecord):
    ollama_defaults: dict[str, str]
    generation: dict[str, Literal["temperature", "top_p", "top_k", "min_p", "presence_penalty", "frequency_penalty"]]
    kv_cache_types: dict[str, KvRule]
    per_request_parameters: dict[str, str]  # PARAMETER → why only per request
    dropped_parameters: dict[str, str]
    dropped_env: dict[str, str]


@lru_cache(maxsize=1)
def rules() -> MigrateRules:
    from llmctl.paths import profiles_dir
    from llmctl.profiles_io import profile

    where = str(profiles_dir() / "migrate.yaml")
    try:
        return convert(profile("migrate.yaml"), MigrateRules)
    except Invalid as exc:
        raise InputError(str(exc), where=where) from None
