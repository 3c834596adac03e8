"""`llmctl migrate`: move a service from Ollama to vLLM (dry run: inventory, decisions, render), and back."""

from __future__ import annotations

import json

import click

EXAMPLES = """
\b
Examples:
  llmctl migrate ollama-to-vllm --from http://127.0.0.1:11434 --hardware L4
  llmctl migrate ollama-to-vllm --from llmctl.yaml --out migration/
  llmctl migrate ollama-to-vllm --from compose.yaml --model llama3.2:3b --hardware A100-80GB
  llmctl migrate ollama-to-vllm --from store --map mymodel:latest=Qwen/Qwen2.5-7B-Instruct -o json
  llmctl migrate vllm-to-ollama --from migration/vllm.yaml
"""


@click.group("migrate", epilog=EXAMPLES)
def migrate_cmd() -> None:
    """Move a service from Ollama to vLLM without losing a setting or a client (or back, for a cheap copy)."""


@migrate_cmd.command("ollama-to-vllm", epilog=EXAMPLES)
@click.option("--from", "source", required=True, metavar="SOURCE",
              help="A live Ollama URL, `store` (or a models folder), an llmctl spec planned for Ollama, "
                   "or a compose file / Kubernetes manifest running ollama/ollama.")
@click.option("--out", default=None, metavar="DIR", help="Folder to write (default ./migration-<tag>/).")
@click.option("--map", "maps", multiple=True, metavar="TAG=HF_REPO[@REV]",
              help="The Hugging Face checkpoint behind a tag (repeatable).")
@click.option("--model", "models", multiple=True, metavar="TAG",
              help="The tag to migrate when the server holds several; with a file source, a tag it serves.")
@click.option("--url", default=None, metavar="URL", help="With a file source: the running server to read models from.")
@click.option("--keep-ollama-api/--no-keep-ollama-api", default=None,
              help="Keep Ollama's native API through the compatibility front (front.json); on by default.")
@click.option("--allow-gguf", is_flag=True, help="Also describe loading the GGUF in vLLM (experimental plug-in).")
@click.option("--hardware", default=None, metavar="GPU[xN]",
              help="The GPUs vLLM will run on, e.g. A100-80GB or L4x2 (default: the source spec's, else detect).")
@click.option("--chat-template", default=None, metavar="FILE",
              help="A Jinja chat template to serve instead of the checkpoint's (Ollama's TEMPLATE rewritten).")
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite the files of an existing --out folder.")
@click.option("--apply", "do_apply", is_flag=True,
              help="Then start vLLM beside Ollama, check parity and shift traffic in gated steps (see `migrate resume`).")
def ollama_to_vllm(source, out, maps, models, url, keep_ollama_api, allow_gguf, hardware, chat_template, fmt,
                   force, do_apply) -> int:
    """Inventory an Ollama service, decide what every setting becomes on vLLM, plan and render the vLLM
    side, and write the migration folder. Read-only on the Ollama side. Exit 1 when the vLLM plan cannot
    work on the hardware, 2 on bad input."""
    from llmctl.migrate.report import table
    from llmctl.migrate.run_plan import Options, run

    result = run(Options(source=source, out=out, maps=tuple(maps), models=tuple(models), url=url,
                         keep_ollama_api=keep_ollama_api, allow_gguf=allow_gguf, hardware=hardware,
                         chat_template=chat_template, force=force))
    _emit(result.decisions, fmt, table)
    if not result.feasible:
        click.echo("failed: the vLLM plan cannot work on this hardware — see plan.json (try --hardware GPU)", err=True)
        return 1
    if do_apply:
        from llmctl.migrate.apply import run as apply_run

        return apply_run(result.out, say=lambda text: click.echo(text, err=True))
    return 0


REVERSE_EXAMPLES = """
\b
Examples:
  llmctl migrate vllm-to-ollama --from migration-acme/vllm.yaml
  llmctl migrate vllm-to-ollama --from prod.yaml --quant Q8_0 --out dev-copy/
"""


@migrate_cmd.command("vllm-to-ollama", epilog=REVERSE_EXAMPLES)
@click.option("--from", "source", required=True, metavar="SPEC", help="An llmctl spec planned for vLLM (e.g. a migration's vllm.yaml).")
@click.option("--out", default=None, metavar="DIR", help="Folder to write (default ./migration-<name>-ollama/).")
@click.option("--quant", default=None, metavar="QUANT", help="GGUF quantization of the tag (default: the tag's own default).")
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite the files of an existing --out folder.")
def vllm_to_ollama(source, out, quant, fmt, force) -> int:
    """The reverse, for a cheap development copy: HF repo → a GGUF Ollama tag from the catalog,
    generation defaults → Modelfile PARAMETERs. Writes Modelfile, ollama.yaml (a spec) and decisions.json."""
    from llmctl.migrate.reverse import reverse, table

    doc = reverse(source, out=out, quant=quant, force=force)
    _emit(doc, fmt, table)
    return 0


def _emit(doc, fmt: str, table) -> None:
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    elif fmt == "yaml":
        from llmctl.fileio import to_yaml

        click.echo(to_yaml(json.loads(json.dumps(doc))), nl=False)
    else:
        click.echo(table(doc))


def _add_step_commands() -> None:
    """The running-migration commands (status, shift, finalize, rollback) live in their own module,
    added here when this build has it."""
    import importlib.util

    if importlib.util.find_spec("llmctl.commands.migrate_steps_cmd") is None:
        return
    from llmctl.commands import migrate_steps_cmd

    for value in vars(migrate_steps_cmd).values():
        if isinstance(value, click.Command) and value.name and value.name not in migrate_cmd.commands:
            migrate_cmd.add_command(value)


_add_step_commands()


# the steps of a running migration: status, shift, finalize, rollback, resume (llmctl/commands/migrate_steps_cmd.py)
from llmctl.commands.migrate_steps_cmd import add_step_commands  # noqa: E402

add_step_commands(migrate_cmd)
