"""The kubernetes target. No Kubernetes API server can run on the build machines, so these tests check
what can be checked without one: the exact kubectl command lines `up` builds, the Secret it applies
from memory, and — with the real kubectl binary and an empty kubeconfig — the message for a missing
context, and for a missing kubectl."""

from __future__ import annotations

import shutil

from deploy.conftest import require, write_spec
from llmctl.targets.kubernetes import apply as k
from support.cli import run_llmctl


def test_apply_rollout_port_forward_and_delete_argv():
    opts = {"context": "prod-eu", "namespace": "llm"}
    base = ["kubectl", "--context", "prod-eu", "--namespace", "llm"]
    assert k.apply_argv(opts, "/d") == [*base, "apply", "--server-side", "--field-manager=llmctl", "-f", "/d"]
    assert k.apply_argv({}, "-") == ["kubectl", "apply", "--server-side", "--field-manager=llmctl", "-f", "-"]
    assert k.rollout_argv(opts, "deployment", "tiny", 600.7) == [*base, "rollout", "status", "deployment/tiny",
                                                                   "--timeout=600s"]
    assert k.port_forward_argv(opts, "tiny", 5000, 8080) == [*base, "port-forward", "--address", "127.0.0.1",
                                                             "service/tiny", "5000:8080"]
    assert k.delete_argv({}, ["/d/a.yaml", "/d/b.yaml"]) == ["kubectl", "delete", "--ignore-not-found", "--wait=false",
                                                            "-f", "/d/a.yaml", "-f", "/d/b.yaml"]


def test_secret_manifest_holds_values_only_in_memory():
    from llmctl.service import Health, SecretRef, ServiceSpec

    svc = ServiceSpec(name="n", slug="tiny", engine="vllm", image="i", argv=["x"], served_model_name="m",
                      health=Health(path="/health", port=8000, startup_timeout_s=60),
                      secrets=[SecretRef(env="VLLM_API_KEY", key="VLLM_API_KEY")], labels={"a": "b"})
    m = k.secret_manifest(svc, {"VLLM_API_KEY": "v"})
    assert m["metadata"]["name"] == "tiny-secrets"  # the name the rendered pods reference
    assert m["stringData"] == {"VLLM_API_KEY": "v"} and m["kind"] == "Secret"


def test_missing_context_is_a_clear_message(tmp_path, tiny_gguf):
    require(shutil.which("kubectl"), "kubectl is not on PATH")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("")
    spec = write_spec(tmp_path / "llmctl.yaml", model=str(tiny_gguf), port=18080, target="kubernetes")
    r = run_llmctl("up", spec, env={"KUBECONFIG": str(kubeconfig)})
    assert r.code == 1, r.output
    assert "kubectl has no current context" in r.stderr and "kubectl config use-context" in r.stderr
    assert "Traceback" not in r.output
    r = run_llmctl("up", spec, "--context", "nowhere", env={"KUBECONFIG": str(kubeconfig)})
    assert r.code == 1 and "context 'nowhere' does not exist" in r.stderr, r.output
    assert not (tmp_path / ".llmctl").exists() or not list((tmp_path / ".llmctl").rglob("*.yaml"))


def test_missing_kubectl_is_a_clear_message(tmp_path, tiny_gguf):
    import os
    import sys

    spec = write_spec(tmp_path / "llmctl.yaml", model=str(tiny_gguf), port=18080, target="kubernetes")
    empty = tmp_path / "bin"
    empty.mkdir()
    r = run_llmctl("up", spec, env={"PATH": str(empty) + os.pathsep + os.path.dirname(sys.executable)})
    assert r.code == 1, r.output
    assert "kubectl is not installed" in r.stderr
