"""The front as a ServiceSpec, so the deployment targets (compose, systemd, Kubernetes) can run it
beside the new backend.

The llmctl image is not published: pass `image` (an image with llmctl installed, e.g. built
`FROM python:3.11-slim` with `pip install llmctl`). front.json is
mounted read-only at /etc/llmctl/front.json.
"""

from __future__ import annotations

from pathlib import Path

from llmctl.service import Health, Port, SecretRef, ServiceSpec, Volume
from llmctl.slug import slugify

CONTAINER_CONFIG = "/etc/llmctl/front.json"
CONTAINER_PORT = 11434  # Ollama's port: clients that keep their base URL reach the front
# The image has python3 (llmctl runs on it). /health answers 200 once the backend serves every model of
# front.json (Ollama's `/` would answer as soon as the front runs, before the backend has loaded).
_PROBE = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/health', timeout=4)"
# The front is ready when its backend is, so its start-up allowance is the backend's: pass the backend
# ServiceSpec's health.startup_timeout_s; this default only covers a backend started beforehand.
STARTUP_TIMEOUT_S = 900


def front_service(config_path: str | Path, port: int, *, image: str, name: str = "ollama-front",
                  bind: str = "127.0.0.1", api_key_env: str | None = None,
                  served_model_name: str = "", stop_grace_s: int = 60,
                  startup_timeout_s: int = STARTUP_TIMEOUT_S) -> ServiceSpec:
    """A ServiceSpec running `python -m llmctl.migrate.front` on `config_path`, published on
    `bind:port` (container port 11434). `api_key_env`: the variable front.json's api_key_env names,
    supplied as a secret (the backend's key). Ready (health) when /health answers 200: the backend
    serves every model of front.json."""
    config_path = Path(config_path).resolve()
    argv = ["python3", "-m", "llmctl.migrate.front", "--config", CONTAINER_CONFIG,
            "--host", "0.0.0.0", "--port", str(CONTAINER_PORT),
            "--graceful-timeout", str(max(stop_grace_s - 5, 1))]
    native = ["python3", "-m", "llmctl.migrate.front", "--config", str(config_path),
              "--host", bind, "--port", str(port), "--graceful-timeout", str(max(stop_grace_s - 5, 1))]
    secrets = [SecretRef(env=api_key_env, key=api_key_env, required=True,
                         description="the backend's API key, sent as `Authorization: Bearer <key>`")] if api_key_env else []
    return ServiceSpec(
        name=name, slug=slugify(name), engine="ollama-front", image=image, argv=argv, native_argv=native,
        secrets=secrets,
        ports=[Port(container=CONTAINER_PORT, host=port, bind=bind)],
        volumes=[Volume(name="front-config", mount=CONTAINER_CONFIG, purpose="data",
                        host_path=str(config_path), read_only=True, size_gib=1)],
        health=Health(path="/health", port=CONTAINER_PORT, startup_timeout_s=startup_timeout_s, interval_s=10, timeout_s=5,
                      command=["python3", "-c", _PROBE.format(port=CONTAINER_PORT)]),
        stop_grace_s=stop_grace_s, api_prefix="/api", api_kind="ollama",
        served_model_name=served_model_name or name,
        labels={"app.kubernetes.io/name": "ollama-front", "app.kubernetes.io/instance": slugify(name),
                "app.kubernetes.io/component": "api-front", "app.kubernetes.io/part-of": "llmctl",
                "app.kubernetes.io/managed-by": "llmctl"},
    )
