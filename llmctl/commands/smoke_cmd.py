"""`llmctl smoke`: check a running endpoint (readiness, model, chat, streaming, burst, metrics) against the SLA.

Heavy modules (httpx, pydantic, tabulate) are imported inside the command so `llmctl --help` stays fast.
"""

from __future__ import annotations

import os

import click

_POSITIVE = click.FloatRange(min=0, min_open=True)


@click.command("smoke")
@click.argument("spec", required=False, type=click.Path(dir_okay=False))
@click.option("--url", help="Base address of the server, e.g. http://127.0.0.1:8000 (a trailing /v1 is fine).")
@click.option("--model", help="Served model name to ask for.")
@click.option("--api", type=click.Choice(["openai", "ollama"]), default=None,
              help="API dialect: OpenAI-compatible (default) or Ollama's native /api.")
@click.option("--api-key-env", metavar="VAR", help="Environment variable holding the API key (sent as a Bearer token).")
@click.option("--concurrency", type=click.IntRange(1, 512), default=None,
              help="Requests in the burst (default: the spec's workload.concurrency, else 1).")
@click.option("--ttft-p95-ms", type=_POSITIVE, default=None, help="SLA: 95th percentile time to first token.")
@click.option("--itl-p95-ms", type=_POSITIVE, default=None, help="SLA: 95th percentile time between tokens.")
@click.option("--timeout", "timeout_s", type=_POSITIVE, default=120.0, show_default=True,
              help="Deadline of the whole smoke test in seconds (readiness included).")
@click.option("--max-tokens", type=click.IntRange(1, 4096), default=32, show_default=True,
              help="Tokens to generate per request.")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def smoke_cmd(spec, url, model, api, api_key_env, concurrency, ttft_p95_ms, itl_p95_ms, timeout_s, max_tokens,
              output) -> None:
    """Check a running endpoint against the SLA; exit 1 when a check fails.

    Either give SPEC (the spec that `llmctl up` deployed: URL, model name, concurrency and SLA come
    from its plan) or --url and --model for any OpenAI-compatible or Ollama server. Flags override
    what the spec says.
    """
    from dataclasses import replace

    from llmctl.errors import CheckFailed, InputError
    from llmctl.smoke import MAX_CONCURRENCY, SlaTargets, SmokeTarget, Timeouts, smoke_target

    if spec:
        target = _target_from_spec(spec)
    elif not url or not model:
        missing = " and ".join(f for f, v in (("--url", url), ("--model", model)) if not v)
        raise InputError(f"{missing}: required without a SPEC", hint="llmctl smoke --url http://127.0.0.1:8000 --model NAME")
    else:
        target = SmokeTarget(base_url=url, model=model)

    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise InputError(f"--api-key-env: environment variable {api_key_env} is not set or empty")

    # flags override what the spec says
    if url:
        # another server than the spec's published port: use the generic readiness probes
        target = replace(target, base_url=url, health_path=None)
    if model:
        target = replace(target, model=model)
    if api:
        target = replace(target, api=api)
    if concurrency:
        target = replace(target, concurrency=concurrency)
    target = replace(target, concurrency=min(target.concurrency, MAX_CONCURRENCY), sla=SlaTargets(
        ttft_p95_ms=ttft_p95_ms if ttft_p95_ms is not None else target.sla.ttft_p95_ms,
        itl_p95_ms=itl_p95_ms if itl_p95_ms is not None else target.sla.itl_p95_ms,
    ))

    report = smoke_target(target, api_key=api_key, max_tokens=max_tokens,
                          timeouts=Timeouts(total_s=timeout_s, request_s=min(60.0, timeout_s)))
    if output == "json":
        import json

        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(report.table())
    if not report.ok:
        failed = report.failed()
        names = ", ".join(c.name for c in failed) or "no check passed"
        raise CheckFailed(f"smoke test of {report.base_url} failed: {names}")


def _target_from_spec(path: str):
    """The smoke target of the service the spec describes: the URL `llmctl up` recorded in `.llmctl/`
    beside the spec when it deployed it (a Kubernetes port-forward, a blue/green port), else the
    published port the plan's service has on this host."""
    from pathlib import Path

    from llmctl.deploy.state import deployment_dir, load_state
    from llmctl.engines import get_engine
    from llmctl.planner import make_plan
    from llmctl.smoke import target_for_service
    from llmctl.spec import load_spec

    spec = load_spec(path)
    plan = make_plan(spec, base_dir=Path(path).resolve().parent)
    svc = get_engine(plan.backend).build(plan, spec)
    state = load_state(deployment_dir(path, svc.slug))
    return target_for_service(svc, spec, plan, base_url=state.url if state and state.url else None)
