"""When can a new colour start beside the old one? Only when the spare GPUs the spec lists hold a
whole second copy; otherwise `up` needs --allow-downtime (one replica) or refuses (several)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "render"))  # the render tests' hand-made plans
from render_plans import make_plan, make_spec  # noqa: E402

from llmctl.deploy.proxied import room_for_both  # noqa: E402
from llmctl.render import build_service  # noqa: E402


@pytest.mark.parametrize(("replicas", "tp", "hardware", "room"), [
    (1, 1, [{"gpu": "A100-80GB", "gpus": 2}], True),  # one spare GPU holds the second copy
    (1, 1, [{"gpu": "A100-80GB", "gpus": 1}], False),  # no spare GPU
    (2, 2, [{"gpu": "A100-80GB", "gpus": 4}], False),  # 4 GPUs, all in use
    (2, 2, [{"gpu": "A100-80GB", "gpus": 8}], True),
    (1, 1, "detect", True),  # hardware not listed: assume the host has room (the start fails otherwise)
])
def test_room_for_a_second_copy(replicas, tp, hardware, room):
    service = build_service(make_plan(replicas=replicas, tp=tp), make_spec(hardware=hardware))
    assert room_for_both(service) is room


def test_cpu_plans_always_have_room():
    service = build_service(make_plan(gpu_kind="cpu", gpu_type="cpu-ddr5-2ch"), make_spec())
    assert room_for_both(service)
