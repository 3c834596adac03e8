"""Sizes a deployment needs from the hardware and the model: the checkpoint really downloaded, and
how many GPUs the listed hardware leaves for updates and placement."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmctl.plan import Plan
    from llmctl.spec import Spec

GiB = 2**30


def checkpoint_gib(hf_id: str) -> float | None:
    """GiB of the published safetensors of a catalog model (profiles/models.yaml `checkpoint_bytes`),
    matched by its Hugging Face id or an alias of it; None for a repository the catalog does not know
    (a pre-quantized repository, for one, is smaller than its base model's checkpoint)."""
    try:
        from llmctl.catalog import Catalog

        models = Catalog.load().models
    except Exception:  # noqa: BLE001 — no catalog: the caller falls back to the weights
        return None
    key = hf_id.lower()
    for m in models:
        ids = [m.hf_id, *m.hf_aliases]
        if m.checkpoint_bytes and any(i and i.lower() == key for i in ids):
            return m.checkpoint_bytes / GiB
    return None


def gpu_inventory(plan: "Plan", spec: "Spec") -> tuple[int | None, int | None]:
    """(GPUs of the plan's type on one host, GPUs of that type beyond what the plan uses); (None, None)
    when the spec does not list its hardware (`hardware: detect`) or lists no such GPU."""
    if plan.gpu.kind != "gpu" or not isinstance(spec.hardware, list):
        return None, None
    try:
        from llmctl.catalog import Catalog

        catalog = Catalog.load()
        want = catalog.find_gpu(plan.gpu.type)
    except Exception:  # noqa: BLE001
        return None, None
    if want is None:
        return None, None
    per_host: int | None = None
    total = 0
    for node in spec.hardware:
        if not node.gpu or node.gpu_count <= 0:
            continue
        found = catalog.find_gpu(node.gpu)
        if found is None or found.id != want.id:
            continue
        per_host = max(per_host or 0, node.gpu_count)
        total += node.gpu_count * node.count
    if per_host is None:
        return None, None
    used = plan.replicas * plan.gpu.count_per_replica
    return per_host, max(0, total - used)
