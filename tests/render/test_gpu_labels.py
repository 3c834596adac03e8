"""Kubernetes GPU node selection: the nodeSelector must equal the label GPU feature discovery sets.

GFD labels `nvidia.com/gpu.product` with the NVML product name, spaces replaced by '-'
(github.com/NVIDIA/k8s-device-plugin, README "Generated Labels"). The expected values below are those
labels as real nodes carry them (the NVML names `nvidia-smi --query-gpu=name` prints on each card).
"""

from __future__ import annotations

import pytest
from render_plans import make_plan, make_spec
from ruamel.yaml import YAML

from llmctl.catalog import Catalog
from llmctl.render import build_service, render_service
from llmctl.targets.kubernetes.gpu_labels import gpu_product_label

load = YAML(typ="safe", pure=True).load

GFD_LABELS = {
    "T4-16GB-PCIe": "Tesla-T4",
    "L4-24GB-PCIe": "NVIDIA-L4",
    "A10G-24GB-PCIe": "NVIDIA-A10G",
    "L40S-48GB-PCIe": "NVIDIA-L40S",
    "L40-48GB-PCIe": "NVIDIA-L40",
    "A100-40GB-PCIe": "NVIDIA-A100-PCIE-40GB",
    "A100-40GB-SXM": "NVIDIA-A100-SXM4-40GB",
    "A100-80GB-PCIe": "NVIDIA-A100-80GB-PCIe",
    "A100-80GB-SXM": "NVIDIA-A100-SXM4-80GB",
    "H100-80GB-PCIe": "NVIDIA-H100-PCIe",
    "H100-80GB-SXM": "NVIDIA-H100-80GB-HBM3",
    "H200-141GB-SXM": "NVIDIA-H200",
    "B200-180GB-SXM": "NVIDIA-B200",
    "RTX3090-24GB": "NVIDIA-GeForce-RTX-3090",
    "RTX4090-24GB": "NVIDIA-GeForce-RTX-4090",
    "RTX5090-32GB": "NVIDIA-GeForce-RTX-5090",
    "RTX4060-8GB": "NVIDIA-GeForce-RTX-4060",
}


def _nvidia_ids() -> list[str]:
    return [g.id for g in Catalog.load().gpus if g.vendor == "nvidia" and g.kind == "gpu"]


def test_every_catalog_nvidia_gpu_has_a_known_label():
    """The labels above are the ones seen on real nodes; every other NVIDIA card of the catalog gets its
    profile's NVML name with spaces as dashes (the rule GFD applies), so none is left without one."""
    ids = _nvidia_ids()
    assert set(GFD_LABELS) <= set(ids)
    for gpu_id in ids:
        label = gpu_product_label(gpu_id)
        assert label and " " not in label and label.startswith(("NVIDIA-", "Tesla-", "Quadro-")), gpu_id


@pytest.mark.parametrize("gpu_id", sorted(GFD_LABELS))
def test_rendered_node_selector_is_the_gfd_label(gpu_id):
    assert gpu_product_label(gpu_id) == GFD_LABELS[gpu_id]
    plan = make_plan(gpu_type=gpu_id)
    files = render_service(build_service(plan, make_spec()), "kubernetes").files
    pod = load(files["deployment.yaml"])["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": GFD_LABELS[gpu_id]}


def test_no_selector_without_an_nvidia_gpu():
    assert gpu_product_label("MI300X-192GB") is None and gpu_product_label("cpu-ddr5-2ch") is None
    assert gpu_product_label("no-such-gpu") is None
    plan = make_plan(gpu_kind="cpu", gpu_type="cpu-ddr5-2ch")
    pod = load(render_service(build_service(plan, make_spec()), "kubernetes").files["deployment.yaml"])
    assert "nodeSelector" not in pod["spec"]["template"]["spec"]
