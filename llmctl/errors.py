"""Errors meant for people. The CLI turns them into a message and an exit code, never a traceback."""

from __future__ import annotations


class LlmctlError(Exception):
    """Base class. `exit_code` follows the CLI contract: 1 a check failed, 2 bad input."""

    exit_code = 1


class InputError(LlmctlError):
    """The user's input (spec, flag, model reference, GPU name) is wrong. Exit code 2."""

    exit_code = 2

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        text = f"{where}: {message}" if where else message
        if hint:
            text += f"\n  hint: {hint}"
        super().__init__(text)


class CheckFailed(LlmctlError):
    """A check (smoke test, SLA, forced override that cannot work, preflight) failed. Exit code 1."""

    exit_code = 1
