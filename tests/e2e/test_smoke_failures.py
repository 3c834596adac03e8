"""`llmctl smoke` when nothing answers, and bad input: clear messages, the right exit codes, no hang."""

from __future__ import annotations

import json

from support.cli import run_llmctl
from support.net import free_port


def test_nothing_listening_fails_clearly_and_quickly():
    port = free_port()  # nothing listens here
    r = run_llmctl("smoke", "--url", f"http://127.0.0.1:{port}", "--model", "tiny", "--timeout", "3",
                   timeout=60)
    assert r.code == 1, r.output
    assert r.seconds < 30, f"took {r.seconds:.1f}s"
    assert "Traceback" not in r.output
    assert "ready" in r.stdout and "FAIL" in r.stdout
    assert "cannot connect" in r.stdout
    assert f"127.0.0.1:{port}" in r.stdout
    assert "failed: smoke test of" in r.stderr


def test_nothing_listening_json_marks_later_checks_not_run():
    port = free_port()
    r = run_llmctl("smoke", "--url", f"http://127.0.0.1:{port}/v1/", "--model", "tiny", "--timeout", "2",
                   "--output", "json", timeout=60)
    assert r.code == 1
    report = json.loads(r.stdout)
    assert report["ok"] is False
    assert report["base_url"] == f"http://127.0.0.1:{port}"  # the trailing /v1/ was accepted
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["ready"] == "fail"
    assert statuses["chat completion"] == "skip"


def test_url_without_scheme_is_bad_input():
    r = run_llmctl("smoke", "--url", "127.0.0.1:8000", "--model", "tiny")
    assert r.code == 2
    assert "--url" in r.stderr and "Traceback" not in r.output


def test_missing_url_and_model_is_bad_input():
    r = run_llmctl("smoke")
    assert r.code == 2
    assert "--url and --model" in r.stderr


def test_unset_api_key_variable_is_bad_input():
    r = run_llmctl("smoke", "--url", "http://127.0.0.1:9", "--model", "m", "--api-key-env", "LLMCTL_NO_SUCH_VAR_X")
    assert r.code == 2
    assert "LLMCTL_NO_SUCH_VAR_X" in r.stderr


def test_bad_concurrency_is_bad_input():
    r = run_llmctl("smoke", "--url", "http://127.0.0.1:9", "--model", "m", "--concurrency", "0")
    assert r.code == 2
    assert "--concurrency" in r.stderr


def test_missing_spec_file_is_bad_input(tmp_path):
    r = run_llmctl("smoke", str(tmp_path / "nope.yaml"))
    assert r.code == 2
    assert "nope.yaml" in r.stderr and "Traceback" not in r.output
