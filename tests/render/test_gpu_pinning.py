"""Several replicas on one host get disjoint GPUs: compose device_ids per replica, HIP_VISIBLE_DEVICES for
AMD, and a plan that needs more GPUs than the host has is refused before anything is written."""

from __future__ import annotations

import pytest
from render_plans import make_plan, make_spec
from render_tools import compose_config
from ruamel.yaml import YAML

from llmctl.errors import InputError
from llmctl.render import build_service, render_service

load = YAML(typ="safe", pure=True).load

HOST_4_GPUS = [{"gpu": "A100-80GB", "gpus": 4}]


def _compose(plan_kw, spec_kw) -> dict:
    return load(render_service(build_service(make_plan(**plan_kw), make_spec(**spec_kw)), "compose").files["compose.yaml"])


def test_two_replicas_on_a_four_gpu_host_get_disjoint_devices(tmp_path):
    service = build_service(make_plan(replicas=2, tp=2), make_spec(hardware=HOST_4_GPUS))
    files = render_service(service, "compose").files
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    model = compose_config(tmp_path)  # what docker compose itself makes of the file
    svcs = model["services"]
    assert sorted(svcs) == ["chat", "chat-2"]
    devices = {n: svcs[n]["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] for n in svcs}
    assert devices == {"chat": ["0", "1"], "chat-2": ["2", "3"]}
    assert not set(devices["chat"]) & set(devices["chat-2"])
    ports = sorted(int(svcs[n]["ports"][0]["published"]) for n in svcs)
    assert ports == [8000, 8001]
    assert all("replicas" not in svcs[n]["deploy"] for n in svcs)


def test_amd_replicas_see_only_their_devices():
    c = _compose(dict(replicas=2, tp=1, gpu_type="MI300X-192GB"), dict(hardware=[{"gpu": "MI300X", "gpus": 8}]))
    env = {n: c["services"][n]["environment"]["HIP_VISIBLE_DEVICES"] for n in c["services"]}
    assert env == {"chat": "0", "chat-2": "1"}


def test_more_gpus_than_the_host_has_is_refused():
    service = build_service(make_plan(replicas=3, tp=2), make_spec(hardware=HOST_4_GPUS))
    with pytest.raises(InputError, match="need 6 GPUs on one host, which has 4"):
        render_service(service, "compose")


def test_cpu_replicas_stay_one_scaled_service():
    c = _compose(dict(replicas=2, gpu_kind="cpu", gpu_type="cpu-ddr5-2ch"), {})
    assert list(c["services"]) == ["chat"] and c["services"]["chat"]["deploy"]["replicas"] == 2


def test_compose_driver_addresses_each_replica_as_docker_compose_sees_it(tmp_path):
    """A replica-by-replica update starts, stops and checks one replica of a colour at a time: the
    compose driver's replica i must be the compose service that reserves replica i's GPUs and
    publishes its port (docker compose's own model of the rendered file). Containers cannot start
    here (no GPU to reserve), so the driver's commands are checked against that model."""
    from llmctl.targets.compose.apply import ComposeDriver
    from llmctl.targets.compose.render import replica_services

    service = build_service(make_plan(replicas=2, tp=2), make_spec(hardware=HOST_4_GPUS))
    for name, text in render_service(service, "compose").files.items():
        (tmp_path / name).write_text(text)
    svcs = compose_config(tmp_path)["services"]
    record = {"color": "blue", "project": "llmctl-chat-blue", "dir": str(tmp_path), "port": service.ports[0].host,
              "services": [m["name"] for m in replica_services(service)]}
    driver = ComposeDriver()
    assert driver.replica_by_replica
    for i, ids in enumerate((["0", "1"], ["2", "3"])):
        one = driver.replica(record, i)
        svc = svcs[one["service"]]
        assert svc["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == ids
        assert int(svc["ports"][0]["published"]) == one["port"]
