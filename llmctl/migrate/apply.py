"""`--apply`: stand the new side up beside Ollama behind one proxy, prove parity, shift traffic in
gated steps. `run(out_dir, ...)` is the whole sequence; every step is recorded in DIR/migration.json
and a re-run (after a crash, or after fixing what failed) skips what is done and still live.

Inputs (the out folder of `llmctl migrate ollama-to-vllm`):
- inventory.json — the old server's URL and the models (tag, quantization level, capabilities);
- vllm.yaml + plan.json — the new side (its native command line), unless `new_url` names a new side
  that already runs;
- front.json — the Ollama-compatible front, when old clients use Ollama's native API.

Topology: one HAProxy on the client-facing address; `/api/` → group `api` (Ollama itself, or the
front which calls vLLM), everything else → group `v1` (Ollama's OpenAI API, or vLLM). Colours
`ollama` and `vllm` in both groups shift together. Ollama is never started, stopped or deleted here.
"""

from __future__ import annotations

from llmctl.typed import convert

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

from llmctl.errors import CheckFailed, InputError
from llmctl.migrate import processes
from llmctl.migrate.state import AT_FULL, FINALIZED, PARITY_FAILED, READY, ROLLED_BACK, Migration
from llmctl.migrate.steps import NEW, OLD, shift
from llmctl.traffic.config import Server
from llmctl.traffic.paths import Group, PathRoutes, start_paths
from llmctl.traffic.proxy import Proxy

INVENTORY_SCHEMA = "llmctl.migrate.inventory/v1"
FRONT_SCHEMA = "llmctl.migrate.front/v1"
# GGUF file types that hold the weights unquantized: the new side loading the same checkpoint in
# BF16/FP16/FP32 computes the same function (up to float rounding) — exact parity is required.
UNQUANTIZED_LEVELS = frozenset({"F32", "F16", "BF16"})
DEFAULT_PROXY_PORT = 11435  # choice: beside Ollama's 11434 (clients move to it once); --port changes it
PROXY_UP_TIMEOUT_S = 60.0


# --------------------------------------------------------------------------- inputs


def _read_json(path: Path, what: str, schema: str | None) -> dict[str, Any]:
    from llmctl.fileio import MAX_PLAN_BYTES, read_text_input

    text = read_text_input(path, what=what, max_bytes=MAX_PLAN_BYTES)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", where=f"{path}:{exc.lineno}") from None
    if not isinstance(data, dict):
        raise InputError(f"{what} must be a JSON object", where=str(path))
    if schema and data.get("schema") != schema:
        raise InputError(f"schema: {data.get('schema')!r}, expected {schema!r}", where=str(path))
    return data


def read_inventory(out: Path) -> dict[str, Any]:
    inv = _read_json(out / "inventory.json", "inventory", INVENTORY_SCHEMA)
    models = inv.get("models")
    if not isinstance(models, list) or not models or not all(isinstance(m, dict) and m.get("name") for m in models):
        raise InputError("models: a list of models, each with a name, is needed", where=str(out / "inventory.json"))
    return inv


def read_front(out: Path) -> dict[str, Any] | None:
    path = out / "front.json"
    if not path.exists():
        return None
    front = _read_json(path, "front configuration", FRONT_SCHEMA)
    if not isinstance(front.get("models"), list):
        raise InputError("models: a list is needed", where=str(path))
    return front


def weights_kind(model: dict[str, Any]) -> str:
    level = str(((model.get("details") or {}).get("quantization_level")) or "").upper()
    return "same" if level in UNQUANTIZED_LEVELS else "quantized"


# --------------------------------------------------------------------------- GPU memory


def memory_fit(plan: dict[str, Any] | None, inventory: dict[str, Any]) -> dict[str, Any]:
    """Whether the new side fits on the GPUs beside what Ollama holds there now (/api/ps size_vram).
    vLLM takes its planned share of each GPU at start; Ollama keeps its models loaded until finalize."""
    if not plan or (plan.get("gpu") or {}).get("kind") != "gpu":
        return {"fits": True, "detail": "the new side's plan uses no GPU: no GPU memory is shared"}
    gpu = plan["gpu"]
    count = int(gpu.get("count_per_replica") or 1) * int(plan.get("replicas") or 1)
    capacity = float(gpu.get("memory_gib") or 0) * count
    need = float(plan["memory"]["per_gpu_gib"]["total"]) * count
    old = sum(float((m.get("loaded") or {}).get("size_vram") or 0) for m in inventory["models"]) / 2**30
    detail = (f"vLLM needs {need:.1f} GiB on {count} × {gpu.get('type')} ({capacity:.0f} GiB); "
              f"Ollama holds {old:.1f} GiB there now")
    return {"fits": need + old <= capacity, "detail": detail, "need_gib": round(need, 2), "old_gib": round(old, 2),
            "capacity_gib": round(capacity, 2)}


def no_room_message(fit: dict[str, Any], out: Path | str = "DIR") -> str:
    return (f"vLLM cannot start beside Ollama: {fit['detail']}, "
            f"{fit['need_gib'] + fit['old_gib']:.1f} GiB in all.\n"
            "  options:\n"
            "    - replica by replica: with several GPUs or hosts, free one Ollama replica's GPUs (stop that "
            f"replica yourself; the others keep serving), then `llmctl migrate resume --out {out}`;\n"
            "    - a planned-downtime swap: in a maintenance window stop Ollama and start vLLM in its place "
            f"(`llmctl up {out}/vllm.yaml`); parity cannot compare the two side by side then;\n"
            "    - a smaller footprint: a quantized checkpoint or a lower gpu_memory_utilization in vllm.yaml, "
            "then `llmctl plan` it again.")


# --------------------------------------------------------------------------- the run


def run(out_dir: str | Path, *, new_url: str | None = None, old_url: str | None = None,
        old_api_url: str | None = None, python: str | None = None, bind: str = "127.0.0.1", port: int | None = None,
        parity_api: str = "ollama", weights: str | None = None, observe_s: float | None = None,
        stop_at: int = 100, engine_args: list[str] | None = None,
        say: Callable[[str], None] | None = None) -> int:
    """The whole `--apply` sequence (resumable). Returns the exit code: 0 done, 1 a check failed
    (parity, a gate, no GPU room, a side not ready). Raises InputError for bad inputs (exit 2).
    `engine_args`: flags appended to the new side's command line (recorded, reused by a re-run).
    `parity_api`: how parity talks to the old side — "ollama" (its native /api/generate with raw
    prompts, the default for a real Ollama) or "openai" (/v1/completions, for an old side whose
    OpenAI API takes raw prompts; Ollama's own /v1/completions applies the chat template)."""
    from llmctl.migrate.profile import migration_profile

    say = say or (lambda s: print(s, file=sys.stderr, flush=True))
    out = Path(out_dir).absolute()  # recorded paths (the proxy's socket) must not depend on the cwd
    if not out.is_dir():
        raise InputError(f"--out: {out} is not a folder", hint="run `llmctl migrate ollama-to-vllm` without --apply first")
    prof = migration_profile()
    steps = [s for s in prof.shift.steps if s <= stop_at]
    if stop_at not in (0, *prof.shift.steps):
        raise InputError(f"--stop-at: {stop_at}% is not one of the steps {prof.shift.steps}")
    inv = read_inventory(out)
    front = read_front(out)
    m = Migration.load_or_create(out)
    with m.locked():
        try:
            return _run(m, out, inv, front, prof, steps, say, python=python, new_url=new_url, old_url=old_url,
                        old_api_url=old_api_url, bind=bind, port=port, parity_api=parity_api, weights=weights,
                        observe_s=observe_s, engine_args=engine_args)
        except BaseException as exc:
            m.fail_running(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise


def _run(m: Migration, out: Path, inv: dict, front: dict | None, prof, steps: list[int], say, *, python, new_url,
         old_url, old_api_url, bind, port, parity_api, weights, observe_s, engine_args) -> int:
    if m.phase == FINALIZED:
        say("the migration is already finalized; nothing to do")
        return 0
    if engine_args is not None:
        m.data["engine_args"] = list(engine_args)
    ctx = _Context(out, m, inv, front, say, python=python or m.data.get("python"), new_url=new_url,
                   old_url=old_url, old_api_url=old_api_url, bind=bind, port=port)
    ctx.check_room()
    ctx.ensure_new_side(prof.shift.healthy_timeout_s)
    ctx.ensure_front()
    ctx.ensure_proxy()
    if not ctx.ensure_parity(parity_api, weights):
        return 1
    if m.phase == ROLLED_BACK and m.shares.get(NEW, 0) == 0:
        say("the migration was rolled back; continuing from 0%")
    for pct in steps:
        if m.is_done(f"shift-{pct}") and m.shares.get(NEW, 0) >= pct:
            continue
        try:
            shift(m, pct, observe_s=observe_s, say=say)
        except CheckFailed as exc:
            say(str(exc))
            return 1
    say(f"vLLM takes {m.shares.get(NEW, 0):g}% of new requests through {m.endpoints['proxy']['url']}"
        + ("; `llmctl migrate finalize` stops routing to Ollama" if m.phase == AT_FULL else ""))
    return 0


class _Context:
    def __init__(self, out: Path, m: Migration, inv: dict, front: dict | None, say, *, python, new_url,
                 old_url, old_api_url, bind, port) -> None:
        self.out, self.m, self.inv, self.front, self.say = out, m, inv, front, say
        self.python, self.bind, self.port = python, bind, port
        self.new_url = new_url.rstrip("/") if new_url else None
        url = old_url or (inv.get("source") or {}).get("url")
        if not url:
            raise InputError("the inventory names no URL for the running Ollama (it was read from files)",
                             where=str(out / "inventory.json"), hint="give it with --old-url http://HOST:11434")
        self.old_v1 = url.rstrip("/")
        self.old_api = (old_api_url or url).rstrip("/")
        self.plan = self._plan()
        self.api_key = os.environ.get(front["api_key_env"]) if front and front.get("api_key_env") else None

    def _plan(self) -> dict[str, Any] | None:
        path = self.out / "plan.json"
        return _read_json(path, "plan", None) if path.exists() else None

    # ------------------------------------------------------------------ 1. room on the GPUs
    def check_room(self) -> None:
        m = self.m
        fit = memory_fit(self.plan, self.inv)
        rec = m.begin("checked")
        if not fit["fits"]:
            m.finish(rec, "failed", **fit)
            raise CheckFailed(no_room_message(fit, self.out))
        m.finish(rec, "done", **fit)
        m.set_endpoint("old", {"v1_url": self.old_v1, "api_url": self.old_api, "managed": False})

    # ------------------------------------------------------------------ 2. the new side
    def ensure_new_side(self, timeout_s: float) -> None:
        m = self.m
        if self.new_url:
            m.set_endpoint("new", {"url": self.new_url, "started": False})
        else:
            record = m.started(NEW)
            if not (m.is_done("new-started") and processes.alive(record)):
                rec = m.begin("new-started")
                argv, url, env = self._new_command()
                record = processes.spawn(NEW, argv, self.out / "logs", env=env, port=int(url.rsplit(":", 1)[1]))
                m.record_started(record)
                m.set_endpoint("new", {"url": url, "started": True})
                m.finish(rec, "done", pid=record["pid"])
                m.invalidate("new-healthy", "proxy-started", "parity")
        url = m.endpoints["new"]["url"]
        rec = m.begin("new-healthy")
        try:
            waited = processes.wait_http(url + "/health", timeout_s=timeout_s, what="vLLM", record=m.started(NEW)
                                         if not self.new_url else None, api_key=self.api_key)
        except CheckFailed as exc:
            m.finish(rec, "failed", reason=str(exc).splitlines()[0])
            raise
        m.finish(rec, "done", waited_s=round(waited, 1))
        self.say(f"vLLM is ready at {url}")

    def _new_command(self) -> tuple[list[str], str, dict[str, str]]:
        from llmctl.deploy.base import free_port, listen_args
        from llmctl.engines import get_engine
        from llmctl.engines.base import native_env
        from llmctl.plan import Plan
        from llmctl.render import build_service
        from llmctl.spec import load_spec

        spec_path = self.out / "vllm.yaml"
        if self.plan is None or not spec_path.exists():
            raise InputError(f"{self.out}: vllm.yaml and plan.json are needed to start the new side",
                             hint="run `llmctl migrate ollama-to-vllm` without --apply first, or give --new-url")
        spec = load_spec(str(spec_path))
        plan = convert(self.plan, Plan)
        service = build_service(plan, spec)
        if not service.native_argv:
            raise InputError(f"the {service.engine} engine has no host command line to start here", where=str(spec_path))
        port = free_port("127.0.0.1")
        argv = get_engine(service.engine).host_argv(listen_args(service.native_argv, "127.0.0.1", port), self.python)
        argv += list(self.m.data.get("engine_args") or [])
        if self.python:
            self.m.data["python"] = self.python
        return argv, f"http://127.0.0.1:{port}", native_env(service, str(self.out / "data"))

    # ------------------------------------------------------------------ 3. the front
    def ensure_front(self) -> None:
        m = self.m
        if self.front is None:
            return
        from llmctl.deploy.base import free_port

        record = m.started("front")
        live_cfg = self.out / "front.live.json"
        backend = m.endpoints["new"]["url"]
        if not (m.is_done("front-started") and processes.alive(record) and record.get("backend") == backend):
            if processes.alive(record):
                processes.stop(record)  # it calls a new side that is gone
            rec = m.begin("front-started")
            from llmctl.fileio import write_atomic

            write_atomic(live_cfg, json.dumps({**self.front, "backend": backend}, indent=2) + "\n")
            port = free_port("127.0.0.1")
            argv = [sys.executable, "-m", "llmctl.migrate.front", "--config", str(live_cfg),
                    "--host", "127.0.0.1", "--port", str(port)]
            record = processes.spawn("front", argv, self.out / "logs", port=port) | {"backend": backend}
            m.record_started(record)
            m.set_endpoint("front", {"url": f"http://127.0.0.1:{port}", "config": str(live_cfg)})
            m.finish(rec, "done", pid=record["pid"])
            m.invalidate("proxy-started")
        url = m.endpoints["front"]["url"]
        processes.wait_http(url + "/api/version", timeout_s=60, what="the Ollama-compatible front", record=record)

    # ------------------------------------------------------------------ 4. the proxy
    def ensure_proxy(self) -> None:
        m = self.m
        proxy_dir = self.out / "proxy"
        proxy = Proxy(proxy_dir)
        routes = PathRoutes.load(proxy_dir)
        if m.is_done("proxy-started") and routes is not None and proxy.running() and self._same_servers(routes):
            return
        rec = m.begin("proxy-started")
        port = self.port or (m.endpoints.get("proxy") or {}).get("port") or DEFAULT_PROXY_PORT
        shares = m.shares
        w_old = round(shares.get(OLD, 100) * 2)
        w_new = round(shares.get(NEW, 0) * 2)
        new_url = m.endpoints["new"]["url"]
        groups = []
        if self.front is not None:
            groups.append(Group("api", "/api/", "/api/version", [
                _server(f"{OLD}-1", self.old_api, w_old), _server(f"{NEW}-1", m.endpoints["front"]["url"], w_new)]))
        groups.append(Group("v1", None, "/v1/models", [_server(f"{OLD}-1", self.old_v1, w_old),
                                                       _server(f"{NEW}-1", new_url, w_new)]))
        routes = PathRoutes(groups=groups, bind=self.bind, port=int(port), title=f"migration {self.out.name}")
        start_paths(proxy, routes)
        for g in groups:
            for s in g.servers:
                _wait_checked(proxy, f"be_{g.name}", s.name)
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "::", "") else self.bind
        m.set_endpoint("proxy", {"dir": str(proxy_dir), "url": f"http://{host}:{port}", "bind": self.bind,
                                 "port": int(port)})
        m.finish(rec, "done", port=int(port))
        self.say(f"proxy on {m.endpoints['proxy']['url']}: Ollama {shares.get(OLD, 100):g}%, vLLM {shares.get(NEW, 0):g}%")

    def _same_servers(self, routes: PathRoutes) -> bool:
        want = {self.old_v1, self.m.endpoints["new"]["url"]}
        if self.front is not None:
            want |= {self.old_api, self.m.endpoints["front"]["url"]}
        have = {f"http://{s.host}:{s.port}" for g in routes.groups for s in g.servers}
        return want <= have

    # ------------------------------------------------------------------ 5. parity
    def ensure_parity(self, api: str, weights: str | None) -> bool:
        from llmctl.migrate.parity import Side, combine, run_parity, write_parity

        m = self.m
        s = m.step("parity")
        if s is not None and s["status"] == "done" and s.get("passed"):
            return True
        rec = m.begin("parity")
        self.say("parity: the same prompts through Ollama and vLLM")
        served = {x["name"]: x.get("served_name") or x["name"] for x in (self.front or {}).get("models", [])}
        docs = []
        for model in self.inv["models"]:
            tag = model["name"]
            embedding = "embedding" in (model.get("capabilities") or [])
            docs.append(run_parity(
                Side(OLD, self.old_v1 if api == "openai" else self.old_api, tag, api=api),
                Side(NEW, m.endpoints["new"]["url"], served.get(tag, tag), api_key=self.api_key),
                weights=weights or weights_kind(model), embedding=embedding) | {"model": tag})
        doc = combine(docs)
        json_path, md_path = write_parity(self.out, doc)
        m.finish(rec, "done", passed=doc["passed"], file=str(json_path))
        if not doc["passed"]:
            m.set_phase(PARITY_FAILED)
            self.say(f"parity FAILED: nothing shifts, Ollama keeps all traffic; see {md_path}")
            return False
        if m.phase not in (AT_FULL,):
            m.set_phase(READY)
        self.say(f"parity passed; see {md_path}")
        return True


def _server(name: str, url: str, weight: int) -> Server:
    from urllib.parse import urlsplit

    u = urlsplit(url)
    if u.scheme != "http" or not u.hostname or not u.port:
        raise InputError(f"{url!r} must be http://HOST:PORT (the proxy speaks plain HTTP to its servers)")
    return Server(name, u.hostname, u.port, weight)


def _wait_checked(proxy: Proxy, backend: str, server: str) -> None:
    """Until HAProxy's first health checks have a verdict on the server (UP, or DRAIN at weight 0)."""
    import time

    deadline = time.monotonic() + PROXY_UP_TIMEOUT_S
    status = "?"
    while time.monotonic() < deadline:
        status = (proxy.admin.stats(backend).get(server) or {}).get("status", "absent").split()[0]
        if status in ("UP", "DRAIN"):
            return
        time.sleep(0.2)
    raise CheckFailed(f"the proxy's health check reports {backend}/{server} {status} after {PROXY_UP_TIMEOUT_S:.0f}s")
