"""front.json: what the Ollama-compatible front serves, read into a typed `FrontConfig`.

Schema "llmctl.migrate.front/v1" (written by `llmctl migrate ollama-to-vllm`): the OpenAI-compatible
backend, the Ollama version to report, and one entry per Ollama tag with the name the backend serves
it under and the Modelfile settings the backend cannot apply itself (SYSTEM, MESSAGE, PARAMETERs).

Bad input is an `InputError` naming the file, the line and the field (exit code 2).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from llmctl.errors import InputError
from llmctl.migrate.front.names import canonical
from llmctl.migrate.front.options import OptionError, check_options
from llmctl.typed import Invalid, Meta, convert, field, problems
from llmctl.typed import Record as _Data
from llmctl.yaml_lines import line_of

SCHEMA = "llmctl.migrate.front/v1"
API_VERSION = "0.32.15"  # the Ollama release whose API shapes the front follows (api/types.go at v0.32.15)

# Backend timeouts. Connecting to a backend on the same host or cluster takes milliseconds; 5 s only
# covers a busy accept queue. The read timeout bounds the gap between two chunks of one answer (not the
# whole answer): a long prompt's prefill on a loaded server can take minutes before the first token.
DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_READ_TIMEOUT_S = 600.0

Text = Annotated[str, Meta(min_length=1)]


class FrontMessage(_Data):
    """A Modelfile MESSAGE line (api/types.go Message: role, content)."""

    role: Literal["system", "user", "assistant", "tool"]  # lower-cased when read, as Ollama does (Message.UnmarshalJSON)
    content: str


class Timeouts(_Data):
    connect_s: Annotated[float, Meta(gt=0, le=300)] = DEFAULT_CONNECT_TIMEOUT_S
    read_s: Annotated[float, Meta(gt=0, le=86400)] = DEFAULT_READ_TIMEOUT_S


class FrontModel(_Data):
    name: Text  # the Ollama tag clients send, e.g. "llama3.2:1b"
    aliases: list[str] = []  # other names clients may send
    served_name: Text  # the model name the backend serves
    system: str | None = None  # Modelfile SYSTEM
    messages: list[FrontMessage] = []  # Modelfile MESSAGE lines
    options: dict[str, Any] = {}  # Modelfile PARAMETERs, Ollama names (api/types.go Options)
    template: str | None = None  # Modelfile TEMPLATE (shown by /api/show only)
    show: dict[str, Any] | None = None  # the old server's /api/show answer, replayed
    embedding: bool = False
    context_length: Annotated[int, Meta(ge=1)] | None = None
    # For /api/tags and /api/ps (the old server's /api/tags entry), all optional:
    digest: str = ""
    size: Annotated[int, Meta(ge=0)] = 0
    details: dict[str, Any] | None = None
    modified_at: str | None = None


def capabilities(m: "FrontModel") -> list[str] | None:
    """The model's capabilities as the old server listed them (/api/show), else what front.json says
    (an embedding model), else None: unknown, nothing is refused."""
    caps = (m.show or {}).get("capabilities")
    if isinstance(caps, list):
        return [str(c) for c in caps]
    return ["embedding"] if m.embedding else None


class FrontConfig(_Data):
    schema_: Literal["llmctl.migrate.front/v1"] = field(name="schema")
    backend: str  # OpenAI-compatible base URL without /v1, e.g. http://127.0.0.1:8000
    api_key_env: str | None = None  # environment variable holding the backend's API key
    # what /api/version answers: the replaced Ollama's version; null (not recorded) -> the version whose
    # API this front implements
    version: str | None = API_VERSION
    timeouts: Timeouts = field(default_factory=Timeouts)
    models: list[FrontModel]

    def __post_init__(self) -> None:
        if self.version is None:
            self.version = API_VERSION
        v = self.backend.strip().rstrip("/")
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"backend: must be an http:// or https:// URL, got {v!r}")
        self.backend = v.removesuffix("/v1")  # the contract says "without /v1"; accept it with, once

    def api_key(self) -> str | None:
        if not self.api_key_env:
            return None
        return os.environ.get(self.api_key_env)


def load_front_config(path: str | Path) -> FrontConfig:
    """Read and check front.json. Raises InputError (exit code 2) naming file:line and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file", where=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read it: {exc}", where=str(path)) from None
    return parse_front_config(text, str(path))


def parse_front_config(text: str, filename: str = "front.json") -> FrontConfig:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg} (column {exc.colno})", where=f"{filename}:{exc.lineno}") from None
    if not isinstance(data, dict):
        raise InputError("must be a JSON object with schema, backend and models", where=f"{filename}:1")
    _lower_roles(data)
    try:
        config = convert(data, FrontConfig)
    except Invalid:
        raise _explain(problems(data, FrontConfig), text, filename) from None
    for i, m in enumerate(config.models):
        try:
            m.options = check_options(m.options)
        except OptionError as exc:
            line = line_of(_lines(text, filename), ("models", i, "options", exc.key or ""))
            raise InputError(f"models.{i}.options.{exc.key}: {exc}", where=f"{filename}:{line}") from None
    seen: dict[str, str] = {}
    for i, m in enumerate(config.models):
        for j, n in enumerate([m.name, *m.aliases]):
            key = canonical(n)
            if key in seen and seen[key] != m.name:
                loc = ("models", i, "name") if j == 0 else ("models", i, "aliases", j - 1)
                raise InputError(f"{'.'.join(map(str, loc))}: model name {n!r} is also a name of {seen[key]!r} "
                                 "(names compare without case, with Ollama's default tag :latest)",
                                 where=f"{filename}:{line_of(_lines(text, filename), loc)}")
            seen[key] = m.name
    if config.api_key_env and config.api_key() is None:
        raise InputError(f"api_key_env names {config.api_key_env}, which is not set in the environment",
                         where=f"{filename}:{_lines(text, filename).get(('api_key_env',), 1)}",
                         hint=f"export {config.api_key_env}=<the backend's API key>, or set api_key_env to null")
    return config


def _lower_roles(data: dict) -> None:
    """MESSAGE roles lower-cased, as Ollama reads them (api/types.go Message.UnmarshalJSON); anything of
    another shape is left for the type check to name."""
    models = data.get("models")
    for m in models if isinstance(models, list) else []:
        messages = m.get("messages") if isinstance(m, dict) else None
        for msg in messages if isinstance(messages, list) else []:
            if isinstance(msg, dict) and isinstance(msg.get("role"), str):
                msg["role"] = msg["role"].lower()


def _lines(text: str, filename: str) -> dict:
    """Line of every key (JSON is YAML; the YAML reader records where each key starts)."""
    from llmctl.yaml_lines import load_yaml

    try:
        return load_yaml(text, filename)[1]
    except InputError:
        return {}


def _explain(errors: list[Invalid], text: str, filename: str) -> InputError:
    lines = _lines(text, filename)
    out = [f"{filename}:{line_of(lines, err.loc)}: {err}" for err in errors]
    first, *rest = out
    where, _, message = first.partition(": ")
    return InputError(message + "".join(f"\n  {r}" for r in rest), where=where)
