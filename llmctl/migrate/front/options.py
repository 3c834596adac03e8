"""Ollama `options` (Modelfile PARAMETERs and per-request options) and their OpenAI equivalents.

Option names and types: ollama v0.32.15 api/types.go `Options` (lines 568-585) and `Runner`
(lines 588-596). Type checking follows `Options.FromMap` (api/types.go:991): an unknown name is
ignored, a value of the wrong type is an error `option "x" must be of type ...`.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("llmctl.migrate.front")

# name -> Go kind (api/types.go Options and Runner structs)
OPTION_KINDS: dict[str, str] = {
    # Runner: fixed when the model is loaded
    "num_ctx": "int", "num_batch": "int", "num_gpu": "int", "main_gpu": "int", "use_mmap": "bool",
    "num_thread": "int", "draft_num_predict": "int",
    # predict options
    "num_keep": "int", "seed": "int", "num_predict": "int", "top_k": "int", "top_p": "float",
    "min_p": "float", "typical_p": "float", "repeat_last_n": "int", "temperature": "float",
    "repeat_penalty": "float", "presence_penalty": "float", "frequency_penalty": "float",
    "stop": "strings",
}

# Ollama option -> OpenAI / vLLM sampling parameter. repeat_penalty and vLLM's repetition_penalty are
# the same multiplicative penalty on tokens already seen, but Ollama looks back repeat_last_n tokens
# (default 64) while vLLM counts the prompt and all generated tokens.
OPENAI_NAMES: dict[str, str] = {
    "temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "min_p": "min_p",
    "repeat_penalty": "repetition_penalty", "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty", "seed": "seed", "stop": "stop", "num_predict": "max_tokens",
}

# Options with no per-request OpenAI equivalent, and why (logged once per name).
NOT_CARRIED: dict[str, str] = {
    "num_ctx": "the context length is fixed when the backend starts (vLLM --max-model-len)",
    "num_batch": "a load-time setting of the backend",
    "num_gpu": "a load-time setting of the backend",
    "main_gpu": "a load-time setting of the backend",
    "use_mmap": "a load-time setting of the backend",
    "num_thread": "a load-time setting of the backend",
    "draft_num_predict": "speculative decoding is configured on the backend",
    "num_keep": "context shifting does not exist on the backend (over-long prompts are rejected)",
    "repeat_last_n": "vLLM's repetition_penalty looks at all tokens, not the last N",
    "typical_p": "vLLM has no typical sampling",
}
_warned: set[str] = set()


class OptionError(ValueError):
    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


def check_options(options: Any) -> dict[str, Any]:
    """The options with known names and checked types; unknown names dropped (as Ollama does)."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise OptionError("options must be a JSON object")
    out: dict[str, Any] = {}
    for key, val in options.items():
        kind = OPTION_KINDS.get(key)
        if kind is None:
            log.warning("invalid option provided: %s", key)  # the message Ollama logs
            continue
        if val is None:
            continue
        if kind == "int":
            if isinstance(val, bool) or not isinstance(val, (int, float)):
                raise OptionError(f'option "{key}" must be of type integer', key)
            val = int(val)  # JSON numbers become Go ints by truncation
        elif kind == "float":
            if isinstance(val, bool) or not isinstance(val, (int, float)):
                raise OptionError(f'option "{key}" must be of type float32', key)
            val = float(val)
        elif kind == "bool":
            if not isinstance(val, bool):
                raise OptionError(f'option "{key}" must be of type boolean', key)
        elif kind == "strings":
            if not isinstance(val, list):
                raise OptionError(f'option "{key}" must be of type array', key)
            if not all(isinstance(s, str) for s in val):
                raise OptionError(f'option "{key}" must be of an array of strings', key)
            val = list(val)
        out[key] = val
    return out


def merged(defaults: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """The model's Modelfile options under the request's: the request wins key by key
    (server/routes.go copies each m.Options key the request does not set)."""
    return {**defaults, **request}


def to_openai(options: dict[str, Any]) -> dict[str, Any]:
    """OpenAI request parameters for checked Ollama options."""
    out: dict[str, Any] = {}
    for key, val in options.items():
        name = OPENAI_NAMES.get(key)
        if name is None:
            if key in NOT_CARRIED and key not in _warned:
                _warned.add(key)
                log.info("option %s is not sent to the backend: %s", key, NOT_CARRIED[key])
            continue
        if key == "num_predict" and val <= 0:
            continue  # -1: no limit, -2: fill the context (docs/modelfile.md); the backend's default
        if key == "seed" and val < 0:
            continue  # -1: a random seed (api/types.go DefaultOptions)
        if key == "stop" and not val:
            continue
        out[name] = val
    return out
