"""No secret value reaches a rendered file: planted tokens in the environment during render."""

from __future__ import annotations

import pytest
from render_plans import CASES, case

from llmctl.errors import CheckFailed
from llmctl.render import build_service, render_service
from llmctl.targets import RenderOptions

PLANTED = {
    "HF_TOKEN": "hf_PLANTEDtokenVALUE1234567890",
    "VLLM_API_KEY": "sk-planted-vllm-key-0987654321",
    "LLAMA_API_KEY": "sk-planted-llama-key-1122334455",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_planted_secrets_never_rendered(name, monkeypatch):
    for k, v in PLANTED.items():
        monkeypatch.setenv(k, v)
    plan, spec = case(name)
    service = build_service(plan, spec)
    targets = ["kubernetes"] if plan.gpu.nodes_per_replica > 1 else ["compose", "systemd", "kubernetes"]
    seen_refs = set()
    for target in targets:
        for runtime in ("docker", "native") if target == "systemd" else ("docker",):
            files = render_service(service, target, RenderOptions(runtime=runtime)).files
            blob = "\n".join(files.values())
            for value in PLANTED.values():
                assert value not in blob
            seen_refs |= {s.env for s in service.secrets if s.env in blob}
    # the secrets are referenced by name (env file / secretKeyRef), so the check above is not vacuous
    assert seen_refs == {s.env for s in service.secrets}
    if plan.environment != "development" and plan.backend in ("vllm", "llama.cpp"):
        assert {"VLLM_API_KEY", "LLAMA_API_KEY"} & seen_refs


def test_kubernetes_uses_secret_key_refs():
    plan, spec = case("vllm-1gpu")
    files = render_service(build_service(plan, spec), "kubernetes").files
    assert "secretKeyRef" in files["deployment.yaml"] and '"chat-secrets"' in files["deployment.yaml"]
    assert "kind: \"Secret\"" not in "".join(files.values())


def test_compose_references_env_file_and_example_lists_names_only(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", PLANTED["HF_TOKEN"])
    plan, spec = case("vllm-1gpu")
    files = render_service(build_service(plan, spec), "compose").files
    assert 'path: "chat.env"' in files["compose.yaml"]
    example = files["chat.env.example"]
    assert "VLLM_API_KEY=\n" in example and "HF_TOKEN=\n" in example


def test_leak_guard_refuses_a_file_that_would_contain_a_secret(monkeypatch):
    """If a secret's value ever reached a file (here: the value is also the served model name), render stops."""
    from render_plans import make_plan, make_spec

    token = "hf_SECRETVALUE_AS_MODEL_NAME"
    monkeypatch.setenv("HF_TOKEN", token)
    service = build_service(make_plan(reference=token, hf_id=token), make_spec())
    with pytest.raises(CheckFailed, match="HF_TOKEN"):
        render_service(service, "compose")


def test_api_key_only_outside_development():
    dev = build_service(*case("vllm-dev-cpu"))
    prod = build_service(*case("vllm-1gpu"))
    assert "VLLM_API_KEY" not in {s.env for s in dev.secrets}
    assert "VLLM_API_KEY" in {s.env for s in prod.secrets}


def test_compose_config_passes_as_written_without_the_env_file(tmp_path, monkeypatch):
    """`docker compose config` on the rendered folder, nothing added: the env file is optional to compose;
    the secret values only ever live in the 0600 file `up` writes."""
    from render_tools import compose_config

    for k, v in PLANTED.items():
        monkeypatch.setenv(k, v)
    files = render_service(build_service(*case("vllm-1gpu")), "compose").files
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert not (tmp_path / "chat.env").exists()
    model = compose_config(tmp_path)
    assert model["services"]["chat"]["env_file"][0]["required"] is False
    assert not any(v in (tmp_path / n).read_text() for n in files for v in PLANTED.values())
