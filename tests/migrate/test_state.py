"""The recorded migration state (DIR/migration.json): steps with timestamps, idempotent markers, the
lock, bad files as input errors; the GPU-room check; the step commands' bad input (exit 2)."""

from __future__ import annotations

import json

import pytest

from llmctl.errors import CheckFailed, InputError
from llmctl.migrate.apply import memory_fit, no_room_message, run, weights_kind
from llmctl.migrate.state import SCHEMA, Migration
from llmctl.migrate.steps import parse_percent
from support.cli import run_llmctl

from .outdir import model_entry, write_inventory


def test_steps_are_recorded_and_reloaded(tmp_path):
    m = Migration.load_or_create(tmp_path)
    rec = m.begin("new-started")
    assert Migration.load(tmp_path).step("new-started")["status"] == "running"  # written at once
    m.finish(rec, "done", pid=123)
    m.record_started({"role": "vllm", "pid": 123, "start_ticks": 1})
    again = Migration.load(tmp_path)
    assert again.is_done("new-started") and again.step("new-started")["pid"] == 123
    assert again.step("new-started")["finished_at"] >= again.step("new-started")["started_at"]
    assert again.started("vllm")["pid"] == 123
    again.invalidate("new-started")
    assert not Migration.load(tmp_path).is_done("new-started")
    assert json.loads((tmp_path / "migration.json").read_text())["schema"] == SCHEMA
    assert not list(tmp_path.glob(".migration.json.*"))  # no temporary file left behind


def test_a_second_command_cannot_change_a_migration_at_the_same_time(tmp_path):
    m = Migration.load_or_create(tmp_path)
    m.save()
    with m.locked():
        with pytest.raises(CheckFailed, match="another `llmctl migrate` command"):
            with Migration.load(tmp_path).locked():
                pass


def test_bad_state_files_are_input_errors(tmp_path):
    (tmp_path / "migration.json").write_text("{nope")
    with pytest.raises(InputError, match="unreadable migration state"):
        Migration.load(tmp_path)
    (tmp_path / "migration.json").write_text(json.dumps({"schema": "other/v9"}))
    with pytest.raises(InputError, match="expected llmctl.migrate.state/v1"):
        Migration.load(tmp_path)


def test_no_gpu_room_beside_ollama_is_said_with_the_options(tmp_path):
    plan = {"gpu": {"kind": "gpu", "type": "L4", "count_per_replica": 1, "memory_gib": 24}, "replicas": 1,
            "memory": {"per_gpu_gib": {"total": 20.0}}}
    inv = {"models": [model_entry("llama3.2:1b", size_vram=8 * 2**30)]}
    fit = memory_fit(plan, inv)
    assert fit["fits"] is False and fit["need_gib"] == 20 and fit["old_gib"] == 8
    msg = no_room_message(fit)
    assert "replica by replica" in msg and "planned-downtime swap" in msg and "28.0 GiB" in msg
    assert memory_fit(plan, {"models": [model_entry("x", size_vram=2 * 2**30)]})["fits"] is True
    assert memory_fit({"gpu": {"kind": "cpu"}}, inv)["fits"] is True

    write_inventory(tmp_path, "http://127.0.0.1:9", [model_entry("llama3.2:1b", size_vram=8 * 2**30)])
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    with pytest.raises(CheckFailed, match="cannot start beside Ollama"):
        run(tmp_path, new_url="http://127.0.0.1:9", say=lambda _s: None)
    assert Migration.load(tmp_path).step("checked")["status"] == "failed"  # recorded, nothing started
    assert Migration.load(tmp_path).data["started"] == []


def test_weights_kind_from_the_gguf_file_type():
    assert weights_kind(model_entry("a", quantization_level="F16")) == "same"
    assert weights_kind(model_entry("a", quantization_level="Q4_K_M")) == "quantized"


@pytest.mark.parametrize("text", ["10", "10%", " 100 % ", "0%"])
def test_percentages(text):
    assert parse_percent(text) in (0, 10, 100)


@pytest.mark.parametrize("text", ["110%", "ten", "-5%", "5.5%"])
def test_bad_percentages(text):
    with pytest.raises(InputError, match="--to"):
        parse_percent(text)


def test_cli_bad_input_exits_2(tmp_path):
    r = run_llmctl("migrate", "shift", "--to", "200%", "--out", str(tmp_path))
    assert r.code == 2 and "--to" in r.stderr and "Traceback" not in r.output
    r = run_llmctl("migrate", "status", "--out", str(tmp_path))
    assert r.code == 2 and "no migration recorded" in r.stderr
    r = run_llmctl("migrate", "resume", "--out", str(tmp_path))
    assert r.code == 2 and "inventory" in r.stderr
    write_inventory(tmp_path, None, [model_entry("tiny")])
    r = run_llmctl("migrate", "resume", "--out", str(tmp_path))
    assert r.code == 2 and "--old-url" in r.stderr, r.output
    (tmp_path / "inventory.json").write_text('{"schema": "llmctl.migrate.inventory/v1",\n "models": 3}')
    r = run_llmctl("migrate", "resume", "--out", str(tmp_path))
    assert r.code == 2 and "models" in r.stderr and "inventory.json" in r.stderr


def test_a_step_cut_short_is_recorded_as_failed(tmp_path):
    m = Migration.load_or_create(tmp_path)
    m.begin("proxy-started")
    m.fail_running("HAProxy rejects the rendered configuration")
    s = Migration.load(tmp_path).step("proxy-started")
    assert s["status"] == "failed" and s["reason"].startswith("HAProxy rejects") and s["finished_at"]
