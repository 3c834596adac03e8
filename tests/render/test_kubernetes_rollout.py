"""Kubernetes updates and sizing: rolling updates bounded by spare GPUs, autoscaling never below the
plan, and the model volume sized from the checkpoint the engine really downloads."""

from __future__ import annotations

import pytest
from render_plans import make_plan, make_spec
from ruamel.yaml import YAML

from llmctl.render import build_service, render_service

load = YAML(typ="safe", pure=True).load


def _files(plan_kw: dict, spec_kw: dict) -> dict[str, str]:
    return render_service(build_service(make_plan(**plan_kw), make_spec(**spec_kw)), "kubernetes").files


def _strategy(files: dict[str, str]) -> dict:
    return load(files["deployment.yaml"])["spec"]["strategy"]


@pytest.mark.parametrize(
    ("replicas", "hardware", "surge", "unavailable"),
    [
        (4, [{"gpu": "A100-80GB", "gpus": 8, "count": 1}], 4, 0),  # 4 spare GPUs: all four new pods beside the old
        (4, [{"gpu": "A100-80GB", "gpus": 5, "count": 1}], 1, 0),  # 1 spare GPU: one new pod at a time
        (4, [{"gpu": "A100-80GB", "gpus": 4, "count": 1}], 0, 1),  # none spare: replica by replica
        (4, "detect", 0, 1),  # hardware not listed: replica by replica
        (1, "detect", 1, 0),  # one replica, cluster unknown: the new pod waits for a GPU, the old one serves
    ],
)
def test_rolling_update_never_asks_for_gpus_that_are_not_there(replicas, hardware, surge, unavailable):
    files = _files(dict(replicas=replicas), dict(hardware=hardware))
    st = _strategy(files)
    assert st["type"] == "RollingUpdate"
    assert st["rollingUpdate"] == {"maxSurge": surge, "maxUnavailable": unavailable}
    dep = load(files["deployment.yaml"])["spec"]
    assert dep["progressDeadlineSeconds"] > 600


def test_one_replica_without_spare_gpu_says_it_means_downtime():
    from llmctl.targets import RenderOptions

    service = build_service(make_plan(replicas=1), make_spec(hardware=[{"gpu": "A100-80GB", "gpus": 1}]))
    options = RenderOptions()
    files = render_service(service, "kubernetes", options).files
    assert _strategy(files)["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    assert any("downtime" in n for n in options.notes)


def test_autoscaler_never_below_the_plan_and_can_grow():
    files = _files(dict(replicas=4), dict(hardware=[{"gpu": "A100-80GB", "gpus": 8, "count": 1}]))
    so = load(files["scaledobject.yaml"])["spec"]
    assert so["minReplicaCount"] == 4 and so["maxReplicaCount"] == 8
    files = _files(dict(replicas=4), {})
    so = load(files["scaledobject.yaml"])["spec"]
    assert so["minReplicaCount"] >= 4 and so["maxReplicaCount"] > 4
    dev = _files(dict(replicas=2, environment="development"), dict(environment="development"))
    so = load(dev["scaledobject.yaml"])["spec"]
    assert so["minReplicaCount"] >= 2 and so["maxReplicaCount"] > 2


def test_leaderworkerset_rolls_replica_by_replica():
    files = _files(dict(tp=8, pp=2, nodes=2, gpu_type="H100-80GB-SXM", replicas=2), {})
    lws = load(files["leaderworkerset.yaml"])["spec"]
    assert lws["replicas"] == 2
    assert lws["rolloutStrategy"]["rollingUpdateConfiguration"] == {"maxSurge": 0, "maxUnavailable": 1}


def test_volume_and_startup_budget_follow_the_downloaded_checkpoint():
    """Llama 3.1 405B served in FP8 by vLLM: vLLM downloads the BF16 repository (756 GiB of
    safetensors, profiles/models.yaml checkpoint_bytes) and quantizes while loading."""
    plan_kw = dict(reference="meta-llama/Llama-3.1-405B-Instruct", hf_id="meta-llama/Llama-3.1-405B-Instruct",
                   quantization="fp8", tp=8, pp=2, nodes=2, gpu_type="H100-80GB-SXM")
    service = build_service(make_plan(**plan_kw), make_spec(model="meta-llama/Llama-3.1-405B-Instruct"))
    assert service.download_gib == pytest.approx(811706777600 / 2**30)
    pvc = load(render_service(service, "kubernetes").files["pvc-models.yaml"])
    size = pvc["spec"]["resources"]["requests"]["storage"]
    assert size.endswith("Gi") and int(size[:-2]) > 756 * 1.2
    small = build_service(make_plan(), make_spec())
    assert service.health.startup_timeout_s > small.health.startup_timeout_s


def test_local_file_downloads_nothing():
    plan = make_plan(backend="llama.cpp", reference="/srv/m.gguf", hf_id=None, path="/srv/m.gguf", gated=False,
                     quantization="q4_K_M", gpu_type="L4")
    assert build_service(plan, make_spec(model="/srv/m.gguf")).download_gib is None
