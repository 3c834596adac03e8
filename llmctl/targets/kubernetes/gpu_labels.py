"""The node label a Kubernetes GPU node carries for its GPU model.

NVIDIA GPU feature discovery (now part of github.com/NVIDIA/k8s-device-plugin, README "Generated
Labels") sets `nvidia.com/gpu.product` to the product name NVML reports (what `nvidia-smi
--query-gpu=name` prints, e.g. "NVIDIA H100 80GB HBM3", "Tesla T4") with every space replaced by
'-': "NVIDIA-H100-80GB-HBM3", "Tesla-T4". A nodeSelector built from any other spelling of the name
matches no node.

The NVML name comes from the catalog entry's `nvml_name` when the profile has one; otherwise from the
first alias in profiles/gpus.yaml spelled the way NVML spells names (starting "NVIDIA " or "Tesla ").
"""

from __future__ import annotations

from typing import Any

NVML_PREFIXES = ("NVIDIA ", "Tesla ")


def nvml_name(gpu: Any) -> str | None:
    """The NVML product name of a catalog GPU profile, or None when the catalog does not know it."""
    if gpu is None or getattr(gpu, "vendor", None) != "nvidia":
        return None
    raw = getattr(gpu, "raw", None) or {}
    explicit = getattr(gpu, "nvml_name", None) or raw.get("nvml_name")
    if explicit:
        return str(explicit)
    for alias in getattr(gpu, "aliases", ()):
        if alias.startswith(NVML_PREFIXES):
            return alias
    return None


def gfd_product_label(name: str) -> str:
    """`nvidia.com/gpu.product` for an NVML product name."""
    return name.strip().replace(" ", "-")


def gpu_product_label(gpu_type: str | None) -> str | None:
    """The nodeSelector value for a catalog GPU id or alias; None when unknown or not NVIDIA."""
    if not gpu_type:
        return None
    try:
        from llmctl.catalog import Catalog

        gpu = Catalog.load().find_gpu(gpu_type)
    except Exception:  # noqa: BLE001 — a broken catalog must not stop rendering: no selector then
        return None
    name = nvml_name(gpu)
    return gfd_product_label(name) if name else None
