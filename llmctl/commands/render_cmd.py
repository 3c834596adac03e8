"""`llmctl render SPEC --out DIR`: write compose, systemd or Kubernetes files for the spec's plan."""

from __future__ import annotations

import click

from llmctl.targets.registry import renderable
from llmctl.typed import convert

TARGET_CHOICES = list(renderable())
RENDER_SCHEMA = "llmctl.render/v1"

EXAMPLES = """
\b
Examples:
  llmctl render llmctl.yaml                          # files for the spec's target into ./deploy
  llmctl render llmctl.yaml -t kubernetes --out k8s/ --dry-run
  llmctl render llmctl.yaml -t kubernetes -n llm -o yaml | kubectl apply -f -
  llmctl plan llmctl.yaml -o json > plan.json && llmctl render llmctl.yaml --plan plan.json
"""


class _Format(click.Choice):
    """-o is the output format, as in kubectl and helm; say where the folder goes when one is given."""

    def convert(self, value, param, ctx):
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as exc:
            raise click.BadParameter(f"{exc.message} (-o is the output format; the folder to write into is "
                                     f"--out {value})", ctx=ctx, param=param) from None


@click.command("render", epilog=EXAMPLES)
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--target", "-t", type=click.Choice(TARGET_CHOICES), default=None,
              help="What to write; defaults to the spec's `target`.")
@click.option("--out", "out", type=click.Path(file_okay=False), default="deploy", show_default=True,
              help="Folder to write into (created if missing).")
@click.option("--output", "-o", "fmt", type=_Format(["files", "json", "yaml"]), default="files", show_default=True,
              help="files: write into --out; json: every file in one llmctl.render/v1 document on stdout; "
                   "yaml: the YAML files as one multi-document stream on stdout. Nothing is written for json/yaml.")
@click.option("--force", is_flag=True,
              help="Overwrite files changed by hand since the last render, and accept a --plan not made from SPEC.")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--runtime", type=click.Choice(["docker", "podman", "native"]), default="docker", show_default=True,
              help="systemd: run the engine in a docker or podman container, or the native binary.")
@click.option("--env-dir", default="/etc/llmctl", show_default=True,
              help="systemd: folder of the unit's EnvironmentFile (secrets).")
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False), default=None,
              help="Use a plan saved with `llmctl plan -o json` instead of planning again (it must be SPEC's).")
@click.option("--colour", "colour", default=None, metavar="NAME",
              help="kubernetes: name the objects <name>-<colour> (blue/green side by side); "
                   "systemd: the engine unit's colour, blue or green (default blue).")
@click.option("--shift", default=None, metavar="C=PCT,...",
              help="kubernetes: also write a Gateway API HTTPRoute splitting requests, e.g. blue=90%,green=10%.")
@click.option("--gateway", default=None, metavar="[NS/]NAME", help="kubernetes: the Gateway the HTTPRoute attaches to.")
@click.option("--namespace", "-n", "namespace", default=None,
              help="kubernetes: put every object in this namespace (default: none set, so the context's).")
def render_cmd(spec_path: str, target: str | None, out: str, fmt: str, force: bool, dry_run: bool, runtime: str,
               env_dir: str, plan_file: str | None, colour: str | None, shift: str | None, gateway: str | None,
               namespace: str | None) -> None:
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
    plan = _load_plan(plan_file, spec, force) if plan_file else _make_plan(spec, spec_path)
    from llmctl.traffic.shift import parse_split

    options = RenderOptions(source="<stdin>" if spec_path == "-" else spec_path, runtime=runtime, env_dir=env_dir,
                            colour=colour, shift=parse_split(shift) if shift else None, gateway=gateway,
                            namespace=namespace)
    rendered = render_plan(plan, spec, target, options)
    if fmt != "files":
        _print(rendered, fmt)
        return
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


def _print(rendered, fmt: str) -> None:
    import json

    from llmctl.errors import InputError

    if fmt == "json":
        click.echo(json.dumps({"schema": RENDER_SCHEMA, "target": rendered.target, "engine": rendered.service.engine,
                               "served_model_name": rendered.service.served_model_name,
                               "files": dict(sorted(rendered.files.items())), "notes": list(rendered.notes)}, indent=2))
        return
    docs = [text for name, text in sorted(rendered.files.items()) if name.endswith((".yaml", ".yml"))]
    if not docs:
        raise InputError(f"--output yaml: {rendered.target} files are not YAML", hint="use -o json, or -o files --out DIR")
    click.echo("---\n" + "\n---\n".join(d.strip("\n") for d in docs))


def _load_plan(path: str, spec, force: bool):
    import json

    from llmctl.deploy.progress import say
    from llmctl.errors import InputError
    from llmctl.fileio import MAX_PLAN_BYTES, read_text_input
    from llmctl.plan import Plan
    from llmctl.spec import spec_digest

    text = read_text_input(path, what="plan", max_bytes=MAX_PLAN_BYTES, hint="save one with `llmctl plan -o json`")
    try:
        plan = convert(json.loads(text), Plan)
    except RecursionError:
        raise InputError(f"--plan: {path} is not a saved plan: nested too deeply") from None
    except ValueError as exc:  # not JSON, or not a plan (llmctl.typed.Invalid)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"--plan: {path} is not a saved plan: {first}") from None
    mismatch = []
    if plan.name != spec.name:
        mismatch.append(f"it plans {plan.name!r}, the spec is {spec.name!r}")
    if plan.model.reference != spec.model:
        mismatch.append(f"its model is {plan.model.reference!r}, the spec's is {spec.model!r}")
    if not mismatch and plan.spec_sha256 and plan.spec_sha256 != spec_digest(spec):
        mismatch.append("the spec changed since the plan was saved")
    if mismatch:
        if not force:
            raise InputError(f"--plan: {path} was not made from this spec: " + "; ".join(mismatch),
                             hint="plan again (`llmctl plan SPEC -o json > FILE`), or pass --force to render it anyway")
        say(f"warning: --plan {path} was not made from this spec (" + "; ".join(mismatch) + "); rendering it (--force)")
    return plan


def _make_plan(spec, spec_path: str):
    from pathlib import Path

    from llmctl.errors import CheckFailed

    try:
        from llmctl.planner import make_plan
    except ImportError:
        raise CheckFailed("the planner is not available in this build", hint="pass --plan FILE") from None
    return make_plan(spec, base_dir=Path("." if spec_path == "-" else spec_path).resolve().parent)
