"""`llmctl up`, `llmctl down`, `llmctl status`: apply a spec's plan, verify it, and undo it.

Heavy modules (jinja2, httpx, docker) load inside the commands so `llmctl --help` stays fast.
"""

from __future__ import annotations

import click

from llmctl.targets.registry import deployable

TARGETS = list(deployable())


def _target_options(f):
    f = click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None,
                     help="kubernetes: the kubeconfig file (default: $KUBECONFIG or ~/.kube/config).")(f)
    f = click.option("--namespace", "-n", "--kube-namespace", "namespace", default=None,
                     help="kubernetes: namespace (default: the context's).")(f)
    f = click.option("--context", default=None, help="kubernetes: kubectl context (default: the current one).")(f)
    f = click.option("--user", "user_mode", is_flag=True, default=None,
                     help="systemd: a user unit (~/.config/systemd/user) instead of a system unit.")(f)
    f = click.option("--target", "-t", type=click.Choice(TARGETS), default=None,
                     help="Where to deploy; defaults to the spec's `target`.")(f)
    return f


def _options(**kw) -> dict:
    if kw.get("kubeconfig"):
        import os

        # every kubectl this command runs (preflight checks included) reads the same file
        kw["kubeconfig"] = os.path.abspath(os.path.expanduser(kw["kubeconfig"]))
        os.environ["KUBECONFIG"] = kw["kubeconfig"]
    return {k: v for k, v in kw.items() if v is not None}


UP_EXAMPLES = """
\b
Examples:
  llmctl up llmctl.yaml                         # the spec's target; smoke-tested against its SLA
  llmctl up llmctl.yaml -t local --python ~/vllm/bin/python
  llmctl up llmctl.yaml -t kubernetes -n llm --context prod --kubeconfig ~/.kube/prod
  llmctl up llmctl.yaml --no-smoke --timeout 900
"""


@click.command("up", epilog=UP_EXAMPLES)
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@_target_options
@click.option("--network", type=click.Choice(["bridge", "host"]), default=None,
              help="compose: `host` runs the engine on the host's network, listening on the spec's "
                   "endpoint address and port itself (for Docker engines without a bridge network).")
@click.option("--runtime", type=click.Choice(["docker", "podman", "native"]), default=None,
              help="systemd: run the engine in a docker or podman container (default docker), or natively.")
@click.option("--python", "python", type=click.Path(dir_okay=False), default=None,
              help="local: run vLLM as `PYTHON -m vllm.entrypoints.openai.api_server` (an interpreter with vLLM).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=None,
              help="Seconds to wait for readiness (default: the plan's start-up allowance).")
@click.option("--smoke/--no-smoke", default=True, show_default=True, help="Smoke-test the deployment before accepting it.")
@click.option("--smoke-timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Deadline of the smoke test in seconds.")
@click.option("--force", is_flag=True,
              help="Deploy a plan the planner calls infeasible (e.g. vLLM's CPU build on a development machine).")
@click.option("--allow-downtime", is_flag=True, default=None,
              help="Update a single replica without a spare GPU: the service is down while the new version loads.")
def up_cmd(spec_path, target, user_mode, context, namespace, kubeconfig, network, runtime, python, timeout_s, smoke,
           smoke_timeout, force, allow_downtime) -> int:
    """Render SPEC's plan, apply it, wait until it is ready and smoke-test it against the SLA.

    Runs preflight checks first (engine reachable, GPU runtime, ports, disk, /dev/shm) and starts
    nothing when one fails. A second `up` with nothing changed does nothing. A changed spec is rolled
    out blue/green: the new deployment must pass its smoke test before it takes traffic; if it fails,
    the old one keeps serving and `up` exits 1 with the new one's last log lines. With local and
    compose, HAProxy on the spec's port moves requests to the new colour without dropping any.
    Secrets (HF_TOKEN, the engine's API key) are read from your environment into an env file (0600).
    """
    from llmctl.deploy.rollout import up

    opts = _options(network=network, user=user_mode, context=context, namespace=namespace, runtime=runtime,
                    python=python, kubeconfig=kubeconfig, allow_downtime=allow_downtime)
    return up(spec_path, target=target, options=opts, timeout_s=timeout_s, smoke=smoke,
              smoke_timeout_s=smoke_timeout, echo=click.echo, force=force)


@click.command("down", epilog="""
\b
Examples:
  llmctl down llmctl.yaml              # keeps the downloaded model
  llmctl down llmctl.yaml --volumes    # removes it too
""")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@_target_options
@click.option("--volumes", is_flag=True, help="Also remove the model volumes / caches (downloaded weights).")
def down_cmd(spec_path, target, user_mode, context, namespace, kubeconfig, volumes) -> int:
    """Remove everything `llmctl up` created for SPEC. Model volumes are kept unless --volumes."""
    from llmctl.deploy.rollout import down

    return down(spec_path, target=target, volumes=volumes,
                options=_options(user=user_mode, context=context, namespace=namespace, kubeconfig=kubeconfig),
                echo=click.echo)


@click.command("status", epilog="""
\b
Examples:
  llmctl status llmctl.yaml
  llmctl status llmctl.yaml -o json | jq .healthy
""")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@_target_options
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)
def status_cmd(spec_path, target, user_mode, context, namespace, kubeconfig, output) -> int:
    """Show what `llmctl up` applied for SPEC and whether it is healthy (exit 1 when it is not)."""
    from llmctl.deploy.rollout import status

    return status(spec_path, target=target,
                  options=_options(user=user_mode, context=context, namespace=namespace, kubeconfig=kubeconfig),
                  output=output, echo=click.echo)


@click.command("logs", epilog="""
\b
Examples:
  llmctl logs llmctl.yaml              # the last 100 lines
  llmctl logs llmctl.yaml -f           # and keep following (Ctrl-C stops)
  llmctl logs llmctl.yaml --tail 20 -n llm
""")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@_target_options
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until Ctrl-C (or the deployment stops).")
@click.option("--tail", "lines", type=click.IntRange(0, 100_000), default=100, show_default=True,
              help="Lines of the past to show first.")
def logs_cmd(spec_path, target, user_mode, context, namespace, kubeconfig, follow, lines) -> int:
    """Show the log of what `llmctl up` deployed for SPEC: `docker compose logs`, `journalctl -u`,
    `kubectl logs`, or the local engine's log file."""
    from llmctl.deploy.logs import show_logs
    from llmctl.deploy.rollout import deployment_context
    from llmctl.errors import CheckFailed

    opts = _options(user=user_mode, context=context, namespace=namespace, kubeconfig=kubeconfig)
    ctx, state, driver, target = deployment_context(spec_path, target, opts)
    if state is None:
        raise CheckFailed(f"{ctx.slug} is not deployed ({target}): no deployment recorded in {ctx.dir}\n"
                          f"  fix: `llmctl up {spec_path}`")
    return show_logs(driver, ctx, state.active, lines=lines, follow=follow)


@click.command("rollback")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=None,
              help="Seconds to wait for readiness (default: the plan's start-up allowance).")
@click.option("--smoke/--no-smoke", default=True, show_default=True, help="Smoke-test the earlier version first.")
@click.option("--smoke-timeout", type=click.FloatRange(min=1), default=300.0, show_default=True)
@click.option("--allow-downtime", is_flag=True,
              help="One replica and no spare GPU: stop the running version before the earlier one starts.")
def rollback_cmd(spec_path, timeout_s, smoke, smoke_timeout, allow_downtime) -> int:
    """Bring back the version of SPEC that ran before the last update, through the proxy: blue/green, or
    replica by replica when no spare GPUs hold a second copy."""
    from llmctl.deploy.rollout import rollback

    return rollback(spec_path, timeout_s=timeout_s, smoke=smoke, smoke_timeout_s=smoke_timeout, echo=click.echo,
                    allow_downtime=allow_downtime)
