"""A spec whose `name:` changed after `up`: status, down and up still find the deployment made under
the old name (its state beside the spec names the same spec file), so it is never orphaned."""

from __future__ import annotations

import json

from support.cli import run_llmctl
from support.net import free_port

from deploy.conftest import write_spec
from llmctl.deploy.state import State, deployment_dir, renamed_deployments


def _old_state(spec: str, name: str, slug: str, port: int) -> None:
    folder = deployment_dir(spec, slug)
    folder.mkdir(parents=True)
    State(name=name, slug=slug, target="local", spec=str(__import__("pathlib").Path(spec).resolve()), hash="x",
          active={"color": "blue", "dir": str(folder / "blue"), "port": port, "pid": 2**22 + 7, "start_ticks": 1,
                  "argv": ["llama-server"], "log": str(folder / "blue" / "engine.log"), "env": {}, "secret_keys": []},
          url=f"http://127.0.0.1:{port}", model="m", engine="llama.cpp").save(folder)


def test_renamed_deployment_is_reported_and_removed(tiny_gguf, tmp_path):
    port = free_port()
    spec = write_spec(tmp_path / "llmctl.yaml", model=str(tiny_gguf), port=port, target="local", name="new name")
    _old_state(spec, "old name", "old-name", port)
    assert [s.name for _, s in renamed_deployments(spec, "new-name")] == ["old name"]

    r = run_llmctl("status", spec, "--output", "json")
    assert r.code == 1, r.output
    data = json.loads(r.stdout)
    assert data["deployed"] is False and data["renamed"][0]["name"] == "old name"
    r = run_llmctl("status", spec)
    assert "deployed as 'old name'" in r.stdout and "llmctl down" in r.stdout

    r = run_llmctl("down", spec)
    assert r.code == 0, r.output
    assert renamed_deployments(spec, "new-name") == []
    assert not (deployment_dir(spec, "old-name") / "state.json").exists()
