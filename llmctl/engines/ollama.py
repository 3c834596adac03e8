"""Ollama: `ollama serve`, configured through OLLAMA_* variables, with the model pulled before it is ready.

The model is pulled by a temporary server on a private loopback port; only afterwards does the real
server listen on the service port. So "the port answers" means "the model is on disk", whatever
probes the target uses, and a restart finds the model on the persistent volume (`ollama show`
succeeds) instead of pulling it again. Model tags reach the shell only as positional arguments.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from llmctl.engines.base import Engine, check_word, pvc_gib
from llmctl.errors import InputError

if TYPE_CHECKING:
    from llmctl.plan import Plan
    from llmctl.service import ServiceSpec
    from llmctl.spec import Spec

# "$@" are the model tags. OLLAMA_HOST is exported only inside the subshell.
_PULL = """(
  set -eu
  [ "$#" -gt 0 ] || exit 0
  export OLLAMA_HOST=127.0.0.1:{pull_port}
  {ollama} serve >/dev/null 2>&1 &
  pid=$!
  i=0
  until {ollama} list >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 300 ]; then echo "llmctl: temporary ollama server did not start" >&2; exit 1; fi
    sleep 1
  done
  for m in "$@"; do
    {ollama} show "$m" >/dev/null 2>&1 || {ollama} pull "$m" || {{ kill "$pid"; exit 1; }}
  done
  kill "$pid"
  wait "$pid" || true
)"""


def pull_script(ollama: str, pull_port: int) -> str:
    return _PULL.format(ollama=ollama, pull_port=int(pull_port)) + "\n"


def entry_script(ollama: str, pull_port: int) -> str:
    return pull_script(ollama, pull_port) + f"exec {ollama} serve\n"


class OllamaEngine(Engine):
    name = "ollama"

    def build(self, plan: "Plan", spec: "Spec") -> "ServiceSpec":
        from llmctl.service import PrepareStep, ServiceSpec, Volume

        prof = self.profile
        base, weights = self.common(plan, spec)
        port = base["ports"][0].container
        if plan.model.path and not plan.model.ollama_tag:
            raise InputError(
                "model: Ollama serves models from its registry; a local file needs llama.cpp",
                hint="set overrides.backend: llama.cpp, or use an Ollama tag such as llama3.1:8b",
            )
        tag = check_word(plan.model.ollama_tag or plan.model.reference, "model")
        ea = dict(plan.engine_args)
        parallel = (
            spec.overrides.num_parallel
            or ea.get("num_parallel")
            or plan.performance.batch_size
            or max(1, math.ceil(spec.workload.concurrency / max(1, plan.replicas)))
        )
        env = {
            "OLLAMA_HOST": f"0.0.0.0:{port}",
            "OLLAMA_MODELS": f"{prof['model_cache']}/models",
            "OLLAMA_NUM_PARALLEL": str(int(parallel)),
            "OLLAMA_CONTEXT_LENGTH": str(plan.max_model_len),
            "OLLAMA_KEEP_ALIVE": str(ea.get("keep_alive") or prof["keep_alive"][spec.environment]),
            "OLLAMA_MAX_LOADED_MODELS": str(int(ea.get("max_loaded_models") or prof["max_loaded_models"])),
        }
        kv = str(ea.get("kv_cache_type") or plan.kv_cache_dtype).lower()
        if kv in prof["kv_cache_types"] or ea.get("flash_attention"):
            env["OLLAMA_FLASH_ATTENTION"] = "1"
        if kv in prof["kv_cache_types"]:
            env["OLLAMA_KV_CACHE_TYPE"] = kv

        cmd = prof["container_command"][0]
        native = prof["native_command"][0]
        return ServiceSpec(
            **base,
            argv=["/bin/sh", "-c", entry_script(cmd, prof["pull_port"]), "llmctl-ollama", tag],
            native_argv=[native, "serve"],
            prepare=[
                PrepareStep(
                    description=f"pull {tag} unless it is already on disk",
                    argv=["/bin/sh", "-c", pull_script(native, prof["pull_port"]), "llmctl-ollama-pull", tag],
                )
            ],
            env=env,
            secrets=[],
            volumes=[Volume(name="models", mount=prof["model_cache"], purpose="model-cache", size_gib=pvc_gib(weights))],
            served_model_name=tag,
            api_kind="ollama",
        )
