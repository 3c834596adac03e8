"""Hardware pools: the inventory's nodes grouped into identical devices a replica can be placed on,
with the memory one device offers the model (GPU memory, the GPU's share of Apple unified memory,
or RAM for CPU inference)."""

from __future__ import annotations

from dataclasses import dataclass

from llmctl.catalog import Catalog, GpuProfile
from llmctl.errors import InputError
from llmctl.spec import Node


@dataclass
class Pool:
    """Identical devices a replica can be placed on."""

    device: GpuProfile
    per_node: int  # devices per node (1 for a CPU-only node)
    nodes: int
    capacity_gib: float  # usable memory of one device
    system_ram_gib: float | None
    cpu: GpuProfile  # the node's CPU memory profile (for llama.cpp layers offloaded to RAM)
    names: list[str]

    @property
    def devices(self) -> int:
        return self.per_node * self.nodes


def build_pools(nodes: list[Node], catalog: Catalog) -> list[Pool]:
    pools: dict[tuple[str, int], Pool] = {}
    for i, node in enumerate(nodes):
        where = f"hardware[{i}]"
        cpu = catalog.gpu(node.cpu, where=f"{where}.cpu") if node.cpu else catalog.gpu("cpu-ddr5-2ch")
        ram = node.memory_gb
        if node.gpu and node.gpu_count > 0:
            dev = catalog.gpu(node.gpu, where=f"{where}.gpu")
            if dev.kind == "cpu":
                per, capacity = 1, _cpu_capacity(ram, where)
            elif dev.kind == "apple":
                mem = ram or dev.memory_gb
                if not mem:
                    raise InputError("give the Mac's unified memory as memory_gb", where=f"{where}.memory_gb")
                frac = catalog.apple_gpu_memory_fraction["le_36gb" if mem <= 36 else "gt_36gb"]
                per, capacity = 1, mem * frac
            else:
                per, capacity = node.gpu_count, float(dev.memory_gib or dev.memory_gb or 0)
        else:
            dev = cpu
            per, capacity = 1, _cpu_capacity(ram, where)
        # nodes are one pool only when a replica would find the same on each: the device and its count,
        # the memory one device offers (Apple and CPU: from the node's RAM), and the RAM and CPU that
        # llama.cpp offloads layers to
        key = (dev.id, per, capacity, ram, cpu.id)
        if key in pools:
            pools[key].nodes += node.count
            pools[key].names.append(node.name)
        else:
            pools[key] = Pool(dev, per, node.count, capacity, ram, cpu, [node.name])
    return list(pools.values())


def _cpu_capacity(ram: float | None, where: str) -> float:
    if not ram:
        raise InputError("a CPU-only node needs memory_gb (system RAM) so llmctl knows what fits",
                         where=f"{where}.memory_gb")
    from llmctl.estimate.memory import constants

    return ram * constants()["llama_cpp"]["cpu_memory_fraction"]
