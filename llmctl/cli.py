"""The `llmctl` command line.

Sub-commands live in their own modules and are imported only when run, so `llmctl --help` stays
fast (no jinja2, httpx or record types at start-up). The click group itself is in llmctl/cli_group.py:
`llmctl --help` prints the text click rendered for it the last time (cached per version, width
and interpreter), without importing click. Every LlmctlError becomes a message on stderr and its
exit code (1 a check failed, 2 bad input) — never a traceback.
"""

from __future__ import annotations

import os
import sys

from llmctl import __version__

# name -> (module:attribute, one-line help shown by `llmctl --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("llmctl.commands.plan_cmd:init_cmd", "Write a commented starter spec (llmctl.yaml)."),
    "plan": ("llmctl.commands.plan_cmd:plan_cmd", "Decide engine, quantization, parallelism and replicas for a spec."),
    "render": ("llmctl.commands.render_cmd:render_cmd", "Write compose, systemd or Kubernetes files for a spec's plan."),
    "inventory": ("llmctl.commands.doctor_cmd:inventory_cmd", "Detect this machine's GPUs, CPU and memory."),
    "doctor": ("llmctl.commands.doctor_cmd:doctor_cmd", "Check that this host can run a spec's plan, with fixes."),
    "up": ("llmctl.commands.deploy_cmd:up_cmd", "Render, apply, wait for readiness and smoke-test a spec."),
    "down": ("llmctl.commands.deploy_cmd:down_cmd", "Remove what `llmctl up` created (model volumes kept)."),
    "status": ("llmctl.commands.deploy_cmd:status_cmd", "Show what `llmctl up` applied and whether it is healthy."),
    "logs": ("llmctl.commands.deploy_cmd:logs_cmd", "Show (or follow, -f) the log of a spec's deployment."),
    "ps": ("llmctl.commands.ps_cmd:ps_cmd", "List llmctl deployments on this host."),
    "rollback": ("llmctl.commands.deploy_cmd:rollback_cmd", "Bring back the version that ran before the last update."),
    "smoke": ("llmctl.commands.smoke_cmd:smoke_cmd", "Check a running endpoint against the SLA."),
    "bench": ("llmctl.commands.bench_cmd:bench_cmd", "Load a running endpoint step by step: latency and throughput per step."),
    "calibrate": ("llmctl.commands.calibrate_cmd:calibrate_cmd", "Fit the planner's constants to measurements of a setup."),
    "traffic": ("llmctl.commands.traffic_cmd:traffic_cmd", "Show or shift how the proxy splits requests between colours."),
    "migrate": ("llmctl.commands.migrate_cmd:migrate_cmd", "Move a service from Ollama to vLLM (or back): inventory, decisions, render."),
    "completion": ("llmctl.commands.completion_cmd:completion_cmd", "Print the shell completion script (bash, zsh, fish)."),
}


_HERE = os.path.dirname(os.path.abspath(__file__))


def _available(name: str) -> bool:
    """The command's module is part of this build (a stat, not an import-system search: `--help`
    asks this for every command)."""
    module = COMMANDS[name][0].split(":")[0]
    path = os.path.join(_HERE, *module.split(".")[1:])
    if os.path.exists(path + ".py"):
        return True
    import importlib.util

    return importlib.util.find_spec(module) is not None


EPILOG = """
\b
Examples:
  llmctl init && llmctl plan llmctl.yaml
  llmctl render llmctl.yaml -t compose --out deploy/
  llmctl up llmctl.yaml && llmctl smoke llmctl.yaml
  source <(llmctl completion bash)

\b
Exit codes: 0 ok · 1 a check failed (plan cannot work or misses the SLA, smoke test,
doctor, not deployed) · 2 bad input (file:line and field named) · 130 interrupted.
"""


HELP_ARGS = (["--help"], ["-h"])


def _help_width() -> int:
    """The width click formats help for: min(terminal columns, 80), columns as shutil finds them."""
    cols = os.environ.get("COLUMNS", "")
    if cols.isdigit() and int(cols) > 0:
        width = int(cols)
    else:
        try:
            width = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            width = 80
    return min(width, 80)


def _help_cache_path() -> str:
    import zlib

    parts = [__version__, str(_help_width()), sys.executable]
    for name in ("cli.py", "cli_group.py"):
        try:
            st = os.stat(os.path.join(_HERE, name))
            parts.append(f"{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            parts.append("?")
    key = zlib.crc32("|".join(parts).encode()) & 0xFFFFFFFF
    base = os.environ.get("LLMCTL_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "llmctl")
    return os.path.join(base, f"help-{key:08x}.txt")


def _print_help() -> None:
    path = _help_cache_path()
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        from llmctl.cli_group import render_help

        text = render_help()
        try:
            from llmctl.fileio import write_atomic

            write_atomic(path, text)
        except OSError:
            pass  # an unwritable cache: render again next time
    sys.stdout.write(text)
    sys.stdout.flush()


def __getattr__(name: str):
    if name in ("cli", "LazyGroup"):
        from llmctl import cli_group

        return getattr(cli_group, name)
    raise AttributeError(name)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--no-color" in argv[1:]:  # a global flag, accepted after the command too (`llmctl plan x --no-color`)
        os.environ["NO_COLOR"] = "1"
        argv = [argv[0], *(a for a in argv[1:] if a != "--no-color")]
    if argv in HELP_ARGS:
        try:
            _print_help()
        except BrokenPipeError:
            pass
        sys.exit(0)
    import click

    from llmctl.cli_group import cli
    from llmctl.errors import LlmctlError

    try:
        rc = cli.main(args=argv, prog_name="llmctl", standalone_mode=False)
    except LlmctlError as exc:
        if "llmctl.spec" in sys.modules and hasattr(exc, "where"):
            exc = sys.modules["llmctl.spec"].locate(exc)
        click.echo(f"error: {exc}" if exc.exit_code == 2 else f"failed: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except click.exceptions.Abort as exc:  # click turns Ctrl-C into Abort
        click.echo("interrupted" if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt) else "aborted",
                   err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except BrokenPipeError:
        sys.exit(0)
    # with standalone_mode=False click returns ctx.exit(N)'s code, or the command's return value
    sys.exit(rc if isinstance(rc, int) else 0)
