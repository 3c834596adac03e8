"""`llmctl inventory` and `llmctl doctor`: what this host has, and whether it can run a spec's plan.

Heavy modules (docker, tabulate, ruamel) are imported inside the commands.
"""

from __future__ import annotations

import json

import click

from llmctl.targets.registry import REGISTRY

INVENTORY_SCHEMA = "llmctl.inventory/v1"
DOCTOR_SCHEMA = "llmctl.doctor/v1"


@click.command("inventory")
@click.option(
    "--output", "-o", "output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True,
    help="yaml: a `hardware:` block to paste into a spec (details as comments); json: everything detected.",
)
def inventory_cmd(output: str) -> None:
    """Detect this machine's GPUs (NVIDIA, AMD, Apple), CPU and memory.

    \b
    Examples:
      llmctl inventory                  # a `hardware:` block to paste into a spec
      llmctl inventory -o json          # everything detected (llmctl.inventory/v1)
    """
    from llmctl import inventory

    det = inventory.detect()
    if output == "json":
        click.echo(json.dumps({"schema": INVENTORY_SCHEMA, **det.to_dict()}, indent=2))
    else:
        click.echo(inventory.hardware_yaml(det), nl=False)


@click.command("doctor")
@click.argument("spec", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--target", "-t", type=click.Choice(list(REGISTRY)), default=None,
    help="Check for this target instead of the spec's (default: the spec's, or compose without a spec).",
)
@click.option("--output", "-o", "output", type=click.Choice(["table", "wide", "json"]), default="table",
              show_default=True, help="Output format; `wide`: the table unwrapped.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None,
              help="kubernetes: the kubeconfig file for the cluster checks (default: $KUBECONFIG or ~/.kube/config).")
@click.option("--context", default=None, help="kubernetes: the kubectl context to check (default: the current one).")
@click.option("--namespace", "-n", "namespace", default=None,
              help="kubernetes: the namespace the deployment goes to (its Secret is looked for there).")
@click.pass_context
def doctor_cmd(ctx: click.Context, spec: str | None, target: str | None, output: str, kubeconfig: str | None,
               context: str | None, namespace: str | None) -> None:
    """Check that this host can run SPEC's plan: container runtime, GPU runtime, driver, disk, /dev/shm,
    ports, Kubernetes GPU capacity, Hugging Face token. Exits 1 when any check fails.

    Without SPEC, checks what can be checked from this machine alone.

    \b
    Examples:
      llmctl doctor                         # this host, for compose
      llmctl doctor llmctl.yaml             # what the spec's plan needs
      llmctl doctor llmctl.yaml -t kubernetes --kubeconfig ~/.kube/prod -o json
      llmctl doctor llmctl.yaml -t kubernetes --context prod -n llm
    """
    from llmctl import doctor
    from llmctl.targets.kubernetes.apply import kubectl_base

    if kubeconfig:
        import os

        kubeconfig = os.environ["KUBECONFIG"] = os.path.abspath(os.path.expanduser(kubeconfig))
    kubectl = kubectl_base({"kubeconfig": kubeconfig, "context": context, "namespace": namespace})
    if spec is None:
        results = doctor.run_host_checks(target or "compose", kubectl=kubectl)
    else:
        from llmctl.spec import load_spec

        loaded = load_spec(spec)
        plan = doctor.plan_for(loaded)
        results = doctor.run_checks(loaded, plan, target, kubectl=kubectl)
    if output == "json":
        click.echo(json.dumps({"schema": DOCTOR_SCHEMA, **doctor.results_json(results)}, indent=2))
    else:
        click.echo(doctor.results_table(results, wide=output == "wide"))
    if doctor.any_failed(results):
        ctx.exit(1)
