"""What llmctl relies on in Ollama, as a table read from Ollama's source, and a checker for renders.

Ollama cannot be installed here (no package in any reachable registry), so it cannot judge a render
the way vLLM's parser and the real llama-server do. Instead every OLLAMA_* variable and API path
llmctl uses is listed here with the file of the release llmctl pins where Ollama defines it
(github.com/ollama/ollama, tag v0.32.15, read 2026-11-30), and `violations` checks a rendered
service against the table: unknown variables, values the server would not parse, paths it does
not serve.
"""

from __future__ import annotations

import re

RELEASE = "v0.32.15"

_DURATION = re.compile(r"-?\d+(\.\d+)?(ns|us|µs|ms|s|m|h)?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))*$")


def _host(v: str) -> bool:  # envconfig.Host: [scheme://]host[:port]
    return bool(re.fullmatch(r"(https?://)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]*)(:\d{1,5})?", v))


def _uint(v: str) -> bool:  # envconfig.Uint: strconv.ParseUint
    return v.isdigit()


def _bool(v: str) -> bool:  # envconfig.Bool: strconv.ParseBool
    return v in ("1", "0", "t", "f", "T", "F", "true", "false", "TRUE", "FALSE", "True", "False")


def _duration(v: str) -> bool:  # envconfig.KeepAlive: time.ParseDuration, or integer seconds
    return bool(_DURATION.match(v)) or v.lstrip("-").isdigit()


def _kv_type(v: str) -> bool:  # passed to the runner as --cache-type-k/-v (llm/llama_server.go)
    return v in ("f16", "q8_0", "q4_0")


def _path(v: str) -> bool:
    return v.startswith("/")


# variable -> (value check, where Ollama reads it)
ENV: dict[str, tuple[object, str]] = {
    "OLLAMA_HOST": (_host, "envconfig/config.go Host (default 127.0.0.1:11434)"),
    "OLLAMA_MODELS": (_path, "envconfig/config.go Models (default $HOME/.ollama/models)"),
    "OLLAMA_NUM_PARALLEL": (_uint, "envconfig/config.go NumParallel (default 1)"),
    "OLLAMA_CONTEXT_LENGTH": (_uint, "envconfig/config.go ContextLength (0: by VRAM, server/routes.go)"),
    "OLLAMA_KEEP_ALIVE": (_duration, "envconfig/config.go KeepAlive (default 5m; negative: forever)"),
    "OLLAMA_MAX_LOADED_MODELS": (_uint, "envconfig/config.go MaxRunners (0: 3 per GPU, server/sched.go)"),
    "OLLAMA_MAX_QUEUE": (_uint, "envconfig/config.go MaxQueue (default 512)"),
    "OLLAMA_FLASH_ATTENTION": (_bool, "envconfig/config.go FlashAttention; llm/llama_server.go"),
    "OLLAMA_KV_CACHE_TYPE": (_kv_type, "envconfig/config.go KvCacheType; llm/llama_server.go"),
    "OLLAMA_NOPRUNE": (_bool, "envconfig/config.go NoPrune; server/routes.go Serve"),
}

# llmctl's own variables in an Ollama container (read by its entry script, not by Ollama)
OWN_ENV = {"LLMCTL_READY_FILE"}

# API paths llmctl calls, with the method and the route in server/routes.go GenerateRoutes
PATHS: dict[str, str] = {
    "/api/version": "GET, served before any model is loaded",
    "/api/tags": "GET, the models on disk",
    "/api/chat": "POST, loads the model; NDJSON stream",
    "/api/generate": "POST, loads the model; empty prompt preloads",
    "/api/ps": "GET, the loaded models",
    "/api/show": "POST, a model's Modelfile, parameters and metadata",
    "/api/embed": "POST, embeddings",
    "/v1/chat/completions": "POST, OpenAI compatible",
    "/v1/models": "GET, OpenAI compatible",
}

# CLI subcommands the entry script and probes run (cmd/cmd.go)
COMMANDS = {"serve", "list", "show", "pull", "run", "ps"}


def _subcommands(script: str) -> list[str]:
    """The `ollama X` commands a shell script runs (X of each simple command whose program is ollama)."""
    found = []
    for piece in re.split(r"\|\||&&|;|\n|\(|\)|\{|\}|&(?!\d)", script):
        words = piece.split()
        while words and words[0] in ("until", "do", "then", "if", "!", "else", "while", "exec"):
            words = words[1:]
        if len(words) >= 2 and words[0].rsplit("/", 1)[-1] == "ollama":
            found.append(words[1])
    return found


def violations(service) -> list[str]:
    """What in a rendered Ollama ServiceSpec breaks the contract (empty: none)."""
    out: list[str] = []
    for name, value in service.env.items():
        if name in OWN_ENV:
            continue
        rule = ENV.get(name)
        if rule is None:
            out.append(f"{name}: not a variable Ollama {RELEASE} reads")
        elif not rule[0](value):  # type: ignore[operator]
            out.append(f"{name}={value!r}: Ollama {RELEASE} would not parse it ({rule[1]})")
    if service.health.path not in PATHS:
        out.append(f"health path {service.health.path}: not served by Ollama {RELEASE}")
    for word in _subcommands(" ".join(service.argv)):
        if word not in COMMANDS:
            out.append(f"`ollama {word}`: no such command in Ollama {RELEASE}")
    if service.health.ready_command and service.health.ready_command[0] not in ("test", "/bin/sh"):
        out.append(f"ready command {service.health.ready_command[0]}: not in the ollama/ollama image")
    return out
