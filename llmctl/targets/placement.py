"""Which GPUs each replica on one host gets: disjoint sets, never the same devices twice.

Docker's `--gpus N` and compose's `count: N` both hand out devices 0..N-1, so several replicas on one
host would all share the first GPUs. Each replica therefore names its devices: compose `device_ids`,
`docker run --gpus "device=…"`, or for a host process the vendor's visibility variable
(CUDA_VISIBLE_DEVICES for NVIDIA, HIP_VISIBLE_DEVICES for AMD ROCm).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmctl.errors import InputError

if TYPE_CHECKING:
    from llmctl.service import ServiceSpec

VISIBLE_DEVICES = {"nvidia": "CUDA_VISIBLE_DEVICES", "amd": "HIP_VISIBLE_DEVICES"}


def gpus_per_replica(s: "ServiceSpec") -> int:
    return len(s.gpu.device_ids) or s.gpu.count


def replica_devices(s: "ServiceSpec", replicas: int | None = None) -> list[list[str]]:
    """Device ids for each of `replicas` replicas on one host (empty lists without GPUs).

    Replica i gets devices i·k … i·k+k-1 (k GPUs per replica). Explicit `gpu.device_ids` hold for a
    single replica only: several replicas cannot share them.
    """
    n = s.replicas if replicas is None else replicas
    k = gpus_per_replica(s)
    if k == 0:
        return [[] for _ in range(n)]
    if s.gpu.device_ids:
        if n > 1:
            raise InputError(f"gpu.device_ids: {n} replicas on one host cannot all use devices "
                             f"{','.join(s.gpu.device_ids)}", hint="leave device_ids out: each replica gets its own GPUs")
        return [list(s.gpu.device_ids)]
    if s.gpus_per_host is not None and n * k > s.gpus_per_host:
        raise InputError(f"replicas: {n} replicas × {k} GPUs need {n * k} GPUs on one host, which has {s.gpus_per_host}",
                         hint="lower the replicas, or deploy to several hosts (systemd) or a cluster (kubernetes)")
    return [[str(i * k + j) for j in range(k)] for i in range(n)]


def visible_devices_env(vendor: str, ids: list[str]) -> dict[str, str]:
    """The environment that limits a host process to `ids` (nothing for no GPU or an unknown vendor)."""
    key = VISIBLE_DEVICES.get(vendor)
    return {key: ",".join(ids)} if key and ids else {}
