"""`render -n NS`: every Kubernetes object carries the namespace (validated by kubernetes-validate),
the Secret command names it, and a bad name or a target without namespaces is refused."""

from __future__ import annotations

import pytest
from render_plans import case
from render_tools import kube_validate, write_all
from ruamel.yaml import YAML

from llmctl.errors import InputError
from llmctl.render import build_service, render_service
from llmctl.targets import RenderOptions

load = YAML(typ="safe", pure=True).load


def test_every_object_in_the_namespace(tmp_path):
    service = build_service(*case("vllm-tp4-fp8-lora"))
    opts = RenderOptions(namespace="llm", colour="blue", shift={"blue": 100}, gateway="infra/public")
    files = render_service(service, "kubernetes", opts).files
    kube_validate(write_all(tmp_path, files))
    for name, text in files.items():
        for doc in YAML(typ="safe", pure=True).load_all(text):
            assert doc["metadata"]["namespace"] == "llm", name
    assert any(n.startswith("create the Secret first") and n.endswith(" -n llm") for n in opts.notes)
    plain = render_service(service, "kubernetes").files
    assert "namespace" not in load(plain["deployment.yaml"])["metadata"]


@pytest.mark.parametrize("bad", ["LLM", "-llm", "llm_prod", "a" * 64, ""])
def test_bad_namespace_refused(bad):
    service = build_service(*case("vllm-1gpu"))
    with pytest.raises(InputError, match="--namespace"):
        render_service(service, "kubernetes", RenderOptions(namespace=bad))


def test_namespace_for_compose_refused():
    service = build_service(*case("vllm-1gpu"))
    with pytest.raises(InputError, match="compose files have no namespace"):
        render_service(service, "compose", RenderOptions(namespace="llm"))
