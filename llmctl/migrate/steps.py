"""The traffic steps of a running migration: shift (health- and error-gated, rolled back on a failed
gate), rollback, finalize and the status view. Each reads and records DIR/migration.json.

A gate watches the new side for the step's observation window through HAProxy's own counters (admin
socket `show stat`): every server of the new colour must stay UP, and its errors (5xx answers,
failed connections, failed answers) since the step began, over its requests since then, must not
exceed the profile's max_error_rate."""

from __future__ import annotations

import time
from typing import Any, Callable

from llmctl.errors import CheckFailed, InputError
from llmctl.migrate.state import AT_FULL, FINALIZED, ROLLED_BACK, SHIFTING, Migration
from llmctl.traffic.paths import PathRoutes, apply_path_shares, colour_counters
from llmctl.traffic.proxy import Proxy

OLD, NEW = "ollama", "vllm"
GATE_POLL_S = 0.5


def parse_percent(text: str) -> int:
    t = str(text).strip().rstrip("%").strip()
    if not t.isdigit() or not 0 <= int(t) <= 100:
        raise InputError(f"--to: {text!r} is not a percentage from 0% to 100% (e.g. 10%)")
    return int(t)


def proxy_and_routes(m: Migration) -> tuple[Proxy, PathRoutes]:
    proxy_ep = m.endpoints.get("proxy")
    if not proxy_ep:
        raise CheckFailed(f"{m.dir}: the migration has no proxy yet; run `llmctl migrate resume --out {m.dir}`")
    proxy = Proxy(proxy_ep["dir"])
    routes = PathRoutes.load(proxy.dir)
    if routes is None or not proxy.running():
        raise CheckFailed(f"the migration's proxy ({proxy.dir}) is not running\n"
                          f"  fix: `llmctl migrate resume --out {m.dir}` starts it again with the recorded shares")
    return proxy, routes


def require_parity(m: Migration) -> None:
    s = m.step("parity")
    if s is None or s["status"] != "done" or not s.get("passed"):
        raise CheckFailed("parity has not passed: no traffic moves to the new side\n"
                          f"  see {m.dir / 'parity.md'}; fix the new side, then `llmctl migrate resume --out {m.dir}`")


def shift(m: Migration, pct: int, *, observe_s: float | None = None, max_error_rate: float | None = None,
          say: Callable[[str], None] = print) -> dict[str, Any]:
    """Give the new side `pct`% of new requests, watch it, and roll everything back to the old side
    when the gate fails (then raise CheckFailed). Returns the step's record."""
    from llmctl.migrate.profile import migration_profile

    prof = migration_profile().shift
    observe_s = prof.observe_s if observe_s is None else observe_s
    max_error_rate = prof.max_error_rate if max_error_rate is None else max_error_rate
    if m.phase == FINALIZED:
        raise CheckFailed("the migration is finalized: the old side takes no traffic any more")
    if pct > 0:
        require_parity(m)
    proxy, routes = proxy_and_routes(m)
    rec = m.begin(f"shift-{pct}")
    before = colour_counters(proxy, routes)[NEW]
    apply_path_shares(proxy, routes, {NEW: pct, OLD: 100 - pct})
    m.set_shares({OLD: 100 - pct, NEW: pct})
    m.set_phase(SHIFTING if pct < 100 else AT_FULL)
    say(f"shifted {pct}% of new requests to vLLM; watching it for {observe_s:g}s")
    verdict = _watch(proxy, routes, before, observe_s, max_error_rate) if pct > 0 else {"ok": True}
    if not verdict["ok"]:
        m.finish(rec, "failed", **verdict)
        rollback(m, reason=f"the {pct}% step failed its gate: {verdict['reason']}", say=say)
        raise CheckFailed(f"the {pct}% step failed its gate ({verdict['reason']}); all traffic is back on Ollama")
    m.finish(rec, "done", **verdict)
    n = verdict.get("requests", 0)
    say(f"{pct}% step passed: {n} request(s) to vLLM, {verdict.get('errors', 0)} error(s)"
        + ("" if n or pct == 0 else " (no client traffic in the window: only health was checked)"))
    return rec


def _watch(proxy: Proxy, routes: PathRoutes, before: dict[str, Any], observe_s: float,
           max_error_rate: float) -> dict[str, Any]:
    deadline = time.monotonic() + observe_s
    while True:
        now = colour_counters(proxy, routes)[NEW]
        requests = int(now["requests"]) - int(before["requests"])
        errors = int(now["errors"]) - int(before["errors"])
        down = {k: v for k, v in now["status"].items() if v not in ("UP", "no")}  # "no": no check configured
        base = {"requests": requests, "errors": errors, "health": now["status"]}
        if down:
            return base | {"ok": False, "reason": "not healthy: " + ", ".join(f"{k} {v}" for k, v in down.items())}
        if errors and errors > max_error_rate * max(requests, 1):
            return base | {"ok": False, "reason": f"{errors} error(s) in {requests} request(s), more than "
                                                  f"{max_error_rate:.1%} allowed"}
        if time.monotonic() >= deadline:
            return base | {"ok": True}
        time.sleep(GATE_POLL_S)


def rollback(m: Migration, *, reason: str = "asked for", stop_new: bool = False,
             say: Callable[[str], None] = print) -> None:
    """All new requests back to the old side (requests in flight finish where they are). With
    `stop_new`, stop what this migration started for the new side; never anything else."""
    from llmctl.migrate import processes

    rec = m.begin("rollback")
    endpoints = m.endpoints
    if endpoints.get("proxy"):
        proxy = Proxy(endpoints["proxy"]["dir"])
        routes = PathRoutes.load(proxy.dir)
        if routes is not None and proxy.running():
            for g in routes.groups:  # a finalized migration put the old side in maintenance
                for s in g.servers:
                    if s.name.startswith(OLD + "-"):
                        proxy.admin.enable(f"be_{g.name}", s.name)
            apply_path_shares(proxy, routes, {OLD: 100, NEW: 0})
    m.set_shares({OLD: 100.0, NEW: 0.0})
    stopped = []
    if stop_new:
        for role in ("front", "vllm"):
            record = m.started(role)
            if record and processes.stop(record):
                stopped.append(f"{role} (pid {record['pid']})")
            if record:
                m.forget_started(role)
        m.invalidate("new-started", "new-healthy", "front-started")
    m.set_phase(ROLLED_BACK)
    m.finish(rec, "done", reason=reason, stopped=stopped)
    say(f"rolled back ({reason}): all new requests go to Ollama"
        + (f"; stopped {', '.join(stopped)}" if stopped else ""))


def finalize(m: Migration, *, say: Callable[[str], None] = print) -> None:
    require_parity(m)
    if m.shares.get(NEW, 0) < 100:
        raise CheckFailed(f"vLLM takes {m.shares.get(NEW, 0):g}% of requests, not 100%: "
                          "`llmctl migrate shift --to 100%` first")
    proxy, routes = proxy_and_routes(m)
    rec = m.begin("finalize")
    for g in routes.groups:
        for s in g.servers:
            if s.name.startswith(OLD + "-"):
                proxy.admin.set_weight(f"be_{g.name}", s.name, 0)
                proxy.admin.disable(f"be_{g.name}", s.name)  # maintenance: no requests, no health checks
    m.set_phase(FINALIZED)
    m.finish(rec, "done")
    old = m.endpoints.get("old", {})
    say("finalized: no request goes to Ollama any more. Ollama itself still runs at "
        f"{old.get('v1_url', '?')}; stopping it is your choice, e.g.\n"
        "    systemctl stop ollama            # installed as a service\n"
        "    docker stop <ollama container>   # in a container\n"
        "`llmctl migrate rollback` still brings traffic back while it runs.")


def status(m: Migration) -> dict[str, Any]:
    out: dict[str, Any] = {"dir": str(m.dir), "phase": m.phase, "shares": m.shares, "endpoints": m.endpoints,
                           "started": m.data["started"],
                           "steps": [{k: s.get(k) for k in ("name", "status", "started_at", "finished_at", "reason",
                                                            "passed", "requests", "errors")} for s in m.data["steps"]]}
    proxy_ep = m.endpoints.get("proxy")
    if proxy_ep:
        proxy = Proxy(proxy_ep["dir"])
        routes = PathRoutes.load(proxy.dir)
        out["proxy_running"] = proxy.running()
        if routes is not None and out["proxy_running"]:
            out["live"] = colour_counters(proxy, routes)
    return out


def status_text(st: dict[str, Any]) -> str:
    lines = [f"migration in {st['dir']}: {st['phase']}",
             "shares: " + ", ".join(f"{k} {v:g}%" for k, v in st["shares"].items())]
    ep = st["endpoints"]
    if ep.get("proxy"):
        lines.append(f"clients use: {ep['proxy']['url']} (proxy {'running' if st.get('proxy_running') else 'NOT running'})")
    if ep.get("old"):
        lines.append(f"old (Ollama, not managed): {ep['old'].get('v1_url')}")
    if ep.get("new"):
        lines.append(f"new (vLLM): {ep['new'].get('url')}" + (" (started by llmctl)" if ep['new'].get('started') else ""))
    if ep.get("front"):
        lines.append(f"front (Ollama API on vLLM): {ep['front'].get('url')}")
    for colour, c in (st.get("live") or {}).items():
        lines.append(f"  {colour}: {c['requests']} requests, {c['errors']} errors, "
                     + ", ".join(f"{k} {v}" for k, v in c["status"].items()))
    lines.append("steps:")
    for s in st["steps"]:
        extra = f" ({s['reason']})" if s.get("reason") else ""
        lines.append(f"  {s['started_at']}  {s['name']:<14} {s['status']}{extra}")
    return "\n".join(lines)


__all__ = ["finalize", "parse_percent", "rollback", "shift", "status", "status_text"]
