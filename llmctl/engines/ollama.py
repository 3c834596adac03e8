"""Ollama: `ollama serve`, configured through OLLAMA_* variables, with the model pulled before it is ready.

The model is pulled by a temporary server on a private loopback port; only afterwards does the real
server listen on the service port. So "the port answers" means "the model is on disk", whatever
probes the target uses, and a restart finds the model on the persistent volume (`ollama show`
succeeds) instead of pulling it again. Model tags reach the shell only as positional arguments.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from llmctl.engines.base import Engine, check_word, pvc_gib
from llmctl.engines.gguf_plan import GgufEngine, flash_attention_needed, serves_own_file, tag_names_quant
from llmctl.engines.ollama_library import bare_tag, library, not_published, published
from llmctl.errors import InputError
from llmctl.typed import updated

if TYPE_CHECKING:
    from llmctl.candidates import Candidate, Context
    from llmctl.catalog import KvDtype, Quantization, ResolvedModel
    from llmctl.plan import Plan
    from llmctl.pools import Pool
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


# The real server starts in the background; once it answers, each model is loaded (`ollama run M ""`
# preloads, docs/faq.md) and only then is the ready file written, which the probes check: "ready"
# means the model answers, not only the port. SIGTERM is passed on to the server.
_SERVE = """rm -f "$LLMCTL_READY_FILE"
{ollama} serve &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
i=0
until {ollama} list >/dev/null 2>&1; do
  if ! kill -0 "$pid" 2>/dev/null; then wait "$pid"; exit $?; fi
  i=$((i + 1))
  if [ "$i" -gt 300 ]; then echo "llmctl: ollama did not start" >&2; kill -TERM "$pid"; exit 1; fi
  sleep 1
done
for m in "$@"; do
  {ollama} run "$m" "" >/dev/null 2>&1 || echo "llmctl: could not preload $m; it loads on the first request" >&2
done
: > "$LLMCTL_READY_FILE"
wait "$pid"
status=$?
if kill -0 "$pid" 2>/dev/null; then wait "$pid"; status=$?; fi
exit "$status"
"""


def entry_script(ollama: str, pull_port: int) -> str:
    return pull_script(ollama, pull_port) + _SERVE.format(ollama=ollama)


def _picks_library_tag(ctx: "Context") -> bool:
    """The plan chooses which library tag to pull (by catalog name and size), rather than serving the tag, file
    or GGUF repository the model was given as. Worked out once per plan (every pool and quantization asks)."""
    return ctx.once(("ollama picks the tag",), lambda: _picks_tag(ctx))


def _picks_tag(ctx: "Context") -> bool:
    m = ctx.model
    if m.path or serves_own_file(m) or _names_hf_file(m):
        return False
    return bool((m.arch.ollama or {}).get("names"))


def _names_hf_file(m: "ResolvedModel") -> bool:
    """The reference is hf.co/…:QUANT, a Hugging Face repository's GGUF file, not a library tag."""
    from llmctl.model_refs import is_hf_gguf_ref

    return is_hf_gguf_ref(m.ollama_tag or m.reference)


def _default(ctx: "Context") -> str:
    """The quantization the bare tag pulls."""
    return str((ctx.model.arch.ollama or {}).get("default_quantization") or ctx.model.gguf_quantization or "")


def _unpublished(ctx: "Context", quant_id: str) -> str | None:
    """Why the library has no tag for `quant_id` of the model, or None when it has one (or its list is unknown)."""
    return ctx.once(("ollama unpublished", quant_id), lambda: _unpublished_reason(ctx, quant_id))  # every pool asks


def _unpublished_reason(ctx: "Context", quant_id: str) -> str | None:
    why = None if quant_id == _default(ctx) else not_published(ctx.model.arch.ollama or {}, quant_id)
    return why and (f"{why} and `ollama pull` would refuse it; choose one of those, import a {quant_id} GGUF with "
                    "`ollama create` from a Modelfile, or serve the GGUF file with llama.cpp")


def _named_tag_missing(ctx: "Context") -> str | None:
    """Why a tag the reference spelled with its quantization (qwen3:8b-q6_K) cannot be pulled: the library's
    recorded list for the model does not hold it. None when it does, when the list is not recorded, or when
    the facts came from the local store or the registry (the tag exists there)."""
    m = ctx.model
    if m.source != "catalog" or not tag_names_quant(m) or _names_hf_file(m):
        return None
    why = not_published(m.arch.ollama or {}, str(m.gguf_quantization))
    return why and (f"{m.ollama_tag}: {why}, so `ollama pull` would refuse it; write one of those tags, or serve "
                    "a GGUF file with llama.cpp")


class OllamaEngine(GgufEngine, Engine):
    name = "ollama"
    needs_library_entry = True
    serves_by_tag = True
    downloads_from_hf = False

    def host_model_cache(self, env: dict[str, str]) -> tuple[str, str]:
        # Ollama FAQ "Where are models stored?": OLLAMA_MODELS, default ~/.ollama/models
        from pathlib import Path

        home = Path(env.get("HOME") or Path.home())
        return env.get("OLLAMA_MODELS") or str(home / ".ollama" / "models"), "Ollama's model folder"

    # ------------------------------------------------------------------ planning hooks
    def quant_options(self, ctx: "Context", pool: "Pool") -> list["Quantization"]:
        # Ollama serves library tags; a local GGUF would need `ollama create` from a Modelfile first
        if ctx.model.path:
            return []
        options = super().quant_options(ctx, pool)
        if not _picks_library_tag(ctx):
            return options
        # only what the library publishes for the tag; when its list is not recorded, what the bare tag pulls
        listed = published(ctx.model.arch.ollama or {})
        keep = listed.keys() if listed is not None else {_default(ctx)}
        return [q for q in options if q.id in keep]

    def candidates(self, ctx: "Context", pool: "Pool", quant: "Quantization",
                   kvs: list["KvDtype"]) -> list["Candidate"]:
        """A quantization forced by overrides.quantization that the library does not publish for the tag is
        rejected with the list it does publish: the tag a plan would render does not exist."""
        out = super().candidates(ctx, pool, quant, kvs)
        why = (_unpublished(ctx, quant.id) if _picks_library_tag(ctx)
               else ctx.once(("ollama named tag missing",), lambda: _named_tag_missing(ctx)))
        for c in out:
            c.reject = c.reject or why
        return out

    def plan_warnings(self, ctx: "Context", c: "Candidate") -> list[str]:
        if not _picks_library_tag(ctx) or published(ctx.model.arch.ollama or {}) is not None:
            return []
        o = ctx.model.arch.ollama or {}
        from llmctl.model_refs import library_tag

        cited = library().cited()
        if c.quant.id == _default(ctx):
            return [f"Ollama: only the quantization {bare_tag(o)} pulls ({c.quant.id}) was considered, because the "
                    f"library's list of its other quantizations is not recorded ({bare_tag(o)} is not in {cited}). "
                    "For another one, set overrides.quantization to one whose tag you know exists, or import a GGUF "
                    "file with `ollama create` from a Modelfile"]
        return [f"Ollama: {library_tag(o, c.quant.id)} is rendered as overrides.quantization asks, unchecked: the "
                f"library's list for {bare_tag(o)} is not recorded ({cited}); `ollama pull` refuses a tag that "
                "does not exist"]

    def no_quant_reason(self, ctx: "Context") -> str:
        if ctx.model.path:
            return ("Ollama serves models by tag; a local file needs `ollama create` from a Modelfile first "
                    "(llama.cpp serves the file as it is)")
        from llmctl.engines.gguf_plan import no_quant_reason

        if not ctx.model.arch.ollama:
            return no_quant_reason(ctx, self.title) or f"{ctx.model.arch.id} is not in Ollama's library"
        return super().no_quant_reason(ctx)

    def engine_args(self, ctx: "Context", c: "Candidate") -> dict[str, Any]:
        m = c.mem
        args = {
            "num_ctx": ctx.max_model_len,
            "num_parallel": c.num_parallel,
            "kv_cache_type": c.kv.id,
            "flash_attention": flash_attention_needed(c.kv),
            "keep_alive": self.profile.keep_alive[ctx.spec.environment],
            "max_loaded_models": self.profile.max_loaded_models,
            "num_gpu": m.gpu_layers if m and m.gpu_layers is not None and m.gpu_layers < (m.total_layers or 0) else None,
        }
        return {k: v for k, v in args.items() if v is not None}

    def layout_summary(self, plan: "Plan") -> str:
        from llmctl.term import count

        return count(plan.engine_args.get('num_parallel', 1), "slot")

    def plan_source(self, ctx: "Context", c: "Candidate") -> str | None:
        return self.plan_model_tag(ctx, c)

    def plan_model_tag(self, ctx: "Context", c: "Candidate") -> str | None:
        """The library tag that holds the planned quantization: the bare tag for its default one."""
        m = ctx.model
        o = m.arch.ollama or {}
        if m.kind == "ollama" and (m.gguf_quantization == c.quant.id):
            return m.ollama_tag
        if not o.get("names"):
            return None
        from llmctl.model_refs import library_tag

        return library_tag(o, c.quant.id)

    # ------------------------------------------------------------------ service

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
            "OLLAMA_MODELS": f"{prof.model_cache}/models",
            "OLLAMA_NUM_PARALLEL": str(int(parallel)),
            "OLLAMA_CONTEXT_LENGTH": str(plan.max_model_len),
            "OLLAMA_KEEP_ALIVE": str(ea.get("keep_alive") or prof.keep_alive[spec.environment]),
            "OLLAMA_MAX_LOADED_MODELS": str(int(ea.get("max_loaded_models") or prof.max_loaded_models)),
        }
        if plan.replicas > 1:
            # replicas may share one model volume: a server starting prunes blobs no manifest names yet,
            # which are another replica's pull in flight (server/routes.go Serve; since 0.21 only blobs
            # older than an hour, server/images.go PruneLayers, and a large pull takes longer)
            env["OLLAMA_NOPRUNE"] = "1"
        env["LLMCTL_READY_FILE"] = prof.ready_file
        kv = str(ea.get("kv_cache_type") or plan.kv_cache_dtype).lower()
        if kv in prof.kv_cache_types or ea.get("flash_attention"):
            env["OLLAMA_FLASH_ATTENTION"] = "1"
        if kv in prof.kv_cache_types:
            env["OLLAMA_KV_CACHE_TYPE"] = kv

        cmd = prof.container_command[0]
        native = prof.native_command[0]
        base["health"] = updated(base["health"], ready_command=["test", "-f", prof.ready_file])
        return ServiceSpec(
            **base,
            argv=["/bin/sh", "-c", entry_script(cmd, prof.pull_port), "llmctl-ollama", tag],
            native_argv=[native, "serve"],
            prepare=[
                PrepareStep(
                    description=f"pull {tag} unless it is already on disk",
                    argv=["/bin/sh", "-c", pull_script(native, prof.pull_port), "llmctl-ollama-pull", tag],
                )
            ],
            env=env,
            secrets=[],
            volumes=[Volume(name="models", mount=prof.model_cache, purpose="model-cache", size_gib=pvc_gib(weights))],
            served_model_name=tag,
            api_kind="ollama",
        )
