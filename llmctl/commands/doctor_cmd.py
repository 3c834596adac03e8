"""`llmctl inventory` and `llmctl doctor`: what this host has, and whether it can run a spec's plan.

Heavy modules (pydantic models, docker, tabulate, ruamel) are imported inside the commands.
"""

from __future__ import annotations

import json

import click

INVENTORY_SCHEMA = "llmctl.inventory/v1"
DOCTOR_SCHEMA = "llmctl.doctor/v1"


@click.command("inventory")
@click.option(
    "--output", "-o", "output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True,
    help="yaml: a `hardware:` block to paste into a spec (details as comments); json: everything detected.",
)
def inventory_cmd(output: str) -> None:
    """Detect this machine's GPUs (NVIDIA, AMD, Apple), CPU and memory."""
    from llmctl import inventory

    det = inventory.detect()
    if output == "json":
        click.echo(json.dumps({"schema": INVENTORY_SCHEMA, **det.to_dict()}, indent=2))
    else:
        click.echo(inventory.hardware_yaml(det), nl=False)


@click.command("doctor")
@click.argument("spec", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--target", "-t", type=click.Choice(["compose", "systemd", "kubernetes", "local"]), default=None,
    help="Check for this target instead of the spec's (default: the spec's, or compose without a spec).",
)
@click.option("--output", "-o", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def doctor_cmd(ctx: click.Context, spec: str | None, target: str | None, output: str) -> None:
    """Check that this host can run SPEC's plan: container runtime, GPU runtime, driver, disk, /dev/shm,
    ports, Kubernetes GPU capacity, Hugging Face token. Exits 1 when any check fails.

    Without SPEC, checks what can be checked from this machine alone.
    """
    from llmctl import doctor

    if spec is None:
        results = doctor.run_host_checks(target or "compose")
    else:
        from llmctl.spec import load_spec

        loaded = load_spec(spec)
        plan = doctor.plan_for(loaded)
        results = doctor.run_checks(loaded, plan, target)
    if output == "json":
        click.echo(json.dumps({"schema": DOCTOR_SCHEMA, **doctor.results_json(results)}, indent=2))
    else:
        click.echo(doctor.results_table(results))
    if doctor.any_failed(results):
        ctx.exit(1)
