"""Output on a terminal: colour that NO_COLOR and --no-color turn off, tables that fit the width
(COLUMNS), `-o wide` showing everything, and numbers and counts written for people."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from support.cli import run_llmctl

ROOT = Path(__file__).resolve().parents[2]
CHATBOT = str(ROOT / "examples" / "chatbot.yaml")
GREEN_PASS = "\x1b[32mPASS\x1b[0m"


def _on_a_tty(*args: str, env: dict[str, str] | None = None) -> str:
    """Run llmctl with stdout on a pseudo-terminal; what it printed there."""
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "llmctl", *args], stdout=child, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL,
                            env={**{k: v for k, v in os.environ.items() if k != "NO_COLOR"}, "COLUMNS": "200", **(env or {})})
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(main)
    return b"".join(chunks).decode("utf-8", "replace")


def test_colour_on_a_terminal_and_not_with_no_color():
    assert GREEN_PASS in _on_a_tty("plan", CHATBOT, env={"TERM": "xterm"})
    assert "\x1b[" not in _on_a_tty("plan", CHATBOT, env={"NO_COLOR": "1", "TERM": "xterm"})
    assert "\x1b[" not in _on_a_tty("--no-color", "plan", CHATBOT, env={"TERM": "xterm"})
    assert "\x1b[" not in _on_a_tty("plan", CHATBOT, "--no-color", env={"TERM": "xterm"})  # after the command too
    r = run_llmctl("plan", CHATBOT)  # a pipe: never colour
    assert "\x1b[" not in r.stdout


@pytest.mark.parametrize("args", [["plan", CHATBOT], ["plan", CHATBOT, "--compare"], ["plan", CHATBOT, "--explain"],
                                  ["plan", CHATBOT, "--sweep", "concurrency=1,8,64"], ["doctor"]])
def test_tables_fit_the_terminal_width_and_wide_shows_all(args):
    r = run_llmctl(*args, env={"COLUMNS": "80"})
    assert r.code in (0, 1), r.stderr
    too_long = [line for line in r.stdout.splitlines() if len(line) > 80]
    assert not too_long, too_long[:3]
    wide = run_llmctl(*args, "-o", "wide", env={"COLUMNS": "80"})
    assert max(len(line) for line in wide.stdout.splitlines()) > 80
    assert "-o wide shows all" not in wide.stdout


def test_counts_and_numbers_read_as_words():
    from llmctl.term import count, num

    assert count(1, "full-length request") == "1 full-length request"
    assert count(2, "replica") == "2 replicas" and count(123.33, "request") == "123 requests" and count(12.34, "request") == "12.3 requests"
    assert num(4468220.0) == "4,468,220" and num(4.46822e6 + 0.5) == "4,468,220"
    assert num(0.04213) == "0.0421" and num(58.97) == "59" and num(7.5) == "7.5"
    r = run_llmctl("plan", str(ROOT / "examples" / "laptop-cpu.yaml"))
    assert "1 full-length request;" in r.stdout and "1 replica of CPU" in r.stdout and "e+0" not in r.stdout


def test_help_is_clicks_text_served_from_a_cache(tmp_path: Path):
    """`llmctl --help` prints exactly what click renders (compared with a run that goes through
    click), from a cache after the first time, without importing click; another width is another
    entry; an unwritable cache only costs speed."""
    import subprocess

    env = {"LLMCTL_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "80"}
    first = run_llmctl("--help", env=env)
    assert first.code == 0 and "Commands:" in first.stdout
    assert len(list((tmp_path / "cache").glob("help-*.txt"))) == 1
    live = run_llmctl("--no-color", "--help", env=env)  # not the fast path: click renders it
    assert first.stdout == live.stdout
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "llmctl", "--help"], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)
    assert proc.stdout == first.stdout
    assert not [ln for ln in proc.stderr.splitlines() if ln.rstrip().endswith(("| click", "| click.core"))]
    narrow = run_llmctl("-h", env={**env, "COLUMNS": "60"})
    assert narrow.stdout != first.stdout and len(list((tmp_path / "cache").glob("help-*.txt"))) == 2
    blocked = tmp_path / "file"
    blocked.write_text("")
    r = run_llmctl("--help", env={"LLMCTL_CACHE_DIR": str(blocked / "sub"), "COLUMNS": "80"})
    assert r.code == 0 and r.stdout == first.stdout
