"""`llmctl logs` and `llmctl ps` on the local target, with a real child process standing in for the
engine (the local driver runs any command; what is tested is finding it, reading and following its
log file, and telling whether it runs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.cli import run_llmctl
from support.net import wait_until

ECHO = "import sys\nprint('engine starting', flush=True)\nfor line in sys.stdin:\n    print(line.strip(), flush=True)\n"


@pytest.fixture
def deployed(tmp_path: Path):
    """A spec with target local and a recorded deployment whose process echoes stdin into its log."""
    from llmctl.procstat import start_ticks
    from llmctl.deploy.state import State, deployment_dir

    spec = tmp_path / "svc.yaml"
    spec.write_text("name: logsvc\nmodel: llama3.1:8b\ntarget: local\nhardware:\n  - cpu: cpu-ddr5-2ch\n    memory_gb: 16\n")
    folder = deployment_dir(spec, "logsvc") / "blue"
    folder.mkdir(parents=True)
    log = folder / "engine.log"
    with open(log, "wb") as fh:
        fh.writelines(f"old line {i}\n".encode() for i in range(50))
        fh.flush()
        proc = subprocess.Popen([sys.executable, "-u", "-c", ECHO], stdin=subprocess.PIPE, stdout=fh,
                                stderr=subprocess.STDOUT, text=True)
    wait_until(lambda: "engine starting" in log.read_text(), timeout=30, what="the stand-in engine")
    record = {"color": "blue", "dir": str(folder), "pid": proc.pid, "start_ticks": start_ticks(proc.pid),
              "argv": [sys.executable], "log": str(log), "env": {}, "secret_keys": [], "port": 1, "bind": "127.0.0.1"}
    State(name="logsvc", slug="logsvc", target="local", spec=str(spec), hash="x", active=record,
          url="http://127.0.0.1:1", model="llama3.2:3b", engine="ollama").save(folder.parent)
    yield spec, proc, log
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def test_logs_shows_the_last_lines(deployed):
    spec, _, _ = deployed
    r = run_llmctl("logs", str(spec), "--tail", "2", timeout=60)
    assert r.code == 0, r.stderr
    assert r.stdout == "old line 49\nengine starting\n"


def test_logs_follow_prints_new_lines_and_ends_with_the_process(deployed):
    spec, proc, _ = deployed
    follower = subprocess.Popen([sys.executable, "-m", "llmctl", "logs", str(spec), "-f", "--tail", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert follower.stdout.readline() == "engine starting\n"
        proc.stdin.write("a new line\n")
        proc.stdin.flush()
        assert follower.stdout.readline() == "a new line\n"
        proc.stdin.close()  # the engine exits: following ends by itself
        proc.wait(timeout=10)
        assert follower.wait(timeout=30) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait(timeout=10)


def test_ps_lists_the_deployment_and_whether_it_runs(deployed, tmp_path: Path):
    spec, proc, _ = deployed
    r = run_llmctl("ps", str(tmp_path), "-o", "json", timeout=60)
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "llmctl.ps/v1"
    [row] = [d for d in doc["deployments"] if d["name"] == "logsvc"]
    assert row["target"] == "local" and row["state"] == "running" and row["spec"] == str(spec)
    proc.stdin.close()
    proc.wait(timeout=10)
    r = run_llmctl("ps", str(tmp_path), timeout=60)
    assert "logsvc" in r.stdout and "not running" in r.stdout


def test_logs_of_a_spec_never_deployed(tmp_path: Path):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: nope\nmodel: llama3.1:8b\ntarget: local\n")
    r = run_llmctl("logs", str(spec), timeout=60)
    assert r.code == 1 and "not deployed" in r.stderr


def test_completion_scripts():
    for shell, marker in (("bash", "complete -o nosort -F"), ("zsh", "compdef"), ("fish", "complete --no-files")):
        r = run_llmctl("completion", shell)
        assert r.code == 0 and marker in r.stdout and "_LLMCTL_COMPLETE" in r.stdout, (shell, r.stdout[:200])
    # what the bash script asks llmctl when Tab is pressed after `llmctl pl` and after `plan x -o `
    r = run_llmctl(env={"_LLMCTL_COMPLETE": "bash_complete", "COMP_WORDS": "llmctl pl", "COMP_CWORD": "1"})
    assert r.stdout.split() == ["plain,plan"], r.output
    r = run_llmctl(env={"_LLMCTL_COMPLETE": "bash_complete", "COMP_WORDS": "llmctl plan x.yaml -o ", "COMP_CWORD": "4"})
    assert r.stdout.split() == ["plain,table", "plain,wide", "plain,json", "plain,yaml"], r.output


def test_no_color_and_help_examples():
    r = run_llmctl("--no-color", "plan", "--help")
    assert r.code == 0 and "Examples:" in r.stdout and "Exit codes" in r.stdout
    for command in ("init", "plan", "render", "inventory", "doctor", "up", "down", "status", "logs", "ps", "smoke",
                    "completion"):
        r = run_llmctl(command, "--help")
        assert r.code == 0 and "Examples:" in r.stdout, command


def test_log_commands_of_the_other_targets():
    """The commands `llmctl logs` runs for compose, systemd and Kubernetes (no daemon or cluster here:
    the command lines are what can be checked), with --kubeconfig/--context/-n passed to kubectl."""
    from pathlib import Path

    from llmctl.deploy.base import Context
    from llmctl.targets.kubernetes.apply import KubernetesDriver, kubectl_base
    from llmctl.targets.systemd.apply import SystemdDriver

    opts = {"kubeconfig": "/k/config", "context": "prod", "namespace": "llm"}
    assert kubectl_base(opts) == ["kubectl", "--kubeconfig", "/k/config", "--context", "prod", "--namespace", "llm"]
    ctx = Context(spec_path=Path("/s.yaml"), slug="x", dir=Path("/tmp/x"), options=opts)
    argv = KubernetesDriver().logs_argv(ctx, {"kind": "deployment", "name": "x"}, lines=5, follow=True)
    assert argv == [*kubectl_base(opts), "logs", "deployment/x", "--tail=5", "--all-containers", "--prefix", "--follow"]
    argv = SystemdDriver().logs_argv(ctx, {"user": True, "unit": "x.service"}, lines=7, follow=False)
    assert argv[:2] == ["journalctl", "--user"] and "x.service" in argv and "7" in argv and "--follow" not in argv


def test_run_with_progress_shows_the_commands_lines_and_is_bounded(capsys):
    """A command that waits by itself (as `kubectl rollout status` does): its lines become the
    progress status, its exit code and output come back, and it is killed past its budget."""
    from llmctl.deploy.progress import run_with_progress
    from llmctl.errors import CheckFailed

    code, out = run_with_progress([sys.executable, "-c", "print('Waiting for 1 of 2 pods'); print('rolled out')"],
                                  what="rollout of deployment/x", budget_s=30)
    assert code == 0 and out == "Waiting for 1 of 2 pods\nrolled out\n"
    err = capsys.readouterr().err
    assert "rollout of deployment/x [" in err and "of 30s" in err and "Waiting for 1 of 2 pods" in err
    with pytest.raises(CheckFailed, match="did not finish within 2s"):
        run_with_progress([sys.executable, "-c", "import time; time.sleep(60)"], what="stuck", budget_s=1, grace_s=1)
