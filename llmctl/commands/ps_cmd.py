"""`llmctl ps`: the llmctl deployments on this host."""

from __future__ import annotations

import click


@click.command("ps", epilog="""
\b
Examples:
  llmctl ps                      # deployments recorded under this folder, and llmctl's containers
  llmctl ps ~/services -o json
""")
@click.argument("folders", nargs=-1, type=click.Path(file_okay=False, exists=True))
@click.option("--output", "-o", type=click.Choice(["table", "wide", "json"]), default="table", show_default=True,
              help="Output format; `wide`: every column, unwrapped.")
@click.option("--no-check", is_flag=True, help="Do not ask each target whether the deployment still runs (faster).")
def ps_cmd(folders: tuple[str, ...], output: str, no_check: bool) -> None:
    """List llmctl deployments: those `llmctl up` recorded in `.llmctl/` beside specs under FOLDERS
    (default: the current folder, 4 levels down), and containers carrying llmctl's labels."""
    import json
    from pathlib import Path

    from llmctl.deploy.listing import as_json, deployments
    from llmctl.term import paint, table

    roots = [Path(f) for f in folders] or [Path.cwd()]
    rows, notes = deployments(roots, check=not no_check)
    if output == "json":
        click.echo(json.dumps(as_json(rows, notes), indent=2))
        return
    if not rows:
        click.echo(f"no llmctl deployments under {', '.join(str(r) for r in roots)}")
    else:
        body = [[r.name, r.target, r.engine, r.model, r.url, paint(r.state, "pass" if r.state == "running" else "warn"),
                 r.color, r.spec] for r in rows]
        click.echo(table(body, ["NAME", "TARGET", "ENGINE", "MODEL", "URL", "STATE", "COLOR", "SPEC"],
                         wrap=["SPEC", "MODEL", "URL"], optional=["COLOR", "SPEC", "ENGINE"], wide=output == "wide",
                         tablefmt="plain"))
    for note in notes:
        click.echo(f"note: {note}", err=True)
