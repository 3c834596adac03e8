"""`llmctl migrate`: move a running Ollama service to vLLM (the steps of a running migration are in
migrate_steps_cmd.py)."""

from __future__ import annotations

import click

from llmctl.commands.migrate_steps_cmd import add_step_commands


@click.group("migrate")
def migrate_cmd() -> None:
    """Move a running Ollama service to vLLM without losing a request or a client."""


add_step_commands(migrate_cmd)
