"""Would a real cluster schedule the rendered pods? The kube-scheduler's filters (node selector,
taints, cordon, resource fit) applied to rendered Deployments against `kubectl get nodes -o json`
recorded from a GPU cluster with GPU feature discovery labels (tests/doctor/data; no API server here:
the recorded answer keeps the real shape)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from render_plans import make_plan, make_spec
from ruamel.yaml import YAML

from llmctl.render import build_service, render_service
from llmctl.targets.kubernetes.fit import fitting_nodes, quantity, replica_slots

load = YAML(typ="safe", pure=True).load
NODES = json.loads((Path(__file__).parents[1] / "doctor" / "data" / "kubectl_get_nodes.json").read_text())


def _pod(**plan_kw) -> dict:
    files = render_service(build_service(make_plan(**plan_kw), make_spec()), "kubernetes").files
    return load(files["deployment.yaml"])["spec"]["template"]["spec"]


def _fits(pod: dict) -> list[str]:
    return sorted(n for n, why in fitting_nodes(pod, NODES).items() if why is None)


def test_l4_plan_lands_on_the_l4_nodes():
    pod = _pod(gpu_type="L4-24GB-PCIe")
    assert _fits(pod) == ["gpu-l4-0"]  # gpu-l4-1 is not Ready
    assert fitting_nodes(pod, NODES)["gpu-l4-1"] == "not Ready"
    assert replica_slots(pod, NODES) == 1


def test_a100_tp4_lands_on_the_schedulable_a100_node_twice():
    pod = _pod(gpu_type="A100-80GB-SXM", tp=4)
    assert _fits(pod) == ["gpu-a100-0"]  # gpu-a100-1 is cordoned
    why = fitting_nodes(pod, NODES)
    assert "cordoned" in why["gpu-a100-1"] and "nodeSelector" in why["gpu-l4-0"]
    assert replica_slots(pod, NODES) == 2  # 8 GPUs / 4


@pytest.mark.parametrize(("plan_kw", "reason"), [
    (dict(gpu_type="H100-80GB-SXM"), "nodeSelector nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3"),
    (dict(gpu_type="A100-80GB-SXM", tp=16), "requests nvidia.com/gpu 16"),
])
def test_what_the_cluster_cannot_run_is_named(plan_kw, reason):
    pod = _pod(**plan_kw)
    assert _fits(pod) == []
    assert any(why and why.startswith(reason) for why in fitting_nodes(pod, NODES).values())


def test_quantities():
    assert quantity("15890m") == pytest.approx(15.89) and quantity("64Gi") == 64 * 2**30 and quantity("8") == 8
