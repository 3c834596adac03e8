"""Hardware inventory: this machine for real (no GPU), and NVML answers replayed from a recording.

The NVML-present path cannot run here (no GPU, no driver): those tests substitute pynvml's functions
with answers recorded in tests/doctor/data/nvml_8x_a100_sxm4_80gb.json (see nvml_replay.py). Everything
else — the CPU, RAM, the missing NVIDIA library, the CLI — is this machine's real state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pynvml
import pytest

from llmctl import inventory as inv
from llmctl.spec import load_spec_text

from .nvml_replay import NvmlReplay, load


def _nvml_absent() -> bool:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound:
        return True
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return False


needs_no_gpu = pytest.mark.skipif(not _nvml_absent(), reason="this machine has an NVIDIA driver")


# --------------------------------------------------------------------------- this machine, for real


@needs_no_gpu
def test_missing_nvidia_library_means_no_gpu_not_an_error(catalog):
    det = inv.detect(catalog=catalog)
    assert det.nvidia_gpus == []
    assert "no NVIDIA GPU" in det.probes["nvml"]
    assert not any("NVML" in w for w in det.warnings)
    [node] = det.nodes
    assert node.gpu is None and node.gpu_count == 0
    assert node.cpu in ("cpu-ddr4-2ch", "cpu-ddr5-2ch", "cpu-server-ddr5-8ch")
    assert catalog.find_gpu(node.cpu) is not None


def test_cpu_and_ram_are_this_machines():
    det = inv.detect()
    assert det.cpu.cores == len(os.sched_getaffinity(0))
    with open("/proc/meminfo") as fh:
        kb = int(fh.readline().split()[1])
    assert det.cpu.memory_bytes == kb * 1024
    with open("/proc/cpuinfo") as fh:
        text = fh.read()
    assert det.cpu.avx2 == (" avx2" in text)
    assert det.cpu.avx512 == (" avx512f" in text)
    [node] = det.nodes
    assert node.cpu_cores == det.cpu.cores
    assert node.memory_gb == pytest.approx(kb * 1024 / 2**30, abs=0.06)


def test_hardware_block_pastes_into_a_spec(catalog):
    det = inv.detect(catalog=catalog)
    text = "name: pasted\nmodel: llama3.1:8b\n" + inv.hardware_yaml(det)
    spec = load_spec_text(text, "pasted.yaml")
    assert spec.hardware == det.nodes


def test_detect_nodes_is_a_node_list():
    from llmctl.spec import Node

    nodes = inv.detect_nodes()
    assert len(nodes) == 1 and isinstance(nodes[0], Node)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmctl", *args], capture_output=True, text=True, timeout=60)


def test_inventory_cli_json():
    out = _cli("inventory", "--output", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["nodes"][0]["cpu_cores"] == len(os.sched_getaffinity(0))
    assert data["cpu"]["memory_gib"] > 0
    assert isinstance(data["gpus"], list)


def test_inventory_cli_yaml_is_a_hardware_block():
    out = _cli("inventory")
    assert out.returncode == 0, out.stderr
    assert "\nhardware:\n" in "\n" + out.stdout
    spec = load_spec_text("name: x\nmodel: llama3.1:8b\n" + out.stdout, "inv.yaml")
    assert spec.hardware[0].cpu_cores == len(os.sched_getaffinity(0))


def test_inventory_cli_rejects_unknown_output():
    out = _cli("inventory", "--output", "xml")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "xml" in out.stderr


# --------------------------------------------------------------------------- NVML replayed


@pytest.fixture
def a100(monkeypatch):
    """8x A100-SXM4-80GB NVML answers (recorded file), replayed through the real pynvml module."""
    return lambda rec=None: NvmlReplay(rec or load()).install(monkeypatch)


def test_replayed_8x_a100_sxm4(a100, catalog):
    replay = a100()
    det = inv.detect(catalog=catalog)
    assert replay.unrecorded == []
    assert replay.calls[0] == "nvmlInit" and replay.calls[-1] == "nvmlShutdown"
    assert len(det.nvidia_gpus) == 8
    g0 = det.gpus[0]
    assert g0.name == "NVIDIA A100-SXM4-80GB"
    assert g0.memory_gib == pytest.approx(80.0)
    assert g0.compute_capability == "8.0"
    assert g0.mig_enabled is False
    assert g0.pci_bus_id == "00000000:07:00.0"
    assert g0.nvlinks_active == 12
    assert {g.catalog_id for g in det.gpus} == {"A100-80GB-SXM"}
    assert det.driver_version == "550.54.15"
    assert det.cuda_version == "12.4"
    assert len(det.topology) == 28  # every pair of 8
    assert {link.kind for link in det.topology} == {"NV12"}
    assert det.interconnect == "nvlink"
    assert det.warnings == []
    [node] = det.nodes
    assert (node.gpu, node.gpus) == ("A100-80GB-SXM", 8)
    assert node.cpu is None


def test_replayed_pcie_only_box_reports_pcie_paths(a100, catalog):
    rec = load()
    for dev in rec["devices"]:
        dev["nvmlDeviceGetNvLinkState"] = ["NVML_ERROR_NOT_SUPPORTED"]
        del dev["nvmlDeviceGetNvLinkRemoteDeviceType"], dev["nvmlDeviceGetNvLinkRemotePciInfo"]
    replay = a100(rec)
    det = inv.detect(catalog=catalog)
    kinds = {(link.a, link.b): link.kind for link in det.topology}
    assert kinds[(0, 1)] == "PXB" and kinds[(0, 7)] == "SYS"
    assert det.interconnect == "pcie"
    assert all(g.nvlinks_active == 0 for g in det.gpus)
    assert replay.unrecorded == []


def test_replayed_direct_nvlink_pair(a100, catalog):
    """Two GPUs bridged directly (no NVSwitch): the link count comes from the remote bus ids."""
    rec = load()
    rec["system"]["nvmlDeviceGetCount"] = 2
    rec["devices"] = rec["devices"][:2]
    for me, other in ((0, 1), (1, 0)):
        dev = rec["devices"][me]
        peer = rec["devices"][other]["nvmlDeviceGetPciInfo"]["busId"].replace("00000000:", "0000:")
        dev["nvmlDeviceGetNvLinkState"] = [1] * 4 + ["NVML_ERROR_INVALID_ARGUMENT"]
        dev["nvmlDeviceGetNvLinkRemoteDeviceType"] = [0] * 4
        dev["nvmlDeviceGetNvLinkRemotePciInfo"] = [{"busId": peer}] * 4
    a100(rec)
    det = inv.detect(catalog=catalog)
    assert [link.kind for link in det.topology] == ["NV4"]


def test_replayed_mig_enabled_warns(a100, catalog):
    rec = load()
    rec["devices"][3]["nvmlDeviceGetMigMode"] = [1, 1]
    a100(rec)
    det = inv.detect(catalog=catalog)
    assert det.gpus[3].mig_enabled is True
    assert any("GPU 3" in w and "MIG" in w for w in det.warnings)


def test_replayed_unknown_gpu_is_planned_from_its_memory(a100, catalog):
    rec = load()
    rec["system"]["nvmlDeviceGetCount"] = 2
    rec["devices"] = rec["devices"][:2]
    for dev in rec["devices"]:
        dev["nvmlDeviceGetName"] = "NVIDIA RTX Hypothetical 9000"
        dev["nvmlDeviceGetMemoryInfo"] = {"total": 48 * 2**30, "free": 47 * 2**30, "used": 2**30}
    a100(rec)
    det = inv.detect(catalog=catalog)
    [node] = det.nodes
    assert (node.gpu, node.gpus) == ("NVIDIA RTX Hypothetical 9000", 2)
    assert det.unknown_gpus == {"NVIDIA RTX Hypothetical 9000": 48.0}
    assert any("not in the catalog" in w and "48.0 GiB" in w for w in det.warnings)
    [hint] = det.unknown_gpu_hints()
    assert hint == {"id": "NVIDIA RTX Hypothetical 9000", "name": "NVIDIA RTX Hypothetical 9000", "vendor": "nvidia",
                    "kind": "gpu", "compute_capability": "8.0", "memory_gib": 48.0, "count": 2,
                    "interconnect": "nvlink"}


def test_replayed_lost_gpu_is_left_out(a100, catalog):
    rec = load()
    rec["devices"][5]["lost"] = True
    a100(rec)
    det = inv.detect(catalog=catalog)
    assert len(det.gpus) == 7 and det.nodes[0].gpus == 7
    assert any("GPU 5" in w for w in det.warnings)


@pytest.mark.parametrize(
    "failure, warned",
    [("NVML_ERROR_LIBRARY_NOT_FOUND", False), ("NVML_ERROR_DRIVER_NOT_LOADED", False), ("NVML_ERROR_NO_PERMISSION", True)],
)
def test_nvml_start_failures(a100, catalog, failure, warned):
    rec = load()
    rec["nvmlInit"] = failure
    replay = a100(rec)
    det = inv.detect(catalog=catalog)
    assert det.gpus == [] and det.nodes[0].gpu is None
    assert any("NVML" in w for w in det.warnings) is warned
    assert "nvmlDeviceGetCount" not in replay.calls


def test_replayed_inventory_json_round_trips(a100, catalog):
    a100()
    det = inv.detect(catalog=catalog)
    data = json.loads(json.dumps(det.to_dict()))
    assert data["unknown_gpu_hints"] == []
    assert data["nodes"] == [{"name": det.hostname, "gpu": "A100-80GB-SXM", "gpus": 8, "count": 1,
                              "cpu_cores": det.cpu.cores, "memory_gb": det.nodes[0].memory_gb}]
    assert data["gpus"][7]["memory_gib"] == 80.0
    text = inv.hardware_yaml(det)
    assert "8x NVIDIA A100-SXM4-80GB, 80 GiB each -> A100-80GB-SXM" in text
    assert "NVIDIA driver 550.54.15, CUDA 12.4" in text
    assert "nvlink (NV12 between pairs)" in text


# --------------------------------------------------------------------------- parsers, recorded strings


def test_apple_sysctl_parser_and_node(catalog):
    chip, mem = inv.parse_apple_sysctl("Apple M2 Max\n", "68719476736\n")
    assert (chip, mem) == ("Apple M2 Max", 64 * 2**30)
    assert inv.parse_apple_sysctl("Intel(R) Core(TM) i9-9980HK CPU @ 2.40GHz\n", "34359738368\n")[0] is None
    det = inv.Detected(hostname="mac", system="Darwin",
                       cpu=inv.CpuInfo(model=chip, cores=12, memory_bytes=mem), apple_chip=chip)
    det.gpus.append(inv.GpuDevice(index=0, vendor="apple", name=chip, memory_bytes=mem))
    inv._map_to_catalog(det, catalog)
    [node] = inv.build_nodes(det)
    assert (node.gpu, node.gpus, node.memory_gb) == ("Apple-M2-Max", 1, 64.0)


SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu vme de pse tsc msr avx avx2 fma avx512f avx512dq avx512_vnni amx_tile
"""


def test_cpu_parsers_and_profile_heuristic():
    model, flags = inv.parse_cpuinfo(SAPPHIRE_RAPIDS)
    assert model == "Intel(R) Xeon(R) Platinum 8480+" and {"avx2", "avx512f"} <= flags
    assert inv.parse_meminfo("MemTotal:       24683656 kB\nMemFree: 1 kB\n") == 24683656 * 1024
    server = inv.CpuInfo(model=model, cores=112, memory_bytes=512 * 2**30, avx2=True, avx512=True)
    assert inv.cpu_profile(server)[0] == "cpu-server-ddr5-8ch"
    desktop5 = inv.CpuInfo(model="AMD Ryzen 9 7950X", cores=32, memory_bytes=64 * 2**30, avx2=True, avx512=True)
    assert inv.cpu_profile(desktop5)[0] == "cpu-ddr5-2ch"
    alder = inv.CpuInfo(model="12th Gen Intel(R) Core(TM) i7-12700K", cores=20, memory_bytes=32 * 2**30,
                        avx2=True, avx_vnni=True)
    assert inv.cpu_profile(alder)[0] == "cpu-ddr5-2ch"
    old = inv.CpuInfo(model="AMD Ryzen 7 5800X", cores=16, memory_bytes=32 * 2**30, avx2=True)
    assert inv.cpu_profile(old)[0] == "cpu-ddr4-2ch"


# amd-smi 24.x `static --asic --vram --driver --json`, trimmed to the fields read (format per the amd-smi
# CLI documentation; values as on an MI300X OAM with ROCm 6.2)
AMD_SMI = """[
 {"gpu": 0, "asic": {"market_name": "AMD Instinct MI300X", "vendor_id": "0x1002", "device_id": "0x74a1"},
  "bus": {"bdf": "0000:0c:00.0"}, "vram": {"type": "HBM", "vendor": "N/A", "size": {"value": 196592, "unit": "MB"}},
  "driver": {"name": "amdgpu", "version": "6.8.5"}},
 {"gpu": 1, "asic": {"market_name": "AMD Instinct MI300X", "vendor_id": "0x1002", "device_id": "0x74a1"},
  "bus": {"bdf": "0000:22:00.0"}, "vram": {"type": "HBM", "vendor": "N/A", "size": {"value": 196592, "unit": "MB"}},
  "driver": {"name": "amdgpu", "version": "6.8.5"}}
]"""

ROCM_SMI = """WARNING: AMD GPU device(s) is/are in a low-power state. Check power control/runtime_status
{"card0": {"Card Series": "AMD Instinct MI300X OAM", "Card Model": "0x74a1", "Card Vendor": "Advanced Micro Devices, Inc. [AMD/ATI]",
  "VRAM Total Memory (B)": "206141652992", "VRAM Total Used Memory (B)": "297136128"},
 "system": {"Driver version": "6.7.0"}}"""


def test_amd_parsers(catalog):
    gpus, driver = inv.parse_amd_smi_static(AMD_SMI)
    assert [g.name for g in gpus] == ["AMD Instinct MI300X"] * 2
    assert gpus[1].memory_gib == pytest.approx(191.98, abs=0.01) and gpus[1].pci_bus_id == "0000:22:00.0"
    assert driver == "6.8.5"
    gpus2, driver2 = inv.parse_rocm_smi(ROCM_SMI)
    assert gpus2[0].name == "AMD Instinct MI300X OAM" and gpus2[0].memory_bytes == 206141652992
    assert driver2 == "6.7.0"
    det = inv.Detected(hostname="mi", system="Linux", cpu=inv.CpuInfo(model=None, cores=192, memory_bytes=None))
    det.gpus = gpus
    inv._map_to_catalog(det, catalog)
    assert [n.gpu for n in inv.build_nodes(det)] == ["MI300X-192GB"]
    assert inv.parse_amd_smi_static("not json") == ([], None)
