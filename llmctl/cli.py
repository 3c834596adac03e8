"""The `llmctl` command line.

Sub-commands live in their own modules and are imported only when run, so `llmctl --help` stays
fast (no pydantic, jinja2 or httpx at start-up). Every LlmctlError becomes a message on stderr and
its exit code (1 a check failed, 2 bad input) — never a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import click

from llmctl import __version__

# name -> (module:attribute, one-line help shown by `llmctl --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("llmctl.commands.plan_cmd:init_cmd", "Write a commented starter spec (llmctl.yaml)."),
    "plan": ("llmctl.commands.plan_cmd:plan_cmd", "Decide engine, quantization, parallelism and replicas for a spec."),
    "render": ("llmctl.commands.render_cmd:render_cmd", "Write compose, systemd or Kubernetes files for a spec's plan."),
    "inventory": ("llmctl.commands.doctor_cmd:inventory_cmd", "Detect this machine's GPUs, CPU and memory."),
    "doctor": ("llmctl.commands.doctor_cmd:doctor_cmd", "Check that this host can run a spec's plan, with fixes."),
    "up": ("llmctl.commands.deploy_cmd:up_cmd", "Render, apply, wait for readiness and smoke-test a spec."),
    "down": ("llmctl.commands.deploy_cmd:down_cmd", "Remove what `llmctl up` created (model volumes kept)."),
    "status": ("llmctl.commands.deploy_cmd:status_cmd", "Show what `llmctl up` applied and whether it is healthy."),
    "rollback": ("llmctl.commands.deploy_cmd:rollback_cmd", "Bring back the version that ran before the last update."),
    "smoke": ("llmctl.commands.smoke_cmd:smoke_cmd", "Check a running endpoint against the SLA."),
    "traffic": ("llmctl.commands.traffic_cmd:traffic_cmd", "Show or shift how the proxy splits requests between colours."),
}


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


def _available(name: str) -> bool:
    module = COMMANDS[name][0].split(":")[0]
    return importlib.util.find_spec(module) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llmctl")
def cli() -> None:
    """Plan, render, deploy and verify self-hosted LLM serving (Ollama, vLLM, llama.cpp).

    Start with `llmctl init` to write a spec, then `llmctl plan llmctl.yaml`.
    """


def main(argv: list[str] | None = None) -> None:
    # pydantic looks for plugins through importlib.metadata on its first model (~25 ms); llmctl uses none
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from llmctl.errors import LlmctlError

    try:
        rc = cli.main(args=argv, prog_name="llmctl", standalone_mode=False)
    except LlmctlError as exc:
        click.echo(f"error: {exc}" if exc.exit_code == 2 else f"failed: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except BrokenPipeError:
        sys.exit(0)
    # with standalone_mode=False click returns ctx.exit(N)'s code, or the command's return value
    sys.exit(rc if isinstance(rc, int) else 0)
