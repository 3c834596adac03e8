"""Hardware inventory: what this machine has, as the spec's `hardware:` nodes plus display detail.

Sources, each optional and probed without raising:
- NVIDIA GPUs through NVML (`pynvml`, from the `nvidia-ml-py` package): name, memory, driver and CUDA
  version, MIG mode, and the link between every pair of GPUs (NVLink, or the PCIe path as
  `nvidia-smi topo -m` names it). No NVML library (`NVMLError_LibraryNotFound`) means "no NVIDIA GPU".
- AMD GPUs through `amd-smi static --json`, falling back to `rocm-smi ... --json`, when installed.
- Apple Silicon through `sysctl` (Darwin only): chip name and unified memory.
- CPU through /proc/cpuinfo (model, AVX2/AVX-512 flags), os.cpu_count() and /proc/meminfo.

`detect()` returns a `Detected` (nodes, devices, topology, warnings); `detect_nodes()` returns only the
`list[Node]` that the planner uses for `hardware: detect`. Sizes: `memory_gb` on a Node is GiB
(2^30 bytes), the unit `free -g` and GPU spec sheets use for "80 GB".
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any

from llmctl.typed import dump

GIB = 1024**3

# nvidia-smi's names for the PCIe path between two GPUs, keyed by NVML's nvmlGpuTopologyLevel_t
# (values from nvml.h: NVML_TOPOLOGY_INTERNAL=0, SINGLE=10, MULTIPLE=20, HOSTBRIDGE=30, NODE=40, SYSTEM=50;
# names from `nvidia-smi topo -m`'s legend).
PCIE_LEVEL_NAMES = {0: "SELF", 10: "PIX", 20: "PXB", 30: "PHB", 40: "NODE", 50: "SYS"}


@dataclass
class GpuDevice:
    index: int
    vendor: str  # nvidia | amd | apple
    name: str  # as the driver reports it, e.g. "NVIDIA A100-SXM4-80GB"
    memory_bytes: int | None
    uuid: str | None = None
    pci_bus_id: str | None = None
    compute_capability: str | None = None
    mig_enabled: bool | None = None
    nvlinks_active: int | None = None
    catalog_id: str | None = None  # the matching profile in profiles/gpus.yaml, if any

    @property
    def memory_gib(self) -> float | None:
        return None if self.memory_bytes is None else self.memory_bytes / GIB


@dataclass
class GpuLink:
    a: int
    b: int
    kind: str  # NV<n> (n NVLinks, direct or through NVSwitch), or PIX | PXB | PHB | NODE | SYS


@dataclass
class CpuInfo:
    model: str | None
    cores: int | None  # logical CPUs usable by this process
    memory_bytes: int | None
    avx2: bool = False
    avx512: bool = False
    avx_vnni: bool = False
    profile: str = "cpu-ddr4-2ch"  # CPU memory profile in profiles/gpus.yaml
    profile_reason: str = ""


@dataclass
class Detected:
    hostname: str
    system: str  # platform.system(): Linux | Darwin | ...
    cpu: CpuInfo
    gpus: list[GpuDevice] = field(default_factory=list)
    driver_version: str | None = None  # NVIDIA kernel driver, e.g. 550.54.15
    cuda_version: str | None = None  # highest CUDA the driver supports, e.g. 12.4
    amd_driver_version: str | None = None
    apple_chip: str | None = None
    topology: list[GpuLink] = field(default_factory=list)
    interconnect: str | None = None  # nvlink | pcie | None (fewer than two GPUs)
    nodes: list[Any] = field(default_factory=list)  # list[llmctl.spec.Node]
    unknown_gpus: dict[str, float] = field(default_factory=dict)  # detected name -> memory GiB
    warnings: list[str] = field(default_factory=list)
    probes: dict[str, str] = field(default_factory=dict)  # source -> what it answered, for display

    @property
    def nvidia_gpus(self) -> list[GpuDevice]:
        return [g for g in self.gpus if g.vendor == "nvidia"]

    def unknown_gpu_hints(self) -> list[dict[str, Any]]:
        """What is known about each GPU the catalog lacks, in profiles/gpus.yaml's field names, so a
        profile can be synthesized for it (memory from the device; speed must be estimated)."""
        hints = []
        for name, mem_gib in self.unknown_gpus.items():
            devs = [g for g in self.gpus if g.name == name]
            first = devs[0] if devs else None
            hints.append({
                "id": name,
                "name": name,
                "vendor": first.vendor if first else "nvidia",
                "kind": "apple" if first and first.vendor == "apple" else "gpu",
                "compute_capability": first.compute_capability if first else None,
                "memory_gib": mem_gib,
                "count": len(devs),
                "interconnect": self.interconnect,
            })
        return hints

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["nodes"] = [dump(n, exclude_none=True) for n in self.nodes]
        data["unknown_gpu_hints"] = self.unknown_gpu_hints()
        for gpu, raw in zip(self.gpus, data["gpus"]):
            raw["memory_gib"] = None if gpu.memory_gib is None else round(gpu.memory_gib, 2)
        data["cpu"]["memory_gib"] = (
            None if self.cpu.memory_bytes is None else round(self.cpu.memory_bytes / GIB, 2)
        )
        return data

    def summary(self) -> list[str]:
        """Human lines describing what was found (used as comments above the YAML block)."""
        lines = [f"host {self.hostname} ({self.system})"]
        c = self.cpu
        flags = ", ".join(f for f, on in (("AVX2", c.avx2), ("AVX-512", c.avx512)) if on) or "no AVX2"
        mem = f"{c.memory_bytes / GIB:.1f} GiB RAM" if c.memory_bytes else "RAM unknown"
        lines.append(f"CPU: {c.model or 'unknown'}, {c.cores or '?'} cores, {flags}, {mem}")
        lines.append(f"CPU memory profile: {c.profile} ({c.profile_reason})")
        if self.apple_chip:
            lines.append(f"Apple chip: {self.apple_chip}, unified memory {mem}")
        groups: dict[str, list[GpuDevice]] = {}
        for g in self.gpus:
            if g.vendor != "apple":
                groups.setdefault(g.name, []).append(g)
        for name, devs in groups.items():
            mem_g = f"{devs[0].memory_gib:.0f} GiB" if devs[0].memory_gib else "memory unknown"
            prof = f" -> {devs[0].catalog_id}" if devs[0].catalog_id else " (not in the catalog)"
            lines.append(f"{len(devs)}x {name}, {mem_g} each{prof}")
        if self.driver_version:
            lines.append(f"NVIDIA driver {self.driver_version}, CUDA {self.cuda_version or '?'}")
        if self.amd_driver_version:
            lines.append(f"AMD driver {self.amd_driver_version}")
        migs = [str(g.index) for g in self.gpus if g.mig_enabled]
        if migs:
            lines.append(f"MIG enabled on GPU {', '.join(migs)}")
        if self.topology:
            kinds = sorted({link.kind for link in self.topology})
            lines.append(f"GPU interconnect: {self.interconnect} ({', '.join(kinds)} between pairs)")
        if not self.gpus:
            lines.append("no GPU found")
        return lines


# --------------------------------------------------------------------------- entry points


def detect(*, catalog: Any = None) -> Detected:
    """Probe this machine. Never raises for missing hardware or tools; problems become warnings."""
    system = platform.system()
    det = Detected(hostname=_hostname(), system=system, cpu=probe_cpu())
    probe_nvml(det)
    if not det.nvidia_gpus:
        probe_amd(det)
    if system == "Darwin":
        probe_apple(det)
    _map_to_catalog(det, catalog)
    det.nodes = build_nodes(det)
    return det


def detect_nodes() -> list[Any]:
    """The `hardware:` nodes of this machine (one node), for `hardware: detect`."""
    return detect().nodes


# --------------------------------------------------------------------------- NVIDIA (NVML)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)


def probe_nvml(det: Detected) -> None:
    """Fill NVIDIA GPUs, driver, CUDA, MIG and topology from NVML. Every NVML call is wrapped."""
    try:
        import pynvml
    except ImportError:
        det.probes["nvml"] = "pynvml not installed (pip install nvidia-ml-py)"
        return
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        if isinstance(exc, pynvml.NVMLError_LibraryNotFound):
            det.probes["nvml"] = "no NVIDIA driver library (libnvidia-ml.so): no NVIDIA GPU"
        elif isinstance(exc, pynvml.NVMLError_DriverNotLoaded):
            det.probes["nvml"] = "NVIDIA driver not loaded: no usable NVIDIA GPU"
        else:
            det.probes["nvml"] = f"NVML failed to start: {exc}"
            det.warnings.append(f"NVML failed to start ({exc}); NVIDIA GPUs, if any, were not detected")
        return
    try:
        _read_nvml(pynvml, det)
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass


def _nvml_call(nvml: Any, fn: str, *args: Any) -> Any:
    """Call one NVML function; None when it is not supported or fails."""
    try:
        return getattr(nvml, fn)(*args)
    except (nvml.NVMLError, AttributeError):
        return None


def _read_nvml(nvml: Any, det: Detected) -> None:
    driver = _nvml_call(nvml, "nvmlSystemGetDriverVersion")
    det.driver_version = _text(driver) if driver is not None else None
    cuda = _nvml_call(nvml, "nvmlSystemGetCudaDriverVersion")
    if isinstance(cuda, int) and cuda > 0:  # encoded 1000*major + 10*minor, e.g. 12040 -> 12.4
        det.cuda_version = f"{cuda // 1000}.{(cuda % 1000) // 10}"
    count = _nvml_call(nvml, "nvmlDeviceGetCount") or 0
    det.probes["nvml"] = f"{count} NVIDIA GPU(s), driver {det.driver_version or '?'}"
    handles = []
    for i in range(count):
        h = _nvml_call(nvml, "nvmlDeviceGetHandleByIndex", i)
        if h is None:
            det.warnings.append(f"NVIDIA GPU {i} did not answer NVML (lost from the bus?); it is left out")
            continue
        name = _nvml_call(nvml, "nvmlDeviceGetName", h)
        mem = _nvml_call(nvml, "nvmlDeviceGetMemoryInfo", h)
        uuid = _nvml_call(nvml, "nvmlDeviceGetUUID", h)
        pci = _nvml_call(nvml, "nvmlDeviceGetPciInfo", h)
        cc = _nvml_call(nvml, "nvmlDeviceGetCudaComputeCapability", h)
        mig = _nvml_call(nvml, "nvmlDeviceGetMigMode", h)
        dev = GpuDevice(
            index=i,
            vendor="nvidia",
            name=_text(name) if name is not None else f"NVIDIA GPU {i}",
            memory_bytes=int(mem.total) if mem is not None else None,
            uuid=_text(uuid) if uuid is not None else None,
            pci_bus_id=_text(pci.busId) if pci is not None else None,
            compute_capability=f"{cc[0]}.{cc[1]}" if cc else None,
            mig_enabled=bool(mig[0]) if mig else None,  # [current, pending]; 1 = NVML_DEVICE_MIG_ENABLE
        )
        if mig and mig[0] != mig[1]:
            det.warnings.append(f"GPU {i}: a MIG mode change is pending until the GPU is reset")
        if dev.mig_enabled:
            det.warnings.append(
                f"GPU {i} ({dev.name}) has MIG enabled: engines see MIG slices, not the whole GPU; "
                f"disable it (`nvidia-smi -i {i} -mig 0`) or plan for the slice"
            )
        det.gpus.append(dev)
        handles.append((dev, h))
    _nvml_topology(nvml, det, handles)


def _nvlinks(nvml: Any, handle: Any) -> list[tuple[int, str | None]]:
    """Active NVLinks of one GPU as (remote device type, remote PCI bus id)."""
    links = []
    for link in range(getattr(nvml, "NVML_NVLINK_MAX_LINKS", 18)):
        try:
            state = nvml.nvmlDeviceGetNvLinkState(handle, link)
        except nvml.NVMLError:
            break  # NOT_SUPPORTED (no NVLink) or INVALID_ARGUMENT (past this GPU's last link)
        if state != getattr(nvml, "NVML_FEATURE_ENABLED", 1):
            continue
        rtype = _nvml_call(nvml, "nvmlDeviceGetNvLinkRemoteDeviceType", handle, link)
        rpci = _nvml_call(nvml, "nvmlDeviceGetNvLinkRemotePciInfo", handle, link)
        links.append((rtype if rtype is not None else -1, _text(rpci.busId) if rpci is not None else None))
    return links


def _nvml_topology(nvml: Any, det: Detected, handles: list[tuple[GpuDevice, Any]]) -> None:
    switch_type = getattr(nvml, "NVML_NVLINK_DEVICE_TYPE_SWITCH", 2)
    p2p_nvlink = getattr(nvml, "NVML_P2P_CAPS_INDEX_NVLINK", 2)
    p2p_ok = getattr(nvml, "NVML_P2P_STATUS_OK", 0)
    links = {}
    for dev, h in handles:
        links[dev.index] = _nvlinks(nvml, h)
        dev.nvlinks_active = len(links[dev.index])
    for x in range(len(handles)):
        for y in range(x + 1, len(handles)):
            (da, ha), (db, hb) = handles[x], handles[y]
            kind = None
            la = links[da.index]
            via_switch = [t for t, _ in la if t == switch_type]
            direct = [bus for t, bus in la if t != switch_type and bus and db.pci_bus_id and _same_bus(bus, db.pci_bus_id)]
            if direct:
                kind = f"NV{len(direct)}"
            elif via_switch and _nvml_call(nvml, "nvmlDeviceGetP2PStatus", ha, hb, p2p_nvlink) == p2p_ok:
                # through NVSwitch every pair reaches the other over all of its switch links
                kind = f"NV{min(len(via_switch), len([t for t, _ in links[db.index] if t == switch_type]))}"
            if kind is None:
                level = _nvml_call(nvml, "nvmlDeviceGetTopologyCommonAncestor", ha, hb)
                kind = PCIE_LEVEL_NAMES.get(level, "PCIe") if level is not None else "PCIe"
            det.topology.append(GpuLink(a=da.index, b=db.index, kind=kind))
    if det.topology:
        det.interconnect = "nvlink" if all(lk.kind.startswith("NV") for lk in det.topology) else "pcie"
        if det.interconnect == "pcie" and any(lk.kind.startswith("NV") for lk in det.topology):
            det.warnings.append(
                "only some GPU pairs are joined by NVLink; tensor parallel across the others runs over PCIe"
            )


def _same_bus(a: str, b: str) -> bool:
    """PCI bus ids compare without the domain's width or case (00000000:07:00.0 == 0000:07:00.0)."""

    def norm(s: str) -> str:
        parts = s.lower().split(":")
        if len(parts) == 3:
            parts[0] = parts[0].lstrip("0") or "0"
        return ":".join(parts)

    return norm(a) == norm(b)


# --------------------------------------------------------------------------- AMD


def _run(argv: list[str], timeout: float = 15.0) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def probe_amd(det: Detected) -> None:
    """AMD GPUs from `amd-smi static --json` (ROCm 6+), else `rocm-smi` (older ROCm)."""
    text = _run(["amd-smi", "static", "--asic", "--vram", "--driver", "--json"])
    if text is not None:
        gpus, driver = parse_amd_smi_static(text)
        det.probes["amd"] = f"amd-smi: {len(gpus)} AMD GPU(s)"
    else:
        text = _run(["rocm-smi", "--showproductname", "--showmeminfo", "vram", "--showdriverversion", "--json"])
        if text is None:
            return
        gpus, driver = parse_rocm_smi(text)
        det.probes["amd"] = f"rocm-smi: {len(gpus)} AMD GPU(s)"
    det.gpus.extend(gpus)
    det.amd_driver_version = driver


def _json(text: str) -> Any:
    import json

    # both tools may print warnings before the document; start at the first bracket
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    try:
        return json.loads(text[min(starts):]) if starts else None
    except ValueError:
        return None


_UNIT_BYTES = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": GIB, "kib": 1024, "mib": 1024**2, "gib": GIB}


def _size_bytes(value: Any) -> int | None:
    """amd-smi sizes: {"value": 196592, "unit": "MB"} (newer) or "196592 MB" (older). MB here is MiB."""
    if isinstance(value, dict):
        num, unit = value.get("value"), str(value.get("unit", "MB"))
    elif isinstance(value, (int, float)):
        num, unit = value, "MB"
    elif isinstance(value, str):
        m = re.match(r"\s*([\d.]+)\s*([A-Za-z]*)", value)
        if not m:
            return None
        num, unit = m.group(1), m.group(2) or "MB"
    else:
        return None
    try:
        return int(float(num) * _UNIT_BYTES.get(unit.lower(), 1024**2))
    except (TypeError, ValueError):
        return None


def parse_amd_smi_static(text: str) -> tuple[list[GpuDevice], str | None]:
    data = _json(text)
    if isinstance(data, dict):  # some versions wrap the list: {"gpu_data": [...]}
        data = data.get("gpu_data") or list(data.values())
    gpus: list[GpuDevice] = []
    driver = None
    for i, item in enumerate(data or []):
        if not isinstance(item, dict):
            continue
        asic = item.get("asic") or {}
        vram = item.get("vram") or {}
        name = asic.get("market_name") or asic.get("device_id") or f"AMD GPU {i}"
        drv = item.get("driver") or {}
        driver = driver or (drv.get("version") if isinstance(drv, dict) else None)
        gpus.append(
            GpuDevice(
                index=int(item.get("gpu", i)),
                vendor="amd",
                name=str(name),
                memory_bytes=_size_bytes(vram.get("size")),
                pci_bus_id=(item.get("bus") or {}).get("bdf") if isinstance(item.get("bus"), dict) else None,
            )
        )
    return gpus, driver


def parse_rocm_smi(text: str) -> tuple[list[GpuDevice], str | None]:
    data = _json(text)
    gpus: list[GpuDevice] = []
    driver = None
    if not isinstance(data, dict):
        return gpus, driver
    for key, card in data.items():
        if not isinstance(card, dict):
            continue
        fields = {k.lower(): v for k, v in card.items()}
        if key.lower() == "system":
            driver = fields.get("driver version")
            continue
        m = re.search(r"(\d+)$", key)
        total = fields.get("vram total memory (b)")
        name = fields.get("card series") or fields.get("card model") or f"AMD GPU {key}"
        gpus.append(
            GpuDevice(
                index=int(m.group(1)) if m else len(gpus),
                vendor="amd",
                name=str(name),
                memory_bytes=int(total) if total and str(total).isdigit() else None,
            )
        )
    return gpus, driver


# --------------------------------------------------------------------------- Apple Silicon


def probe_apple(det: Detected) -> None:
    brand = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
    memsize = _run(["sysctl", "-n", "hw.memsize"])
    chip, mem = parse_apple_sysctl(brand or "", memsize or "")
    if chip is None:
        return
    det.apple_chip = chip
    if mem:
        det.cpu.memory_bytes = mem
    det.gpus.append(GpuDevice(index=0, vendor="apple", name=chip, memory_bytes=mem))
    det.probes["apple"] = f"{chip}, {mem / GIB:.0f} GiB unified" if mem else chip


def parse_apple_sysctl(brand: str, memsize: str) -> tuple[str | None, int | None]:
    """`machdep.cpu.brand_string` ("Apple M2 Max") and `hw.memsize` (bytes) -> (chip, bytes)."""
    brand = brand.strip()
    chip = brand if brand.startswith("Apple M") else None
    mem = int(memsize.strip()) if memsize.strip().isdigit() else None
    return chip, mem


# --------------------------------------------------------------------------- CPU


def probe_cpu(cpuinfo_path: str = "/proc/cpuinfo", meminfo_path: str = "/proc/meminfo") -> CpuInfo:
    model, flags = parse_cpuinfo(_read(cpuinfo_path))
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count()
    mem = parse_meminfo(_read(meminfo_path))
    if platform.system() == "Darwin":
        brand = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
        model = model or (brand.strip() if brand else None)
    info = CpuInfo(
        model=model,
        cores=cores,
        memory_bytes=mem,
        avx2="avx2" in flags,
        avx512="avx512f" in flags,
        avx_vnni="avx_vnni" in flags or "avx512_vnni" in flags,
    )
    info.profile, info.profile_reason = cpu_profile(info)
    return info


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def parse_cpuinfo(text: str) -> tuple[str | None, set[str]]:
    model = None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "model name" and model is None:
            model = value.strip()
        elif key in ("flags", "features") and not flags:  # x86 "flags", arm64 "Features"
            flags = set(value.split())
    return model, flags


def parse_meminfo(text: str) -> int | None:
    m = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


# Thresholds for guessing the CPU memory profile. DDR generation and channel count are not visible
# from user space in a VM, so this is a documented guess the user can override with `cpu:` in the spec:
# - server (8+ DDR5 channels): 48 or more logical CPUs, or 256 GiB of RAM or more — desktop platforms
#   top out at 24 cores/32 threads (Ryzen 9 9950X, Core i9-14900K) and 192-256 GiB of RAM.
# - DDR5 desktop: AVX-512 or AVX-VNNI present — AVX-VNNI arrived with Alder Lake (2021) and AVX-512 on
#   desktop with Zen 4 (2022), the first Intel/AMD desktop generations on DDR5.
# - otherwise DDR4 dual channel.
SERVER_MIN_CPUS = 48
SERVER_MIN_RAM_GIB = 256


def cpu_profile(info: CpuInfo) -> tuple[str, str]:
    ram_gib = (info.memory_bytes or 0) / GIB
    if (info.cores or 0) >= SERVER_MIN_CPUS or ram_gib >= SERVER_MIN_RAM_GIB:
        return "cpu-server-ddr5-8ch", f"{info.cores} CPUs / {ram_gib:.0f} GiB RAM looks like a server"
    if info.avx512 or info.avx_vnni:
        return "cpu-ddr5-2ch", "AVX-512/AVX-VNNI implies a DDR5-era desktop"
    return "cpu-ddr4-2ch", "no AVX-512/AVX-VNNI and few cores: assumed dual-channel DDR4"


# --------------------------------------------------------------------------- nodes


def _hostname() -> str:
    name = socket.gethostname() or "node-1"
    return name.split(".")[0]


def _map_to_catalog(det: Detected, catalog: Any) -> None:
    """Set each device's catalog_id; unknown GPUs are recorded with their memory and warned about."""
    if catalog is None:
        try:
            from llmctl.catalog import Catalog

            catalog = Catalog.load()
        except Exception as exc:  # catalog missing or broken: inventory still reports what it saw
            if det.gpus:
                det.warnings.append(f"GPU catalog not available ({exc}); GPUs are named as detected")
            return
    for g in det.gpus:
        candidates = [g.name]
        if g.vendor == "apple" and not g.name.startswith("Apple "):
            candidates.append(f"Apple {g.name}")
        elif g.vendor == "apple":
            candidates.append(g.name.removeprefix("Apple "))
        prof = None
        for cand in candidates:
            try:
                prof = catalog.find_gpu(cand)
            except Exception:
                prof = None
            if prof is not None:
                break
        if prof is not None:
            g.catalog_id = prof.id
            ref = prof.memory_gib
            if g.vendor != "apple" and g.memory_gib and ref and abs(ref - g.memory_gib) > 0.15 * ref:
                det.warnings.append(
                    f"{g.name} reports {g.memory_gib:.1f} GiB but catalog profile {prof.id} has "
                    f"{prof.memory_gib:.1f} GiB; the plan uses the profile"
                )
        elif g.name not in det.unknown_gpus:
            det.unknown_gpus[g.name] = round(g.memory_gib or 0.0, 2)
            det.warnings.append(
                f"GPU {g.name!r} is not in the catalog; it is planned from its detected memory "
                f"({g.memory_gib or 0:.1f} GiB) with guessed speed — add it to profiles/gpus.yaml for a "
                f"better plan"
            )


def build_nodes(det: Detected) -> list[Any]:
    from llmctl.spec import Node

    mem_gb = round(det.cpu.memory_bytes / GIB, 1) if det.cpu.memory_bytes else None
    base = {"name": det.hostname, "cpu_cores": det.cpu.cores, "memory_gb": mem_gb}
    groups: dict[str, list[GpuDevice]] = {}
    for g in det.gpus:
        groups.setdefault(g.catalog_id or g.name, []).append(g)
    if not groups:
        return [Node(**base, cpu=det.cpu.profile)]
    # one node per machine: several GPU types in one box are planned on the type with most memory
    best = max(groups, key=lambda k: (sum(d.memory_bytes or 0 for d in groups[k]), len(groups[k])))
    if len(groups) > 1:
        others = ", ".join(f"{len(v)}x {k}" for k, v in groups.items() if k != best)
        det.warnings.append(f"this machine mixes GPU types; planning on {len(groups[best])}x {best}, ignoring {others}")
    return [Node(**base, gpu=best, gpus=len(groups[best]))]


def hardware_yaml(det: Detected) -> str:
    """The `hardware:` block of a spec, with what was detected as comments above it."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    buf = io.StringIO()
    yaml.dump({"hardware": [dump(n, exclude_none=True) for n in det.nodes]}, buf)
    head = [f"# {line}" for line in det.summary()]
    head += [f"# warning: {w}" for w in det.warnings]
    return "\n".join(head) + "\n" + buf.getvalue()
