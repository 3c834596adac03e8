"""Secrets for a deployment: an env file (mode 0600) written from the user's environment.

Rendered files only name the variables (compose `env_file:`, systemd `EnvironmentFile=`); their values
come from this process's environment when `up` runs, and are never printed or logged.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from llmctl.errors import InputError

if TYPE_CHECKING:
    from llmctl.service import ServiceSpec


def env_values(service: "ServiceSpec", environ: dict[str, str] | None = None) -> dict[str, str]:
    """{key: value} for every secret the service uses that the environment sets; a missing required one
    is an InputError naming the variable (never its value)."""
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, str] = {}
    missing = []
    for sec in service.secrets:
        value = environ.get(sec.key)
        if value is None and sec.key == "HF_TOKEN":
            value = environ.get("HUGGING_FACE_HUB_TOKEN")  # huggingface_hub's older name
        if value:
            if "\n" in value or "\r" in value or "\0" in value:
                raise InputError(f"${sec.key}: the value contains a line break or NUL, which an env file cannot hold")
            values[sec.key] = value
        elif sec.required:
            missing.append(sec)
    if missing:
        names = ", ".join(s.key for s in missing)
        why = "; ".join(f"{s.key}: {s.description}" for s in missing if s.description)
        raise InputError(f"secret {names} is required by this deployment but not set in the environment",
                         hint=f"export {missing[0].key}=… and run again ({why})" if why else f"export {missing[0].key}=…")
    return values


def env_file_text(values: dict[str, str]) -> str:
    # docker compose and systemd both read KEY=VALUE lines; values are written verbatim, one per line
    return "".join(f"{k}={v}\n" for k, v in sorted(values.items()))


def write_env_file(path: Path, values: dict[str, str]) -> str:
    """Write the env file with mode 0600 (set before the rename) and return a hash of its content, so a
    changed secret counts as a change to the deployment without the value appearing anywhere."""
    from llmctl.fileio import write_atomic

    text = env_file_text(values)
    write_atomic(path, text, mode=0o600)
    return hashlib.sha256(b"llmctl-env\0" + text.encode()).hexdigest()[:16]
