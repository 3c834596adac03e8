"""The workload spec (`llmctl.yaml`): typed records, and a loader whose errors name file:line.

The loader (llmctl.yaml_lines) parses with limits on size, alias expansion and depth and remembers
the line of every key; llmctl.typed then checks the whole document against `Spec`, and every error is
mapped back from its key path to the line that holds it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from msgspec.structs import force_setattr

from llmctl.engines import canonical_name, engine_names
from llmctl.errors import InputError
from llmctl.targets.registry import REGISTRY
from llmctl.typed import FrozenRecord, Invalid, Meta, convert, dotted, dump

Backend = Literal[engine_names()]  # type: ignore[valid-type]  # the registered engines
Environment = Literal["development", "staging", "production"]
Target = Literal[tuple(REGISTRY)]  # the targets of llmctl/targets/registry.py
Need = Literal[
    "lora",
    "structured_output",
    "vision",
    "embeddings",
    "prefix_caching",
    "tool_calling",
    "metrics",
]

# Checked strictly (llmctl.typed.convert): `concurrency: true` or `gpus: "2"` is an error, not 1 and 2
# (a whole number may still stand for a float, e.g. `memory_gb: 64`).
Positive = Annotated[float, Meta(gt=0)]
Tokens = Annotated[int, Meta(ge=1, le=10_000_000)]
Parallel = Annotated[int, Meta(ge=1, le=64)]
Text = Annotated[str, Meta(min_length=1)]


class SLA(FrozenRecord):
    ttft_p95_ms: Annotated[Positive, Meta(description="95th percentile time to first token")] | None = None
    itl_p95_ms: Annotated[Positive, Meta(description="95th percentile time between output tokens")] | None = None
    output_tokens_per_second: Annotated[
        Positive, Meta(description="minimum streaming speed each user sees")] | None = None


class Workload(FrozenRecord):
    concurrency: Annotated[int, Meta(ge=1, le=100_000, description="peak simultaneous requests")] = 1
    prompt_tokens: Tokens = 512
    output_tokens: Tokens = 256
    context_length: Annotated[
        int, Meta(ge=16, le=10_000_000, description="longest request the service must accept")] | None = None
    requests_per_minute: Annotated[float, Meta(gt=0)] | None = None
    arrival: Annotated[Literal["closed", "open", "burst"], Meta(
        description="closed: each user sends again when answered; open: Poisson arrivals at "
                    "requests_per_minute; burst: `concurrency` requests at once (default: open with "
                    "requests_per_minute, else closed)")] | None = None
    lengths: Annotated[Literal["fixed", "sharegpt"], Meta(
        description="fixed: every request has the stated lengths; sharegpt: a chat-like spread "
                    "around those means")] = "fixed"
    sla: SLA = SLA()

    def __post_init__(self) -> None:
        if self.arrival == "open" and self.requests_per_minute is None:
            raise ValueError("arrival: open needs requests_per_minute (the Poisson arrival rate)")
        if self.arrival in ("closed", "burst") and self.requests_per_minute is not None:
            raise ValueError(f"arrival: {self.arrival} takes no requests_per_minute (that is open arrival)")
        if self.arrival == "burst" and self.lengths != "fixed":
            raise ValueError("arrival: a burst is followed with one request length; use lengths: fixed")
        if self.context_length is not None and self.context_length < self.prompt_tokens + self.output_tokens:
            raise ValueError(
                f"context_length: {self.context_length} is shorter than prompt_tokens + output_tokens "
                f"({self.prompt_tokens + self.output_tokens})"
            )

    @property
    def max_context(self) -> int:
        """The context the service must hold: stated, or one typical request."""
        return self.context_length or (self.prompt_tokens + self.output_tokens)


class Node(FrozenRecord):
    name: str = "node-1"
    gpu: Annotated[str, Meta(description="GPU type, e.g. A100-80GB, RTX 4090, M2 Max; omit for CPU only")] | None = None
    gpus: Annotated[int, Meta(ge=0, le=64)] | None = None
    count: Annotated[int, Meta(ge=1, le=10_000, description="identical nodes of this kind")] = 1
    cpu: Annotated[str, Meta(description="CPU memory profile for CPU-only inference, e.g. cpu-ddr5-2ch")] | None = None
    cpu_cores: Annotated[int, Meta(ge=1, le=4096)] | None = None
    memory_gb: Annotated[float, Meta(gt=0, le=100_000, description="system RAM (unified memory on Apple)")] | None = None

    @property
    def gpu_count(self) -> int:
        if self.gpus is not None:
            return self.gpus
        return 1 if self.gpu else 0


class Adapter(FrozenRecord):
    name: Text
    path: Text
    rank: Annotated[int, Meta(ge=1, le=4096, description="LoRA rank (`r`); read from a local adapter_config.json when omitted")] | None = None


class Endpoint(FrozenRecord):
    bind: Annotated[str, Meta(description="address the service listens on; 0.0.0.0 opens it to the network")] = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535, description="host port; the engine's default when omitted")] | None = None


class Overrides(FrozenRecord):
    backend: Backend | None = None  # any spelling the engines' aliases allow (load_spec_text makes it canonical)
    quantization: str | None = None
    tensor_parallel: Parallel | None = None
    pipeline_parallel: Parallel | None = None
    replicas: Annotated[int, Meta(ge=1, le=10_000)] | None = None
    gpu_type: str | None = None
    max_model_len: Annotated[int, Meta(ge=16, le=10_000_000)] | None = None
    gpu_memory_utilization: Annotated[float, Meta(gt=0.05, le=0.99)] | None = None
    max_num_seqs: Annotated[int, Meta(ge=1, le=65_536)] | None = None
    max_num_batched_tokens: Annotated[int, Meta(ge=16, le=10_000_000)] | None = None
    kv_cache_dtype: str | None = None
    num_parallel: Annotated[int, Meta(ge=1, le=1024)] | None = None
    image: Text | None = None


class Generation(FrozenRecord):
    """Server-side sampling defaults: what a request gets when it does not say (engine-neutral names,
    as in Hugging Face's generation_config.json). vLLM: `--generation-config vllm
    --override-generation-config JSON`; llama.cpp: its sampling flags; Ollama: not rendered (plan warning)."""

    temperature: Annotated[float, Meta(ge=0, le=100)] | None = None
    top_p: Annotated[float, Meta(gt=0, le=1)] | None = None
    top_k: Annotated[int, Meta(ge=0, le=1_000_000, description="0: no top-k cut")] | None = None
    min_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    repetition_penalty: Annotated[float, Meta(
        gt=0, le=100, description="multiplicative penalty on tokens already seen (1.0: none)")] | None = None
    presence_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None
    max_new_tokens: Annotated[int, Meta(ge=1, le=10_000_000, description="default (and cap) of output tokens")] | None = None

    def given(self) -> dict[str, Any]:
        """The defaults set, by name (nothing set: empty)."""
        return {k: getattr(self, k) for k in self.__struct_fields__ if getattr(self, k) is not None}


class Serving(FrozenRecord):
    """How the service presents itself to clients, whatever the engine."""

    served_names: Annotated[list[str], Meta(
        max_length=64, description="names clients may send as `model`; the first is the primary one")] = []
    generation: Generation = Generation()
    max_queued_requests: Annotated[int, Meta(
        ge=1, le=10_000_000, description="requests waiting beyond those running; more are refused (503)")] | None = None
    chat_template: Annotated[str, Meta(
        min_length=1, description="a Jinja chat template file used instead of the checkpoint's own")] | None = None

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for i, name in enumerate(self.served_names):
            if not name.strip() or re.search(r"\s", name) or name.startswith("-"):
                raise ValueError(f"served_names[{i}]: {name!r} must be one word, not starting with '-'")
            if name in seen:
                raise ValueError(f"served_names[{i}]: {name!r} is listed twice")
            seen.add(name)


class Spec(FrozenRecord):
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    model: Text
    workload: Workload = Workload()
    environment: Environment = "development"
    needs: list[Need] = []
    hardware: Union[Literal["detect"], Annotated[list[Node], Meta(min_length=1)]] = "detect"
    target: Target = "compose"
    endpoint: Endpoint = Endpoint()
    adapters: list[Adapter] = []
    serving: Serving = Serving()
    overrides: Overrides = Overrides()

    def __post_init__(self) -> None:
        if self.adapters and "lora" not in self.needs:
            force_setattr(self, "needs", [*self.needs, "lora"])


# --------------------------------------------------------------------------- loading


def load_spec(path: str | Path) -> Spec:
    """Load and validate a spec file; "-" reads standard input. Errors name file:line (exit 2)."""
    from llmctl.fileio import MAX_SPEC_BYTES, read_text_input

    text = read_text_input(path, what="spec", max_bytes=MAX_SPEC_BYTES, hint="create one with `llmctl init`")
    return load_spec_text(text, "<stdin>" if str(path) == "-" else str(path))


def load_spec_text(text: str, filename: str = "<spec>") -> Spec:
    from llmctl.typed import problems
    from llmctl.yaml_lines import load_yaml_cached

    data, lines = load_yaml_cached(text, filename)
    if data is None:
        raise InputError("the spec is empty", where=f"{filename}:1", hint="start from `llmctl init`")
    if not isinstance(data, dict):
        raise InputError("the spec must be a mapping of keys (name, model, workload, …)", where=f"{filename}:1")
    data = _canonical_backend(data)
    try:
        spec = convert(data, Spec)
    except Invalid:
        raise _explain(problems(data, Spec), lines, filename) from None
    _SOURCES[id(spec)] = (filename, lines)
    _LOADED.append(spec)
    return spec


_LOADED: list[Spec] = []  # specs read from files by this process (a command reads one); keeps their ids alive
_SOURCES: dict[int, tuple[str, dict]] = {}  # id(spec) -> (file name, {key path: line}) for specs read from files


def source_of(spec: Spec) -> tuple[str, dict] | None:
    """(file name, {key path: line}) of a spec read from a file; None for a spec built in code."""
    return _SOURCES.get(id(spec))


def with_source_of(original: Spec, copy: Spec) -> Spec:
    """`copy` (a changed copy of `original`) keeps pointing at the lines of the file `original` came from."""
    if source_of(original):
        _SOURCES[id(copy)] = _SOURCES[id(original)]
        _LOADED.append(copy)
    return copy


def _canonical_backend(data: dict) -> dict:
    """`overrides.backend` in any spelling the engines accept (VLLM, llamacpp) as the engine's own name."""
    over = data.get("overrides")
    if isinstance(over, dict) and isinstance(over.get("backend"), str):
        backend = over["backend"]
        return {**data, "overrides": {**over, "backend": canonical_name(backend) or backend.lower()}}
    return data


def locate(exc: InputError) -> InputError:
    """An error whose `where` is a spec field path (`hardware[0].gpu`, `model`, raised by the planner or
    the catalog after loading) gets the file and line of that field in the spec this command read."""
    if not exc.where or not _LOADED or re.search(r":\d+$", exc.where.split(" ")[0]):
        return exc
    loc: list[Any] = []
    for part in re.findall(r"[A-Za-z_][A-Za-z0-9_]*|\[\d+\]", exc.where):
        loc.append(int(part[1:-1]) if part.startswith("[") else part)
    if not loc or loc[0] not in Spec.__struct_fields__:
        return exc
    filename, lines = source_of(_LOADED[-1]) or ("", {})
    from llmctl.yaml_lines import line_of

    line = line_of(lines, tuple(loc), default=None)
    if line is None:
        return exc
    located = InputError(exc.message, where=f"{filename}:{line}: {exc.where}", hint=exc.hint)
    located.exit_code = exc.exit_code
    return located


def spec_digest(spec: Spec) -> str:
    """sha256 of what the spec says (not of its text: comments and key order do not count)."""
    import hashlib
    import json

    data = dump(spec)
    if spec.serving == Serving():  # a spec without `serving` keeps the digest it had before the key existed
        data.pop("serving", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def where_in_spec(spec: Spec, *loc: Any) -> str | None:
    """`file:line` of the key at `loc` (e.g. "model", or "hardware", 0, "gpu") in the file the spec came
    from; None for a spec built in code."""
    from llmctl.yaml_lines import line_of

    source = source_of(spec)
    if not source:
        return None
    filename, lines = source
    return f"{filename}:{line_of(lines, tuple(loc))}"


# rules whose words say more than the type's ("must not be empty")
_PLAIN_WORDS = {("hardware",): "list at least one node, or write `hardware: detect`"}


def _explain(errors: list[Invalid], where_lines: dict, filename: str) -> InputError:
    from llmctl.yaml_lines import line_of

    out = []
    for err in errors:
        line = line_of(where_lines, err.loc)
        where = f"{filename}:{line}" if line else filename
        message = _PLAIN_WORDS.get(err.loc, err.message) if err.message == "must not be empty" else err.message
        out.append(f"{where}: {dotted(err.loc)}: {message}")
    return InputError("invalid spec\n  " + "\n  ".join(out))
