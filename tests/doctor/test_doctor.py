"""`llmctl doctor` checks against this machine's real state: its (missing) Docker socket or the test
suite's private dockerd, the real kubectl binary, real free disk, /dev/shm and ports, the real
driver table in profiles/drivers.yaml.

What cannot exist here is recorded: NVML answers of an 8x A100 server (replayed through pynvml, see
nvml_replay.py), a `kubectl get nodes -o json` document from a GPU cluster (no API server here), and
Docker `info` runtimes of a host with the NVIDIA runtime (no GPU here). Plans are built by hand.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from llmctl import doctor
from llmctl.targets.kubernetes import checks as kube_checks
from llmctl.targets.systemd import checks as systemd_checks
from llmctl.doctor import FAIL, PASS, SKIP, WARN, Requirements
from llmctl.plan import Plan
from llmctl.service import Health, Port, Resources, ServiceSpec
from llmctl.spec import load_spec_text
from llmctl.typed import convert

from .nvml_replay import NvmlReplay, load

DATA = Path(__file__).parent / "data"


def _status(results, name):
    [r] = [r for r in results if r.name == name]
    return r


def make_plan(*, backend="vllm", tp=8, gpu_type="A100-80GB-SXM", kind="gpu", weights_per_gpu=16.4, gated=True,
              hf_id="meta-llama/Llama-3.1-70B-Instruct", path=None, target="compose") -> Plan:
    """A Plan as the planner would write it for Llama 3.1 70B on 8x A100 (numbers from its memory model)."""
    return convert({
        "name": "chat", "environment": "production", "target": target,
        "model": {"reference": hf_id or path, "id": "llama-3.1-70b", "hf_id": hf_id, "path": path, "gated": gated,
                  "params_b": 70.6, "active_params_b": 70.6, "architecture": "LlamaForCausalLM"},
        "backend": backend, "quantization": "bf16", "kv_cache_dtype": "auto",
        "tensor_parallel": tp, "pipeline_parallel": 1, "replicas": 1, "max_model_len": 8192,
        "gpu": {"type": gpu_type, "kind": kind, "count_per_replica": tp, "memory_gib": 79.15},
        "memory": {"per_gpu_gib": {"weights": weights_per_gpu, "kv_cache": 50.0, "activation": 2.0, "overhead": 3.0,
                                   "total": 71.4, "capacity": 79.15},
                   "total_gib": 571.2, "kv_cache_tokens": 1_000_000, "max_concurrency": 120.0},
        "performance": {}, "sla": {"met": True}, "cost": {"usd_per_hour": 14.32, "usd_per_month": 10453.6},
    }, Plan)


SPEC = """name: chat
model: meta-llama/Llama-3.1-70B-Instruct
target: compose
"""


# --------------------------------------------------------------------------- container engine


def test_docker_not_reachable(tmp_path):
    sock = tmp_path / "no-such" / "docker.sock"
    res, info = doctor.check_container_engine(f"unix://{sock}")
    assert res.status == FAIL and info is None
    assert str(sock) in res.detail
    assert "DOCKER_HOST" in res.fix


@pytest.mark.e2e
def test_docker_reachable_without_nvidia_runtime(docker_engine, tmp_path):
    res, info = doctor.check_container_engine(docker_engine.host)
    assert res.status == PASS, res.detail
    assert "Docker" in res.detail and docker_engine.host in res.detail
    assert "nvidia" not in (info.get("Runtimes") or {})
    empty_cdi = tmp_path / "cdi"
    empty_cdi.mkdir()
    runtime = doctor.check_gpu_runtime({**info, "CDISpecDirs": []}, cdi_dirs=[str(empty_cdi)])
    assert runtime.status == FAIL and "nvidia-ctk" in runtime.fix
    # the whole compose preflight through the CLI, pointed at the private engine
    out = subprocess.run([sys.executable, "-m", "llmctl", "doctor", "--target", "compose", "--output", "json"],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "DOCKER_HOST": docker_engine.host})
    data = json.loads(out.stdout)
    assert _status([doctor.CheckResult(**c) for c in data["checks"]], "container engine").status == PASS


def test_gpu_runtime_from_docker_info_and_cdi(tmp_path):
    # `Runtimes` as `docker info` reports it on a host configured by `nvidia-ctk runtime configure`
    info = {"Runtimes": {"io.containerd.runc.v2": {"path": "runc"}, "nvidia": {"path": "nvidia-container-runtime"},
                         "runc": {"path": "runc"}}}
    assert doctor.check_gpu_runtime(info, cdi_dirs=[]).status == PASS
    plain = {"Runtimes": {"runc": {"path": "runc"}}}
    cdi = tmp_path / "cdi"
    cdi.mkdir()
    assert doctor.check_gpu_runtime(plain, cdi_dirs=[str(cdi)]).status == FAIL
    # head of a spec written by `nvidia-ctk cdi generate`
    (cdi / "nvidia.yaml").write_text('cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: "0"\n'
                                     "  containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia0\n")
    res = doctor.check_gpu_runtime(plain, cdi_dirs=[str(cdi)])
    assert res.status == PASS and "nvidia.yaml" in res.detail
    assert doctor.check_gpu_runtime(None).status == SKIP


# --------------------------------------------------------------------------- driver vs image


@pytest.mark.parametrize("driver, image, status", [
    ("570.133.20", "vllm/vllm-openai:v0.10.1", PASS),
    ("550.54.15", "vllm/vllm-openai:v0.10.1", WARN),       # CUDA 12.8 image under minor version compatibility
    ("470.239.06", "vllm/vllm-openai:v0.10.1", FAIL),      # a CUDA 11 driver cannot run a CUDA 12 image
    ("550.54.15", "docker.io/vllm/vllm-openai:latest", FAIL),   # since v0.29.0 built on CUDA 13.0
    ("570.133.20", "vllm/vllm-openai:v0.33.0-cu129", WARN),     # the CUDA 12.9 build of the same release
    ("550.54.15", "nvidia/cuda:12.4.1-runtime-ubuntu22.04", PASS),
    ("550.54.15", "nvidia/cuda:12.6.3-runtime-ubuntu22.04", WARN),
    ("580.65.06", "ghcr.io/ggml-org/llama.cpp:server-cuda", PASS),
    ("550.54.15", "ollama/ollama:0.9.6", PASS),
    ("525.147.05", "ollama/ollama:0.9.6", FAIL),
    ("550.54.15", "example.com/own/engine:1", WARN),        # unknown image: cannot tell
])
def test_driver_against_image(driver, image, status):
    res = doctor.check_driver(driver, image)
    assert res.status == status, res.detail
    if status == FAIL:
        assert "upgrade the NVIDIA driver" in res.fix


def test_driver_missing_is_skipped():
    assert doctor.check_driver(None, "vllm/vllm-openai:latest").status == SKIP


def test_driver_table_is_ordered_and_complete():
    table = doctor.driver_table()
    versions = [doctor._version(v) for v in table["cuda_toolkit_min_driver"].values()]
    assert versions == sorted(versions)
    for rule in table["engine_images"]:
        assert rule.get("source", "").startswith("https://")
        cuda = rule.get("cuda")
        assert rule.get("min_driver") or cuda == "from-tag" or cuda in table["cuda_toolkit_min_driver"]


# --------------------------------------------------------------------------- systemd, kubectl


def test_systemd_as_this_machine_is(tmp_path):
    res = systemd_checks.check_systemd()
    assert res.status == (PASS if os.path.isdir("/run/systemd/system") else FAIL)
    assert systemd_checks.check_systemd(str(tmp_path)).status == PASS
    assert systemd_checks.check_systemd(str(tmp_path / "absent")).status == FAIL


@pytest.fixture
def kubectl():
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl is not installed")
    return path


def test_kubectl_without_context(kubectl, tmp_path):
    """The real kubectl binary with an empty KUBECONFIG: no context, so no GPU capacity to ask for."""
    cfg = tmp_path / "config"
    cfg.write_text("")
    env = {**os.environ, "KUBECONFIG": str(cfg)}
    res, ok = kube_checks.check_kubectl_context(kubectl, env)
    assert not ok and res.status == FAIL
    assert "current-context is not set" in res.detail
    results = doctor.check_requirements(Requirements(target="kubernetes", gpu_vendor="nvidia", gpus_per_node=8),
                                        env=env, kubectl=kubectl)
    assert _status(results, "kubernetes GPUs").status == SKIP
    assert doctor.any_failed(results)


def test_kubectl_context_with_unreachable_api_server(kubectl, tmp_path, free_port):
    """A real context pointing at a closed local port: the context passes, listing nodes fails."""
    cfg = tmp_path / "config"
    cfg.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: gone
  cluster: {{server: "https://127.0.0.1:{free_port}", insecure-skip-tls-verify: true}}
users:
- name: me
  user: {{token: not-a-secret}}
contexts:
- name: gone
  context: {{cluster: gone, user: me}}
current-context: gone
""")
    env = {**os.environ, "KUBECONFIG": str(cfg)}
    results = doctor.check_requirements(Requirements(target="kubernetes", gpu_vendor="nvidia", gpus_per_node=8),
                                        env=env, kubectl=kubectl)
    assert _status(results, "kubectl context").status == PASS
    gpus = _status(results, "kubernetes GPUs")
    assert gpus.status == FAIL and "cannot list nodes" in gpus.detail


def test_k8s_gpu_capacity_from_recorded_nodes():
    nodes = json.loads((DATA / "kubectl_get_nodes.json").read_text())
    ok = kube_checks.check_k8s_gpu_capacity(nodes, gpus_per_node=8, replicas=1)
    assert ok.status == PASS and "gpu-a100-0: 8" in ok.detail
    assert "gpu-a100-1" not in ok.detail  # cordoned
    assert "gpu-l4-1" not in ok.detail  # not Ready
    assert kube_checks.check_k8s_gpu_capacity(nodes, gpus_per_node=8, replicas=2).status == WARN
    big = kube_checks.check_k8s_gpu_capacity(nodes, gpus_per_node=16)
    assert big.status == FAIL and "largest node has 8" in big.detail
    assert kube_checks.check_k8s_gpu_capacity(nodes, 1, 3).status == PASS  # 8 + 1 slots
    h100 = kube_checks.check_k8s_gpu_capacity(nodes, 8, product="NVIDIA-H100-80GB-HBM3")
    assert h100.status == FAIL and "NVIDIA-A100-SXM4-80GB" in h100.detail
    assert kube_checks.check_k8s_gpu_capacity(nodes, 1, product="NVIDIA-L4").status == PASS
    cpu_only = {"items": [n for n in nodes["items"] if n["metadata"]["name"] == "cpu-0"]}
    none = kube_checks.check_k8s_gpu_capacity(cpu_only, 1)
    assert none.status == FAIL and "device plugin" in none.fix


# --------------------------------------------------------------------------- disk, shm, ports, token


def test_disk_against_real_free_space(tmp_path):
    free_gib = shutil.disk_usage(tmp_path).free / 2**30
    limits = {"headroom_fraction": 0.1, "warn_remaining_gib": 10}
    small = Requirements(target="local", model_gib=0.5, cache_path=str(tmp_path / "not" / "yet" / "made"))
    res = doctor.check_disk(small, limits=limits)
    assert res.status == (PASS if free_gib - 0.55 >= 10 else WARN if free_gib >= 0.55 else FAIL)
    assert str(tmp_path) in res.detail  # measured at the nearest existing folder
    huge = Requirements(target="local", model_gib=free_gib * 2, cache_path=str(tmp_path))
    res = doctor.check_disk(huge, limits=limits)
    assert res.status == FAIL and "GiB there" in res.fix
    tight = Requirements(target="local", model_gib=max(0.01, (free_gib - 5) / 1.1), cache_path=str(tmp_path))
    assert doctor.check_disk(tight, limits=limits).status == WARN
    assert doctor.check_disk(Requirements(model_gib=5, model_path="/models/x.gguf")).status == SKIP
    assert doctor.check_disk(Requirements()).status == SKIP


def test_model_cache_location_follows_the_environment(tmp_path):
    env = {"HOME": str(tmp_path)}
    hf = Requirements(target="local", backend="vllm")
    assert doctor.model_cache_dir(hf, None, env)[0] == str(tmp_path / ".cache" / "huggingface" / "hub")
    assert doctor.model_cache_dir(hf, None, {**env, "HF_HOME": "/data/hf"})[0] == "/data/hf/hub"
    assert doctor.model_cache_dir(hf, None, {**env, "HF_HUB_CACHE": "/fast/hub"})[0] == "/fast/hub"
    ol = Requirements(target="local", backend="ollama")
    assert doctor.model_cache_dir(ol, None, env)[0] == str(tmp_path / ".ollama" / "models")
    assert doctor.model_cache_dir(ol, None, {**env, "OLLAMA_MODELS": "/srv/ollama"})[0] == "/srv/ollama"
    info = {"DockerRootDir": str(tmp_path), "_llmctl_host": "unix:///run/docker.sock"}
    assert doctor.model_cache_dir(Requirements(target="compose"), info, env)[0] == str(tmp_path)


def test_shm_on_this_host_and_in_containers():
    st = os.statvfs("/dev/shm")
    free_gib = st.f_bavail * st.f_frsize / 2**30
    limits = {"min_gib": 1, "docker_default_mib": 64}
    host = Requirements(target="systemd", backend="vllm", tensor_parallel=2)
    assert doctor.check_shm(host, limits=limits).status == (PASS if free_gib >= 1 else FAIL)
    too_much = doctor.check_shm(host, limits={"min_gib": free_gib + 1, "docker_default_mib": 64})
    assert too_much.status == FAIL and "remount" in too_much.fix
    assert doctor.check_shm(Requirements(target="local", backend="vllm"), limits=limits).status == SKIP
    assert doctor.check_shm(Requirements(target="local", backend="llama.cpp", tensor_parallel=2)).status == SKIP
    compose = Requirements(target="compose", backend="vllm", tensor_parallel=4)
    assert doctor.check_shm(compose, limits=limits).status == SKIP
    compose.shm_gib = 64 / 1024
    assert doctor.check_shm(compose, limits=limits).status == FAIL
    compose.shm_gib = 16
    assert doctor.check_shm(compose, limits=limits).status == PASS


def test_ports_bind_test(free_port):
    assert doctor.check_ports([("127.0.0.1", free_port)]).status == PASS
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        res = doctor.check_ports([("127.0.0.1", free_port), ("127.0.0.1", taken)])
    assert res.status == FAIL and f"127.0.0.1:{taken}" in res.detail and f":{free_port} " not in res.detail
    assert doctor.check_ports([]).status == SKIP


def test_hf_token_sources(tmp_path):
    gated = Requirements(backend="vllm", gated=True, model_ref="meta-llama/Llama-3.1-8B-Instruct")
    bare = {"HOME": str(tmp_path)}
    res = doctor.check_hf_token(gated, bare)
    assert res.status == FAIL and "HF_TOKEN" in res.fix and "meta-llama/Llama-3.1-8B-Instruct" in res.detail
    assert doctor.check_hf_token(gated, {**bare, "HF_TOKEN": "hf_x"}).status == PASS
    assert doctor.check_hf_token(gated, {**bare, "HUGGING_FACE_HUB_TOKEN": "hf_x"}).status == PASS
    assert doctor.check_hf_token(gated, {**bare, "HF_TOKEN": "  "}).status == FAIL
    token = tmp_path / ".cache" / "huggingface" / "token"
    token.parent.mkdir(parents=True)
    token.write_text("hf_saved\n")
    res = doctor.check_hf_token(gated, bare)
    assert res.status == PASS and str(token) in res.detail
    other = tmp_path / "elsewhere"
    other.write_text("hf_y")
    assert doctor.check_hf_token(gated, {"HOME": "/nonexistent", "HF_TOKEN_PATH": str(other)}).status == PASS
    open_model = Requirements(backend="vllm", gated=False, model_ref="Qwen/Qwen2.5-7B-Instruct")
    assert doctor.check_hf_token(open_model, {"HOME": "/nonexistent"}).status == SKIP
    assert doctor.check_hf_token(Requirements(backend="ollama", gated=True), bare).status == SKIP


# --------------------------------------------------------------------------- whole runs


@pytest.fixture
def a100_box(monkeypatch):
    """This process sees the recorded 8x A100-SXM4-80GB NVML answers instead of the (absent) driver."""
    return NvmlReplay(load()).install(monkeypatch)


def test_run_checks_for_a_70b_plan_on_replayed_a100s(a100_box, tmp_path, free_port):
    from llmctl import inventory

    spec = load_spec_text(SPEC, "llmctl.yaml")
    plan = make_plan()
    detected = inventory.detect()
    service = ServiceSpec(
        name="chat", slug="chat", engine="vllm", image="vllm/vllm-openai:v0.10.1", argv=["vllm", "serve"],
        ports=[Port(container=8000, host=free_port)], health=Health(path="/health", port=8000, startup_timeout_s=1800),
        resources=Resources(shm_size_gib=16), served_model_name="chat",
    )
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"], "DOCKER_HOST": f"unix://{tmp_path}/docker.sock"}
    req = doctor.requirements(spec, plan, "compose", service)
    assert (req.gpu_vendor, req.gpus_per_node, req.gated) == ("nvidia", 8, True)
    assert req.model_gib == pytest.approx(141107412992 / 2**30)  # the BF16 checkpoint vLLM downloads
    results = doctor.check_requirements(req, detected, env=env)
    assert _status(results, "container engine").status == FAIL
    assert _status(results, "NVIDIA container runtime").status == SKIP
    gpus = _status(results, "GPUs on this host")
    assert gpus.status == PASS and "8x NVIDIA A100-SXM4-80GB" in gpus.detail
    drv = _status(results, "NVIDIA driver")
    assert drv.status == WARN and "550.54.15" in drv.detail and "570.26" in drv.fix
    assert _status(results, "/dev/shm").status == PASS
    assert _status(results, "ports").status == PASS
    assert _status(results, "Hugging Face token").status == FAIL
    assert doctor.any_failed(results)
    table = doctor.results_table(results)
    assert "FAIL" in table and "WARN" in table and "PASS" in table
    data = doctor.results_json(results)
    disk = _status(results, "disk for the model")
    free_gib = shutil.disk_usage(tmp_path).free / 2**30
    assert disk.status == (FAIL if free_gib < 16.4 * 8 * 1.1 else WARN if free_gib < 16.4 * 8 * 1.1 + 10 else PASS)
    assert "the Hugging Face cache" in disk.detail and "131.4 GiB" in disk.detail
    assert data["ok"] is False and data["counts"]["fail"] == 2 + (disk.status == FAIL)


def test_run_checks_takes_image_ports_and_shm_from_the_engine(a100_box, monkeypatch, tmp_path):
    """Without a ServiceSpec, run_checks asks the plan's real engine for one, as `render` would."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("HF_HOME", "HF_HUB_CACHE", "HF_TOKEN_PATH", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_test_only")
    spec = load_spec_text(SPEC, "llmctl.yaml")
    results = doctor.run_checks(spec, make_plan())
    from llmctl.engines import get_engine

    assert get_engine("vllm").profile.images["gpu"] in _status(results, "NVIDIA driver").detail
    assert "127.0.0.1:8000" in _status(results, "ports").detail
    shm = _status(results, "/dev/shm")
    assert shm.status == PASS and "16 GiB" in shm.detail
    assert _status(results, "Hugging Face token").status == PASS
    assert not [r for r in results if r.name == "plan"]  # the engine built the service: no fallback note
    again = doctor.run_checks(spec, make_plan(), skip={"ports"})
    assert _status(again, "ports").status == SKIP and _status(again, "ports").detail == "skipped by the caller"


def test_run_checks_for_a_gpu_plan_on_this_gpu_less_host(tmp_path):
    if os.path.exists("/dev/nvidia0"):
        pytest.skip("this machine has an NVIDIA GPU")
    spec = load_spec_text(SPEC.replace("compose", "local"), "llmctl.yaml")
    req = doctor.requirements(spec, make_plan(target="local", gated=False))
    results = doctor.check_requirements(req, env={"HOME": str(tmp_path), "PATH": os.environ["PATH"]})
    gpus = _status(results, "GPUs on this host")
    assert gpus.status == FAIL and "found 0" in gpus.detail and "driver" in gpus.fix
    assert _status(results, "NVIDIA driver").status == SKIP
    assert _status(results, "disk for the model").status in (PASS, WARN, FAIL)


def test_requirements_without_a_plan_use_the_spec():
    spec = load_spec_text("name: x\nmodel: llama3.1:8b\ntarget: local\nendpoint: {port: 18080}\n"
                          "hardware:\n  - gpu: RTX 4090\n    gpus: 2\n", "s.yaml")
    req = doctor.requirements(spec, None)
    assert (req.target, req.gpus_per_node, req.gpu_vendor) == ("local", 2, "nvidia")
    assert req.ports == [("127.0.0.1", 18080)]
    assert req.notes and "planner" in req.notes[0]


# --------------------------------------------------------------------------- CLI


def _cli(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "llmctl", *args], capture_output=True, text=True, timeout=120,
                          env=env or os.environ, cwd=cwd)


def test_doctor_cli_kubernetes_spec_fails_with_json(kubectl, tmp_path):
    cfg = tmp_path / "kubeconfig"
    cfg.write_text("")
    spec = tmp_path / "llmctl.yaml"
    spec.write_text("name: k\nmodel: qwen2.5:0.5b\ntarget: kubernetes\nhardware:\n  - cpu: cpu-ddr4-2ch\n"
                    "    memory_gb: 16\n")
    out = _cli("doctor", str(spec), "--output", "json", env={**os.environ, "KUBECONFIG": str(cfg)}, cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    data = json.loads(out.stdout)
    assert data["ok"] is False
    [ctx] = [c for c in data["checks"] if c["name"] == "kubectl context"]
    assert ctx["status"] == "fail" and ctx["fix"]
    assert not [c for c in data["checks"] if c["name"] in ("ports", "disk for the model")]  # cluster, not host
    assert "Traceback" not in out.stderr


def test_doctor_cli_bad_spec_is_exit_2(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\nmodel: m\ntarget: mars\n")
    out = _cli("doctor", str(spec))
    assert out.returncode == 2
    assert "target" in out.stderr and "bad.yaml:3" in out.stderr and "Traceback" not in out.stderr
    missing = _cli("doctor", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_doctor_cli_without_spec_reports_the_host(tmp_path):
    out = _cli("doctor", "--target", "local", env={**os.environ, "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[0].split()[:2] == ["STATUS", "CHECK"]
    assert "hardware" in out.stdout and f"{len(os.sched_getaffinity(0))} cores" in out.stdout


def test_doctor_cli_local_spec_passes_on_this_host(tmp_path, free_port):
    """A small CPU model on the local target: disk (real free space), port (real bind) and no GPU needs."""
    spec = tmp_path / "llmctl.yaml"
    spec.write_text(f"name: small\nmodel: qwen2.5:0.5b\ntarget: local\nendpoint: {{port: {free_port}}}\n")
    if shutil.disk_usage(tmp_path).free < 12 * 2**30:
        pytest.skip("less than 12 GiB free here: the disk check would rightly warn or fail")
    env = {**os.environ, "HOME": str(tmp_path), "OLLAMA_MODELS": str(tmp_path / "models")}
    out = _cli("doctor", str(spec), "--output", "json", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    data = json.loads(out.stdout)
    assert data["ok"] is True
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["ports"]["status"] == "pass" and f"127.0.0.1:{free_port}" in checks["ports"]["detail"]
    assert checks["GPUs on this host"]["status"] == "skip"


def test_port_left_in_time_wait_counts_as_free():
    """A service that just stopped leaves its accepted connections in TIME_WAIT; engines bind with
    SO_REUSEADDR and start fine, so the check must not call the port taken."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn and llama-server do
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.close()  # the server side closes first: its end of the connection enters TIME_WAIT
    server.close()
    client.close()
    assert doctor.check_ports([("127.0.0.1", port)]).status == PASS


def test_kubectl_named_context_and_namespace_secret(kubectl, tmp_path):
    """`doctor --context X -n NS`: the named context must exist, and the pods' Secret is looked for in NS
    (through the real kubectl, against a recorded API server: a real one cannot run here)."""
    from tests.support.kube_api import KubeApi

    with KubeApi({("llm", "bot-secrets"): {"VLLM_API_KEY": "czNjcjN0"}}) as api:
        cfg = tmp_path / "config"
        cfg.write_text(api.kubeconfig())
        env = {**os.environ, "KUBECONFIG": str(cfg)}
        res, ok = kube_checks.check_kubectl_context([kubectl, "--context", "recorded", "--namespace", "llm"], env)
        assert ok and res.detail == "context recorded, namespace llm"
        res, ok = kube_checks.check_kubectl_context([kubectl, "--context", "nope"], env)
        assert not ok and "'nope' does not exist" in res.detail

        base = [kubectl, "--context", "recorded", "--namespace", "llm"]
        assert kube_checks.check_k8s_secret("bot-secrets", ["VLLM_API_KEY"], base, env).status == PASS
        assert "/api/v1/namespaces/llm/secrets/bot-secrets" in api.paths
        lacks = kube_checks.check_k8s_secret("bot-secrets", ["VLLM_API_KEY", "HF_TOKEN"], base, env)
        assert lacks.status == FAIL and "lacks HF_TOKEN" in lacks.detail
        other = [kubectl, "--context", "recorded", "--namespace", "prod"]
        missing = kube_checks.check_k8s_secret("bot-secrets", ["VLLM_API_KEY"], other, env)
        assert missing.status == FAIL and "does not exist in prod" in missing.detail
        assert missing.fix.startswith("kubectl create secret generic bot-secrets") and missing.fix.endswith("-n prod")

        req = Requirements(target="kubernetes", kube_secret="bot-secrets", kube_secret_keys=["VLLM_API_KEY"])
        results = doctor.check_requirements(req, env=env, kubectl=base)
        assert _status(results, "kubernetes secret").status == PASS
