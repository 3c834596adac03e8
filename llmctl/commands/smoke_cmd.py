"""`llmctl smoke`: check a running endpoint (readiness, model, chat, streaming, burst, metrics) against the SLA.

Heavy modules (httpx, tabulate) are imported inside the command so `llmctl --help` stays fast.
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
@click.option("--output", "-o", type=click.Choice(["table", "wide", "json"]), default="table", show_default=True,
              help="Output format; `wide`: the table unwrapped.")
def smoke_cmd(spec, url, model, api, api_key_env, concurrency, ttft_p95_ms, itl_p95_ms, timeout_s, max_tokens,
              output) -> None:
    """Check a running endpoint against the SLA; exit 1 when a check fails.

    Either give SPEC (the spec that `llmctl up` deployed: URL, model name, concurrency and SLA come
    from its plan) or --url and --model for any OpenAI-compatible or Ollama server. Flags override
    what the spec says.

    \b
    Examples:
      llmctl smoke llmctl.yaml                       # the deployment `llmctl up` made
      llmctl smoke --url http://127.0.0.1:8000 --model my-model --concurrency 8 --itl-p95-ms 50
      llmctl smoke --url http://127.0.0.1:11434 --api ollama --model llama3.1:8b -o json
    """
    from dataclasses import replace

    from llmctl.errors import CheckFailed, InputError
    from llmctl.deploy.progress import Waiting, say
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

    window = f"; it may still be starting for {target.ready_window_s:.0f}s" if target.ready_window_s > 0 else ""
    say(f"smoke: testing {target.base_url} (model {target.model}, {target.concurrency} concurrent, "
        f"at most {timeout_s:g}s{window})")
    with Waiting(f"smoke {target.base_url}", timeout_s) as waiting:
        report = smoke_target(target, api_key=api_key, max_tokens=max_tokens, on_progress=waiting.update,
                              timeouts=Timeouts(total_s=timeout_s, request_s=min(60.0, timeout_s)))
    if output == "json":
        import json

        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(report.table(wide=output == "wide"))
    if not report.ok:
        raise CheckFailed(f"smoke test of {report.base_url} failed: {failure_summary(report)}")


def failure_summary(report) -> str:
    """The failed checks with their cause, e.g. `ready: …: connection refused (nothing listens there)`."""
    failed = report.failed()
    if not failed:
        return "no check passed"
    parts = [f"{c.name}: {c.detail}" if c.detail else c.name for c in failed[:3]]
    more = f" (+{len(failed) - 3} more)" if len(failed) > 3 else ""
    return "; ".join(p[:240] for p in parts) + more


def _target_from_spec(path: str):
    """The smoke target of the deployment `llmctl up` recorded in `.llmctl/` beside the spec (its URL:
    a published port, a blue/green colour, a Kubernetes port-forward). No record: "not deployed", at
    once — test a server started another way with --url."""
    import time
    from pathlib import Path

    from llmctl.deploy.state import deployment_dir, load_state
    from llmctl.engines import get_engine
    from llmctl.errors import CheckFailed
    from llmctl.planner import make_plan
    from llmctl.slug import slugify
    from llmctl.smoke import target_for_service
    from llmctl.spec import load_spec

    spec = load_spec(path)
    state = load_state(deployment_dir(path, slugify(spec.name)))
    if state is None:
        raise CheckFailed(f"{spec.name!r} is not deployed: `llmctl up {path}` records no deployment for it in "
                          f"{deployment_dir(path, slugify(spec.name))}\n"
                          f"  fix: `llmctl up {path}`, or test a server started another way with --url URL --model NAME")
    plan = make_plan(spec, base_dir=Path(path).resolve().parent)
    svc = get_engine(plan.backend).build(plan, spec)
    target = target_for_service(svc, spec, plan, base_url=state.url if state.url.startswith("http") else None)
    # the deployment may be (re)starting: allow what its plan allows a model load, counted from `up`
    window = state.applied_at + float(svc.health.startup_timeout_s) - time.time()
    from dataclasses import replace

    return replace(target, ready_window_s=max(0.0, window))
