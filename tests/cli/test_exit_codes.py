"""The exit-code table of the README, row by row: every case listed there runs here, through the
real `llmctl` command line, and gets the code the table promises (0 ok, 1 a check failed, 2 bad
input, 130 interrupted). A test also checks that the README lists exactly these cases."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.cli import run_llmctl
from support.net import free_port

ROOT = Path(__file__).resolve().parents[2]
CHATBOT = ROOT / "examples" / "chatbot.yaml"
CPU_NODE = "hardware:\n  - cpu: cpu-ddr5-2ch\n    memory_gb: 16\n"


def _spec(tmp: Path, text: str, name: str = "s.yaml") -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


def _sla_miss(tmp: Path) -> list[str]:
    return ["plan", _spec(tmp, CHATBOT.read_text().replace("itl_p95_ms: 75", "itl_p95_ms: 5"))]


def _port_taken(tmp: Path, holder: list) -> list[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    holder.append(sock)
    port = sock.getsockname()[1]
    return ["doctor", _spec(tmp, f"name: d\nmodel: llama3.1:8b\ntarget: local\n{CPU_NODE}endpoint:\n  port: {port}\n")]


def _foreign_plan(tmp: Path) -> list[str]:
    plan = tmp / "plan.json"
    plan.write_text(run_llmctl("plan", str(CHATBOT), "-o", "json").stdout)
    return ["render", str(ROOT / "examples" / "team-rtx4090.yaml"), "--plan", str(plan), "--out", str(tmp / "out")]


# README row id -> (argv maker, exit code, text the message must contain)
CASES = {
    "plan meets the SLA": (lambda t, h: ["plan", str(CHATBOT)], 0, "PASS"),
    "render writes files": (lambda t, h: ["render", str(CHATBOT), "--out", str(t / "out")], 0, "wrote"),
    "plan cannot work": (lambda t, h: ["plan", _spec(t, f"name: x\nmodel: llama3.1:70b\n{CPU_NODE}overrides:\n  backend: vllm\n")],
                         1, "cannot work"),
    "plan misses the SLA": (lambda t, h: _sla_miss(t), 1, "misses the SLA"),
    "doctor finds a failure": (_port_taken, 1, "Address already in use"),
    "smoke: nothing answers": (lambda t, h: ["smoke", "--url", f"http://127.0.0.1:{free_port()}", "--model", "m"], 1,
                               "connection refused"),
    "smoke SPEC: not deployed": (lambda t, h: ["smoke", _spec(t, f"name: nd\nmodel: llama3.1:8b\n{CPU_NODE}")], 1,
                                 "not deployed"),
    "status: not deployed": (lambda t, h: ["status", _spec(t, f"name: nd\nmodel: llama3.1:8b\ntarget: local\n{CPU_NODE}")],
                             1, "not deployed"),
    "logs: not deployed": (lambda t, h: ["logs", _spec(t, f"name: nd\nmodel: llama3.1:8b\ntarget: local\n{CPU_NODE}")],
                           1, "not deployed"),
    "invalid YAML": (lambda t, h: ["plan", _spec(t, "name: [x\n")], 2, "not valid YAML"),
    "unknown key": (lambda t, h: ["plan", _spec(t, "name: x\nmodel: llama3.1:8b\nworkload:\n  concurency: 2\n")], 2,
                    "did you mean 'concurrency'"),
    "wrong type": (lambda t, h: ["plan", _spec(t, "name: x\nmodel: llama3.1:8b\nworkload:\n  concurrency: true\n")], 2,
                   "expected a whole number"),
    "unknown model": (lambda t, h: ["plan", _spec(t, "name: x\nmodel: nosuchmodel:7b\n")], 2, "s.yaml:2: model"),
    "spec too large": (lambda t, h: ["plan", _spec(t, "#" * 2_000_000)], 2, "larger than"),
    "unknown flag": (lambda t, h: ["plan", str(CHATBOT), "--frobnicate"], 2, "No such option"),
    "--chart without --sweep": (lambda t, h: ["plan", str(CHATBOT), "--chart", str(t / "c.svg")], 2, "--sweep"),
    "render --plan of another spec": (lambda t, h: _foreign_plan(t), 2, "not made from this spec"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_exit_code(case: str, tmp_path: Path):
    make, code, text = CASES[case]
    held: list = []
    try:
        r = run_llmctl(*make(tmp_path, held), timeout=120)
    finally:
        for sock in held:
            sock.close()
    assert r.code == code, f"{case}: exit {r.code}\n{r.output[-2000:]}"
    assert text in r.output, f"{case}: {text!r} not in\n{r.output[-2000:]}"
    assert "Traceback" not in r.output


def test_interrupted_is_130(tmp_path: Path):
    """Ctrl-C (SIGINT) while smoke waits: exit 130 and `interrupted`, not a traceback."""
    import os

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts (the kernel does) and never answers
    port = listener.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "llmctl", "smoke", "--url", f"http://127.0.0.1:{port}", "--model", "m"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stderr.readline().startswith("smoke: testing")  # it is running
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        listener.close()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err


def test_readme_table_lists_exactly_these_cases():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Exit codes", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([^`]+)` \(exit (\d+)\)", section))
    expected = {(case, str(code)) for case, (_, code, _) in CASES.items()} | {("Ctrl-C", "130")}
    assert listed == expected, (sorted(listed - expected), sorted(expected - listed))
