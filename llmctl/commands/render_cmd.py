"""`llmctl render SPEC --out DIR`: write compose, systemd or Kubernetes files for the spec's plan."""

from __future__ import annotations

import click

TARGET_CHOICES = ["compose", "systemd", "kubernetes"]


@click.command("render")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--target", "-t", type=click.Choice(TARGET_CHOICES), default=None,
              help="What to write; defaults to the spec's `target`.")
@click.option("--out", "-o", "out", type=click.Path(file_okay=False), default="deploy", show_default=True,
              help="Folder to write into (created if missing).")
@click.option("--force", is_flag=True, help="Overwrite files changed by hand since the last render.")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--runtime", type=click.Choice(["docker", "podman", "native"]), default="docker", show_default=True,
              help="systemd: run the engine in a docker or podman container, or the native binary.")
@click.option("--env-dir", default="/etc/llmctl", show_default=True,
              help="systemd: folder of the unit's EnvironmentFile (secrets).")
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Use a plan saved with `llmctl plan --output json` instead of planning again.")
@click.option("--colour", "colour", default=None, metavar="NAME",
              help="kubernetes: name the objects <name>-<colour> (blue/green side by side).")
@click.option("--shift", default=None, metavar="C=PCT,...",
              help="kubernetes: also write a Gateway API HTTPRoute splitting requests, e.g. blue=90%,green=10%.")
@click.option("--gateway", default=None, metavar="[NS/]NAME", help="kubernetes: the Gateway the HTTPRoute attaches to.")
def render_cmd(spec_path: str, target: str | None, out: str, force: bool, dry_run: bool, runtime: str,
               env_dir: str, plan_file: str | None, colour: str | None, shift: str | None, gateway: str | None) -> None:
    """Write deployment files for SPEC's plan into --out.

    Files are written atomically; a file that already exists is shown as a diff, and one changed by
    hand since the last render is left alone unless --force. Secret values are never written:
    compose and systemd read an env file, Kubernetes a Secret, each created by you or `llmctl up`.
    """
    from pathlib import Path

    from llmctl.render import compare, render_plan, write_files
    from llmctl.spec import load_spec
    from llmctl.targets import RenderOptions

    spec = load_spec(spec_path)
    plan = _load_plan(plan_file) if plan_file else _make_plan(spec)
    from llmctl.traffic.shift import parse_split

    options = RenderOptions(source=spec_path, runtime=runtime, env_dir=env_dir, colour=colour,
                            shift=parse_split(shift) if shift else None, gateway=gateway)
    rendered = render_plan(plan, spec, target, options)
    # show every difference before refusing or writing anything
    outp = Path(out)
    preview = compare(outp, rendered.files) if outp.is_dir() else []
    for change in preview:
        if change.diff:
            click.echo(change.diff, nl=not change.diff.endswith("\n"))
    changes = write_files(outp, rendered.files, force=force, dry_run=dry_run)
    verb = "would write" if dry_run else "wrote"
    click.echo(f"{rendered.target}: {verb} {out}/ ({rendered.service.engine}, {rendered.service.served_model_name})")
    for change in changes:
        label = {"new": "new", "unchanged": "unchanged", "updated": "updated", "edited": "overwritten (was edited)"}
        click.echo(f"  {label[change.status]:<10} {change.name}")
    for note in rendered.notes:
        click.echo(f"next: {note}")


def _load_plan(path: str):
    import json

    from pydantic import ValidationError

    from llmctl.errors import InputError
    from llmctl.plan import Plan

    try:
        return Plan.model_validate(json.loads(open(path, encoding="utf-8").read()))
    except (OSError, ValueError, ValidationError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"--plan: {path} is not a saved plan: {first}") from None


def _make_plan(spec):
    from llmctl.errors import CheckFailed

    try:
        from llmctl.planner import make_plan
    except ImportError:
        raise CheckFailed("the planner is not available in this build", hint="pass --plan FILE") from None
    return make_plan(spec)
