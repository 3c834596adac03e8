"""What CI relies on: exit codes, `schema` in every machine-readable output, `-o` meaning the output
format everywhere, `render --plan` refusing a plan made from another spec, flags that do nothing
being refused instead of ignored, and files written with ordinary permissions."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from support.cli import run_llmctl

ROOT = Path(__file__).resolve().parents[2]
CHATBOT = str(ROOT / "examples" / "chatbot.yaml")


@pytest.fixture
def missing_sla(tmp_path: Path) -> str:
    """The chatbot example with an ITL target no GPU meets (5 ms)."""
    path = tmp_path / "miss.yaml"
    path.write_text((ROOT / "examples" / "chatbot.yaml").read_text().replace("itl_p95_ms: 75", "itl_p95_ms: 5"))
    return str(path)


def test_plan_that_meets_the_sla_exits_0():
    r = run_llmctl("plan", CHATBOT)
    assert r.code == 0, r.stderr
    assert "PASS" in r.stdout


@pytest.mark.parametrize("extra", [[], ["--compare"], ["--sweep", "concurrency=1,8"], ["-o", "json"]])
def test_sla_miss_exits_1_naming_the_target(missing_sla: str, extra: list[str]):
    r = run_llmctl("plan", missing_sla, *extra)
    assert r.code == 1, r.output
    assert "misses the SLA: itl_p95_ms predicted" in r.stderr and "target 5" in r.stderr


def test_sweep_compare_and_both_have_a_schema():
    r = run_llmctl("plan", CHATBOT, "--sweep", "concurrency=1,8", "-o", "json")
    assert json.loads(r.stdout)["schema"] == "llmctl.sweep/v1"
    r = run_llmctl("plan", CHATBOT, "--compare", "-o", "json")
    assert json.loads(r.stdout)["schema"] == "llmctl.compare/v1"
    r = run_llmctl("plan", CHATBOT, "--compare", "--sweep", "concurrency=1,8", "-o", "json")
    doc = json.loads(r.stdout)  # one document, not two concatenated
    assert doc["schema"] == "llmctl.plan-views/v1"
    assert doc["sweep"]["schema"] == "llmctl.sweep/v1" and doc["compare"]["schema"] == "llmctl.compare/v1"


def test_chart_without_sweep_is_refused_and_explain_works_with_compare(tmp_path: Path):
    r = run_llmctl("plan", CHATBOT, "--chart", str(tmp_path / "c.svg"))
    assert r.code == 2 and "--sweep" in r.stderr and not (tmp_path / "c.svg").exists()
    r = run_llmctl("plan", CHATBOT, "--compare", "--explain")
    assert r.code == 0 and "arithmetic of the chosen plan" in r.stdout and "gpu_memory_utilization" in r.stdout
    r = run_llmctl("plan", CHATBOT, "--compare", "--explain", "-o", "json")
    assert json.loads(r.stdout)["explain"]


def test_chart_is_not_written_as_a_secret(tmp_path: Path):
    chart = tmp_path / "c.svg"
    r = run_llmctl("plan", CHATBOT, "--sweep", "concurrency=1,8", "--chart", str(chart))
    assert r.code == 0, r.stderr
    mode = stat.S_IMODE(chart.stat().st_mode)
    assert mode & 0o044 == 0o044, oct(mode)  # readable by group and others (umask 022)


def test_render_refuses_a_plan_of_another_spec(tmp_path: Path):
    plan = tmp_path / "plan.json"
    r = run_llmctl("plan", CHATBOT, "-o", "json")
    plan.write_text(r.stdout)
    assert json.loads(r.stdout)["spec_sha256"]
    other = str(ROOT / "examples" / "team-rtx4090.yaml")
    r = run_llmctl("render", other, "--plan", str(plan), "--out", str(tmp_path / "out"))
    assert r.code == 2 and "was not made from this spec" in r.stderr and "'team-chat'" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()
    # the same name and model, but a changed workload
    changed = tmp_path / "changed.yaml"
    changed.write_text((ROOT / "examples" / "chatbot.yaml").read_text().replace("concurrency: 64", "concurrency: 32"))
    r = run_llmctl("render", str(changed), "--plan", str(plan), "--out", str(tmp_path / "out"))
    assert r.code == 2 and "the spec changed since the plan was saved" in r.stderr
    r = run_llmctl("render", str(changed), "--plan", str(plan), "--out", str(tmp_path / "out"), "--force")
    assert r.code == 0 and "warning" in r.stderr and (tmp_path / "out" / "deployment.yaml").exists()
    r = run_llmctl("render", CHATBOT, "--plan", str(plan), "--out", str(tmp_path / "out2"))
    assert r.code == 0, r.stderr


def test_render_o_is_the_output_format(tmp_path: Path):
    r = run_llmctl("render", CHATBOT, "-o", "json")
    doc = json.loads(r.stdout)
    assert doc["schema"] == "llmctl.render/v1" and "deployment.yaml" in doc["files"]
    r = run_llmctl("render", CHATBOT, "-o", "yaml")
    assert r.code == 0 and r.stdout.startswith("---\n") and "kind: \"Deployment\"" in r.stdout
    r = run_llmctl("render", CHATBOT, "-o", str(tmp_path / "json"))
    assert r.code == 2 and "--out" in r.stderr and not (tmp_path / "json").exists()


def test_doctor_inventory_and_smoke_json_have_a_schema():
    r = run_llmctl("inventory", "-o", "json")
    assert json.loads(r.stdout)["schema"] == "llmctl.inventory/v1"
    r = run_llmctl("doctor", "-o", "json")
    assert json.loads(r.stdout)["schema"] == "llmctl.doctor/v1"
    from support.net import free_port

    r = run_llmctl("smoke", "--url", f"http://127.0.0.1:{free_port()}", "--model", "m", "-o", "json")
    assert r.code == 1 and json.loads(r.stdout)["schema"] == "llmctl.smoke/v1"


def test_status_json_has_a_schema(tmp_path: Path):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: x\nmodel: llama3.1:8b\ntarget: local\nhardware:\n  - cpu: cpu-ddr5-2ch\n    memory_gb: 16\n")
    r = run_llmctl("status", str(spec), "-o", "json")
    assert r.code == 1 and json.loads(r.stdout) == {"schema": "llmctl.status/v1", "deployed": False, "target": "local",
                                                    "slug": "x", "leftovers": [], "renamed": []}


def test_spec_from_stdin(tmp_path: Path):
    import subprocess
    import sys

    text = (ROOT / "examples" / "chatbot.yaml").read_text()
    proc = subprocess.run([sys.executable, "-m", "llmctl", "plan", "-", "-o", "json"], input=text, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["name"] == "support-bot"
    proc = subprocess.run([sys.executable, "-m", "llmctl", "plan", "-"], input="name: [\n", capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "<stdin>:" in proc.stderr
