"""llama.cpp: `llama-server` with the plan's context, slots and GPU layers."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from llmctl.engines.base import Engine, check_value, check_word, flag_args, native_listen, pvc_gib
from llmctl.engines.gguf_plan import DEFAULT_BATCH, GgufEngine, flash_attention_needed
from llmctl.errors import InputError

if TYPE_CHECKING:
    from llmctl.candidates import Candidate, Context
    from llmctl.plan import Plan
    from llmctl.service import ServiceSpec
    from llmctl.spec import Spec


class LlamaCppEngine(GgufEngine, Engine):
    name = "llama.cpp"

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
        return f"{plan.engine_args.get('parallel', 1)} slot(s)"

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
            repo = plan.model.hf_id
            if not repo:
                raise InputError(
                    f"model: {plan.model.reference!r} has no GGUF source for llama.cpp",
                    hint="give a local .gguf path or a Hugging Face GGUF repository",
                )
            repo = check_word(repo, "model")
            quant = plan.model.gguf_quantization if hasattr(plan.model, "gguf_quantization") else None
            quant = quant or (plan.quantization if plan.quantization.lower().startswith(("q", "iq")) else None)
            ref = f"{repo}:{quant}" if quant and ":" not in repo else repo
            model_c = model_n = ["-hf", ref]
            secrets.append(SecretRef(env="HF_TOKEN", key="HF_TOKEN", required=bool(plan.model.gated),
                                     description="Hugging Face token to download the GGUF file"))
        ea = dict(plan.engine_args)
        slots = int(
            spec.overrides.num_parallel
            or ea.pop("parallel", None)
            or plan.performance.batch_size
            or max(1, math.ceil(spec.workload.concurrency / max(1, plan.replicas)))
        )
        ea.pop("parallel", None)
        if plan.memory.gpu_layers is not None:
            ngl = plan.memory.gpu_layers
        else:
            ngl = 999 if plan.gpu.kind in ("gpu", "apple") else 0  # 999: "all layers" (common/arg.cpp)
        args = [
            "--host", "0.0.0.0", "--port", str(port),
            # -c is the total context, split evenly over the -np slots (tools/server/README.md)
            "-c", str(plan.max_model_len * slots), "-np", str(slots),
            "-ngl", str(ngl),
            "--alias", served,
            "--metrics",
        ]
        kv = plan.kv_cache_dtype.lower()
        if kv in prof.kv_cache_types and kv not in ("f16", "auto"):
            args += ["-fa", "on", "--cache-type-k", kv, "--cache-type-v", kv]
        if "tool_calling" in spec.needs or "structured_output" in spec.needs:
            args += ["--jinja"]
        if "embeddings" in spec.needs:
            args += ["--embeddings"]
        args += flag_args(ea, {a for a in args if a.startswith("--")} | {"--ctx-size", "--parallel", "--n-gpu-layers"})
        if spec.environment != "development":
            # llama-server reads --api-key from LLAMA_API_KEY (common/arg.cpp: set_env("LLAMA_API_KEY"))
            secrets.insert(0, SecretRef(env="LLAMA_API_KEY", key="LLAMA_API_KEY", required=True,
                                        description="clients send it as `Authorization: Bearer <key>`"))
        return ServiceSpec(
            **base,
            argv=[*prof.container_command, *model_c, *args],
            native_argv=[*prof.native_command, *model_n, *native_listen(args, base["ports"][0])],
            env={"LLAMA_CACHE": prof.model_cache, "HOME": "/tmp"},
            secrets=secrets,
            volumes=volumes,
            served_model_name=served,
            api_kind="openai",
        )


