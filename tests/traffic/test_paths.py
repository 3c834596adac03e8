"""Path-routed backend groups behind one HAProxy, shifted together (llmctl/traffic/paths.py), with the
real HAProxy and two real llama.cpp servers: `/api/...` goes to group `api`, everything else to group
`v1`; a share moves a colour in both groups at once; HAProxy's counters are read per colour."""

from __future__ import annotations

import httpx
import pytest

from support.requires import require_tool
from llmctl.errors import InputError
from llmctl.traffic.config import Server
from llmctl.traffic.paths import Group, PathRoutes, apply_path_shares, colour_counters, render_paths_config, start_paths
from llmctl.traffic.proxy import Proxy
from support.net import free_port


def _routes(a_port: int, b_port: int, port: int) -> PathRoutes:
    def pair():
        return [Server("ollama-1", "127.0.0.1", a_port, 200), Server("vllm-1", "127.0.0.1", b_port, 0)]

    return PathRoutes(groups=[Group("api", "/api/", "/health", pair()), Group("v1", None, "/health", pair())], port=port)


def test_bad_routes_are_input_errors():
    routes = _routes(1, 2, 3)
    routes.groups[0].prefix = None
    with pytest.raises(InputError, match="exactly one path group"):
        render_paths_config(routes, "/tmp/x.sock")
    routes = _routes(1, 2, 3)
    routes.groups[0].prefix = "/api/ x"
    with pytest.raises(InputError, match="cannot be used as an HAProxy path"):
        render_paths_config(routes, "/tmp/x.sock")
    routes = _routes(1, 2, 3)
    routes.groups[1].servers[0].weight = 999
    with pytest.raises(InputError, match="outside 0..256"):
        render_paths_config(routes, "/tmp/x.sock")


@pytest.mark.e2e
def test_groups_route_by_path_and_shift_together(start_llama_server, tmp_path):
    require_tool("haproxy", "the traffic layer")
    a, b = start_llama_server(), start_llama_server()
    port = free_port()
    proxy = Proxy(tmp_path / "proxy")
    routes = _routes(a.port, b.port, port)
    try:
        start_paths(proxy, routes)
        for be in ("be_api", "be_v1"):
            proxy.admin.wait_status(be, "ollama-1", "UP", 30)
        url = f"http://127.0.0.1:{port}"
        r = httpx.get(url + "/v1/models", timeout=10)
        assert (r.headers["x-llmctl-server"], r.headers["x-llmctl-backend"]) == ("ollama-1", "be_v1")
        r = httpx.get(url + "/api/tags", timeout=10)  # llama-server has no /api/: 404, from the api group
        assert (r.headers["x-llmctl-server"], r.headers["x-llmctl-backend"]) == ("ollama-1", "be_api")

        apply_path_shares(proxy, routes, {"vllm": 100, "ollama": 0})
        assert routes.shares() == {"ollama": 0.0, "vllm": 100.0}
        assert {httpx.get(url + p, timeout=10).headers["x-llmctl-server"] for p in ("/v1/models", "/api/tags")} == {"vllm-1"}
        counters = colour_counters(proxy, routes)
        assert counters["vllm"]["requests"] == 2 and counters["vllm"]["errors"] == 0  # a 404 is not an error
        assert counters["ollama"]["requests"] == 2
        saved = PathRoutes.load(proxy.dir)
        assert saved.shares() == {"ollama": 0.0, "vllm": 100.0}
        lines = [ln.split() for ln in proxy.config.read_text().splitlines() if ln.strip().startswith("server ")]
        weights = {(ln[1], ln[ln.index("weight") + 1]) for ln in lines}
        assert weights == {("ollama-1", "0"), ("vllm-1", "200")}  # a reload keeps the shifted weights
        with pytest.raises(InputError, match="no colour green"):
            apply_path_shares(proxy, routes, {"green": 10})
    finally:
        proxy.stop(timeout_s=10)
