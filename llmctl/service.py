"""ServiceSpec: one engine process described independently of where it runs.

An Engine (llmctl/engines/) turns a Plan into a ServiceSpec; a Target (llmctl/targets/) renders a
ServiceSpec as compose, systemd or Kubernetes files. Secrets appear here only by name: their values
live in an env file (mode 0600) or a Kubernetes Secret, never in a rendered file.
"""

from __future__ import annotations

from llmctl.typed import Record as _Data
from llmctl.typed import field


class Port(_Data):
    container: int
    host: int
    bind: str = "127.0.0.1"
    name: str = "http"


class Volume(_Data):
    name: str  # logical name, e.g. "models"; targets prefix it with the service name
    mount: str  # path inside the container
    purpose: str = "model-cache"  # model-cache | adapters | data
    size_gib: int = 50  # for a PersistentVolumeClaim
    host_path: str | None = None  # bind mount instead of a named volume (local files)
    read_only: bool = False


class Health(_Data):
    path: str  # HTTP path answering 200 when ready, e.g. /health or /v1/models
    port: int
    startup_timeout_s: int  # how long a model load may take before the service counts as failed
    interval_s: int = 10
    timeout_s: int = 5
    # a command that succeeds once the model is loaded, where the HTTP path answers earlier (Ollama)
    ready_command: list[str] = []
    # the container health check: a command the image can run (it may lack curl)
    command: list[str] = []


class GpuRequest(_Data):
    count: int = 0
    device_ids: list[str] = []
    vendor: str = "nvidia"


class Resources(_Data):
    memory_limit_gib: float | None = None
    memory_request_gib: float | None = None
    cpus: float | None = None
    shm_size_gib: float | None = None  # /dev/shm; vLLM with TP/PP needs it for NCCL


class SecretRef(_Data):
    """An environment variable whose value is a secret, supplied by the env file or a Secret."""

    env: str  # variable name inside the container, e.g. VLLM_API_KEY
    key: str  # key in the env file / Kubernetes Secret
    required: bool = True
    description: str = ""


class PrepareStep(_Data):
    """Work that must finish before the service counts as ready (e.g. `ollama pull MODEL`)."""

    description: str
    argv: list[str]


class ServiceSpec(_Data):
    name: str  # the user's name, verbatim (may hold any characters)
    slug: str  # DNS-1123 label derived from name: safe for resource names, units and hostnames
    engine: str  # ollama | vllm | llama.cpp
    image: str
    argv: list[str]  # container command line (entrypoint + args), each element one argument
    native_argv: list[str] = []  # the same engine run as a host binary (systemd native, local target)
    env: dict[str, str] = {}
    secrets: list[SecretRef] = []
    ports: list[Port] = []
    volumes: list[Volume] = []
    gpu: GpuRequest = field(default_factory=GpuRequest)
    resources: Resources = field(default_factory=Resources)
    health: Health
    metrics_path: str | None = None
    autoscale_metric: str | None = None  # a /metrics series that counts waiting requests (KEDA); None: CPU (HPA)
    stop_grace_s: int = 60  # SIGTERM, then this long to drain in-flight requests before SIGKILL
    metrics_secret_key: str | None = None  # scrapes send this secret as a bearer token (None: open)
    api_prefix: str = "/v1"  # OpenAI-compatible API root
    api_kind: str = "openai"  # openai | ollama (native API also served)
    served_model_name: str
    prepare: list[PrepareStep] = []
    replicas: int = 1
    nodes_per_replica: int = 1  # > 1: a multi-node (pipeline parallel) replica
    run_as_user: int | None = None  # non-root uid when the image allows it
    read_only_root: bool = False
    gpu_type: str | None = None  # catalog id, for node selection
    gpu_product_label: str | None = None  # nvidia.com/gpu.product value for node selection
    labels: dict[str, str] = {}
    environment: str = "development"
    # What the hardware leaves for updates and placement (None: the spec does not list the hardware).
    gpus_per_host: int | None = None  # GPUs of the plan's type on one host
    spare_gpus: int | None = None  # GPUs of that type on the listed hardware beyond replicas × GPUs per replica
    download_gib: float | None = None  # what the engine downloads before serving (None: a local file)
