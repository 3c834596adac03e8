"""Host checks before a deployment starts: `llmctl doctor`, and the preflight of `llmctl up`.

Each check is a small function returning a CheckResult (pass | warn | fail | skip, a detail, and the
fix for a failure). `run_checks(spec, plan, target)` picks the checks the target and plan need;
`check_requirements(Requirements(...))` runs them from explicit inputs, so each is testable alone.

Thresholds and driver tables are data: profiles/drivers.yaml and profiles/doctor.yaml.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from llmctl.term import count


PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"

# Container Device Interface spec folders the NVIDIA Container Toolkit writes to and Docker/Podman read
# (https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/cdi-support.html)
CDI_SPEC_DIRS = ("/etc/cdi", "/var/run/cdi")
# seconds a probe (Docker API, kubectl) may take before the check counts as failed; a reachable local
# engine or API server answers in well under a second
PROBE_TIMEOUT_S = 10


@dataclass
class CheckResult:
    name: str
    status: str  # pass | warn | fail | skip
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class Requirements:
    """What a deployment needs from the host, independent of how it was decided."""

    target: str = "compose"  # compose | systemd | kubernetes | local
    backend: str | None = None  # vllm | llama.cpp | ollama
    gpu_vendor: str | None = None  # nvidia | amd | apple; None: CPU only
    gpus_per_node: int = 0
    replicas: int = 1
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    model_ref: str | None = None
    model_gib: float | None = None  # weights on disk
    model_path: str | None = None  # a local file/folder: nothing to download
    gated: bool = False
    image: str | None = None
    image_is_default: bool = False
    ports: list[tuple[str, int]] = field(default_factory=list)  # (bind address, host port)
    shm_gib: float | None = None  # /dev/shm the rendered service gets; None: not known
    cache_path: str | None = None  # where the model will be stored on this host
    gpu_product_label: str | None = None  # Kubernetes node selector value, if any
    kube_secret: str | None = None  # the Secret the pods read required keys from (kubernetes)
    kube_secret_keys: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- data


def _yaml(name: str) -> Any:
    """A file of profiles/, parsed once and cached (read-only: callers must not change it)."""
    from llmctl.profiles_io import profile

    return profile(name)


def driver_table() -> dict[str, Any]:
    return _yaml("drivers.yaml")


def thresholds() -> dict[str, Any]:
    return _yaml("doctor.yaml")


def _version(text: str | None) -> tuple[int, ...]:
    parts = []
    for p in str(text or "").strip().split("."):
        digits = "".join(ch for ch in p if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def image_requirement(image: str | None, table: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The rule of profiles/drivers.yaml matching `image`, with `cuda` resolved; None if unknown."""
    if not image:
        return None
    table = table or driver_table()
    ref = image.split("@")[0]
    repo, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "")
    repo = repo.removeprefix("docker.io/").removeprefix("library/")
    for rule in table.get("engine_images", []):
        if rule.get("repository") != repo:
            continue
        if rule.get("tag_contains") and rule["tag_contains"] not in tag:
            continue
        if rule.get("tag_below") and not (_version(tag) and _version(tag) < _version(rule["tag_below"])):
            continue
        found = dict(rule)
        if found.get("cuda") == "from-tag":
            ver = _version(tag)
            if len(ver) < 2:
                return None
            found["cuda"] = f"{ver[0]}.{ver[1]}"
        return found
    return None


def default_image(backend: str | None, vendor: str | None = "nvidia") -> str | None:
    """The image the engine renders by default (profiles/engines.yaml), for a plan without a service."""
    if not backend:
        return None
    try:
        images = (_yaml("engines.yaml").get(backend) or {}).get("images") or {}
    except (OSError, ValueError):
        return None
    return images.get({"nvidia": "gpu", "amd": "rocm"}.get(vendor or "", "cpu"))


# --------------------------------------------------------------------------- requirements


def plan_for(spec: Any) -> Any:
    """The spec's plan from the planner, or None while the planner is not installed."""
    try:
        from llmctl.planner import make_plan
    except ImportError:
        return None
    return make_plan(spec)


def requirements(spec: Any, plan: Any = None, target: str | None = None, service: Any = None) -> Requirements:
    """Assemble Requirements from a Spec, its Plan and (when `up` has one) the rendered ServiceSpec."""
    req = Requirements(target=target or getattr(spec, "target", None) or "compose")
    req.model_ref = getattr(spec, "model", None)
    overrides = getattr(spec, "overrides", None)
    if plan is not None:
        req.backend = plan.backend
        req.replicas = plan.replicas
        req.tensor_parallel = plan.tensor_parallel
        req.pipeline_parallel = plan.pipeline_parallel
        kind = plan.gpu.kind
        if kind in ("gpu", "apple"):
            req.gpu_vendor = "apple" if kind == "apple" else _gpu_vendor(plan.gpu.type)
            req.gpus_per_node = math.ceil(plan.gpu.count_per_replica / max(1, plan.gpu.nodes_per_replica))
        weights = plan.memory.per_gpu_gib.weights
        offloaded = plan.memory.offloaded_to_cpu_gib
        if kind == "cpu":
            req.model_gib = max(weights, offloaded)
        else:
            req.model_gib = weights * max(1, plan.gpu.count_per_replica) + offloaded
        if not plan.model.path:
            from llmctl.engines import get_engine

            # what the engine downloads (vLLM: the repository as published, not the weights it loads)
            req.model_gib = get_engine(plan.backend).download_gib(plan, req.model_gib)
        req.model_path = plan.model.path
        req.gated = plan.model.gated
        req.model_ref = plan.model.hf_id or plan.model.ollama_tag or plan.model.reference
    else:
        req.notes.append("no plan (the planner is not available): GPU, driver and disk checks use the spec only")
        req.backend = getattr(overrides, "backend", None)
        hw = getattr(spec, "hardware", "detect")
        if isinstance(hw, list):
            gpus = max((n.gpu_count for n in hw), default=0)
            if gpus:
                req.gpus_per_node = gpus
                req.gpu_vendor = _gpu_vendor(next(n.gpu for n in hw if n.gpu_count == gpus))
    endpoint = getattr(spec, "endpoint", None)
    if service is not None:
        req.image = service.image
        req.ports = [(p.bind, p.host) for p in service.ports]
        req.shm_gib = service.resources.shm_size_gib
        req.gpu_product_label = service.gpu_product_label
        required = [x.key for x in service.secrets if x.required]
        if required:
            req.kube_secret, req.kube_secret_keys = f"{service.slug}-secrets", required
        if service.download_gib:
            req.model_gib = service.download_gib
        for vol in service.volumes:
            if vol.purpose == "model-cache" and vol.host_path:
                req.cache_path = vol.host_path
    else:
        req.image = getattr(overrides, "image", None)
        if endpoint is not None and endpoint.port:
            req.ports = [(endpoint.bind, endpoint.port)]
    if req.image is None and req.gpu_vendor == "nvidia":
        req.image = default_image(req.backend, req.gpu_vendor)
        req.image_is_default = req.image is not None
    return req


def _gpu_vendor(gpu_type: str | None) -> str:
    if not gpu_type:
        return "nvidia"
    try:
        from llmctl.catalog import Catalog

        prof = Catalog.load().find_gpu(gpu_type)
    except Exception:  # catalog unavailable: most GPUs planned are NVIDIA's
        prof = None
    if prof is not None:
        return prof.vendor
    low = gpu_type.lower()
    if low.startswith(("mi", "amd", "radeon")):
        return "amd"
    if low.startswith(("apple", "m1", "m2", "m3", "m4")):
        return "apple"
    return "nvidia"


# --------------------------------------------------------------------------- running


def run_checks(spec: Any, plan: Any = None, target: str | None = None, *, service: Any = None,
               detected: Any = None, skip: Iterable[str] = (),
               kubectl: str | Sequence[str] = "kubectl") -> list[CheckResult]:
    """Every check the spec's target and plan need. `llmctl up` calls this before it applies anything.

    `service`: the ServiceSpec `up` is about to apply; without it the plan's engine builds one, so the
    image, host ports and /dev/shm checked are the ones `render` would write.
    """
    notes = []
    if service is None and plan is not None:
        try:
            from llmctl.engines import get_engine

            service = get_engine(plan.backend).build(plan, spec)
        except Exception as exc:  # doctor diagnoses; an engine that cannot build is reported, not raised
            notes.append(f"the {plan.backend} engine could not describe the service ({exc}); "
                         "image, ports and /dev/shm are checked from the spec")
    req = requirements(spec, plan, target, service)
    req.notes.extend(notes)
    return check_requirements(req, detected, skip=skip, kubectl=kubectl)


def run_host_checks(target: str = "compose", detected: Any = None,
                    kubectl: str | Sequence[str] = "kubectl") -> list[CheckResult]:
    """Checks without a spec: what this machine offers for `target` with the GPUs it has."""
    if detected is None:
        from llmctl import inventory

        detected = inventory.detect()
    req = Requirements(target=target)
    nv = detected.nvidia_gpus
    if nv:
        req.gpu_vendor, req.gpus_per_node = "nvidia", len(nv)
    found = "; ".join(detected.summary()[1:])
    return [CheckResult("hardware", PASS, found)] + check_requirements(req, detected, kubectl=kubectl)


def check_requirements(req: Requirements, detected: Any = None, *, env: dict[str, str] | None = None,
                       kubectl: str | Sequence[str] = "kubectl", skip: Iterable[str] = ()) -> list[CheckResult]:
    """Run the checks `req` calls for. `skip`: check names the caller answers for itself (e.g. `up`
    re-applying a running service skips "ports", which its own containers hold)."""
    skipped = set(skip)
    results = _check_requirements(req, detected, env, kubectl)
    return [CheckResult(r.name, SKIP, "skipped by the caller") if r.name in skipped else r for r in results]


def _check_requirements(req: Requirements, detected: Any, env: dict[str, str] | None,
                        kubectl: str | Sequence[str]) -> list[CheckResult]:
    env = dict(os.environ if env is None else env)
    results: list[CheckResult] = []
    from llmctl.targets.registry import entry, target_checks

    needs_local_host = entry(req.target).on_this_host
    if needs_local_host and req.gpu_vendor in ("nvidia", "amd", "apple") and detected is None:
        from llmctl import inventory

        detected = inventory.detect()

    docker_info: dict[str, Any] | None = None
    checks = target_checks(req.target)
    if checks is not None:  # what the target needs (llmctl/targets/<name>/checks.py)
        own, docker_info = checks(req, env, kubectl)
        results += own

    if needs_local_host:
        results.append(check_local_gpus(req, detected))
        if req.gpu_vendor == "nvidia":
            results.append(check_driver(getattr(detected, "driver_version", None), req.image,
                                        default=req.image_is_default))
        results.append(check_disk(req, docker_info, env))
        results.append(check_ports(req.ports))
    results.append(check_shm(req))
    results.append(check_hf_token(req, env))
    for note in req.notes:
        results.append(CheckResult("plan", WARN, note))
    return results


def any_failed(results: Iterable[CheckResult]) -> bool:
    return any(r.status == FAIL for r in results)


def results_json(results: list[CheckResult]) -> dict[str, Any]:
    counts = {s: sum(r.status == s for r in results) for s in (PASS, WARN, FAIL, SKIP)}
    return {"ok": counts[FAIL] == 0, "counts": counts, "checks": [r.to_dict() for r in results]}


def results_table(results: list[CheckResult], *, wide: bool = False) -> str:
    from llmctl.term import table as fit, terminal_width, verdict_word

    rows = [[verdict_word(r.status.upper()), r.name, r.detail, r.fix] for r in results]
    # without a terminal (CI logs) DETAIL and FIX wrap at 60 characters, as they always did
    width = None if wide else (terminal_width() or 160)
    table = fit(rows, ["STATUS", "CHECK", "DETAIL", "FIX"], tablefmt="simple", wrap=["FIX", "DETAIL"], width=width,
                wide=wide)
    c = results_json(results)["counts"]
    return f"{table}\n\n{c[PASS]} pass, {c[WARN]} warn, {c[FAIL]} fail, {c[SKIP]} skip"


# --------------------------------------------------------------------------- container engine


def _podman_sockets(env: dict[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    runtime = env.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    # rootless and rootful Podman API sockets (podman-system-service(1))
    return [f"{runtime}/podman/podman.sock", "/run/podman/podman.sock"]


def check_container_engine(docker_host: str | None = None) -> tuple[CheckResult, dict[str, Any] | None]:
    """Docker or Podman reachable through the Docker API (DOCKER_HOST, the default socket, Podman's)."""
    import docker

    candidates = [docker_host] if docker_host else [None] + [
        f"unix://{p}" for p in _podman_sockets() if os.path.exists(p)
    ]
    errors = []
    for host in candidates:
        sock = (host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock")
        if sock.startswith("unix://") and not os.path.exists(sock[len("unix://"):]):
            errors.append(f"no socket at {sock[len('unix://'):]}")
            continue
        try:
            client = (docker.DockerClient(base_url=host, timeout=PROBE_TIMEOUT_S) if host
                      else docker.from_env(timeout=PROBE_TIMEOUT_S))
            try:
                info = client.info()
                version = client.version()
            finally:
                client.close()
        except Exception as exc:  # docker.errors.DockerException, requests errors, OSError
            errors.append(f"{host or 'default socket'}: {brief_error(exc)}")
            continue
        names = [c.get("Name", "") for c in version.get("Components") or []]
        engine = "Podman" if any("podman" in n.lower() for n in names) else "Docker"
        where = host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        info["_llmctl_host"] = where
        return CheckResult("container engine", PASS, f"{engine} {version.get('Version', '?')} at {where}"), info
    fix = ("start Docker (`sudo systemctl start docker`) or set DOCKER_HOST to a running engine; "
           "with Podman: `systemctl --user start podman.socket` and "
           "DOCKER_HOST=unix://$XDG_RUNTIME_DIR/podman/podman.sock")
    return CheckResult("container engine", FAIL, "no Docker/Podman engine answers: " + "; ".join(errors), fix), None


def brief_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def check_compose_cli(env: dict[str, str]) -> CheckResult:
    """`docker compose` (v2 plugin) or podman-compose, needed to start the rendered compose file."""
    for argv in (["docker", "compose", "version", "--short"], ["podman-compose", "version"]):
        if shutil.which(argv[0]) is None:
            continue
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, env=env)
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0:
            return CheckResult("compose CLI", PASS, f"{' '.join(argv[:2])} {out.stdout.strip().splitlines()[0]}")
    return CheckResult(
        "compose CLI", WARN, "neither `docker compose` nor podman-compose is installed",
        "install the Docker Compose plugin (Debian/Ubuntu: `apt-get install docker-compose-plugin`)",
    )


def check_gpu_runtime(info: dict[str, Any] | None, cdi_dirs: Iterable[str] = CDI_SPEC_DIRS) -> CheckResult:
    """NVIDIA GPUs reach containers through the `nvidia` runtime or a CDI spec for nvidia.com/gpu."""
    name = "NVIDIA container runtime"
    if info is None:
        return CheckResult(name, SKIP, "no container engine to ask")
    runtimes = sorted((info.get("Runtimes") or {}).keys())
    if "nvidia" in runtimes:
        return CheckResult(name, PASS, "the engine has the `nvidia` runtime registered")
    dirs = list(info.get("CDISpecDirs") or []) + [d for d in cdi_dirs if d not in (info.get("CDISpecDirs") or [])]
    for folder in dirs:
        for spec in sorted(Path(folder).glob("*")) if Path(folder).is_dir() else []:
            if spec.suffix in (".yaml", ".yml", ".json") and _mentions_nvidia_gpu(spec):
                return CheckResult(name, PASS, f"CDI spec {spec} defines nvidia.com/gpu devices")
    return CheckResult(
        name, FAIL,
        f"the engine has no `nvidia` runtime (runtimes: {', '.join(runtimes) or 'none'}) and no CDI spec for "
        f"nvidia.com/gpu in {', '.join(dirs)}",
        "install nvidia-container-toolkit, then `sudo nvidia-ctk runtime configure --runtime=docker && "
        "sudo systemctl restart docker` (Podman: `sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`)",
    )


def _mentions_nvidia_gpu(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "nvidia.com/gpu" in text


def check_amd_devices(root: str = "/dev") -> CheckResult:
    """ROCm containers need /dev/kfd and /dev/dri passed through (ROCm Docker guide)."""
    missing = [d for d in ("kfd", "dri") if not os.path.exists(os.path.join(root, d))]
    if missing:
        return CheckResult("AMD GPU devices", FAIL, f"missing {', '.join('/dev/' + m for m in missing)}",
                           "install the amdgpu driver (amdgpu-install --usecase=rocm) and reboot")
    return CheckResult("AMD GPU devices", PASS, "/dev/kfd and /dev/dri present")


# --------------------------------------------------------------------------- GPUs and driver


def check_local_gpus(req: Requirements, detected: Any) -> CheckResult:
    name = "GPUs on this host"
    if req.gpu_vendor is None or req.gpus_per_node == 0:
        return CheckResult(name, SKIP, "no GPU needed (CPU only)")
    if req.gpu_vendor == "apple":
        chip = getattr(detected, "apple_chip", None)
        if chip:
            return CheckResult(name, PASS, f"{chip}")
        return CheckResult(name, FAIL, "the plan is for Apple Silicon, this host is not a Mac with an M-series chip",
                           "run on the Mac, or plan with `hardware: detect`")
    found = [g for g in getattr(detected, "gpus", []) if g.vendor == req.gpu_vendor]
    need = req.gpus_per_node
    if len(found) >= need:
        names = sorted({g.name for g in found})
        return CheckResult(name, PASS, f"{len(found)}x {', '.join(names)} (plan needs {need} per node)")
    probe = (getattr(detected, "probes", {}) or {}).get("nvml" if req.gpu_vendor == "nvidia" else "amd", "")
    what = "NVIDIA" if req.gpu_vendor == "nvidia" else "AMD"
    detail = f"plan needs {need} {what} GPU{'s' if need != 1 else ''} per node, found {len(found)}" + (f" ({probe})" if probe else "")
    fix = (f"install the {what} driver" if not found else "use a bigger machine") + \
        ", or plan for this machine with `hardware: detect`"
    return CheckResult(name, FAIL, detail, fix)


def check_driver(driver: str | None, image: str | None, *, default: bool = False,
                 table: dict[str, Any] | None = None) -> CheckResult:
    """The NVIDIA driver is new enough for the CUDA the engine image was built with."""
    name = "NVIDIA driver"
    if not driver:
        return CheckResult(name, SKIP, "no NVIDIA driver found (see GPUs on this host)")
    table = table or driver_table()
    rule = image_requirement(image, table)
    label = f"{image}{' (default image)' if default else ''}"
    if rule is None:
        return CheckResult(name, WARN, f"driver {driver}; cannot tell which CUDA {label or 'the image'} needs",
                           "check the image's CUDA version against NVIDIA's driver table")
    have = _version(driver)
    if rule.get("min_driver"):
        need = rule["min_driver"]
        if have >= _version(need):
            return CheckResult(name, PASS, f"driver {driver} >= {need} needed by {label}")
        return CheckResult(name, FAIL, f"driver {driver} < {need} needed by {label} ({rule.get('source', '')})",
                           f"upgrade the NVIDIA driver to {need} or newer")
    cuda = str(rule["cuda"])
    full = table.get("cuda_toolkit_min_driver", {}).get(cuda)
    floor = table.get("cuda_major_min_driver", {}).get(cuda.split(".")[0])
    if full and have >= _version(full):
        return CheckResult(name, PASS, f"driver {driver} >= {full} needed by CUDA {cuda} ({label})")
    if floor and have >= _version(floor):
        return CheckResult(
            name, WARN,
            f"driver {driver} is older than {full or '?'} (CUDA {cuda}, {label}); it runs under CUDA minor "
            f"version compatibility: no PTX JIT, so GPUs newer than the image's kernels may fail",
            f"upgrade the NVIDIA driver to {full} or newer",
        )
    return CheckResult(
        name, FAIL, f"driver {driver} cannot run CUDA {cuda} ({label}): CUDA {cuda.split('.')[0]}.x needs >= {floor}",
        f"upgrade the NVIDIA driver to {full or floor} or newer, or use an image built for an older CUDA",
    )


# --------------------------------------------------------------------------- disk, shm, ports, token


def model_cache_dir(req: Requirements, docker_info: dict[str, Any] | None, env: dict[str, str]) -> tuple[str, str]:
    """Where the model will be written on this host, and why that path."""
    if req.cache_path:
        return req.cache_path, "the service's model volume"
    from llmctl.targets.registry import entry

    if entry(req.target).docker_volumes and docker_info and str(docker_info.get("_llmctl_host", "")).startswith("unix://"):
        root = docker_info.get("DockerRootDir")
        if root and os.path.exists(root):
            return root, "Docker's data root (named volumes live there)"
    from llmctl.engines import get_engine
    from llmctl.engines.base import Engine

    engine = get_engine(req.backend) if req.backend else Engine()
    return engine.host_model_cache(env)


def _existing_parent(path: str) -> str:
    p = Path(path).expanduser().absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return str(p)


def check_disk(req: Requirements, docker_info: dict[str, Any] | None = None, env: dict[str, str] | None = None,
               *, limits: dict[str, Any] | None = None) -> CheckResult:
    name = "disk for the model"
    env = dict(os.environ if env is None else env)
    if req.model_path:
        return CheckResult(name, SKIP, f"the model is a local file ({req.model_path}); nothing to download")
    if not req.model_gib:
        return CheckResult(name, SKIP, "model size unknown (no plan)")
    limits = limits or thresholds()["disk"]
    path, why = model_cache_dir(req, docker_info, env)
    probe = _existing_parent(path)
    try:
        usage = shutil.disk_usage(probe)
    except OSError as exc:
        return CheckResult(name, WARN, f"cannot read free space at {probe}: {exc}")
    free_gib = usage.free / 2**30
    need = req.model_gib * (1 + float(limits["headroom_fraction"]))
    detail = f"{free_gib:.1f} GiB free at {probe} ({why}); model needs {req.model_gib:.1f} GiB (+{limits['headroom_fraction']:.0%})"
    if free_gib < need:
        return CheckResult(name, FAIL, detail, f"free {need - free_gib:.1f} GiB there, or move the cache "
                           "(HF_HOME / OLLAMA_MODELS / Docker's data-root) to a bigger disk")
    if free_gib - need < float(limits["warn_remaining_gib"]):
        return CheckResult(name, WARN, detail + f"; under {limits['warn_remaining_gib']} GiB would remain",
                           "free some space before the download")
    return CheckResult(name, PASS, detail)


def check_shm(req: Requirements, path: str = "/dev/shm", *, limits: dict[str, Any] | None = None) -> CheckResult:
    name = "/dev/shm"
    workers = req.tensor_parallel * req.pipeline_parallel
    if workers <= 1 or (req.backend and not _engine_attr(req.backend, "tensor_parallel")):
        return CheckResult(name, SKIP, "one engine process per replica: no shared memory between GPU workers")
    limits = limits or thresholds()["shm"]
    need = float(limits["min_gib"])
    from llmctl.targets.registry import entry

    if entry(req.target).container:
        if req.shm_gib is None:
            return CheckResult(name, SKIP, f"TP×PP = {workers}: the rendered service must give the container at "
                               f"least {need:g} GiB of /dev/shm (Docker's default is {limits['docker_default_mib']} MiB)")
        if req.shm_gib >= need:
            return CheckResult(name, PASS, f"the service gets {req.shm_gib:g} GiB of /dev/shm for {workers} workers")
        return CheckResult(name, FAIL, f"the service gets {req.shm_gib:g} GiB of /dev/shm; {workers} workers need {need:g} GiB",
                           "raise resources.shm_size_gib (compose `shm_size`, or an emptyDir medium: Memory)")
    try:
        st = os.statvfs(path)
    except OSError as exc:
        return CheckResult(name, FAIL, f"{path} is missing ({exc})", "mount a tmpfs on /dev/shm")
    size, free = st.f_blocks * st.f_frsize / 2**30, st.f_bavail * st.f_frsize / 2**30
    detail = f"{path}: {free:.1f} of {size:.1f} GiB free; {workers} workers need {need:g} GiB"
    if free >= need:
        return CheckResult(name, PASS, detail)
    return CheckResult(name, FAIL, detail, f"`sudo mount -o remount,size={max(2, math.ceil(need * 2))}G {path}`")


def _engine_attr(backend: str, attr: str) -> bool:
    from llmctl.engines import get_engine

    return bool(getattr(get_engine(backend), attr))


def check_ports(ports: list[tuple[str, int]]) -> CheckResult:
    """Each host port can be listened on now, binding as the engines and Docker's proxy do
    (SO_REUSEADDR: a port whose last connections sit in TIME_WAIT after a service stopped is free)."""
    name = "ports"
    if not ports:
        return CheckResult(name, SKIP, "no host port fixed by the spec (the engine's default is used)")
    busy, ok = [], []
    for bind, port in ports:
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((bind, port))
                s.listen(1)
            except OSError as exc:
                busy.append(f"{bind}:{port} ({exc.strerror or exc})")
            else:
                ok.append(f"{bind}:{port}")
    if busy:
        return CheckResult(name, FAIL, "cannot bind " + ", ".join(busy),
                           "stop what listens there (`ss -ltnp`) or set `endpoint.port` to a free port")
    return CheckResult(name, PASS, "free: " + ", ".join(ok))


def hf_token_source(env: dict[str, str]) -> str | None:
    """Where huggingface_hub would find a token: HF_TOKEN, HUGGING_FACE_HUB_TOKEN (older name),
    HF_TOKEN_PATH, or $HF_HOME/token (HF_HOME defaults to ~/.cache/huggingface)."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if env.get(var, "").strip():
            return f"${var}"
    home = Path(env.get("HOME") or Path.home())
    hf_home = env.get("HF_HOME") or str(Path(env.get("XDG_CACHE_HOME") or home / ".cache") / "huggingface")
    for candidate in (env.get("HF_TOKEN_PATH"), str(Path(hf_home) / "token")):
        if candidate and Path(candidate).is_file():
            try:
                if Path(candidate).read_text(encoding="utf-8").strip():
                    return candidate
            except OSError:
                continue
    return None


def check_hf_token(req: Requirements, env: dict[str, str]) -> CheckResult:
    name = "Hugging Face token"
    if req.model_path:
        return CheckResult(name, SKIP, "the model is a local file")
    if req.backend and not _engine_attr(req.backend, "downloads_from_hf"):
        return CheckResult(name, SKIP, f"{req.backend} pulls from its own registry")
    source = hf_token_source(env)
    if req.model_ref is None and not req.gated:
        return CheckResult(name, SKIP, "no model given" + (f"; token found in {source}" if source else ""))
    if not req.gated:
        return CheckResult(name, SKIP if source is None else PASS,
                           "the model is not gated" + (f"; token found in {source}" if source else ""))
    if source:
        return CheckResult(name, PASS, f"{req.model_ref or 'the model'} is gated; token found in {source}")
    return CheckResult(
        name, FAIL, f"{req.model_ref or 'the model'} is gated and no token was found "
        "(HF_TOKEN, HUGGING_FACE_HUB_TOKEN, ~/.cache/huggingface/token)",
        "accept the licence on the model's Hugging Face page, then `export HF_TOKEN=hf_…` "
        "(or `huggingface-cli login`)",
    )
