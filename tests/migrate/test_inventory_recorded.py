"""Inventory and translation of a running Ollama, read through its native API.

Ollama cannot be installed here (no package in any reachable registry), so its `/api/*` answers are
played by a local HTTP server from tests/migrate/recorded/, whose shapes are Ollama v0.32.15's own
(api/types.go ShowResponse, ListResponse, ProcessResponse; see recorded/README.md). The loaded model's
Modelfile has SYSTEM, PARAMETER temperature, num_ctx and stop: each must appear in the translation
report as carried, with where it now lives. The command runs as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from support.cli import run_llmctl

sys.path.insert(0, str(Path(__file__).parent))
from recorded_ollama import RecordedOllama  # noqa: E402

from llmctl.spec import load_spec  # noqa: E402


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    out = tmp_path_factory.mktemp("mig") / "acme"
    with RecordedOllama() as srv:
        r = run_llmctl("migrate", "ollama-to-vllm", "--from", srv.url, "--hardware", "L4", "--out", str(out),
                       timeout=120)
        requests = list(srv.requests)
    assert r.code == 0, r.output
    return out, r, requests


def test_reads_every_endpoint_read_only(migrated):
    _, _, requests = migrated
    paths = [(m, p) for m, p, _ in requests]
    assert ("GET", "/api/version") in paths and ("GET", "/api/tags") in paths and ("GET", "/api/ps") in paths
    shows = [b for m, p, b in requests if p == "/api/show"]
    # one /api/show per tag, each as ShowRequest {"model", "verbose": false}
    assert sorted(b["model"] for b in shows) == ["acme-bot:latest", "llama3.2:1b", "nomic-embed-text:latest"]
    assert all(b["verbose"] is False for b in shows)
    assert all(m in ("GET", "POST") and p.startswith("/api/") for m, p in paths)


def test_inventory_json(migrated):
    out, _, _ = migrated
    inv = json.loads((out / "inventory.json").read_text())
    assert inv["schema"] == "llmctl.migrate.inventory/v1"
    assert inv["source"]["kind"] == "url" and inv["server"]["version"] == "0.32.15"
    acme = next(m for m in inv["models"] if m["name"] == "acme-bot:latest")
    assert acme["parameters"]["num_ctx"] == 8192 and acme["parameters"]["temperature"] == 0.7
    assert acme["parameters"]["stop"] == ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    assert acme["system"].startswith("You are the ACME help desk")
    assert acme["parent_model"] == "llama3.2:1b"
    assert acme["loaded"] == {"context_length": 8192, "size_vram": 2091106304}
    assert acme["capabilities"] == ["completion", "tools"]
    assert acme["model_info"]["llama.block_count"] == 16
    embed = next(m for m in inv["models"] if m["name"] == "nomic-embed-text:latest")
    assert embed["capabilities"] == ["embedding"] and embed["loaded"] is None


def _items(out: Path) -> dict[str, dict]:
    doc = json.loads((out / "decisions.json").read_text())
    assert doc["schema"] == "llmctl.migrate.decisions/v1"
    return {i["item"]: i for i in doc["models"][0]["items"]}


def test_modelfile_settings_are_carried_with_where(migrated):
    out, _, _ = migrated
    items = _items(out)
    expect = {
        "SYSTEM": "front.json models[].system",
        "PARAMETER temperature": "--override-generation-config",
        "PARAMETER num_ctx": "--max-model-len",
        "PARAMETER stop": "front.json models[].options.stop",
    }
    report = (out / "report.md").read_text()
    for name, where in expect.items():
        assert items[name]["status"] == "carried", items[name]
        assert where in items[name]["where"]
        row = next(line for line in report.splitlines() if line.startswith(f"| {name} |"))
        assert "| carried |" in row and where in row
    assert items["PARAMETER repeat_penalty"]["status"] == "approximated"
    assert "repeat_last_n" in items["PARAMETER repeat_penalty"]["reason"]
    assert items["MESSAGE"]["status"] == "carried"
    assert items["quantization"]["ollama"] == "Q8_0" and items["quantization"]["vllm"] == "BF16"
    assert items["OLLAMA_KEEP_ALIVE"]["status"] == "dropped" and items["OLLAMA_KEEP_ALIVE"]["reason"]


def test_vllm_side_is_an_ordinary_spec_and_renders_the_flags(migrated):
    out, r, _ = migrated
    spec = load_spec(out / "vllm.yaml")
    assert spec.model == "meta-llama/Llama-3.2-1B-Instruct"
    assert spec.overrides.backend == "vllm" and spec.overrides.max_model_len == 8192
    assert spec.serving.served_names == ["acme-bot:latest", "acme-bot"]
    assert spec.serving.generation.given() == {"temperature": 0.7, "top_p": 0.9, "repetition_penalty": 1.1}
    plan = json.loads((out / "plan.json").read_text())
    assert plan["backend"] == "vllm" and plan["max_model_len"] == 8192
    compose = (out / "deploy" / "compose.yaml").read_text()
    for flag in ('"--served-model-name"\n      - "acme-bot:latest"\n      - "acme-bot"', '"--generation-config"\n      - "vllm"',
                 '"--max-num-queued-reqs"\n      - "512"', '"--tool-call-parser"\n      - "llama3_json"'):
        assert flag in compose
    assert "--override-generation-config" in r.stdout


def test_front_config(migrated):
    out, _, _ = migrated
    front = json.loads((out / "front.json").read_text())
    assert front["schema"] == "llmctl.migrate.front/v1" and front["version"] == "0.32.15"
    assert front["backend"] == "http://127.0.0.1:8000"
    m = front["models"][0]
    assert m["name"] == "acme-bot:latest" and m["served_name"] == "acme-bot:latest" and m["aliases"] == ["acme-bot"]
    assert m["options"]["stop"][-1] == "<|eot_id|>" and m["options"]["seed"] == 42 and m["options"]["num_ctx"] == 8192
    assert m["system"].startswith("You are the ACME") and len(m["messages"]) == 2
    assert m["show"]["details"]["parent_model"] == "llama3.2:1b" and m["context_length"] == 8192


def test_mapping_yaml(migrated):
    from ruamel.yaml import YAML

    out, _, _ = migrated
    doc = YAML(typ="safe").load((out / "mapping.yaml").read_text())
    acme = doc["models"]["acme-bot:latest"]
    assert acme["hf_repo"] == "meta-llama/Llama-3.2-1B-Instruct" and acme["confidence"] == "catalog"
    assert "parent_model" in acme["how"]


def test_second_run_refuses_to_overwrite_then_force(migrated):
    out, _, _ = migrated
    before = (out / "decisions.json").read_text()
    with RecordedOllama() as srv:
        r = run_llmctl("migrate", "ollama-to-vllm", "--from", srv.url, "--hardware", "L4", "--out", str(out))
        assert r.code == 2 and "already holds" in r.stderr and "--force" in r.stderr, r.output
        assert (out / "decisions.json").read_text() == before
        r = run_llmctl("migrate", "ollama-to-vllm", "--from", srv.url, "--hardware", "L4", "--out", str(out),
                       "--force", "-o", "json")
    assert r.code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["schema"] == "llmctl.migrate.decisions/v1" and doc["models"][0]["tag"] == "acme-bot:latest"


def test_choosing_another_model_and_no_front(tmp_path):
    with RecordedOllama() as srv:
        r = run_llmctl("migrate", "ollama-to-vllm", "--from", srv.url, "--hardware", "L4", "--out", str(tmp_path / "o"),
                       "--model", "llama3.2:1b", "--no-keep-ollama-api", "-o", "yaml")
    assert r.code == 0, r.output
    assert "schema: llmctl.migrate.decisions/v1" in r.stdout
    assert not (tmp_path / "o" / "front.json").exists()
    spec = load_spec(tmp_path / "o" / "vllm.yaml")
    assert spec.serving.served_names[0] == "llama3.2:1b"
    assert spec.serving.generation.given() == {}  # the pulled tag sets only stop tokens


def test_unmapped_tag_shows_the_map_to_write(tmp_path):
    import shutil

    from recorded_ollama import RECORDED

    folder = tmp_path / "rec"
    shutil.copytree(RECORDED, folder)
    tags = json.loads((folder / "tags.json").read_text())
    tags["models"][0]["name"] = tags["models"][0]["model"] = "mystery:latest"
    (folder / "tags.json").write_text(json.dumps(tags))
    show = json.loads((folder / "show" / "llama3.2_1b.json").read_text())
    (folder / "show" / "mystery_latest.json").write_text(json.dumps(show))
    with RecordedOllama(folder) as srv:
        r = run_llmctl("migrate", "ollama-to-vllm", "--from", srv.url, "--model", "mystery", "--hardware", "L4",
                       "--out", str(tmp_path / "o"))
        assert r.code == 2 and "--map mystery:latest=ORG/REPO" in r.stderr and "Traceback" not in r.output, r.output
        r = run_llmctl("migrate", "ollama-to-vllm", "--from", srv.url, "--model", "mystery", "--hardware", "L4",
                       "--out", str(tmp_path / "o"), "--map", "mystery:latest=meta-llama/Llama-3.2-1B-Instruct")
    assert r.code == 0, r.output
    assert "(user)" in r.stdout


def test_several_models_without_a_loaded_one_ask_for_model(tmp_path):
    import shutil

    from recorded_ollama import RECORDED

    folder = tmp_path / "rec"
    shutil.copytree(RECORDED, folder)
    (folder / "ps.json").write_text('{"models": []}')
    with RecordedOllama(folder) as srv:
        r = run_llmctl("migrate", "ollama-to-vllm", "--from", srv.url, "--hardware", "L4", "--out", str(tmp_path / "o"))
    assert r.code == 2 and "choose with --model" in r.stderr, r.output


@pytest.mark.e2e
def test_vllm_own_parser_accepts_the_migrated_command_line(migrated, vllm_argv_oracle):
    """vLLM's own argument parser and start-up checks (in the vLLM venv) judge the command line the
    migration rendered: every name, the generation defaults, the queue limit, the tool parser."""
    out, _, _ = migrated
    doc = json.loads((out / "decisions.json").read_text())
    argv = ["vllm", "serve", *doc["models"][0]["vllm_args"]]
    [verdict] = vllm_argv_oracle([argv])
    assert verdict.ok and verdict.stage == "done", str(verdict)


def test_a_jinja_template_is_carried(tmp_path):
    tpl = tmp_path / "acme.jinja"
    tpl.write_text("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}<|assistant|>")
    out = tmp_path / "o"
    with RecordedOllama() as srv:
        r = run_llmctl("migrate", "ollama-to-vllm", "--from", srv.url, "--hardware", "L4", "--out", str(out),
                       "--chat-template", str(tpl))
        assert r.code == 0, r.output
        bad = tmp_path / "go.tmpl"
        bad.write_text("{{ if .System }}{{ .System }}{{ end }}\n{% if %}")
        r2 = run_llmctl("migrate", "ollama-to-vllm", "--from", srv.url, "--hardware", "L4",
                        "--out", str(tmp_path / "o2"), "--chat-template", str(bad))
    assert r2.code == 2 and f"{bad}:" in r2.stderr and "Jinja" in r2.stderr, r2.output
    assert (out / "chat-template.jinja").read_text() == tpl.read_text()
    items = _items(out)
    assert items["TEMPLATE"]["status"] == "carried" and "--chat-template" in items["TEMPLATE"]["where"]
    spec = load_spec(out / "vllm.yaml")
    assert spec.serving.chat_template == str((out / "chat-template.jinja").resolve())
    compose = (out / "deploy" / "compose.yaml").read_text()
    assert '"--chat-template"\n      - "/chat-template/chat-template.jinja"' in compose
    assert f'source: "{out.resolve()}"' in compose and 'target: "/chat-template"' in compose
