"""Zero-drop updates on the systemd target under a real systemd (PID 1 of a container in the private
dockerd, the `systemd_box` fixture): HAProxy runs as `zd-proxy.service`, the llama.cpp engine colours
as `zd-blue.service` / `zd-green.service` behind it. A bounded load generator on the host streams chat
completions through the spec's port during `up` → spec change → `up` (update) → an update to a version
that cannot start → `rollback`, and counts failed or cut streams: there must be none. The broken
version never receives a request (the proxy's per-server answers show only blue and green), `up`
exits 1 with its journal's last lines, and the running colour keeps serving.

Run with `-s` to see the measured figures (update and rollback time, the proxy unit's memory)."""

from __future__ import annotations

import json
import time

import pytest
from support.load import StreamLoad
from support.net import free_port

from deploy.conftest import BROKEN_FLAG, write_spec

pytestmark = pytest.mark.e2e
ENV = {"PYTHONPATH": "/llmctl:/sp"}
LLMCTL = ("python3", "-m", "llmctl")
SPEC = "/spec/llmctl.yaml"


def _llmctl(box, *args: str, timeout: float = 400):
    extra = ("--runtime", "native", "--timeout", "180") if args[0] == "up" else ()
    extra += ("--timeout", "180") if args[0] == "rollback" else ()
    start = time.monotonic()
    r = box.exec(*LLMCTL, *args, SPEC, *extra, extra_env=ENV, timeout=timeout)
    return r, time.monotonic() - start


def _servers(box) -> str:
    r, _ = _llmctl(box, "traffic")
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def _proxy_rss_kib(box, unit: str) -> int:
    """Resident memory of the proxy unit's processes (master and workers), from /proc via ps."""
    pid = box.exec("systemctl", "show", unit, "--property", "MainPID", "--value").stdout.strip()
    rows = box.exec("ps", "-o", "rss=", "-p", pid).stdout.split() + box.exec("ps", "-o", "rss=", "--ppid", pid).stdout.split()
    return sum(int(x) for x in rows)


def test_systemd_update_broken_update_and_rollback_drop_nothing(systemd_box):
    box, spec_dir, model = systemd_box
    port = free_port()
    write = lambda concurrency: write_spec(spec_dir / "llmctl.yaml", model=f"/models/{model}", port=port,  # noqa: E731
                                           target="systemd", name="zd", concurrency=concurrency)
    write(2)
    load = None
    figures: dict[str, float] = {}
    try:
        r, figures["first_up_s"] = _llmctl(box, "up")
        assert r.returncode == 0, r.stdout + r.stderr
        figures["proxy_rss_mib"] = _proxy_rss_kib(box, "zd-proxy.service") / 1024
        cgroup = box.exec("systemctl", "show", "zd-proxy.service", "--property", "MemoryCurrent", "--value").stdout.strip()
        figures["proxy_cgroup_mib"] = int(cgroup) / 2**20 if cgroup.isdigit() else -1  # -1: no memory accounting
        load = StreamLoad(f"http://127.0.0.1:{port}", model, workers=2, max_tokens=16).start()
        load.wait_for(4, timeout_s=120)

        # an update: green starts as its own unit beside blue, takes the traffic; blue drains and goes
        write(3)
        before = load.report.total
        r, figures["update_s"] = _llmctl(box, "up")
        figures["streams_during_update"] = load.report.total - before
        assert r.returncode == 0, r.stdout + r.stderr
        servers = _servers(box)
        assert "green-1" in servers and "blue-1" not in servers, servers
        assert box.exec("systemctl", "cat", "zd-blue.service").returncode != 0  # blue's unit is removed
        load.wait_for(load.report.total + 4, timeout_s=120)
        served_before_broken = set(load.report.served_by)

        # a version that cannot start: it fails on its private port and never joins the proxy
        (spec_dir / BROKEN_FLAG).write_text("")
        write(4)
        try:
            r, figures["broken_s"] = _llmctl(box, "up")
        finally:
            (spec_dir / BROKEN_FLAG).unlink()
        assert r.returncode == 1, r.stdout + r.stderr
        assert "never received traffic" in r.stderr and "llmctl-test-broken-build" in r.stderr, r.stderr
        assert box.exec("systemctl", "cat", "zd-blue.service").returncode != 0  # the failed unit is gone
        load.wait_for(load.report.total + 4, timeout_s=120)
        assert set(load.report.served_by) == served_before_broken == {"blue-1", "green-1"}
        assert "green-1" in _servers(box)

        # rollback: back to the first version (blue), through the proxy
        before = load.report.total
        r, figures["rollback_s"] = _llmctl(box, "rollback")
        figures["streams_during_rollback"] = load.report.total - before
        assert r.returncode == 0, r.stdout + r.stderr
        assert "blue-1" in _servers(box)
        load.wait_for(load.report.total + 4, timeout_s=120)
        r, _ = _llmctl(box, "status", "--output", "json")
        status = json.loads(r.stdout)
        assert status["healthy"] and status["color"] == "blue", status
        assert {o["name"] for o in status["objects"]} == {"zd-blue.service", "zd-proxy.service"}
    finally:
        report = load.stop() if load else None
        r, _ = _llmctl(box, "down")
    assert r.returncode == 0, r.stdout + r.stderr
    assert report is not None
    print(f"\nsystemd zero-drop: {report.ok} streams finished, {len(report.failed)} failed; "
          f"first up {figures.get('first_up_s', 0):.1f}s, update {figures.get('update_s', 0):.1f}s "
          f"({figures.get('streams_during_update', 0):.0f} streams finished meanwhile), "
          f"failed update {figures.get('broken_s', 0):.1f}s, rollback {figures.get('rollback_s', 0):.1f}s "
          f"({figures.get('streams_during_rollback', 0):.0f} streams), "
          f"proxy unit {figures.get('proxy_rss_mib', 0):.1f} MiB RSS, "
          f"{figures.get('proxy_cgroup_mib', -1):.1f} MiB cgroup (MemoryCurrent)")
    assert report.failed == [], report.failed[:5]
    assert report.ok >= 16
