"""The steps of a running migration: `llmctl migrate status | shift --to PCT | finalize | rollback |
resume`, each over the recorded state DIR/migration.json."""

from __future__ import annotations

import json
from pathlib import Path

import click

OUT_HELP = "The migration's folder (default: the only ./migration-*/ folder here)."


def _out_dir(out: str | None, need: str = "migration.json") -> Path:
    from llmctl.errors import InputError

    if out:
        p = Path(out)
        if not p.is_dir():
            raise InputError(f"--out: {out} is not a folder")
        return p
    found = sorted(p for p in Path(".").glob("migration-*") if (p / need).exists())
    if len(found) != 1:
        raise InputError("--out: " + (f"no migration folder (./migration-*/ with {need}) here" if not found
                                      else f"{len(found)} migration folders here: " + ", ".join(map(str, found))),
                         hint="name it: --out DIR")
    return found[0]


def _say(text: str) -> None:
    click.echo(text, err=True)


@click.command("status")
@click.option("--out", "out", metavar="DIR", help=OUT_HELP)
@click.option("--output", "-o", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def status_cmd(out, fmt) -> int:
    """Show the migration's phase, traffic shares, endpoints and steps."""
    from llmctl.migrate.state import Migration
    from llmctl.migrate.steps import status, status_text

    st = status(Migration.require(_out_dir(out)))
    click.echo(json.dumps(st, indent=2) if fmt == "json" else status_text(st))
    return 0


@click.command("shift")
@click.option("--out", "out", metavar="DIR", help=OUT_HELP)
@click.option("--to", "to", required=True, metavar="PCT%", help="vLLM's share of new requests: 10%, 50% or 100%.")
@click.option("--observe", "observe_s", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="How long to watch the step before it counts as passed (default: profiles/migration.yaml).")
def shift_cmd(out, to, observe_s) -> int:
    """Give vLLM a share of new requests, gated on health and errors (a failed gate rolls back)."""
    from llmctl.migrate.state import Migration
    from llmctl.migrate.steps import parse_percent, shift

    pct = parse_percent(to)
    m = Migration.require(_out_dir(out))
    with m.locked():
        shift(m, pct, observe_s=observe_s, say=_say)
    return 0


@click.command("finalize")
@click.option("--out", "out", metavar="DIR", help=OUT_HELP)
def finalize_cmd(out) -> int:
    """Stop routing to Ollama (after parity passed and vLLM takes 100%). Ollama itself keeps running."""
    from llmctl.migrate.state import Migration
    from llmctl.migrate.steps import finalize

    m = Migration.require(_out_dir(out))
    with m.locked():
        finalize(m, say=_say)
    return 0


@click.command("rollback")
@click.option("--out", "out", metavar="DIR", help=OUT_HELP)
@click.option("--stop-new", is_flag=True, help="Also stop what llmctl started for the new side (vLLM, the front).")
def rollback_cmd(out, stop_new) -> int:
    """Send all new requests back to Ollama, at any step."""
    from llmctl.migrate.state import Migration
    from llmctl.migrate.steps import rollback

    m = Migration.require(_out_dir(out))
    with m.locked():
        rollback(m, stop_new=stop_new, say=_say)
    return 0


@click.command("resume")
@click.option("--out", "out", metavar="DIR", help=OUT_HELP)
@click.option("--new-url", metavar="URL", help="A new side that already runs (e.g. `llmctl up vllm.yaml`).")
@click.option("--old-url", metavar="URL", help="The running Ollama, when the inventory names no URL.")
@click.option("--old-api-url", metavar="URL",
              help="Where the old side answers Ollama's native /api/ paths, when not at --old-url.")
@click.option("--python", metavar="PY", help="Run vLLM as `PY -m vllm.entrypoints.openai.api_server`.")
@click.option("--port", type=click.IntRange(1, 65535), help="The proxy's port (clients use it).")
@click.option("--observe", "observe_s", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="How long each traffic step is watched.")
@click.option("--stop-at", type=click.IntRange(0, 100), default=100, show_default=True, metavar="PCT",
              help="Stop shifting at this step (0: parity only).")
@click.option("--engine-arg", "engine_args", multiple=True, metavar="FLAG",
              help="A flag appended to the new side's command line (repeat it; e.g. --engine-arg=--dtype=float32).")
@click.option("--parity-api", type=click.Choice(["ollama", "openai"]), default="ollama", show_default=True,
              help="How parity reaches the old side: Ollama's native API (raw prompts) or an OpenAI API.")
def resume_cmd(out, new_url, old_url, old_api_url, python, port, observe_s, stop_at, engine_args, parity_api) -> int:
    """Run or continue `--apply` from the recorded state (after a crash, or after fixing what failed)."""
    from llmctl.migrate.apply import run

    out_dir = Path(out) if out else _out_dir(None, "inventory.json")
    return run(out_dir, new_url=new_url, old_url=old_url, old_api_url=old_api_url, python=python, port=port, observe_s=observe_s,
               stop_at=stop_at, engine_args=list(engine_args) or None, parity_api=parity_api, say=_say)


def add_step_commands(group: click.Group) -> None:
    for cmd in (status_cmd, shift_cmd, finalize_cmd, rollback_cmd, resume_cmd):
        group.add_command(cmd)
