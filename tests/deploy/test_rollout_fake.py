"""Rollout's decisions against a fake target (no process, no container): the first start, an unchanged
re-run that touches nothing, a blue/green update that proves the new colour on a staging port before
it takes the real one, a failed update that leaves the old colour serving, a failure on the real
port that starts the old colour again, and `down`. The real targets run the same code in
tests/deploy/test_*_e2e.py, test_local_*.py and test_systemd_real.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmctl.deploy import rollout
from llmctl.deploy.state import deployment_dir, load_state
from llmctl.errors import CheckFailed
from llmctl.targets import registry
from tests.deploy.fake_target import FakeDriver
from tests.support.net import free_port

SPEC = """name: fake-bot
model: llama3.2:1b
workload: {{concurrency: 1, prompt_tokens: 256, output_tokens: 64, context_length: {ctx}}}
hardware: [{{name: box, cpu: cpu-ddr5-2ch, cpu_cores: 8, memory_gb: 32}}]
endpoint: {{port: {port}}}
target: local
"""


@pytest.fixture
def fake(monkeypatch, tmp_path):
    FakeDriver.reset()
    monkeypatch.setitem(registry.REGISTRY, "fake", registry.TargetEntry(
        "fake", None, "tests.deploy.fake_target:FakeDriver", None, on_this_host=False))
    port = free_port()
    spec = tmp_path / "llmctl.yaml"

    def write(ctx: int) -> str:
        spec.write_text(SPEC.format(ctx=ctx, port=port))
        return str(spec)

    return write, port


def _up(path: str) -> int:
    return rollout.up(path, target="fake", options={}, timeout_s=5, smoke=False, smoke_timeout_s=5,
                      echo=lambda *_: None)


def test_first_start_then_nothing_changed(fake):
    write, port = fake
    path = write(4096)
    assert _up(path) == 0
    assert FakeDriver.calls == [("apply", f"blue@{port}"), ("wait_ready", f"blue@{port}")]
    state = load_state(deployment_dir(path, "fake-bot"))
    assert state.target == "fake" and state.active["color"] == "blue"
    FakeDriver.calls.clear()
    assert _up(path) == 0
    assert FakeDriver.calls == []  # unchanged: nothing restarted


def test_update_proves_the_new_colour_on_a_staging_port_first(fake):
    write, port = fake
    _up(write(4096))
    FakeDriver.calls.clear()
    _up(write(8192))  # a longer context changes the service
    methods = [c[0] for c in FakeDriver.calls]
    assert methods == ["apply", "wait_ready", "remove", "stop", "apply", "wait_ready", "remove"]
    staging = FakeDriver.calls[0][1]
    assert staging.startswith("green@") and staging != f"green@{port}"
    assert FakeDriver.calls[3] == ("stop", f"blue@{port}")  # the old colour stops only after green passed
    assert FakeDriver.calls[4] == ("apply", f"green@{port}")
    assert set(FakeDriver.instances) == {"green"}
    assert load_state(deployment_dir(write(8192), "fake-bot")).active["color"] == "green"


def test_failed_update_leaves_the_old_colour_serving(fake):
    write, port = fake
    _up(write(4096))
    FakeDriver.calls.clear()
    FakeDriver.fail_ready = [True]
    with pytest.raises(CheckFailed, match="keeps serving"):
        _up(write(8192))
    assert ("stop", f"blue@{port}") not in FakeDriver.calls
    assert set(FakeDriver.instances) == {"blue"} and not FakeDriver.stopped
    assert load_state(deployment_dir(write(8192), "fake-bot")).active["color"] == "blue"


def test_failure_on_the_real_port_starts_the_old_colour_again(fake):
    write, port = fake
    _up(write(4096))
    FakeDriver.calls.clear()
    FakeDriver.fail_ready = [False, True]  # passes on staging, fails on the real port
    with pytest.raises(CheckFailed):
        _up(write(8192))
    assert FakeDriver.calls[-2:] == [("start", f"blue@{port}"), ("wait_ready", f"blue@{port}")]
    assert "blue" not in FakeDriver.stopped


def test_down_removes_every_colour(fake):
    write, port = fake
    path = write(4096)
    _up(path)
    assert rollout.down(path, target=None, volumes=False, options={}, echo=lambda *_: None) == 0
    assert FakeDriver.instances == {}
    assert load_state(deployment_dir(path, "fake-bot")) is None


def test_a_deployment_from_before_the_proxy_is_refused_where_the_target_cannot_update_it(fake, monkeypatch):
    """systemd's case (pre_proxy_updates = False): the running version holds the public port itself,
    so `up` changes nothing and says to `down` then `up`."""
    write, port = fake
    path = write(4096)
    assert _up(path) == 0  # the plain fake: an engine on the public port, no "private" in its record
    monkeypatch.setitem(registry.REGISTRY, "fake", registry.TargetEntry(
        "fake", None, "tests.deploy.fake_target:ProxiedFakeDriver", None, on_this_host=False))
    FakeDriver.calls.clear()
    with pytest.raises(CheckFailed, match="deployed before the fake-proxied target had a proxy") as exc:
        _up(write(8192))
    assert "`llmctl down" in str(exc.value) and "nothing was changed" in str(exc.value)
    assert FakeDriver.calls == [] and load_state(deployment_dir(path, "fake-bot")).active["color"] == "blue"
