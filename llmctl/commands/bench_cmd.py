"""`llmctl bench`: load a running endpoint step by step and report latency and throughput per step."""

from __future__ import annotations

import os

import click


BENCH_EXAMPLES = """
\b
Examples:
  llmctl bench llmctl.yaml                                   # the deployment `llmctl up` made
  llmctl bench --url http://127.0.0.1:8000 --concurrency 1,4,16 --out bench.json
  llmctl bench llmctl.yaml --url http://gpu-box:8000 --chart bench.svg   # measured over predicted
  llmctl bench --url http://127.0.0.1:11434 --api ollama --compare http://127.0.0.1:8000 --concurrency 1,4,16
  llmctl bench --url http://127.0.0.1:8000 --rate 0.5,1,2 --requests 40

\b
Exit codes: 0 measured (even with failed requests: see the errors column); 1 the endpoint cannot be
reached or every request failed; 2 bad input.
"""


def _list(text: str, *, where: str, integer: bool, most: float) -> list[float]:
    from llmctl.errors import InputError

    values = []
    for part in text.split(","):
        part = part.strip()
        try:
            v = int(part) if integer else float(part)
        except ValueError:
            raise InputError(f"{part!r} is not a{'n integer' if integer else ' number'}", where=where,
                             hint="a comma-separated list, e.g. 1,2,4,8") from None
        if not 0 < v <= most:
            raise InputError(f"{v:g} is outside 1…{most:g}" if integer else f"{v:g} must be > 0 and ≤ {most:g}",
                             where=where)
        values.append(float(v))
    if len(values) > 32:
        raise InputError("at most 32 steps", where=where)
    return sorted(set(values))


@click.command("bench", epilog=BENCH_EXAMPLES)
@click.argument("spec", required=False, type=click.Path(dir_okay=False))
@click.option("--url", help="Base address of the server (default: the spec's deployment).")
@click.option("--model", help="Served model name (default: the spec's, else the first the server lists).")
@click.option("--api", type=click.Choice(["openai", "ollama"]), default="openai", show_default=True,
              help="API dialect: OpenAI-compatible /v1/completions or Ollama's /api/generate.")
@click.option("--api-key-env", metavar="VAR", help="Environment variable holding the API key (Bearer token).")
@click.option("--concurrency", "concurrency", metavar="N1,N2,…",
              help="Closed-loop steps: concurrent users (default: 1, 2, 4, … up to the spec's concurrency).")
@click.option("--rate", metavar="R1,R2,…", help="Open-loop steps instead: Poisson arrivals, requests per second.")
@click.option("--requests", type=click.IntRange(1, 100_000), default=None,
              help="Requests per step (default: 4 per concurrent user, at least 8).")
@click.option("--prompt-tokens", type=click.IntRange(1, 1_000_000), default=None,
              help="Prompt length in tokens (default: the spec's workload.prompt_tokens, else 128).")
@click.option("--output-tokens", type=click.IntRange(1, 100_000), default=None,
              help="Answer length in tokens (default: the spec's workload.output_tokens, else 64).")
@click.option("--prompts", "prompts_file", type=click.Path(dir_okay=False),
              help="Prompts from a file instead: one per line, or JSON lines with \"prompt\".")
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Also write the results (JSON) to this file.")
@click.option("--chart", type=click.Path(dir_okay=False),
              help="Write the measured curves (over the plan's predicted ones with a SPEC) as .svg or .html.")
@click.option("--compare", "compare_url", metavar="URL2", help="Run the same steps against a second endpoint.")
@click.option("--compare-api", type=click.Choice(["openai", "ollama"]), default=None, help="API of URL2 (default: --api).")
@click.option("--compare-model", default=None, help="Model name on URL2 (default: its first).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=120.0, show_default=True,
              help="Seconds one request may take.")
@click.option("--deadline", "deadline_s", type=click.FloatRange(min=1), default=900.0, show_default=True,
              help="Seconds the whole run may take (per endpoint); requests not sent by then are skipped.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the prompts and arrivals.")
@click.option("--warmup", type=click.IntRange(0, 16), default=1, show_default=True, help="Uncounted requests first.")
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "wide", "json", "yaml"]), default="table",
              show_default=True, help="Output format.")
def bench_cmd(spec, url, model, api, api_key_env, concurrency, rate, requests, prompt_tokens, output_tokens,
              prompts_file, out, chart, compare_url, compare_api, compare_model, timeout_s, deadline_s, seed,
              warmup, fmt) -> None:
    """Load a running endpoint with a sweep of concurrency (or request rate) and report, per step,
    TTFT / ITL / end-to-end percentiles (p50/p95/p99), output tokens/s in total and per user, the
    request rate and errors. With SPEC: its workload's lengths, its deployment's URL and the plan's
    predicted curve beside the measured one."""
    import json

    from llmctl.bench.run import BenchConfig, Load, run_bench
    from llmctl.errors import CheckFailed, InputError
    from llmctl.smoke import normalize_base_url

    if concurrency and rate:
        raise InputError("--concurrency and --rate are two kinds of step; give one", where="--rate")
    if prompts_file and prompt_tokens:
        raise InputError("--prompts gives the prompts; --prompt-tokens would be ignored", where="--prompt-tokens")
    if chart:
        from llmctl.svg_chart import check_chart_path

        check_chart_path(chart)
    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise InputError(f"--api-key-env: environment variable {api_key_env} is not set or empty")
    spec_obj = None
    if spec:
        from llmctl.spec import load_spec

        spec_obj = load_spec(spec)
        w = spec_obj.workload
        prompt_tokens = prompt_tokens or (None if prompts_file else w.prompt_tokens)
        output_tokens = output_tokens or w.output_tokens
        if not url:
            url, model = _deployed(spec, spec_obj, model)
    if not url:
        raise InputError("--url: required without a SPEC", hint="llmctl bench --url http://127.0.0.1:8000")
    if rate:
        loads = [Load("rate", v) for v in _list(rate, where="--rate", integer=False, most=10_000)]
    else:
        if concurrency:
            values = _list(concurrency, where="--concurrency", integer=True, most=4096)
        else:
            top = spec_obj.workload.concurrency if spec_obj else 8
            values, v = [], 1
            while v < top:
                values.append(float(v))
                v *= 2
            values.append(float(top))
        loads = [Load("concurrency", v) for v in values]
    cfg = BenchConfig(base_url=normalize_base_url(url), model=model, api=api, api_key=api_key, loads=loads,
                      requests=requests, prompt_tokens=prompt_tokens or 128, output_tokens=output_tokens or 64,
                      prompts_file=prompts_file, seed=seed, timeout_s=timeout_s, deadline_s=deadline_s, warmup=warmup)
    doc = _measure(cfg, run_bench)
    if compare_url:
        from dataclasses import replace

        other = replace(cfg, base_url=normalize_base_url(compare_url), model=compare_model, api=compare_api or api)
        doc["compare"] = _measure(other, run_bench)
        from llmctl.bench.stats import crossovers

        xs = [s["value"] for s in doc["steps"]]
        theirs = {s["value"]: s["output_tokens_per_s"] for s in doc["compare"]["steps"]}
        doc["crossover"] = crossovers(xs, [s["output_tokens_per_s"] for s in doc["steps"]], [theirs.get(x) for x in xs])
    if spec_obj is not None and not rate:
        predicted = _predicted(spec, spec_obj, [load.value for load in loads], cfg)
        if predicted is not None:
            doc["predicted"] = predicted
    from llmctl.bench.results import table

    text = table(doc, wide=fmt == "wide")
    if out:
        from llmctl.fileio import write_atomic

        try:
            write_atomic(out, json.dumps(doc, indent=2) + "\n")
        except OSError as exc:
            raise InputError(f"cannot write {out}: {exc}", where="--out") from None
    if chart:
        from llmctl.bench.chart import write_chart

        title = f"llmctl bench: {doc['model']} at {doc['base_url']}" + (
            f" vs {doc['compare']['base_url']}" if doc.get("compare") else "") + (
            " — measured (solid) over predicted (dotted)" if doc.get("predicted") else "")
        write_chart(chart, doc, title, text)
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
    elif fmt == "yaml":
        from llmctl.fileio import to_yaml

        click.echo(to_yaml(doc), nl=False)
    else:
        click.echo(text + (f"\nresults written to {out}" if out else "") + (f"\nchart written to {chart}" if chart else ""))
    if all(s["completed"] == 0 for s in doc["steps"]):
        raise CheckFailed(f"every request to {doc['base_url']} failed: " + "; ".join(doc["steps"][0]["error_samples"]))


def _measure(cfg, run_bench) -> dict:
    from llmctl.deploy.progress import live_output, say

    total = {}
    if live_output():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("bench {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=Console(stderr=True), transient=True) as bar:
            tasks: dict[str, int] = {}

            def on_step(label: str, done: int, n: int) -> None:
                if label not in tasks:
                    tasks[label] = bar.add_task(f"{cfg.base_url} {label}", total=n)
                bar.update(tasks[label], completed=done)

            return run_bench(cfg, on_step)

    def on_step_plain(label: str, done: int, n: int) -> None:
        if done == 0:
            say(f"bench {cfg.base_url}: {label} ({n} request{'s' if n != 1 else ''})")
            total[label] = n

    return run_bench(cfg, on_step_plain)


def _deployed(path: str, spec, model: str | None) -> tuple[str, str | None]:
    """The URL and model name of the deployment `llmctl up` recorded for the spec."""
    from llmctl.deploy.state import deployment_dir, load_state
    from llmctl.errors import CheckFailed
    from llmctl.slug import slugify

    state = load_state(deployment_dir(path, slugify(spec.name)))
    if state is None or not str(state.url).startswith("http"):
        raise CheckFailed(f"{spec.name!r} is not deployed: `llmctl up {path}` records no URL for it in "
                          f"{deployment_dir(path, slugify(spec.name))}\n"
                          "  fix: `llmctl up` it, or load a server started another way with --url URL")
    return state.url, model or state.model


def _predicted(spec_path: str, spec, values: list[float], cfg) -> dict | None:
    """The plan's prediction at each measured concurrency, for the same prompt and answer lengths."""
    from llmctl import sweep
    from llmctl.deploy.progress import say
    from llmctl.errors import InputError
    from llmctl.spec import with_source_of
    from llmctl.typed import updated

    w = updated(spec.workload, prompt_tokens=cfg.prompt_tokens, output_tokens=cfg.output_tokens)
    s = with_source_of(spec, updated(spec, workload=w))
    try:
        data = sweep.run_sweep(s, spec_path, "concurrency=" + ",".join(f"{v:g}" for v in values), fmt="data")
    except InputError as exc:
        say(f"bench: no predicted curve: {exc.message}")
        return None
    from llmctl.estimate import performance

    cand = data["candidate"]
    return {"candidate": f"{cand['backend']} {cand['quantization']} TP{cand['tensor_parallel']} on {cand['gpu']}",
            "calibrated": performance._CALIBRATED is not None,
            "points": data["points"]}
