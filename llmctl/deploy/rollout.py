"""`up`, `down`, `status` and `rollback` across targets: preflight, first start, updates, idempotence.

Targets with a traffic layer (`proxied`: local, compose, systemd) run each colour on private ports behind
HAProxy on the spec's port; updates switch colours there without dropping a request, or replace the
replicas one at a time when no spare GPUs hold a second copy (llmctl/deploy/proxied.py). Other blue/green targets: the new colour starts beside the running one on
a free staging port and must pass the smoke test there; only then is the old one stopped, the new
one moved to the real port and checked again, and the old one removed. If the new one fails at any
step the old one keeps (or goes back to) serving and `up` exits 1 with the new one's last log lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmctl.deploy.base import Context, Driver, free_port, with_host_port
from llmctl.deploy.progress import say, tail
from llmctl.deploy.state import State, clear_state, deployment_dir, digest, load_state
from llmctl.errors import CheckFailed, InputError
from llmctl.typed import convert, dump

if TYPE_CHECKING:
    from llmctl.plan import Plan
    from llmctl.service import ServiceSpec
    from llmctl.smoke import SmokeReport
    from llmctl.spec import Spec

COLORS = ("blue", "green")
STATUS_SCHEMA = "llmctl.status/v1"  # of `llmctl status -o json`


def get_driver(target: str) -> Driver:
    from llmctl.targets.registry import driver

    return driver(target)


def load(spec_path: str, *, force: bool = False, quiet: bool = False) -> tuple["Spec", "Plan", "ServiceSpec"]:
    from llmctl.planner import make_plan
    from llmctl.render import build_service
    from llmctl.spec import load_spec

    spec = load_spec(spec_path)
    plan = make_plan(spec, base_dir=Path(spec_path).resolve().parent)
    if not plan.feasible:
        problems = "; ".join(plan.problems or ["infeasible"])
        if not force:
            raise CheckFailed(f"the plan cannot work: {problems}\n  fix: change the spec (`llmctl plan` explains), "
                              "or `llmctl up --force` to deploy it anyway (e.g. vLLM's CPU build on a development machine)")
        if not quiet:
            say(f"warning: deploying a plan the planner rejects (--force): {problems}")
    return spec, plan, build_service(plan, spec)


# --------------------------------------------------------------------------- up


def up(spec_path: str, *, target: str | None, options: dict[str, Any], timeout_s: float | None, smoke: bool,
       smoke_timeout_s: float, echo, force: bool = False) -> int:
    from llmctl.deploy.secrets import env_values

    spec, plan, service = load(spec_path, force=force)
    timeout_s = timeout_s or float(service.health.startup_timeout_s)
    target = target or spec.target
    driver = get_driver(target)
    ctx = Context(spec_path=Path(spec_path).resolve(), slug=service.slug,
                  dir=deployment_dir(spec_path, service.slug), options=options, timeout_s=timeout_s)
    state = load_state(ctx.dir)
    if state is not None and state.target != target:
        raise InputError(f"target: {spec.name!r} is deployed with {state.target}; run `llmctl down {spec_path}` "
                         f"before deploying it with {target}")
    ctx.secrets = env_values(service)
    secret_hash = digest({}, {"env": sorted(ctx.secrets.items())})[:16]  # a changed secret is a change
    files = driver.files(ctx, service, "-")
    new_hash = digest(files, {"env": secret_hash, "options": {k: v for k, v in options.items() if v is not None}})

    checks = smoke_digest(spec)
    alive = state is not None and driver.running(ctx, state.active)
    proxied = getattr(driver, "proxied", False)
    if state is not None and alive and state.hash == new_hash:
        if proxied:
            from llmctl.deploy.proxied import ensure_proxy

            ensure_proxy(ctx, driver, service)
        echo(f"nothing changed: {spec.name} is running ({target}, {state.active.get('color')}) at {state.url}")
        if state.smoke == checks or not smoke:
            return 0
        # only what the smoke test checks changed (SLA, concurrency): check the running deployment again
        say("  the SLA or concurrency changed: smoke-testing the running deployment (nothing restarts)")
        try:
            _smoke(driver, ctx, service, state.active, spec, smoke_timeout_s, echo)
        finally:
            driver.close()
        state.smoke = checks
        state.save(ctx.dir)
        return 0

    if state is None:
        from llmctl.deploy.state import renamed_deployments

        for folder, old in renamed_deployments(spec_path, service.slug):
            old_ctx = Context(spec_path=ctx.spec_path, slug=old.slug, dir=folder, options=dict(old.options))
            if get_driver(old.target).running(old_ctx, old.active):
                raise CheckFailed(f"this spec is still deployed under its earlier name {old.name!r} ({old.target}, "
                                  f"at {old.url}); nothing was started\n  fix: `llmctl down {spec_path}` removes it "
                                  "(and the renamed deployment with it), then `llmctl up` again")
    say(f"up: {spec.name} — {service.engine} serving {service.served_model_name} ({target})")
    held = alive
    if proxied:  # the port belongs to this deployment's proxy, which stays
        from llmctl.deploy.proxied import proxy_of

        held = alive or proxy_of(ctx, driver).running()
    preflight(spec, plan, target, service, driver, ctx, ports_held=held)

    try:
        if proxied:
            record = _rollout_proxied(driver, ctx, service, state, spec, alive, smoke, smoke_timeout_s, echo, options)
        else:
            record = _rollout(driver, ctx, service, state, spec, alive, smoke, smoke_timeout_s, echo, target)
    except BaseException:
        if proxied and state is not None and alive:
            state.save(ctx.dir)  # a failed replica-by-replica update restarted old replicas (new pids)
        raise
    finally:
        driver.close()
    if proxied:
        from llmctl.deploy.proxied import public_url

        url = public_url(service)
    else:
        url = driver.url(ctx, service, record)
    earlier = state if (proxied and state is not None and alive) else None
    State(name=spec.name, slug=service.slug, target=target, spec=str(ctx.spec_path), hash=new_hash, active=record,
          url=url, model=service.served_model_name, engine=service.engine,
          files={n: digest({n: t}) for n, t in files.items()}, options=options,
          smoke=checks if smoke else "", service=dump(service) if proxied else {},
          previous=earlier.active if earlier else {}, previous_service=earlier.service if earlier else {},
          previous_hash=earlier.hash if earlier else "", previous_files=earlier.files if earlier else {},
          ).save(ctx.dir)
    echo(f"up: {spec.name} is serving {service.served_model_name} at {url}" + ("/v1" if url.startswith("http") else "")
         + f" ({target}, {record['color']})")
    return 0


def _rollout(driver: Driver, ctx: Context, service, state: State | None, spec, alive: bool, smoke: bool,
             smoke_timeout_s: float, echo, target: str) -> dict[str, Any]:
    if state is None or not alive or not driver.blue_green:
        old = state.active if state is not None else None
        if old is not None and not alive:
            say(f"  the recorded {target} deployment ({old.get('color')}) is not running: replacing it")
            driver.remove(ctx, old)
        if old is not None and alive and not driver.blue_green:
            color = old["color"]
        else:
            color = COLORS[0] if old is None or old.get("color") != COLORS[0] else COLORS[1]
        return _start_checked(driver, ctx, service, color, spec, smoke, smoke_timeout_s, echo,
                              keep_on_failure=alive and not driver.blue_green)
    return _blue_green(driver, ctx, service, state, spec, smoke, smoke_timeout_s, echo)


def _rollout_proxied(driver: Driver, ctx: Context, service, state: State | None, spec, alive: bool, smoke: bool,
                     smoke_timeout_s: float, echo, options: dict[str, Any]) -> dict[str, Any]:
    from llmctl.deploy import proxied as px

    if state is None or not alive:
        if state is not None:
            say(f"  the recorded deployment ({state.active.get('color')}) is not running: replacing it")
            driver.remove(ctx, state.active)
        return px.first_start(driver, ctx, service, spec, smoke, smoke_timeout_s, echo)
    if not state.active.get("private"):  # deployed before the traffic layer: the engine holds the port itself
        if not driver.pre_proxy_updates:
            raise CheckFailed(f"{spec.name} was deployed before the {driver.name} target had a proxy in front (one "
                              f"unit on the public port, {state.active.get('unit', '?')}); nothing was changed\n"
                              f"  fix: `llmctl down {ctx.spec_path}` then `llmctl up` (the service is down while "
                              "the model loads once)")
        return _blue_green(driver, ctx, service, state, spec, smoke, smoke_timeout_s, echo)
    return _update_through_proxy(driver, ctx, service, state.active, _service_of(state, service), spec, smoke,
                                 smoke_timeout_s, echo, options)


def _service_of(state: State, fallback):
    """The ServiceSpec the running version was started from (kept in the state of proxied targets)."""
    from llmctl.service import ServiceSpec

    return convert(state.service, ServiceSpec) if state.service else fallback


def _update_through_proxy(driver: Driver, ctx: Context, service, old: dict[str, Any], old_service, spec, smoke: bool,
                          smoke_timeout_s: float, echo, options: dict[str, Any]) -> dict[str, Any]:
    """From the running version `old` to `service`: blue/green when the spare GPUs hold a second copy,
    else replica by replica, else (one replica) in place with --allow-downtime."""
    from llmctl.deploy import proxied as px

    if px.room_for_both(service):
        return px.switch(driver, ctx, service, old, spec, smoke, smoke_timeout_s, echo)
    if service.replicas > 1:
        if not driver.replica_by_replica:
            raise CheckFailed(f"the new version needs {px.gpus(service) * service.replicas} GPUs beside the running "
                              f"one and the hardware lists {service.spare_gpus} spare; the {driver.name} target cannot "
                              "replace replicas one at a time\n  fix: list spare GPUs under hardware:, or `llmctl "
                              "down` and `llmctl up` (downtime)")
        return px.replica_by_replica(driver, ctx, service, old, old_service, spec, smoke, smoke_timeout_s, echo)
    downtime = _downtime(old, old_service, service)
    if not options.get("allow_downtime"):
        raise CheckFailed("one replica and no spare GPU: the new version can only start after the running one "
                          f"stops, so the service is down while the model loads: {downtime}\n"
                          "  fix: `llmctl up --allow-downtime`, or list a spare GPU under hardware:")
    say(f"  warning: one replica and no spare GPU: the service is down until the new version is ready ({downtime})")
    return px.replace_in_place(driver, ctx, service, old, spec, smoke, smoke_timeout_s, echo)


def _downtime(old: dict[str, Any], old_service, service) -> str:
    """How long an in-place update leaves the service down: the running version's own load time on this
    host when it loads the same weights, else the new version's start-up budget."""
    same = (old_service.image, old_service.served_model_name) == (service.image, service.served_model_name)
    if old.get("ready_s") is not None and same:
        return f"about {old['ready_s']:g} s (the running version of the same model was ready that long after it started)"
    return (f"up to {service.health.startup_timeout_s} s (the new version's start-up allowance; no load of it was "
            "measured here)")


def rollback(spec_path: str, *, timeout_s: float | None, smoke: bool, smoke_timeout_s: float, echo,
             allow_downtime: bool = False) -> int:
    """Bring back the version that ran before the last update, through the proxy (no request dropped)."""
    from llmctl.deploy import proxied as px
    from llmctl.deploy.secrets import env_values
    from llmctl.service import ServiceSpec

    ctx, state, driver, target = deployment_context(spec_path, None, {})
    if state is None:
        raise CheckFailed(f"{ctx.slug}: not deployed; nothing to roll back")
    if not getattr(driver, "proxied", False):
        raise CheckFailed(f"rollback: the {target} target has no traffic layer; deploy the earlier spec with `llmctl up`")
    if not state.previous_service:
        raise CheckFailed(f"{state.name}: no earlier version is recorded (one `up` so far)")
    from llmctl.spec import load_spec

    spec = load_spec(spec_path)
    service = convert(state.previous_service, ServiceSpec)
    ctx.secrets = env_values(service)
    ctx.timeout_s = timeout_s or float(service.health.startup_timeout_s)
    say(f"rollback: {state.name} back to the version before the last update ({target})")
    try:
        record = _update_through_proxy(driver, ctx, service, state.active, _service_of(state, service), spec, smoke,
                                       smoke_timeout_s, echo, {**state.options, "allow_downtime": allow_downtime})
    except BaseException:
        state.save(ctx.dir)  # as in `up`: replicas restarted on the way back have new pids
        raise
    finally:
        driver.close()
    State(name=state.name, slug=state.slug, target=state.target, spec=state.spec, hash=state.previous_hash,
          active=record, url=px.public_url(service), model=service.served_model_name, engine=service.engine,
          files=state.previous_files, options=state.options, smoke="", service=state.previous_service,
          previous=state.active, previous_service=state.service, previous_hash=state.hash,
          previous_files=state.files).save(ctx.dir)
    echo(f"rollback: {state.name} is serving {service.served_model_name} at {px.public_url(service)} "
         f"({target}, {record['color']})")
    return 0


def smoke_digest(spec) -> str:
    """What the smoke test checks besides the deployment itself (SLA targets, burst size)."""
    return digest({}, {"sla": dump(spec.workload.sla), "concurrency": spec.workload.concurrency})[:16]


def preflight(spec, plan, target: str, service, driver: Driver, ctx: Context, *, ports_held: bool) -> None:
    from llmctl.doctor import FAIL, any_failed, results_table, run_checks

    driver.preflight(ctx, service)
    # ports held by the running deployment being updated are ours, not a conflict; `up` writes the
    # secrets itself from the operator's environment, so their absence is not a failure here
    skip = ("kubernetes secret", *(("ports",) if ports_held else ()))
    results = run_checks(spec, plan, target, service=service, skip=skip)
    failed = [r for r in results if r.status == FAIL]
    if any_failed(results):
        say(results_table(results))
        lines = "\n".join(f"  {r.name}: {r.detail}" + (f"\n    fix: {r.fix}" if r.fix else "") for r in failed)
        raise CheckFailed(f"preflight failed; nothing was started:\n{lines}")


def _start_checked(driver: Driver, ctx: Context, service, color: str, spec, smoke: bool, smoke_timeout_s: float,
                   echo, *, keep_on_failure: bool = False) -> dict[str, Any]:
    """Start `service` as `color`, wait, smoke-test; on failure remove it (nothing left running) and raise."""
    import time

    record: dict[str, Any] | None = None
    try:
        started = time.monotonic()
        record = driver.apply(ctx, service, color)
        driver.wait_ready(ctx, service, record)
        # how long this model took to load here: the best guess of a later in-place update's downtime
        record["ready_s"] = round(time.monotonic() - started, 1)
        if smoke:
            _smoke(driver, ctx, service, record, spec, smoke_timeout_s, echo)
        return record
    except BaseException as exc:
        if record is not None and not keep_on_failure:
            logs = driver.logs(ctx, record)
            driver.remove(ctx, record)
            say(f"  removed the failed {color} deployment; nothing of it is left running")
            if isinstance(exc, CheckFailed) and "last log lines" not in str(exc) and logs.strip():
                raise CheckFailed(f"{exc}\n  last log lines:\n{tail(logs)}") from None
        raise


def _blue_green(driver: Driver, ctx: Context, service, state: State, spec, smoke: bool, smoke_timeout_s: float,
                echo) -> dict[str, Any]:
    old = state.active
    color = COLORS[1] if old.get("color") == COLORS[0] else COLORS[0]
    port = service.ports[0]
    staging = with_host_port(service, free_port(port.bind))
    say(f"  update: starting {color} on staging port {staging.ports[0].host}; {old.get('color')} keeps serving")
    try:
        candidate = _start_checked(driver, ctx, staging, color, spec, smoke, smoke_timeout_s, echo)
    except CheckFailed as exc:
        raise CheckFailed(f"{exc}\n  the running deployment ({old.get('color')}) keeps serving at {state.url}") from None
    driver.remove(ctx, candidate)
    say(f"  {color} passed; switching port {port.host} from {old.get('color')} to {color}")
    driver.stop(ctx, old)
    try:
        record = _start_checked(driver, ctx, service, color, spec, smoke, smoke_timeout_s, echo)
    except BaseException:
        say(f"  {color} failed on the real port: starting {old.get('color')} again")
        driver.start(ctx, old)
        driver.wait_ready(ctx, service, old)
        raise
    driver.remove(ctx, old)
    say(f"  removed {old.get('color')}")
    return record


def _smoke(driver: Driver, ctx: Context, service, record, spec, timeout_s: float, echo) -> "SmokeReport":
    from llmctl.smoke import SlaTargets, Timeouts, run_smoke
    from llmctl.term import num

    url = driver.url(ctx, service, record)
    api_key = next((ctx.secrets[s.key] for s in service.secrets if s.env.endswith("API_KEY") and s.key in ctx.secrets),
                   None)
    sla = spec.workload.sla
    from llmctl.deploy.progress import Waiting

    say(f"  smoke test of {url} (concurrency {min(spec.workload.concurrency, 512)})")
    with Waiting(f"smoke test of {url}", timeout_s) as waiting:
        report = run_smoke(url, service.served_model_name, api="openai", api_key=api_key,
                           concurrency=min(spec.workload.concurrency, 512),
                           sla=SlaTargets(ttft_p95_ms=sla.ttft_p95_ms, itl_p95_ms=sla.itl_p95_ms),
                           timeouts=Timeouts(total_s=timeout_s, request_s=min(60.0, timeout_s)),
                           health_path=service.health.path, metrics_path=service.metrics_path,
                           expect_metrics=bool(service.metrics_path), on_progress=waiting.update)
    echo(report.table())
    if not report.ok:
        parts = []
        for c in report.failed():
            figs = ""
            if c.measured is not None:
                figs = f" — measured {num(c.measured)}{c.unit}" + (f", target {num(c.target)}{c.unit}" if c.target is not None else "")
            parts.append(f"  {c.name}: {c.detail}{figs}")
        raise CheckFailed(f"smoke test of {url} failed:\n" + "\n".join(parts))
    return report


# --------------------------------------------------------------------------- down / status


def deployment_context(spec_path: str, target: str | None,
                       options: dict[str, Any]) -> tuple[Context, State | None, Driver, str]:
    """What a later command (`down`, `status`, `traffic`, `rollback`) needs: the context with the options
    `up` recorded, the state, and the driver of the target the deployment runs on."""
    from llmctl.slug import slugify
    from llmctl.spec import load_spec

    spec = load_spec(spec_path)
    slug = slugify(spec.name)
    ctx = Context(spec_path=Path(spec_path).resolve(), slug=slug, dir=deployment_dir(spec_path, slug), options=options)
    state = load_state(ctx.dir)
    target = (state.target if state else None) or target or spec.target
    ctx.options = {**(state.options if state else {}), **{k: v for k, v in options.items() if v is not None}}
    return ctx, state, get_driver(target), target


def _remove_all(ctx: Context, state: State | None, driver: Driver, volumes: bool) -> tuple[list, list[str]]:
    records = [state.active] if state else []
    seen = {r.get("color") for r in records}
    records += [r for r in driver.leftovers(ctx) if r.get("color") not in seen]
    removed: list[str] = []
    for rec in records:
        removed += driver.remove(ctx, rec, volumes=volumes)
    if getattr(driver, "proxied", False):
        from llmctl.deploy.proxied import stop_proxy

        proxy_removed = stop_proxy(ctx, driver)
        removed += proxy_removed
        if proxy_removed and not records:
            records = [{}]
    clear_state(ctx.dir)
    return records, removed


def down(spec_path: str, *, target: str | None, volumes: bool, options: dict[str, Any], echo) -> int:
    from llmctl.deploy.state import renamed_deployments

    ctx, state, driver, target = deployment_context(spec_path, target, options)
    records, removed = _remove_all(ctx, state, driver, volumes)
    for folder, old in renamed_deployments(spec_path, ctx.slug):
        old_ctx = Context(spec_path=ctx.spec_path, slug=old.slug, dir=folder, options=dict(old.options))
        old_records, old_removed = _remove_all(old_ctx, old, get_driver(old.target), volumes)
        records += old_records
        removed += [f"{x} (deployed as {old.name!r})" for x in old_removed]
    if not records:
        echo(f"down: nothing of {ctx.slug} is deployed ({target})")
        return 0
    kept = "" if volumes else " (model volumes kept; `llmctl down --volumes` removes them)"
    echo(f"down: removed {', '.join(removed) or 'the deployment'} ({target}){kept}")
    return 0


def status(spec_path: str, *, target: str | None, options: dict[str, Any], output: str, echo) -> int:
    import json

    from llmctl.deploy.progress import http_status

    ctx, state, driver, target = deployment_context(spec_path, target, options)
    if state is None:
        from llmctl.deploy.state import renamed_deployments

        leftovers = driver.leftovers(ctx)
        renamed = [{"name": old.name, "slug": old.slug, "target": old.target, "url": old.url,
                    "running": get_driver(old.target).running(
                        Context(spec_path=ctx.spec_path, slug=old.slug, dir=folder, options=dict(old.options)),
                        old.active)}
                   for folder, old in renamed_deployments(spec_path, ctx.slug)]
        data = {"schema": STATUS_SCHEMA, "deployed": False, "target": target, "slug": ctx.slug,
                "leftovers": [row for r in leftovers for row in driver.describe(ctx, r)], "renamed": renamed}
        if output == "json":
            echo(json.dumps(data, indent=2))
        else:
            echo(f"{ctx.slug}: not deployed ({target})")
            for row in data["leftovers"]:
                echo(f"  leftover {row['kind']} {row['name']} ({row['state']}): `llmctl down` removes it")
            for old in renamed:
                echo(f"  this spec was deployed as {old['name']!r} ({old['target']}, "
                     f"{'running' if old['running'] else 'not running'} at {old['url']}): `llmctl down` removes it")
        return 1
    rows = driver.describe(ctx, state.active)
    if getattr(driver, "proxied", False):
        from llmctl.deploy.proxied import proxy_of

        proxy = proxy_of(ctx, driver)
        rows.append({"kind": "proxy", "name": proxy.label, "id": str(proxy.master_pid() or "-"),
                     "state": "running" if proxy.running() else "not running", "health": "-"})
    running = driver.running(ctx, state.active)
    health = None
    if running and state.url.startswith("http"):
        health = http_status(state.url + _health_path(state.engine))
    current = None
    try:
        _, _, service = load(spec_path, force=True, quiet=True)
        files = driver.files(ctx, service, "-")
        current = "unchanged" if {n: digest({n: t}) for n, t in files.items()} == state.files else "changed"
    except Exception as exc:  # noqa: BLE001 - status reports; it does not fail on a spec mid-edit
        current = f"unknown ({str(exc).splitlines()[0][:80]})"
    healthy = running and (health == 200 or not state.url.startswith("http"))
    data = {"schema": STATUS_SCHEMA, "deployed": True, "name": state.name, "slug": state.slug, "target": state.target,
            "color": state.active.get("color"), "url": state.url, "model": state.model, "engine": state.engine,
            "applied_at": state.applied_at, "running": running, "health_http": health, "healthy": healthy,
            "spec_since_up": current, "objects": rows}
    if output == "json":
        echo(json.dumps(data, indent=2))
    else:
        import time

        echo(f"{state.name} ({state.slug}): {'healthy' if healthy else 'NOT healthy'} — {state.engine} serving "
             f"{state.model} at {state.url} ({state.target}, {state.active.get('color')})")
        echo(f"  applied {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(state.applied_at))}; "
             f"spec since then: {current}")
        for row in rows:
            echo("  " + "  ".join(f"{k}={v}" for k, v in row.items()))
    return 0 if healthy else 1


def _health_path(engine: str) -> str:
    from llmctl.engines.base import engine_profiles

    return engine_profiles()[engine]["health_path"]
