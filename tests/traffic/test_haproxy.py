"""The traffic layer with a real HAProxy (Debian's haproxy package) in front of real llama.cpp servers
(llama-cpp-python on the tiny GGUF): weights, drain, reload and health checks while streamed requests
run, counted by a bounded load generator."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.load import StreamLoad
from support.net import free_port, http_status

from llmctl.service import Health, Port, ServiceSpec
from llmctl.traffic import Proxy, Server, render_config
from llmctl.traffic.shift import apply_shares, parse_shares
from llmctl.traffic.state import Routes, apply_routes

pytestmark = pytest.mark.e2e
BE = "be_chat"


@pytest.fixture
def haproxy():
    from deploy.conftest import require

    require(shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists(), "haproxy is not installed (apt-get install haproxy)")


def _service(port: int) -> ServiceSpec:
    # llama-cpp-python's server has no /health: /v1/models answers 200 once the model is loaded
    return ServiceSpec(name="chat", slug="chat", engine="llama.cpp", image="unused", argv=["unused"],
                       ports=[Port(container=8080, host=port)], health=Health(path="/v1/models", port=8080,
                                                                              startup_timeout_s=60),
                       served_model_name="tiny")


@pytest.fixture
def pair(haproxy, start_llama_server, tmp_path):
    """blue-1 and green-1 (two llama.cpp servers) behind a proxy on a free port; the proxy is stopped after."""
    blue, green = start_llama_server(), start_llama_server()
    service = _service(free_port())
    proxy = Proxy(tmp_path / "proxy")
    routes = Routes(backend=BE, servers=[Server("blue-1", "127.0.0.1", blue.port, 100),
                                         Server("green-1", "127.0.0.1", green.port, 0)])
    apply_routes(service, proxy, routes)
    proxy.admin.wait_status(BE, "blue-1", "UP", 30)
    proxy.admin.wait_status(BE, "green-1", "UP", 30)
    yield service, proxy, routes, blue, green
    proxy.stop(timeout_s=30)
    assert not proxy.running()


def _url(service: ServiceSpec) -> str:
    return f"http://127.0.0.1:{service.ports[0].host}"


def test_config_is_accepted_and_names_the_readiness_path(haproxy, tmp_path):
    service = _service(18000)
    text = render_config(service, [Server("blue-1", "127.0.0.1", 18001)], admin_socket=str(tmp_path / "a.sock"))
    assert "http-check send meth GET uri /v1/models" in text and "balance leastconn" in text
    assert "option http-no-delay" in text
    Proxy(tmp_path).write_config(text)  # `haproxy -c` accepts it
    with pytest.raises(Exception, match="weight"):
        render_config(service, [Server("blue-1", "127.0.0.1", 18001, weight=300)], admin_socket="x")


def test_weight_shift_moves_new_requests_and_drops_none(pair):
    service, proxy, routes, blue, green = pair
    load = StreamLoad(_url(service), "tiny", workers=2).start()
    try:
        load.wait_for(6, timeout_s=120)
        assert set(load.report.served_by) == {"blue-1"}  # green has weight 0
        apply_shares(proxy, routes, parse_shares(["green=50%"], ["blue", "green"]))
        before = dict(load.report.served_by)
        load.wait_for(load.report.total + 12, timeout_s=120)
        after = load.report.served_by
        assert after["green-1"] > before.get("green-1", 0) and after["blue-1"] > before["blue-1"]
        # everything to green; blue drains: streams already on it finish there
        apply_shares(proxy, routes, parse_shares(["green=100%"], ["blue", "green"]))
        proxy.admin.drain(BE, "blue-1")
        proxy.admin.wait_idle(BE, "blue-1", 60)
        mark = load.report.served_by["blue-1"]
        load.wait_for(load.report.total + 6, timeout_s=120)
        assert load.report.served_by["blue-1"] == mark  # no new request went to blue
    finally:
        report = load.stop()
    assert report.failed == [] and report.ok >= 24
    assert {s.name: s.weight for s in routes.servers} == {"blue-1": 0, "green-1": 200}


def test_graceful_reload_keeps_streams_and_a_stopped_backend_loses_nothing(pair):
    service, proxy, routes, blue, green = pair
    apply_shares(proxy, routes, parse_shares(["green=50%"], ["blue", "green"]))
    load = StreamLoad(_url(service), "tiny", workers=3).start()
    try:
        load.wait_for(6, timeout_s=120)
        for _ in range(3):  # reload while streams are in flight
            proxy.reload()
            load.wait_for(load.report.total + 3, timeout_s=120)
        # the right way to retire an instance: drain, wait until idle, then stop it
        proxy.admin.drain(BE, "blue-1")
        proxy.admin.wait_idle(BE, "blue-1", 60)
        blue.stop()
        proxy.admin.wait_status(BE, "blue-1", "DOWN", 30)
        load.wait_for(load.report.total + 6, timeout_s=120)
    finally:
        report = load.stop()
    assert report.failed == [], report.failed[:5]
    assert http_status(_url(service) + "/v1/models") == 200


def test_proxy_memory_is_small(pair):
    """The proxy's resident memory (master + worker), reported in the README."""
    service, proxy, routes, blue, green = pair
    rss_mib = proxy.rss_kib() / 1024
    print(f"haproxy RSS: {rss_mib:.1f} MiB")
    assert 0 < rss_mib < 100
