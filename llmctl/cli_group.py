"""The click group of `llmctl`: commands looked up lazily in llmctl.cli.COMMANDS, global options."""

from __future__ import annotations

import importlib
import os

import click

from llmctl import __version__
from llmctl.cli import COMMANDS, EPILOG, _available


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if _available(name)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not _available(name):
            return None
        target, _ = COMMANDS[name]
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _no_color(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        os.environ["NO_COLOR"] = "1"  # read by llmctl.term and by rich


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.version_option(__version__, prog_name="llmctl")
@click.option("--no-color", is_flag=True, expose_value=False, is_eager=True, callback=_no_color,
              help="No colour in the output (also: the NO_COLOR environment variable).")
def cli() -> None:
    """Plan, render, deploy and verify self-hosted LLM serving (Ollama, vLLM, llama.cpp).

    Start with `llmctl init` to write a spec, then `llmctl plan llmctl.yaml`.
    """


def render_help() -> str:
    """What `llmctl --help` prints (click's rendering, ending in a newline)."""
    with cli.context_class(cli, info_name="llmctl", **cli.context_settings) as ctx:
        return cli.get_help(ctx) + "\n"
