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
    from llmctl.errors import CheckFailed, InputError
    from llmctl.smoke import SlaTargets, Timeouts, run_smoke

    target = {"url": None, "model": None, "api": "openai", "concurrency": 1, "ttft": None, "itl": None,
              "health_path": None, "metrics_path": None, "expect_metrics": None, "predicted": {}}
    if spec:
        target.update(_from_spec(spec))
    elif not url or not model:
        missing = " and ".join(f for f, v in (("--url", url), ("--model", model)) if not v)
        raise InputError(f"{missing}: required without a SPEC", hint="llmctl smoke --url http://127.0.0.1:8000 --model NAME")

    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise InputError(f"--api-key-env: environment variable {api_key_env} is not set or empty")

    if url:
        target["url"] = url
        target["health_path"] = None  # a different server than the spec's: use the generic probes
    if model:
        target["model"] = model
    if api:
        target["api"] = api
    if concurrency:
        target["concurrency"] = concurrency
    if ttft_p95_ms is not None:
        target["ttft"] = ttft_p95_ms
    if itl_p95_ms is not None:
        target["itl"] = itl_p95_ms

    report = run_smoke(
        target["url"],
        target["model"],
        api=target["api"],
        api_key=api_key,
        concurrency=min(int(target["concurrency"]), 512),
        sla=SlaTargets(ttft_p95_ms=target["ttft"], itl_p95_ms=target["itl"]),
        timeouts=Timeouts(total_s=timeout_s, request_s=min(60.0, timeout_s)),
        max_tokens=max_tokens,
        health_path=target["health_path"],
        metrics_path=target["metrics_path"],
        expect_metrics=target["expect_metrics"],
    )
    if target["predicted"]:
        report.measurements["predicted"] = target["predicted"]
    if output == "json":
        import json

        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(report.table())
    if not report.ok:
        failed = report.failed()
        names = ", ".join(c.name for c in failed) or "no check passed"
        raise CheckFailed(f"smoke test of {report.base_url} failed: {names}")


def _from_spec(path: str) -> dict:
    """URL, served name, concurrency and SLA of the service that the spec's plan describes.

    The URL is the service's published port on this host (endpoint.bind, or 127.0.0.1 when it binds
    every address). Deployments on another host or behind Kubernetes: pass --url.
    """
    from llmctl.engines import get_engine
    from llmctl.errors import InputError
    from llmctl.spec import load_spec

    spec = load_spec(path)
    try:
        from llmctl.planner import make_plan
    except ImportError:  # pragma: no cover - the planner ships with llmctl
        raise InputError("the planner is not available in this install; use --url and --model") from None
    plan = make_plan(spec)
    svc = get_engine(plan.backend).build(plan, spec)
    if not svc.ports:
        raise InputError(f"{path}: the planned service publishes no port; use --url")
    port = svc.ports[0]
    host = port.bind if port.bind not in ("", "0.0.0.0", "::", "[::]") else "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    sla = spec.workload.sla
    perf = plan.performance
    predicted = {k: v for k, v in {"ttft_p95_ms": perf.ttft_p95_ms, "itl_p95_ms": perf.itl_p95_ms}.items() if v is not None}
    return {
        "url": f"http://{host}:{port.host}",
        "model": svc.served_model_name,
        "api": "openai",  # every engine serves the OpenAI API (Ollama at /v1 too)
        "concurrency": spec.workload.concurrency,
        "ttft": sla.ttft_p95_ms,
        "itl": sla.itl_p95_ms,
        "health_path": svc.health.path,
        "metrics_path": svc.metrics_path,
        "expect_metrics": bool(svc.metrics_path),
        "predicted": predicted,
    }
