"""vLLM's own command-line parser as the judge of a `vllm serve` command line, without a server.

`check_vllm_argvs(argvs)` runs ONE Python subprocess in the vLLM venv ($LLMCTL_VLLM_PYTHON; the
import of vLLM takes seconds, so pass many command lines at once) that, for each argv, does what
`vllm serve` does before it loads anything (vLLM 0.32.0):

1. builds the CLI parser the way `vllm` does (vllm/entrypoints/cli/main.py): a
   `FlexibleArgumentParser` with sub-commands, on which `ServeSubcommand().subparser_init` adds
   `serve` (its flags come from `make_arg_parser`, vllm/entrypoints/launchers/cli_args.py), and
   `parse_args(argv[1:])`;
2. `ServeSubcommand().validate(args)` (`validate_parsed_serve_args`: e.g.
   `--enable-auto-tool-choice` needs `--tool-call-parser`);
3. moves the positional model into `args.model` (as `ServeSubcommand.cmd` does) and runs
   `validate_api_server_args(args)` (vllm/entrypoints/launchers/launcher.py, run by `setup_server`
   before the engine starts: the tool-call and reasoning parser names must be registered ones);
4. `AsyncEngineArgs.from_cli_args(args)` (the engine arguments' own checks in `__post_init__`);
5. the part of `ModelConfig._verify_quantization` (vllm/config/model.py) that needs no model: a
   `--quantization` must be one of vLLM's `QUANTIZATION_METHODS` (the parser takes any string), and a
   deprecated one needs `--allow-deprecated-quantization`.

`create_engine_config` itself is not run: it reads the model's config.json (from the Hub for a model
id), which is not reachable here; so whatever depends on the model or the GPU platform is not judged. The subprocess gets no HF_HUB_OFFLINE (with it, `__post_init__` would
look the model id up in the local Hub cache and fail), a private HF_HOME, and usage statistics off;
no other variable is needed. The argv is what the container or host runs: `["vllm", "serve",
MODEL, *flags]` (argv[0] may be any path ending in `vllm`).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ENV_PYTHON = "LLMCTL_VLLM_PYTHON"

# Runs inside the vLLM venv: argv JSON in sys.argv[1], results JSON to sys.argv[2].
_SCRIPT = r"""
import contextlib, io, json, os, sys, traceback

argvs = json.load(open(sys.argv[1]))
out_path = sys.argv[2]

from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.model_executor.layers import quantization as me_quant
from vllm.entrypoints.cli.serve import ServeSubcommand
from vllm.entrypoints.launchers.launcher import validate_api_server_args
from vllm.utils.argparse_utils import FlexibleArgumentParser

def make_parser():
    parser = FlexibleArgumentParser(prog="vllm", description="vLLM CLI")
    subparsers = parser.add_subparsers(required=False, dest="subparser")
    cmd = ServeSubcommand()
    cmd.subparser_init(subparsers).set_defaults(dispatch_function=cmd.cmd)
    return parser, cmd

def check(argv):
    if not argv or not os.path.basename(argv[0]) == "vllm" or argv[1:2] != ["serve"]:
        return {"ok": False, "stage": "argv", "error": "not a `vllm serve` command line: %r" % (argv[:2],)}
    parser, cmd = make_parser()
    stage = "parse"
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = parser.parse_args(list(argv[1:]))
        if args.subparser != "serve":
            return {"ok": False, "stage": stage, "error": "sub-command is %r, not serve" % (args.subparser,)}
        stage = "validate"
        cmd.validate(args)
        if getattr(args, "model_tag", None) is not None:
            args.model = args.model_tag
        stage = "api_server"
        validate_api_server_args(args)
        stage = "engine_args"
        engine_args = AsyncEngineArgs.from_cli_args(args)
        stage = "quantization"
        q = engine_args.quantization
        if q is not None and q not in me_quant.QUANTIZATION_METHODS:
            raise ValueError("Unknown quantization method: %s. Must be one of %s." % (q, me_quant.QUANTIZATION_METHODS))
        if q in me_quant.DEPRECATED_QUANTIZATION_METHODS and not engine_args.allow_deprecated_quantization:
            raise ValueError("The quantization method %s is deprecated; set --allow-deprecated-quantization" % q)
    except SystemExit as exc:  # argparse: usage error (exit 2) or --help (exit 0)
        text = err.getvalue().strip().splitlines()
        return {"ok": False, "stage": stage, "error": (text[-1] if text else "exit %s" % exc.code)}
    except BaseException as exc:  # noqa: BLE001 - anything vLLM raises stops `vllm serve` too
        return {"ok": False, "stage": stage, "error": "%s: %s" % (type(exc).__name__, exc)}
    return {"ok": True, "stage": "done", "error": ""}

results = [check(a) for a in argvs]
with open(out_path, "w") as fh:
    json.dump(results, fh)
"""


@dataclass
class VllmArgvCheck:
    argv: list[str]
    ok: bool
    stage: str  # where it stopped: argv, parse, validate, api_server, engine_args, quantization; "done" if ok
    error: str  # vLLM's message ("" when ok)

    def __str__(self) -> str:
        verdict = "accepted" if self.ok else f"rejected at {self.stage}: {self.error}"
        return f"vllm {verdict}: {' '.join(self.argv)}"


def vllm_python() -> str | None:
    return os.environ.get(ENV_PYTHON) or None


def missing_reason() -> str | None:
    py = vllm_python()
    if not py:
        return f"{ENV_PYTHON} is not set (scripts/test builds a vLLM venv and sets it)"
    if not os.path.isfile(py) or not os.access(py, os.X_OK):
        return f"{ENV_PYTHON}={py} is not an executable file"
    return None


def _env(home: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items()
            if k in ("PATH", "LANG", "LC_ALL", "TMPDIR") or k.startswith("LD_")}
    return {
        **keep,
        "HOME": str(home),
        "HF_HOME": str(home / "hf"),
        "VLLM_CACHE_ROOT": str(home / "vllm"),
        "VLLM_CONFIG_ROOT": str(home / "vllm-config"),
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def check_vllm_argvs(argvs: list[list[str]], timeout: float = 300) -> list[VllmArgvCheck]:
    """Judge each `vllm serve` argv with vLLM's own parser and checks (see the module docstring).
    One subprocess for the whole list; results in the same order."""
    py = vllm_python()
    if py is None:
        raise RuntimeError(missing_reason())
    argvs = [[str(a) for a in argv] for argv in argvs]
    with tempfile.TemporaryDirectory(prefix="vllm-args-") as tmp:
        home = Path(tmp)
        (home / "argvs.json").write_text(json.dumps(argvs))
        out = home / "results.json"
        proc = subprocess.run([py, "-c", _SCRIPT, str(home / "argvs.json"), str(out)], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=_env(home), cwd=home,
                              check=False)
        if proc.returncode != 0 or not out.is_file():
            raise RuntimeError(f"the vLLM argument check itself failed (exit {proc.returncode}):\n"
                               f"{(proc.stdout + proc.stderr)[-3000:]}")
        results = json.loads(out.read_text())
    return [VllmArgvCheck(argv, r["ok"], r["stage"], r["error"]) for argv, r in zip(argvs, results)]
