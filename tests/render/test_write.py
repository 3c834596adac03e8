"""render's file writing: stable bytes, atomic replace, diffs, refusal to overwrite hand edits without --force."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from render_plans import CASES, case

from llmctl.errors import CheckFailed
from llmctl.render import MANIFEST, build_service, compare, render_service, write_files


@pytest.mark.parametrize("target", ["compose", "systemd", "kubernetes"])
def test_same_input_gives_identical_bytes(target):
    for name in CASES:
        plan, spec = case(name)
        if plan.gpu.nodes_per_replica > 1 and target != "kubernetes":
            continue
        a = render_service(build_service(plan, spec), target).files
        b = render_service(build_service(*case(name)), target).files
        assert a == b


def test_write_then_rewrite_is_unchanged(tmp_path):
    files = render_service(build_service(*case("vllm-1gpu")), "compose").files
    first = write_files(tmp_path, files)
    assert {c.status for c in first} == {"new"}
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert set(manifest["files"]) == set(files)
    mtimes = {n: (tmp_path / n).stat().st_mtime_ns for n in files}
    second = write_files(tmp_path, files)
    assert {c.status for c in second} == {"unchanged"}
    assert mtimes == {n: (tmp_path / n).stat().st_mtime_ns for n in files}


def test_changed_plan_updates_with_a_diff(tmp_path):
    old = render_service(build_service(*case("vllm-1gpu")), "compose").files
    write_files(tmp_path, old)
    new = dict(old, **{"compose.yaml": old["compose.yaml"].replace('"--max-num-seqs"\n      - "16"', '"--max-num-seqs"\n      - "32"')})
    assert new != old
    changes = {c.name: c for c in compare(tmp_path, new)}
    assert changes["compose.yaml"].status == "updated"
    assert '-      - "16"' in changes["compose.yaml"].diff and '+      - "32"' in changes["compose.yaml"].diff
    write_files(tmp_path, new)
    assert (tmp_path / "compose.yaml").read_text() == new["compose.yaml"]


def test_hand_edit_is_refused_then_forced(tmp_path):
    files = render_service(build_service(*case("vllm-1gpu")), "compose").files
    write_files(tmp_path, files)
    edited = files["compose.yaml"] + "# my note\n"
    (tmp_path / "compose.yaml").write_text(edited)
    newer = dict(files, **{"compose.yaml": files["compose.yaml"].replace("8192", "4096")})
    with pytest.raises(CheckFailed, match="--force"):
        write_files(tmp_path, newer)
    assert (tmp_path / "compose.yaml").read_text() == edited  # nothing lost
    assert (tmp_path / "chat.env.example").read_text() == files["chat.env.example"]
    write_files(tmp_path, newer, force=True)
    assert (tmp_path / "compose.yaml").read_text() == newer["compose.yaml"]


def test_existing_file_not_written_by_llmctl_is_protected(tmp_path):
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    files = render_service(build_service(*case("vllm-1gpu")), "compose").files
    with pytest.raises(CheckFailed):
        write_files(tmp_path, files)
    assert (tmp_path / "compose.yaml").read_text() == "services: {}\n"
    assert not (tmp_path / MANIFEST).exists()


def test_dry_run_writes_nothing(tmp_path):
    files = render_service(build_service(*case("vllm-1gpu")), "compose").files
    out = tmp_path / "out"
    changes = write_files(out, files, dry_run=True)
    assert {c.status for c in changes} == {"new"} and not out.exists()


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    files = render_service(build_service(*case("ollama-gpu")), "kubernetes").files
    write_files(tmp_path, files)
    assert sorted(os.listdir(tmp_path)) == sorted([*files, MANIFEST])


# ----------------------------------------------------------------------------- the command


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmctl", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def spec_and_plan(tmp_path):
    plan, _ = case("vllm-1gpu")
    (tmp_path / "plan.json").write_text(json.dumps(plan.to_public(explain=True)))
    (tmp_path / "llmctl.yaml").write_text("name: chat\nmodel: meta-llama/Llama-3.1-8B-Instruct\nenvironment: production\n")
    return tmp_path


def test_cli_render_diff_refuse_force(spec_and_plan):
    d = spec_and_plan
    r = _cli("render", "llmctl.yaml", "--plan", "plan.json", "--out", "out", cwd=d)
    assert r.returncode == 0, r.stderr
    assert (d / "out/compose.yaml").exists() and "kubectl" not in r.stdout
    (d / "out/compose.yaml").write_text((d / "out/compose.yaml").read_text().replace("8192", "9999"))
    r = _cli("render", "llmctl.yaml", "--plan", "plan.json", "--out", "out", cwd=d)
    assert r.returncode == 1 and "--force" in r.stderr and "Traceback" not in r.stderr
    assert '-      - "9999"' in r.stdout  # the diff is shown
    r = _cli("render", "llmctl.yaml", "--plan", "plan.json", "--out", "out", "--force", cwd=d)
    assert r.returncode == 0 and "9999" not in (d / "out/compose.yaml").read_text()


def test_cli_target_option_and_secret_hint(spec_and_plan):
    d = spec_and_plan
    r = _cli("render", "llmctl.yaml", "--plan", "plan.json", "--out", "k8s", "--target", "kubernetes", cwd=d)
    assert r.returncode == 0, r.stderr
    assert "kubectl create secret generic chat-secrets" in r.stdout
    assert (d / "k8s/deployment.yaml").exists()


@pytest.mark.parametrize("args, needle", [
    (["render", "missing.yaml", "--plan", "plan.json"], "not found"),
    (["render", "llmctl.yaml", "--plan", "plan.json", "--target", "swarm"], "swarm"),
])
def test_cli_bad_input_exit_2(spec_and_plan, args, needle):
    r = _cli(*args, cwd=spec_and_plan)
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr


def test_cli_bad_spec_names_file_and_line(spec_and_plan):
    d = spec_and_plan
    (d / "bad.yaml").write_text("name: chat\nmodel: x\noverrides:\n  image: 7\n  imgae: y\n")
    r = _cli("render", "bad.yaml", "--plan", "plan.json", cwd=d)
    assert r.returncode == 2 and "bad.yaml:5" in r.stderr and "Traceback" not in r.stderr


def test_cli_local_target_is_input_error(spec_and_plan):
    d = spec_and_plan
    (d / "local.yaml").write_text("name: chat\nmodel: meta-llama/Llama-3.1-8B-Instruct\ntarget: local\n")
    r = _cli("render", "local.yaml", "--plan", "plan.json", cwd=d)
    assert r.returncode == 2 and "local" in r.stderr
