"""The workload spec (`llmctl.yaml`): a pydantic model, and a loader whose errors name file:line.

The loader parses with ruamel.yaml's round-trip parser because it remembers where every key sits;
pydantic then validates, and any error is mapped back from its field path to the line that holds it.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llmctl.engines import canonical_name, engine_names
from llmctl.errors import InputError

Backend = Literal[engine_names()]  # type: ignore[valid-type]  # the registered engines
Environment = Literal["development", "staging", "production"]
Target = Literal["compose", "systemd", "kubernetes", "local"]
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
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    sla: SLA = SLA()

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


class Spec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    model: str = Field(min_length=1)
    workload: Workload = Workload()
    environment: Environment = "development"
    needs: list[Need] = []
    hardware: Union[Literal["detect"], list[Node]] = "detect"
    target: Target = "compose"
    endpoint: Endpoint = Endpoint()
    adapters: list[Adapter] = []
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
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"spec file not found: {path}", hint="create one with `llmctl init`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read spec file {path}: {exc}") from None
    return load_spec_text(text, str(path))


def load_spec_text(text: str, filename: str = "<spec>") -> Spec:
    data = parse_yaml(text, filename)
    if data is None:
        raise InputError("the spec is empty", where=f"{filename}:1", hint="start from `llmctl init`")
    if not isinstance(data, dict):
        raise InputError("the spec must be a mapping of keys (name, model, workload, …)", where=f"{filename}:1")
    try:
        return Spec.model_validate(_plain(data))
    except ValidationError as exc:
        raise _explain(exc, data, filename) from None


def parse_yaml(text: str, filename: str) -> Any:
    """Parse YAML keeping line information; syntax errors become an InputError with file:line."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"not valid YAML: {problem}", where=f"{filename}{line}") from None
    except Exception as exc:  # ruamel raises a few non-YAMLError types on odd input
        raise InputError(f"not valid YAML: {exc}", where=filename) from None


def _plain(node: Any) -> Any:
    """ruamel containers → plain dict/list, so pydantic sees ordinary Python values."""
    if isinstance(node, dict):
        return {(k if isinstance(k, str) else str(k)): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def line_of(data: Any, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest key or item along `loc` that exists in the parsed document."""
    line = None
    node = data
    for part in loc:
        lc = getattr(node, "lc", None)
        if isinstance(node, dict) and part in node:
            if lc is not None:
                line = lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            if lc is not None:
                line = lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    if line is None and getattr(data, "lc", None) is not None:
        line = data.lc.line + 1
    return line


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


def _explain(exc: ValidationError, data: Any, filename: str) -> InputError:
    lines = []
    first_where = None
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("list[", "literal["))))
        # pydantic reports union branches as 'list[Node]' / "literal['detect']"; drop them from the path
        path = ".".join(str(p) for p in loc) or "(top level)"
        line = line_of(data, loc)
        where = f"{filename}:{line}" if line else filename
        first_where = first_where or where
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            key = str(loc[-1])
            model = _model_for(loc)
            known = list(model.model_fields) if model else []
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            msg = f"unknown key {key!r}" + (f" — did you mean {close[0]!r}?" if close else "")
            if known:
                msg += f" (allowed here: {', '.join(known)})"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] == "literal_error":
            got = err.get("input")
            msg = f"{msg}; got {got!r}"
        lines.append(f"{where}: {path}: {msg}")
    # de-duplicate the union noise pydantic produces for `hardware`
    seen: list[str] = []
    for line in lines:
        if line not in seen:
            seen.append(line)
    return InputError("invalid spec\n  " + "\n  ".join(seen[:12]))
