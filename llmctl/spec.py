"""The workload spec (`llmctl.yaml`): a pydantic model, and a loader whose errors name file:line.

The loader (llmctl.yaml_lines) parses with limits on size, alias expansion and depth and remembers
the line of every key; pydantic then validates, and any error is mapped back from its field path to
the line that holds it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from llmctl.engines import canonical_name, engine_names
from llmctl.errors import InputError
from llmctl.targets.registry import REGISTRY

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


class _Strict(BaseModel):
    # strict: `concurrency: true` or `gpus: "2"` is an error, not 1 and 2 (a whole number may still
    # stand for a float, e.g. `memory_gb: 64`)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SLA(_Strict):
    ttft_p95_ms: float | None = Field(None, gt=0, description="95th percentile time to first token")
    itl_p95_ms: float | None = Field(None, gt=0, description="95th percentile time between output tokens")
    output_tokens_per_second: float | None = Field(
        None, gt=0, description="minimum streaming speed each user sees"
    )


class Workload(_Strict):
    concurrency: int = Field(1, ge=1, le=100_000, description="peak simultaneous requests")
    prompt_tokens: int = Field(512, ge=1, le=10_000_000)
    output_tokens: int = Field(256, ge=1, le=10_000_000)
    context_length: int | None = Field(
        None, ge=16, le=10_000_000, description="longest request the service must accept"
    )
    requests_per_minute: float | None = Field(None, gt=0)
    arrival: Literal["closed", "open", "burst"] | None = Field(
        None, description="closed: each user sends again when answered; open: Poisson arrivals at "
                          "requests_per_minute; burst: `concurrency` requests at once (default: open with "
                          "requests_per_minute, else closed)")
    lengths: Literal["fixed", "sharegpt"] = Field(
        "fixed", description="fixed: every request has the stated lengths; sharegpt: a chat-like spread "
                             "around those means")
    sla: SLA = SLA()

    @model_validator(mode="after")
    def _arrival_fits(self) -> "Workload":
        if self.arrival == "open" and self.requests_per_minute is None:
            raise ValueError("arrival: open needs requests_per_minute (the Poisson arrival rate)")
        if self.arrival in ("closed", "burst") and self.requests_per_minute is not None:
            raise ValueError(f"arrival: {self.arrival} takes no requests_per_minute (that is open arrival)")
        if self.arrival == "burst" and self.lengths != "fixed":
            raise ValueError("arrival: a burst is followed with one request length; use lengths: fixed")
        return self

    @model_validator(mode="after")
    def _context_holds_a_request(self) -> "Workload":
        if self.context_length is not None and self.context_length < self.prompt_tokens + self.output_tokens:
            raise ValueError(
                f"context_length ({self.context_length}) is shorter than prompt_tokens + output_tokens "
                f"({self.prompt_tokens + self.output_tokens})"
            )
        return self

    @property
    def max_context(self) -> int:
        """The context the service must hold: stated, or one typical request."""
        return self.context_length or (self.prompt_tokens + self.output_tokens)


class Node(_Strict):
    name: str = "node-1"
    gpu: str | None = Field(None, description="GPU type, e.g. A100-80GB, RTX 4090, M2 Max; omit for CPU only")
    gpus: int | None = Field(None, ge=0, le=64)
    count: int = Field(1, ge=1, le=10_000, description="identical nodes of this kind")
    cpu: str | None = Field(None, description="CPU memory profile for CPU-only inference, e.g. cpu-ddr5-2ch")
    cpu_cores: int | None = Field(None, ge=1, le=4096)
    memory_gb: float | None = Field(None, gt=0, le=100_000, description="system RAM (unified memory on Apple)")

    @property
    def gpu_count(self) -> int:
        if self.gpus is not None:
            return self.gpus
        return 1 if self.gpu else 0


class Adapter(_Strict):
    name: str = Field(min_length=1)
    path: str = Field(min_length=1)
    rank: int | None = Field(None, ge=1, le=4096, description="LoRA rank (`r`); read from a local adapter_config.json when omitted")


class Endpoint(_Strict):
    bind: str = Field("127.0.0.1", description="address the service listens on; 0.0.0.0 opens it to the network")
    port: int | None = Field(None, ge=1, le=65535, description="host port; the engine's default when omitted")


class Overrides(_Strict):
    backend: Backend | None = None
    quantization: str | None = None
    tensor_parallel: int | None = Field(None, ge=1, le=64)
    pipeline_parallel: int | None = Field(None, ge=1, le=64)
    replicas: int | None = Field(None, ge=1, le=10_000)
    gpu_type: str | None = None
    max_model_len: int | None = Field(None, ge=16, le=10_000_000)
    gpu_memory_utilization: float | None = Field(None, gt=0.05, le=0.99)
    max_num_seqs: int | None = Field(None, ge=1, le=65_536)
    max_num_batched_tokens: int | None = Field(None, ge=16, le=10_000_000)
    kv_cache_dtype: str | None = None
    num_parallel: int | None = Field(None, ge=1, le=1024)
    image: str | None = Field(None, min_length=1)

    @field_validator("backend", mode="before")
    @classmethod
    def _backend_spelling(cls, v: Any) -> Any:
        if isinstance(v, str):
            return canonical_name(v) or v.lower()
        return v


class Generation(_Strict):
    """Server-side sampling defaults: what a request gets when it does not say (engine-neutral names,
    as in Hugging Face's generation_config.json). vLLM: `--generation-config vllm
    --override-generation-config JSON`; llama.cpp: its sampling flags; Ollama: not rendered (plan warning)."""

    temperature: float | None = Field(None, ge=0, le=100)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0, le=1_000_000, description="0: no top-k cut")
    min_p: float | None = Field(None, ge=0, le=1)
    repetition_penalty: float | None = Field(
        None, gt=0, le=100, description="multiplicative penalty on tokens already seen (1.0: none)")
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    max_new_tokens: int | None = Field(None, ge=1, le=10_000_000, description="default (and cap) of output tokens")

    def given(self) -> dict[str, Any]:
        """The defaults set, by name (nothing set: empty)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Serving(_Strict):
    """How the service presents itself to clients, whatever the engine."""

    served_names: list[str] = Field(
        [], max_length=64, description="names clients may send as `model`; the first is the primary one")
    generation: Generation = Generation()
    max_queued_requests: int | None = Field(
        None, ge=1, le=10_000_000, description="requests waiting beyond those running; more are refused (503)")
    chat_template: str | None = Field(
        None, min_length=1, description="a Jinja chat template file used instead of the checkpoint's own")

    @field_validator("served_names")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        seen: set[str] = set()
        for i, name in enumerate(v):
            if not name.strip() or re.search(r"\s", name) or name.startswith("-"):
                raise ValueError(f"served_names[{i}]: {name!r} must be one word, not starting with '-'")
            if name in seen:
                raise ValueError(f"served_names[{i}]: {name!r} is listed twice")
            seen.add(name)
        return v


class Spec(_Strict):
    _source: tuple[str, dict] | None = PrivateAttr(None)  # (file name, {key path: line}) when loaded from a file

    name: str = Field(min_length=1, max_length=200)
    model: str = Field(min_length=1)
    workload: Workload = Workload()
    environment: Environment = "development"
    needs: list[Need] = []
    hardware: Union[Literal["detect"], list[Node]] = "detect"
    target: Target = "compose"
    endpoint: Endpoint = Endpoint()
    adapters: list[Adapter] = []
    serving: Serving = Serving()
    overrides: Overrides = Overrides()

    @field_validator("hardware")
    @classmethod
    def _some_hardware(cls, v: Any) -> Any:
        if isinstance(v, list) and not v:
            raise ValueError("list at least one node, or write `hardware: detect`")
        return v

    @model_validator(mode="after")
    def _adapters_need_lora(self) -> "Spec":
        if self.adapters and "lora" not in self.needs:
            object.__setattr__(self, "needs", [*self.needs, "lora"])
        return self


# --------------------------------------------------------------------------- loading


def load_spec(path: str | Path) -> Spec:
    """Load and validate a spec file; "-" reads standard input. Errors name file:line (exit 2)."""
    from llmctl.fileio import MAX_SPEC_BYTES, read_text_input

    text = read_text_input(path, what="spec", max_bytes=MAX_SPEC_BYTES, hint="create one with `llmctl init`")
    return load_spec_text(text, "<stdin>" if str(path) == "-" else str(path))


def load_spec_text(text: str, filename: str = "<spec>") -> Spec:
    from llmctl.yaml_lines import load_yaml_cached

    data, lines = load_yaml_cached(text, filename)
    if data is None:
        raise InputError("the spec is empty", where=f"{filename}:1", hint="start from `llmctl init`")
    if not isinstance(data, dict):
        raise InputError("the spec must be a mapping of keys (name, model, workload, …)", where=f"{filename}:1")
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, lines, filename) from None
    spec._source = (filename, lines)
    _LOADED.append(spec)
    return spec


_LOADED: list[Spec] = []  # specs read from files by this process (a command reads one)


def locate(exc: InputError) -> InputError:
    """An error whose `where` is a spec field path (`hardware[0].gpu`, `model`, raised by the planner or
    the catalog after loading) gets the file and line of that field in the spec this command read."""
    if not exc.where or not _LOADED or re.search(r":\d+$", exc.where.split(" ")[0]):
        return exc
    loc: list[Any] = []
    for part in re.findall(r"[A-Za-z_][A-Za-z0-9_]*|\[\d+\]", exc.where):
        loc.append(int(part[1:-1]) if part.startswith("[") else part)
    if not loc or loc[0] not in Spec.model_fields:
        return exc
    spec = _LOADED[-1]
    filename, lines = spec._source or ("", {})
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

    data = spec.model_dump(mode="json")
    if spec.serving == Serving():  # a spec without `serving` keeps the digest it had before the key existed
        data.pop("serving", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def where_in_spec(spec: Spec, *loc: Any) -> str | None:
    """`file:line` of the key at `loc` (e.g. "model", or "hardware", 0, "gpu") in the file the spec came
    from; None for a spec built in code."""
    from llmctl.yaml_lines import line_of

    if not spec._source:
        return None
    filename, lines = spec._source
    return f"{filename}:{line_of(lines, tuple(loc))}"


def _model_for(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the last key of `loc` (for did-you-mean suggestions)."""
    model: Any = Spec
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        model = _first_model(ann)
    return model


def _first_model(ann: Any) -> type[BaseModel] | None:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        found = _first_model(arg)
        if found is not None:
            return found
    return None


_TYPE_WORDS = {"int_type": "a whole number", "float_type": "a number", "string_type": "text",
               "bool_type": "true or false", "list_type": "a list", "dict_type": "a mapping of keys",
               "model_type": "a mapping of keys", "model_attributes_type": "a mapping of keys"}


def _yaml_repr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value) if isinstance(value, str) else str(value)[:80]


def suggest(got: str, choices: list[str]) -> str | None:
    """The choice `got` was probably meant to be: close in spelling (kubernets → kubernetes), a
    prefix (prod → production), or close to one word of it (tools → tool_calling)."""
    import difflib

    g = got.strip().lower()
    if not g or not choices:
        return None
    best, score = None, 0.0
    for choice in choices:
        c = choice.lower()
        s = difflib.SequenceMatcher(None, g, c).ratio()
        if len(g) >= 3 and c.startswith(g):
            s = max(s, 0.9)
        for part in re.split(r"[_.\-]", c):
            if len(part) >= 3:
                s = max(s, difflib.SequenceMatcher(None, g, part).ratio() - 0.05)
        if s > score:
            best, score = choice, s
    return best if score >= 0.75 else None


def _explain(exc: ValidationError, where_lines: dict, filename: str) -> InputError:
    from llmctl.yaml_lines import line_of

    lines = []
    first_where = None
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("list[", "literal["))))
        # pydantic reports union branches as 'list[Node]' / "literal['detect']"; drop them from the path
        path = ".".join(str(p) for p in loc) or "(top level)"
        line = line_of(where_lines, loc)
        where = f"{filename}:{line}" if line else filename
        first_where = first_where or where
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            key = str(loc[-1])
            model = _model_for(loc)
            known = list(model.model_fields) if model else []
            import difflib

            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            msg = f"unknown key {key!r}" + (f" — did you mean {close[0]!r}?" if close else "")
            if known:
                msg += f" (allowed here: {', '.join(known)})"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] == "literal_error":
            got = err.get("input")
            msg = f"{msg}; got {got!r}"
            close = suggest(str(got), re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", ""))))
            if close:
                msg += f" — did you mean {close!r}?"
        elif err["type"] in _TYPE_WORDS:
            got = err.get("input")
            kind = "a yes/no value" if isinstance(got, bool) else ("text" if isinstance(got, str) else type(got).__name__)
            msg = f"expected {_TYPE_WORDS[err['type']]}, got {_yaml_repr(got)} ({kind})"
        lines.append(f"{where}: {path}: {msg}")
    # de-duplicate the union noise pydantic produces for `hardware`
    seen: list[str] = []
    for line in lines:
        if line not in seen:
            seen.append(line)
    return InputError("invalid spec\n  " + "\n  ".join(seen[:12]))
