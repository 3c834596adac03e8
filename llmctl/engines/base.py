"""What every engine shares: its profile from profiles/engines.yaml and the parts of a ServiceSpec
that do not depend on the engine (name, image, ports, GPUs, labels, probes)."""

from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from llmctl.errors import InputError

if TYPE_CHECKING:
    from llmctl.candidates import Candidate, Context
    from llmctl.catalog import GpuProfile, KvDtype, Quantization
    from llmctl.engines.profile import EngineProfile
    from llmctl.estimate.performance import Deployment
    from llmctl.plan import Plan
    from llmctl.pools import Pool
    from llmctl.service import ServiceSpec
    from llmctl.spec import Spec


@lru_cache(maxsize=1)
def engine_profiles() -> dict[str, Any]:
    from llmctl.paths import profiles_dir
    from llmctl.profiles_io import profile

    data = profile("engines.yaml")
    if not isinstance(data, dict):
        raise InputError("engines profile is not a mapping", where=str(profiles_dir() / "engines.yaml"))
    return data


def check_value(value: str, field: str, *, allow_newline: bool = False) -> str:
    """Reject what no target can carry safely; everything else passes through verbatim."""
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise InputError(f"{field}: contains an unpaired surrogate character, which cannot be written as UTF-8")
    if "\x00" in value:
        raise InputError(f"{field}: contains a NUL character")
    if not allow_newline and ("\n" in value or "\r" in value):
        raise InputError(f"{field}: contains a line break: {value!r}")
    return value


def check_word(value: str, field: str) -> str:
    """A value used as one command-line word where an option would be dangerous (model, image)."""
    check_value(value, field)
    if not value.strip():
        raise InputError(f"{field}: is empty")
    if value.startswith("-"):
        raise InputError(f"{field}: {value!r} starts with '-', which a command line would read as an option")
    if re.search(r"\s", value):
        raise InputError(f"{field}: {value!r} contains white space")
    return value


@lru_cache(maxsize=None)
def typed_profile(name: str) -> "EngineProfile":
    from llmctl.engines.profile import parse_profile
    from llmctl.paths import profiles_dir

    return parse_profile(name, engine_profiles().get(name), str(profiles_dir() / "engines.yaml"))


class Engine:
    """One serving engine: what it can load and run (the planning hooks, used by llmctl/candidates.py,
    llmctl/planner.py and llmctl/plan_build.py) and how a Plan becomes its ServiceSpec (`build`)."""

    name: str = ""
    # True when the engine puts some layers on the GPU and the rest in RAM (the plan shows the split)
    splits_layers: bool = False
    # True when one replica's GPUs work on every layer together (tensor parallel): the plan shows TP
    tensor_parallel: bool = False
    # True when the engine serves a model by its library tag (the plan shows the tag it pulls)
    serves_by_tag: bool = False
    # True when the engine downloads weights from the Hugging Face Hub (a gated model needs a token)
    downloads_from_hf: bool = True

    @property
    def profile(self) -> "EngineProfile":
        return typed_profile(self.name)

    @property
    def title(self) -> str:
        return self.profile.title

    # ------------------------------------------------------------------ planning hooks
    def unavailable_on(self, device: "GpuProfile") -> str | None:
        """None if the engine runs on `device`, else the reason it cannot."""
        runs = self.profile.runs
        from llmctl.calibrate.active import runs_here

        if runs_here(self.name, device.id):
            return None  # measured serving there: a calibration overlay says so
        if device.kind not in runs.kinds:
            return runs.refusals.get(device.kind, f"{self.title} does not run on {device.kind} devices")
        if device.kind == "gpu" and runs.vendors and device.vendor not in runs.vendors:
            return runs.refusals.get(device.vendor, f"{self.title} does not support {device.vendor} accelerators")
        return None

    def quant_options(self, ctx: "Context", pool: "Pool") -> list["Quantization"]:
        """The weight formats worth planning when the spec forces none."""
        raise NotImplementedError

    def kv_options(self, ctx: "Context") -> list["KvDtype"]:
        """The KV-cache dtypes worth planning when the spec forces none (full precision first)."""
        raise NotImplementedError

    def no_quant_reason(self, ctx: "Context") -> str:
        return f"no quantization of {ctx.model.arch.id} loads in {self.title}"

    def candidates(self, ctx: "Context", pool: "Pool", quant: "Quantization", kvs: list["KvDtype"]) -> list["Candidate"]:
        """Every layout of `quant` on `pool`, each with its memory estimate or the reason it cannot work."""
        raise NotImplementedError

    def deployment(self, ctx: "Context", c: "Candidate") -> "Deployment":
        """The performance model's view of a feasible candidate."""
        raise NotImplementedError

    def tunings(self, ctx: "Context", c: "Candidate") -> list[dict[str, Any]]:
        """Other engine knobs worth trying for a candidate evaluated at the defaults (its perf, replicas
        and SLA verdict are set), the most promising first: the planner stops when that one does not help,
        and otherwise keeps whichever needs the fewest replicas within the SLA."""
        return []

    def apply_tuning(self, ctx: "Context", c: "Candidate", tuning: dict[str, Any]) -> None:
        """Set `tuning` on the candidate, redoing what depends on it (e.g. the memory estimate)."""
        c.tuning = dict(tuning)

    def engine_args(self, ctx: "Context", c: "Candidate") -> dict[str, Any]:
        """The engine's settings for the plan (`plan.engine_args`)."""
        raise NotImplementedError

    def layout_label(self, c: "Candidate") -> str:
        """A candidate's layout in a line of text: `TP2`, `1 GPU`, `CPU`."""
        if c.pool.device.kind == "cpu":
            return "CPU"
        return f"{c.devices} GPU" + ("s" if c.devices > 1 else "")

    def layout_summary(self, plan: "Plan") -> str:
        """The plan's layout for the decision line: `TP 2`, `4 slots`."""
        raise NotImplementedError

    def layout_rationale(self, ctx: "Context", c: "Candidate") -> tuple[str, str]:
        """(rule, sentence) saying why this layout."""
        raise NotImplementedError

    def plan_model_tag(self, ctx: "Context", c: "Candidate") -> str | None:
        """The Ollama tag the plan records for the model."""
        return ctx.model.ollama_tag

    def plan_source(self, ctx: "Context", c: "Candidate") -> str | None:
        """What the engine loads for the plan (plan.model.source); None for a local file."""
        m = ctx.model
        return None if m.path else (m.hf_id or m.arch.hf_id or m.reference)

    def plan_warnings(self, ctx: "Context", c: "Candidate") -> list[str]:
        return []

    # what of the spec's `serving` block the engine renders (the rest is named in a plan warning)
    renders_generation: bool = False
    renders_served_names: bool = False  # every name, not only the first
    renders_max_queue: bool = False
    renders_chat_template: bool = False

    def serving_warnings(self, spec: "Spec") -> list[str]:
        s = spec.serving
        out = []
        if s.generation.given() and not self.renders_generation:
            out.append(f"serving.generation is not rendered for {self.title}: requests get the model's own "
                       "sampling defaults unless they send their own")
        if len(s.served_names) > 1 and not self.renders_served_names:
            out.append(f"serving.served_names: {self.title} answers to one name here; "
                       f"{', '.join(s.served_names[1:])} are not served")
        if s.chat_template and not self.renders_chat_template:
            out.append(f"serving.chat_template is not rendered for {self.title}: the model's own template is used")
        if s.max_queued_requests and not self.renders_max_queue:
            out.append(f"serving.max_queued_requests is not rendered for {self.title}: its queue stays at the default")
        return out

    # ------------------------------------------------------------------ host
    def host_model_cache(self, env: dict[str, str]) -> tuple[str, str]:
        """Where a host install of the engine writes downloaded models, and why that path.

        huggingface_hub's variables: HF_HUB_CACHE, else $HF_HOME/hub, HF_HOME defaulting to
        $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface."""
        from pathlib import Path

        if env.get("HF_HUB_CACHE"):
            return env["HF_HUB_CACHE"], "HF_HUB_CACHE"
        home = Path(env.get("HOME") or Path.home())
        hf_home = env.get("HF_HOME") or str(Path(env.get("XDG_CACHE_HOME") or home / ".cache") / "huggingface")
        return str(Path(hf_home) / "hub"), "the Hugging Face cache"

    def download_gib(self, plan: "Plan", weights_gib: float) -> float:
        """What the engine fetches before it serves: by default one file about the size of the weights."""
        return weights_gib

    def host_argv(self, argv: list[str], python: str | None) -> list[str]:
        """The host command line; `python`: an interpreter to run the engine's Python entry point with."""
        return argv

    # ------------------------------------------------------------------ entry point
    def build(self, plan: "Plan", spec: "Spec") -> "ServiceSpec":
        raise NotImplementedError

    # ------------------------------------------------------------------ shared parts
    def common(self, plan: "Plan", spec: "Spec") -> dict[str, Any]:
        from llmctl.service import GpuRequest, Health, Port, Resources
        from llmctl.slug import label_value, slugify
        from llmctl.targets.kubernetes.gpu_labels import gpu_product_label

        prof = self.profile
        name = check_value(spec.name, "name", allow_newline=True)
        slug = slugify(name)
        image = self.image(plan, spec)
        port = prof.port
        if plan.gpu.nodes_per_replica > 1 and not prof.multinode:
            raise InputError(
                f"plan.gpu.nodes_per_replica: {self.name} cannot spread one replica over "
                f"{plan.gpu.nodes_per_replica} nodes; use vllm"
            )
        gpu_count = plan.gpu.count_per_replica if plan.gpu.kind == "gpu" else 0
        if plan.gpu.nodes_per_replica > 1:
            gpu_count = max(1, gpu_count // plan.gpu.nodes_per_replica)  # GPUs per pod
        vendor = self.gpu_vendor(plan)
        labels = {
            "app.kubernetes.io/name": label_value(self.name.replace(".", "")) or "engine",
            "app.kubernetes.io/instance": slug,
            "app.kubernetes.io/component": "inference",
            "app.kubernetes.io/part-of": "llmctl",
            "app.kubernetes.io/managed-by": "llmctl",
        }
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        if label_value(tag):
            labels["app.kubernetes.io/version"] = label_value(tag)
        weights = plan.memory.per_gpu_gib.weights * max(1, plan.tensor_parallel * plan.pipeline_parallel)
        if plan.gpu.kind != "gpu":
            weights = plan.memory.total_gib
        download = None if plan.model.path else self.download_gib(plan, weights)
        per_host, spare = gpu_headroom(plan, spec)
        if plan.gpu.kind == "gpu":
            resources = Resources(memory_request_gib=float(engine_profiles()["host_memory_gib_gpu"]))
        else:
            need = math.ceil(plan.memory.total_gib * 1.1 + 1)
            resources = Resources(memory_request_gib=float(need), memory_limit_gib=float(need))
        return dict(
            name=name,
            slug=slug,
            engine=self.name,
            image=image,
            ports=[Port(container=port, host=spec.endpoint.port or port, bind=spec.endpoint.bind)],
            gpu=GpuRequest(count=gpu_count, vendor=vendor),
            resources=resources,
            health=Health(path=prof.health_path, port=port, startup_timeout_s=startup_timeout(download or weights),
                          command=list(prof.healthcheck)),
            metrics_path=prof.metrics_path,
            autoscale_metric=prof.autoscale_metric,
            replicas=plan.replicas,
            nodes_per_replica=plan.gpu.nodes_per_replica,
            run_as_user=prof.run_as_user,
            gpu_type=plan.gpu.type if plan.gpu.kind == "gpu" else None,
            gpu_product_label=gpu_product_label(plan.gpu.type) if vendor == "nvidia" and plan.gpu.kind == "gpu" else None,
            labels=labels,
            environment=spec.environment,
            gpus_per_host=per_host,
            spare_gpus=spare,
            download_gib=download,
        ), (download or weights)

    def image(self, plan: "Plan", spec: "Spec") -> str:
        if spec.overrides.image:
            return check_word(spec.overrides.image, "overrides.image")
        images = self.profile.images
        kind = "cpu" if plan.gpu.kind != "gpu" else ("rocm" if self.gpu_vendor(plan) == "amd" else "gpu")
        if kind not in images:
            raise InputError(
                f"{self.name} has no pinned image for {kind} in profiles/engines.yaml",
                hint="set overrides.image to an image built for this hardware",
            )
        return images[kind]

    @staticmethod
    def gpu_vendor(plan: "Plan") -> str:
        if plan.gpu.kind != "gpu":
            return "none"
        gpu = _find_gpu(plan.gpu.type)
        vendor = getattr(gpu, "vendor", None)
        if vendor:
            return vendor
        return "amd" if re.match(r"(?i)(mi\d|radeon|rx)", plan.gpu.type) else "nvidia"

    @staticmethod
    def model_word(plan: "Plan") -> str:
        ref = plan.model.hf_id or plan.model.reference
        return check_word(ref, "model")

    @staticmethod
    def served_name(plan: "Plan") -> str:
        return check_word(plan.model.reference, "model")

    @staticmethod
    def local_model(plan: "Plan") -> PurePosixPath | None:
        return PurePosixPath(plan.model.path) if plan.model.path else None


def gpu_headroom(plan: "Plan", spec: "Spec") -> tuple[int | None, int | None]:
    """(GPUs of the plan's type on one host, GPUs of that type left over), from the spec's hardware."""
    from llmctl.targets.sizing import gpu_inventory

    return gpu_inventory(plan, spec)


def startup_timeout(weight_gib: float) -> int:
    s = engine_profiles()["startup"]
    return int(min(s["max_s"], s["base_s"] + math.ceil(max(weight_gib, 0.0) * s["per_weight_gib_s"])))


def _find_gpu(gpu_type: str) -> Any:
    """The catalog's profile of a plan's GPU type (None for a type it does not know, e.g. detected)."""
    from llmctl.catalog import Catalog

    return Catalog.load().find_gpu(gpu_type)


def flag_args(extra: dict[str, Any], taken: set[str]) -> list[str]:
    """plan.engine_args entries not already rendered → `--flag value` (True → `--flag`, False/None → nothing)."""
    out: list[str] = []
    for key in sorted(extra):
        flag = "--" + key.replace("_", "-").lstrip("-")
        if flag in taken:
            continue
        value = extra[key]
        if value is None or value is False:
            continue
        check_value(key, f"plan.engine_args.{key}")
        if not re.fullmatch(r"--[a-z0-9][a-z0-9-]*", flag):
            raise InputError(f"plan.engine_args: {key!r} is not a command-line flag name")
        if value is True:
            out.append(flag)
        else:
            out += [flag, check_value(_word(value), f"plan.engine_args.{key}")]
    return out


def _word(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def host_address(bind: str) -> str:
    """An address as written before `:port` (IPv6 in brackets)."""
    return f"[{bind}]" if ":" in bind and not bind.startswith("[") else bind


def probe_address(bind: str) -> str:
    """Where a local health probe connects for a service bound to `bind`."""
    if bind in ("0.0.0.0", ""):
        return "127.0.0.1"
    if bind in ("::", "[::]"):
        return "[::1]"
    return host_address(bind)


def native_env(service: Any, state_dir: str) -> dict[str, str]:
    """The container environment for a host process: volume paths moved under `state_dir`."""
    env = dict(service.env)
    for key, value in env.items():
        for vol in service.volumes:
            if vol.host_path is None and (value == vol.mount or value.startswith(vol.mount + "/")):
                env[key] = f"{state_dir}/{vol.name}{value[len(vol.mount):]}"
    if "OLLAMA_HOST" in env and service.ports:
        port = service.ports[0]
        env["OLLAMA_HOST"] = f"{host_address(port.bind)}:{port.host}"
    return env


def native_listen(args: list[str], port: Any) -> list[str]:
    """The same arguments for a host process: listen on the spec's address and host port."""
    out = list(args)
    out[out.index("--host") + 1] = port.bind
    out[out.index("--port") + 1] = str(port.host)
    return out


def pvc_gib(weights_gib: float) -> int:
    """Size of the model-cache volume: the weights with headroom for downloads and conversions."""
    headroom = float(engine_profiles()["kubernetes"]["storage_headroom"])
    return int(math.ceil(max(weights_gib, 1.0) * headroom + 10))
