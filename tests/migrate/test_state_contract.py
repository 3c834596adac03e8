"""The out folder the dry run writes is what `--apply` reads: the dry run runs against the recorded
Ollama answers (tests/migrate/recorded_ollama.py; Ollama cannot be installed here), then the apply
side reads its inventory.json and front.json, judges the weights, checks GPU room from its plan.json
and builds the new side's command line from its vllm.yaml + plan.json — nothing is started."""

from __future__ import annotations

import sys
from pathlib import Path

from support.cli import run_llmctl

sys.path.insert(0, str(Path(__file__).parent))
from recorded_ollama import RecordedOllama  # noqa: E402

from llmctl.migrate.apply import _Context, memory_fit, read_front, read_inventory, weights_kind  # noqa: E402
from llmctl.migrate.state import Migration  # noqa: E402


def test_apply_reads_what_the_dry_run_writes(tmp_path):
    out = tmp_path / "acme"
    with RecordedOllama() as srv:
        r = run_llmctl("migrate", "ollama-to-vllm", "--from", srv.url, "--hardware", "L4", "--out", str(out),
                       timeout=120)
        url = srv.url
    assert r.code == 0, r.output
    inv = read_inventory(out)
    front = read_front(out)
    assert inv["source"]["url"].rstrip("/") == url.rstrip("/")
    assert front is not None and {m["name"] for m in front["models"]} <= {m["name"] for m in inv["models"]}
    assert weights_kind(inv["models"][0]) in ("same", "quantized")
    import json

    plan = json.loads((out / "plan.json").read_text())
    fit = memory_fit(plan, inv)
    assert "GiB" in fit["detail"]  # a GPU plan: the room beside Ollama is computed, not skipped
    ctx = _Context(out, Migration.load_or_create(out), inv, front, lambda _s: None, python=None, new_url=None,
                   old_url=None, old_api_url=None, bind="127.0.0.1", port=None)
    argv, new_url, _env = ctx._new_command()
    assert argv[:2] == ["vllm", "serve"] and "--port" in argv and new_url.startswith("http://127.0.0.1:")
    assert argv[argv.index("--port") + 1] == new_url.rsplit(":", 1)[1]
    served = argv[argv.index("--served-model-name") + 1:]
    assert front["models"][0]["served_name"] in served  # the front calls the name vLLM serves


def test_apply_without_gpu_room_says_so_and_starts_nothing(tmp_path):
    """`ollama-to-vllm --apply` on an L4 where Ollama already holds its models (recorded /api/ps
    size_vram): exit 1, the options named, the refusal recorded, nothing started."""
    out = tmp_path / "acme"
    with RecordedOllama() as srv:
        r = run_llmctl("migrate", "ollama-to-vllm", "--from", srv.url, "--hardware", "L4", "--out", str(out),
                       "--apply", timeout=120)
    assert r.code == 1, r.output
    assert "cannot start beside Ollama" in r.stderr and "planned-downtime swap" in r.stderr
    assert "Traceback" not in r.output
    m = Migration.load(out)
    assert m.step("checked")["status"] == "failed" and m.data["started"] == []
