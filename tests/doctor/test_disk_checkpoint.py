"""doctor's disk check counts what the engine downloads: vLLM fetches the published checkpoint
(profiles/models.yaml checkpoint_bytes), not the quantized weights it keeps in GPU memory."""

from __future__ import annotations

import pytest

from llmctl import doctor
from llmctl.spec import load_spec_text

from .test_doctor import make_plan

SPEC = """name: chat
model: meta-llama/Llama-3.1-405B-Instruct
target: compose
"""


def test_disk_need_is_the_bf16_checkpoint_for_an_fp8_plan():
    spec = load_spec_text(SPEC, "llmctl.yaml")
    plan = make_plan(hf_id="meta-llama/Llama-3.1-405B-Instruct", weights_per_gpu=50.6)  # FP8 share on 8 GPUs
    req = doctor.requirements(spec, plan, "compose")
    assert req.model_gib == pytest.approx(811706777600 / 2**30)  # 756 GiB, not 8 x 50.6 = 405 GiB


def test_unknown_repository_keeps_the_weights():
    spec = load_spec_text(SPEC, "llmctl.yaml")
    plan = make_plan(hf_id="someone/private-awq-model", weights_per_gpu=5.0)
    assert doctor.requirements(spec, plan, "compose").model_gib == pytest.approx(40.0)
