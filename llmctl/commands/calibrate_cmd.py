"""`llmctl calibrate`: fit the planner's constants to measurements of the spec's setup and store them
as a calibration overlay that later plans of the same setup apply."""

from __future__ import annotations

import click

CALIBRATE_EXAMPLES = """
\b
Examples:
  llmctl bench llmctl.yaml --url http://127.0.0.1:8000 --out bench.json
  llmctl calibrate llmctl.yaml --from bench.json            # writes llmctl.calibration.yaml
  llmctl calibrate llmctl.yaml --from vllm-startup.log --from bench.json
  llmctl calibrate llmctl.yaml --from vllm-bench-serve.json --scope user
  llmctl calibrate llmctl.yaml --from guidellm-report.json --engine-version 0.10.1
  llmctl calibrate llmctl.yaml --metrics http://127.0.0.1:8000 --concurrency 8
  llmctl plan llmctl.yaml --explain                         # "calibrated from …", fitted vs default

\b
Exit codes: 0 stored; 1 a live source cannot be read; 2 bad input (file:line and field named).
"""


@click.command("calibrate", epilog=CALIBRATE_EXAMPLES)
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--from", "sources", multiple=True, type=click.Path(dir_okay=False),
              help="A measurement: `llmctl bench` JSON, `vllm bench serve` JSON, a GuideLLM report (.json or .yaml), "
                   "or a vLLM start-up log (repeatable).")
@click.option("--metrics", "metrics_url", metavar="URL", help="Scrape a live vLLM server's /metrics instead.")
@click.option("--concurrency", type=click.IntRange(1, 100_000), default=None,
              help="With --metrics: the concurrency the server ran at (default: requests running now, at least 1).")
@click.option("--scope", type=click.Choice(["spec", "user"]), default="spec", show_default=True,
              help="Store beside the spec (<spec>.calibration.yaml) or in the user's config folder.")
@click.option("--engine-version", metavar="X.Y.Z", help="The engine version measured, when the sources do not say.")
@click.option("--dry-run", is_flag=True, help="Fit and show, store nothing.")
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table", show_default=True)
def calibrate_cmd(spec_path, sources, metrics_url, concurrency, scope, engine_version, dry_run, fmt) -> None:
    """Fit the engine×device constants that the measurements in --from (or a --metrics scrape) inform —
    decode step and per-sequence cost, the fixed per-request TTFT cost (bench results), the KV cache
    and memory figures (start-up logs) — and store them, with provenance, as a calibration overlay
    keyed by engine, engine version, device and model. Later plans of that setup apply it."""
    import json

    from llmctl.calibrate.run import calibrate
    from llmctl.errors import InputError

    if not sources and not metrics_url:
        raise InputError("nothing to calibrate from: give --from FILE (bench JSON, vllm bench JSON, GuideLLM report, "
                         "start-up log) or --metrics URL")
    if concurrency and not metrics_url:
        raise InputError("--concurrency goes with --metrics (bench results say their own)", where="--concurrency")
    result = calibrate(spec_path, list(sources), metrics_url=metrics_url, concurrency=concurrency, scope=scope,
                       engine_version=engine_version, store=not dry_run)
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
    elif fmt == "yaml":
        from llmctl.fileio import to_yaml

        click.echo(to_yaml(result), nl=False)
    else:
        from llmctl.calibrate.run import table

        click.echo(table(result))
