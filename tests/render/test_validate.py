"""Every shape of plan, and every shipped example, rendered for every target and checked by the real
validators: docker compose `config -q`, kubernetes-validate --strict (1.30) plus the custom-resource
schemas in schemas/, and systemd-analyze verify."""

from __future__ import annotations

from pathlib import Path

import pytest
from render_plans import CASES, case
from render_tools import compose_config, haproxy_check, kube_validate, systemd_verify, write_all as _write

from llmctl.errors import InputError
from llmctl.render import build_service, render_service
from llmctl.targets import RenderOptions

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def check_compose(service, tmp_path: Path) -> dict:
    files = render_service(service, "compose").files
    _write(tmp_path, files)
    model = compose_config(tmp_path)
    svc = model["services"][service.slug]
    assert [a.replace("$$", "$") for a in svc["entrypoint"]] == service.argv
    assert svc["image"].replace("$$", "$") == service.image
    return svc


def check_kubernetes(service, tmp_path: Path) -> dict[str, str]:
    files = render_service(service, "kubernetes").files
    kube_validate(_write(tmp_path, files))
    return files


def check_systemd(service, sdroot: Path, runtime: str) -> dict[str, str]:
    files = render_service(service, "systemd", RenderOptions(runtime=runtime)).files
    for unit in (f"{service.slug}-blue.service", f"{service.slug}-proxy.service"):
        systemd_verify(sdroot, files[unit], unit)
    haproxy_check(files[f"{service.slug}-proxy.cfg"])
    return files


SINGLE_NODE = [n for n in CASES if CASES[n][0].get("nodes", 1) == 1]


@pytest.mark.parametrize("name", sorted(CASES))
def test_kubernetes_validates(name, tmp_path):
    plan, spec = case(name)
    files = check_kubernetes(build_service(plan, spec), tmp_path)
    if plan.gpu.nodes_per_replica > 1:
        assert "leaderworkerset.yaml" in files and "deployment.yaml" not in files
    if plan.replicas > 1:
        assert {"scaledobject.yaml", "hpa.yaml"} & set(files)


@pytest.mark.parametrize("name", SINGLE_NODE)
def test_compose_validates(name, tmp_path):
    plan, spec = case(name)
    service = build_service(plan, spec)
    svc = check_compose(service, tmp_path)
    port = svc["ports"][0]
    assert port["host_ip"] == spec.endpoint.bind
    assert svc["restart"] == "unless-stopped" and "healthcheck" in svc


@pytest.mark.parametrize("runtime", ["docker", "podman", "native"])
@pytest.mark.parametrize("name", SINGLE_NODE)
def test_systemd_validates(name, runtime, sdroot):
    plan, spec = case(name)
    check_systemd(build_service(plan, spec), sdroot, runtime)


def test_multinode_plan_is_refused_by_single_host_targets():
    plan, spec = case("vllm-pp-2nodes")
    service = build_service(plan, spec)
    for target in ("compose", "systemd"):
        with pytest.raises(InputError, match="kubernetes"):
            render_service(service, target)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_examples_render_and_validate(example, tmp_path, sdroot):
    planner = pytest.importorskip("llmctl.planner")
    from llmctl.spec import load_spec

    spec = load_spec(example)
    plan = planner.make_plan(spec)
    service = build_service(plan, spec)
    check_kubernetes(service, tmp_path / "k8s")
    if service.nodes_per_replica == 1:
        check_compose(service, tmp_path / "compose")
        for runtime in ("docker", "native"):
            check_systemd(service, sdroot, runtime)
