"""What each engine and target puts in the files: flags, variables, probes, GPUs, hardening."""

from __future__ import annotations

import os
import subprocess
import textwrap

import pytest
from render_plans import case, make_plan, make_spec
from ruamel.yaml import YAML

from llmctl.engines.base import engine_profiles
from llmctl.render import build_service, render_service
from llmctl.targets import RenderOptions
from llmctl.typed import updated

load = YAML(typ="safe", pure=True).load


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_vllm_flags_follow_the_plan():
    plan, spec = case("vllm-tp4-fp8-lora")
    s = build_service(plan, spec)
    a = s.argv
    assert a[:3] == ["vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct"]
    assert flag(a, "--tensor-parallel-size") == "4" and flag(a, "--pipeline-parallel-size") == "1"
    assert flag(a, "--max-model-len") == "8192" and flag(a, "--gpu-memory-utilization") == "0.92"
    assert flag(a, "--max-num-seqs") == "16" and flag(a, "--quantization") == "fp8"
    assert flag(a, "--kv-cache-dtype") == "fp8" and "--enable-prefix-caching" in a
    assert flag(a, "--served-model-name") == "meta-llama/Llama-3.1-8B-Instruct"
    assert a[a.index("--lora-modules") + 1:a.index("--lora-modules") + 3] == ["sql=/adapters/sql-0", "chat-ft=org/chat-lora"]
    # neither adapter's rank can be read here: sized for ranks up to 64 (vLLM's default 16 would refuse more)
    assert flag(a, "--max-lora-rank") == "64"
    # in-flight requests drain on stop, and the target waits longer than the drain
    assert flag(a, "--shutdown-timeout") == "30" and s.stop_grace_s > 30
    assert {x.env for x in s.secrets} == {"VLLM_API_KEY", "HF_TOKEN"}
    assert s.resources.shm_size_gib == 16 and s.health.path == "/health" and s.metrics_path == "/metrics"
    assert s.ports[0].bind == "0.0.0.0" and s.ports[0].host == 9000


def test_images_are_pinned_and_overridable():
    for engine in ("vllm", "ollama", "llama.cpp"):
        for image in engine_profiles()[engine]["images"].values():
            tag = image.rsplit(":", 1)[-1]
            assert ":" in image and tag and tag != "latest", image
    s = build_service(make_plan(), make_spec(overrides={"image": "registry.local:5000/mirror/vllm:v0.11.0"}))
    assert s.image == "registry.local:5000/mirror/vllm:v0.11.0"


def test_ollama_environment_and_pull_before_serving():
    s = build_service(*case("ollama-gpu"))
    assert s.env["OLLAMA_HOST"] == "0.0.0.0:11434" and s.env["OLLAMA_NUM_PARALLEL"] == "16"
    assert s.env["OLLAMA_CONTEXT_LENGTH"] == "8192" and s.env["OLLAMA_KEEP_ALIVE"] == "-1"
    assert s.env["OLLAMA_MAX_LOADED_MODELS"] == "1"
    assert s.env["OLLAMA_FLASH_ATTENTION"] == "1" and s.env["OLLAMA_KV_CACHE_TYPE"] == "q8_0"
    assert s.argv[-1] == "llama3.1:8b" and s.volumes[0].mount == "/root/.ollama"


def test_ollama_entry_pulls_once_then_serves(tmp_path):
    """Runs the real entry script with a stand-in `ollama` (Ollama itself cannot run here: no network to
    its registry): the first start pulls on the private port before serving; a restart finds the model
    on the volume and does not pull again."""
    s = build_service(*case("ollama-gpu"))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    state = tmp_path / "models"
    state.mkdir()
    log = tmp_path / "log"
    up = tmp_path / "temporary-server-up"
    # like the real one, `ollama list` answers only once the (temporary) server is up
    (bindir / "ollama").write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "$* host=$OLLAMA_HOST" >> {log}
        case "$1" in
          serve) [ "$OLLAMA_HOST" = "127.0.0.1:11435" ] && touch {up} && exec sleep 30; exit 0 ;;
          list) [ -e {up} ] ;;
          show) [ -e "{state}/$2" ] ;;
          pull) touch "{state}/$2" ;;
        esac
        """))
    (bindir / "ollama").chmod(0o755)
    ready = tmp_path / "ready"
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "OLLAMA_HOST": s.env["OLLAMA_HOST"],
           "LLMCTL_READY_FILE": str(ready)}
    assert s.env["LLMCTL_READY_FILE"] and s.health.ready_command == ["test", "-f", s.env["LLMCTL_READY_FILE"]]
    runs = []
    for _ in range(2):
        up.unlink(missing_ok=True)  # each container start begins with no server running
        res = subprocess.run(s.argv, env=env, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert ready.exists()  # written once the model was loaded
        runs.append(log.read_text().splitlines())
        log.unlink()
    for n, lines in enumerate(runs):
        # the temporary server (private port) and, on the first start only, the pull come first
        temporary = lines.index("serve host=127.0.0.1:11435")
        pulls = [i for i, line in enumerate(lines) if line == "pull llama3.1:8b host=127.0.0.1:11435"]
        assert len(pulls) == (1 if n == 0 else 0)
        # then the real server starts and loads the model (`ollama run M ""` preloads) before the ready
        # file is written (the real server runs in the background: its own line may come at any point)
        assert "serve host=0.0.0.0:11434" in lines
        preload = lines.index("run llama3.1:8b  host=0.0.0.0:11434")
        assert preload > max([temporary, *pulls])


def test_llamacpp_flags():
    s = build_service(*case("llamacpp-local"))
    a = s.argv
    assert a[:3] == ["/app/llama-server", "-m", "/models/qwen2.5-0.5b-instruct-q4_k_m.gguf"]
    assert flag(a, "-c") == str(8192 * 16) and flag(a, "-np") == "16"
    # 24 repeating layers planned on the GPU, and the output layer llama.cpp counts as one more
    assert flag(a, "-ngl") == "25"
    assert "--metrics" in a and "--jinja" in a and flag(a, "--cache-type-k") == "q8_0"
    assert "--api-key" not in a and {x.env for x in s.secrets} == {"LLAMA_API_KEY"}
    assert s.health.path == "/health"
    native = s.native_argv
    assert flag(native, "-m") == "/srv/models/qwen2.5-0.5b-instruct-q4_k_m.gguf" and flag(native, "--host") == "127.0.0.1"


def test_compose_gpu_reservation_ports_volumes():
    s = build_service(*case("vllm-1gpu"))
    c = load(render_service(s, "compose").files["compose.yaml"])["services"]["chat"]
    dev = c["deploy"]["resources"]["reservations"]["devices"][0]
    assert dev == {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}
    assert c["ports"][0]["host_ip"] == "127.0.0.1" and c["shm_size"] == "2g"
    s2 = updated(s, gpu=updated(s.gpu, device_ids=["0", "3"]))
    c2 = load(render_service(s2, "compose").files["compose.yaml"])["services"]["chat"]
    assert c2["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == ["0", "3"]


def test_kubernetes_probes_gpus_nodes_security():
    s = build_service(*case("llamacpp-local"))
    files = render_service(s, "kubernetes").files
    dep = load(files["deployment.yaml"])
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] >= s.health.startup_timeout_s
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1 == c["resources"]["requests"]["nvidia.com/gpu"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 1000
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert dep["metadata"]["labels"]["app.kubernetes.io/instance"] == "chat"
    assert load(files["service.yaml"])["spec"]["type"] == "ClusterIP"
    vllm = load(render_service(build_service(*case("vllm-1gpu")), "kubernetes").files["deployment.yaml"])
    vpod = vllm["spec"]["template"]["spec"]
    assert vpod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    shm = [v for v in vpod["volumes"] if v["name"] == "dshm"][0]
    assert shm["emptyDir"]["medium"] == "Memory"


def test_kubernetes_autoscaler_and_monitor_when_replicas():
    files = render_service(build_service(*case("vllm-tp4-fp8-lora")), "kubernetes").files
    so = load(files["scaledobject.yaml"])
    assert so["spec"]["minReplicaCount"] == 3 < so["spec"]["maxReplicaCount"] and "vllm:num_requests_waiting" in so["spec"]["triggers"][0]["metadata"]["query"]
    pm = load(files["podmonitor.yaml"])
    assert pm["spec"]["podMetricsEndpoints"][0]["path"] == "/metrics"
    single = render_service(build_service(*case("vllm-1gpu")), "kubernetes").files
    assert "scaledobject.yaml" not in single and "podmonitor.yaml" not in single
    lws = load(render_service(build_service(*case("vllm-pp-2nodes")), "kubernetes").files["leaderworkerset.yaml"])
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == 2


@pytest.mark.parametrize("runtime", ["docker", "native"])
def test_systemd_unit_settings(runtime):
    s = build_service(*case("vllm-1gpu"))
    unit = render_service(s, "systemd", RenderOptions(runtime=runtime)).files["chat-blue.service"]
    for line in ("Restart=on-failure", "NoNewPrivileges=yes", "PrivateTmp=yes", "EnvironmentFile=/etc/llmctl/chat-blue.env",
                 f"TimeoutStartSec={s.health.startup_timeout_s}"):
        assert line + "\n" in unit
    assert ("ProtectSystem=strict" if runtime == "native" else "ProtectSystem=full") in unit
    assert "VLLM_API_KEY=" not in unit.replace("# ", "")
