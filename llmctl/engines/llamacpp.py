"""llama.cpp: `llama-server` with the plan's context, slots and GPU layers."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from llmctl.candidates import Candidate
from llmctl.engines.base import Engine, check_value, check_word, flag_args, native_listen, pvc_gib
from llmctl.engines.gguf_plan import DEFAULT_BATCH, GgufEngine, flash_attention_needed
from llmctl.engines.sources import sources_for
from llmctl.errors import InputError
from llmctl.estimate.memory import constants as memory_constants

if TYPE_CHECKING:
    from llmctl.candidates import Context
    from llmctl.catalog import KvDtype, Quantization
    from llmctl.plan import Plan
    from llmctl.pools import Pool
    from llmctl.service import ServiceSpec
    from llmctl.spec import Spec


class LlamaCppEngine(GgufEngine, Engine):
    name = "llama.cpp"
    renders_generation = True

    # ------------------------------------------------------------------ planning hooks
    def engine_args(self, ctx: "Context", c: "Candidate") -> dict[str, Any]:
        return {
            "ctx_size": ctx.max_model_len * c.num_parallel,
            "parallel": c.num_parallel,
            "n_gpu_layers": (c.mem.gpu_layers if c.mem else 0) if c.pool.device.kind != "cpu" else 0,
            "cache_type_k": c.kv.id,
            "cache_type_v": c.kv.id,
            "flash_attn": flash_attention_needed(c.kv),
            "batch_size": DEFAULT_BATCH,
        }

    def layout_summary(self, plan: "Plan") -> str:
        from llmctl.term import count

        return count(plan.engine_args.get('parallel', 1), "slot")

    def flash_attention_default(self, arch: Any) -> bool:
        """llama-server's `--flash-attn auto` turns it on wherever the device has it (estimation.yaml)."""
        return bool(memory_constants()["llama_cpp"]["llama_server_flash_attention_default"])

    def candidates(self, ctx: "Context", pool: "Pool", quant: "Quantization", kvs: list["KvDtype"]) -> list["Candidate"]:
        """llama-server downloads with `-hf repo:QUANT`: a quantization no listed GGUF repository holds
        cannot be served (the repository's default file would be another size than the one planned).
        That holds for every layout, so such a quantization is one rejected candidate, unsized unless the
        plan asks (Context.size_rejected; then a layout that does not fit says so first)."""
        if ctx.model.path or _download(ctx, quant.id):
            return super().candidates(ctx, pool, quant, kvs)
        why = (f"no GGUF file of {ctx.model.arch.id} in {quant.id} is known "
               f"({sources_for(ctx.model.arch.id).gguf_listing()}); give a local .gguf path as the model, or "
               "another quantization")
        if not ctx.size_rejected:
            return [Candidate(self.name, quant, kvs[0], pool, reject=why)]
        out = super().candidates(ctx, pool, quant, kvs)
        for c in out:
            c.reject = c.reject or why
        return out

    def plan_source(self, ctx: "Context", c: "Candidate") -> str | None:
        return None if ctx.model.path else _download(ctx, c.quant.id)

    # ------------------------------------------------------------------ service

    def build(self, plan: "Plan", spec: "Spec") -> "ServiceSpec":
        from llmctl.service import SecretRef, ServiceSpec, Volume

        prof = self.profile
        base, weights = self.common(plan, spec)
        port = base["ports"][0].container
        served = self.served_name(plan)
        volumes = [Volume(name="models", mount=prof.model_cache, purpose="model-cache", size_gib=pvc_gib(weights))]
        local = self.local_model(plan)
        secrets: list[SecretRef] = []
        if local is not None:
            path = check_value(str(local), "model.path")
            if not path.lower().endswith(".gguf"):
                raise InputError(f"model: llama.cpp serves a .gguf file; got {path!r}")
            folder = str(local.parent)
            mount = "/models"
            volumes.append(Volume(name="model-files", mount=mount, purpose="data", host_path=folder, read_only=True))
            model_c = ["-m", f"{mount}/{local.name}"]
            model_n = ["-m", path]
        else:
            source = plan.model.source
            if not source:
                raise InputError(
                    f"model: {plan.model.reference!r} has no GGUF source for llama.cpp",
                    hint="give a local .gguf path as the model, or plan again (plans record `model.source`)",
                )
            model_c = model_n = ["-hf", check_word(source, "model.source")]
            secrets.append(SecretRef(env="HF_TOKEN", key="HF_TOKEN", required=bool(plan.model.gated),
                                     description="Hugging Face token to download the GGUF file"))
        ea = dict(plan.engine_args)
        slots = int(
            spec.overrides.num_parallel
            or ea.get("parallel")
            or plan.performance.batch_size
            or max(1, math.ceil(spec.workload.concurrency / max(1, plan.replicas)))
        )
        args = [
            # always explicit: the binary's own defaults moved (port 9931, host 127.0.0.1, -np auto)
            "--host", "0.0.0.0", "--port", str(port),
            # -c is the total context, split evenly over the -np slots (tools/server/README.md)
            "-c", str(plan.max_model_len * slots), "-np", str(slots),
            "-ngl", gpu_layers_arg(plan),
            "--alias", served,
            "--metrics",
        ]
        kv = plan.kv_cache_dtype.lower()
        if kv in prof.kv_cache_types and kv not in ("f16", "auto"):
            # a quantized V cache needs flash attention; -fa takes on|off|auto (common/arg.cpp)
            args += ["-fa", "on", "--cache-type-k", kv, "--cache-type-v", kv]
        if "tool_calling" in spec.needs or "structured_output" in spec.needs:
            args += ["--jinja"]
        if "embeddings" in spec.needs:
            args += ["--embeddings"]  # the model's own GGUF pooling type (an embedding model: see planning)
        args += sampling_args(spec)
        planned = {"ctx_size", "parallel", "n_gpu_layers", "cache_type_k", "cache_type_v", "flash_attn", "batch_size"}
        args += flag_args({k: v for k, v in ea.items() if k not in planned}, {a for a in args if a.startswith("--")})
        if spec.environment != "development":
            # llama-server reads --api-key from LLAMA_API_KEY (common/arg.cpp: set_env("LLAMA_API_KEY"))
            secrets.insert(0, SecretRef(env="LLAMA_API_KEY", key="LLAMA_API_KEY", required=True,
                                        description="clients send it as `Authorization: Bearer <key>`"))
        metrics_key = next((x.key for x in secrets if x.env == "LLAMA_API_KEY"), None)
        return ServiceSpec(
            **base,
            # with --api-key only /health is public (tools/server/server-http.cpp): scrapes send the key
            metrics_secret_key=metrics_key if prof.metrics_need_api_key else None,
            argv=[*prof.container_command, *model_c, *args],
            native_argv=[*prof.native_command, *model_n, *native_listen(args, base["ports"][0])],
            env={"LLAMA_CACHE": prof.model_cache, "HOME": "/tmp"},
            secrets=secrets,
            volumes=volumes,
            served_model_name=served,
            api_kind="openai",
        )


# serving.generation -> llama-server's sampling flags, the defaults of a request that does not set them
# (common/arg.cpp: --temp, --top-p, --top-k, --min-p, --repeat-penalty, --presence-penalty,
# --frequency-penalty, -n/--n-predict)
_SAMPLING_FLAGS = {"temperature": "--temp", "top_p": "--top-p", "top_k": "--top-k", "min_p": "--min-p",
                   "repetition_penalty": "--repeat-penalty", "presence_penalty": "--presence-penalty",
                   "frequency_penalty": "--frequency-penalty", "max_new_tokens": "--n-predict"}


def sampling_args(spec: "Spec") -> list[str]:
    out: list[str] = []
    for key, value in spec.serving.generation.given().items():
        out += [_SAMPLING_FLAGS[key], repr(value) if isinstance(value, float) else str(value)]
    return out


def gpu_layers_arg(plan: "Plan") -> str:
    """-ngl: llama.cpp counts the output layer as one more than n_layer (src/llama-model.cpp), and
    offloads layers from the output end, so k repeating layers on the GPU, as planned (the memory
    estimate keeps the output layer there too), are `-ngl k+1`; full offload is n_layer + 1."""
    if plan.gpu.kind not in ("gpu", "apple"):
        return "0"
    if plan.memory.gpu_layers is None:
        return "all"  # a plan without a layer split: every layer (common/arg.cpp accepts `all`)
    return str(plan.memory.gpu_layers + 1) if plan.memory.gpu_layers > 0 else "0"


def _download(ctx: "Context", quant_id: str) -> str | None:
    """What `-hf` fetches for this quantization: the GGUF file the reference named (hf.co/...), else the listed
    repository's `repo:QUANT`; None when no known repository holds it."""
    return ctx.model.gguf_source or sources_for(ctx.model.arch.id).gguf(quant_id)
