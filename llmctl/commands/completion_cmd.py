"""`llmctl completion bash|zsh|fish`: the shell completion script (click's), printed for the user's
shell start-up file."""

from __future__ import annotations

import click

SHELLS = ["bash", "zsh", "fish"]


@click.command("completion", epilog="""
\b
Examples:
  source <(llmctl completion bash)                       # this shell; add it to ~/.bashrc to keep it
  llmctl completion zsh > "${fpath[1]}/_llmctl"          # zsh
  llmctl completion fish > ~/.config/fish/completions/llmctl.fish
""")
@click.argument("shell", type=click.Choice(SHELLS))
def completion_cmd(shell: str) -> None:
    """Print the completion script for SHELL: commands, options, choices and file names complete with Tab."""
    from click.shell_completion import get_completion_class

    from llmctl.cli_group import cli

    cls = get_completion_class(shell)
    click.echo(cls(cli, {}, "llmctl", "_LLMCTL_COMPLETE").source())
