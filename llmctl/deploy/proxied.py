"""Updates through the traffic layer: engine instances on private ports behind HAProxy on the spec's
address and port, so the service's address never changes hands.

First start: the instance starts on a private port, passes readiness and the smoke test there, and
only then enters the proxy. Update: the new colour starts beside the old one on another private port
and is checked there (a failing one never enters the proxy, so it never receives a request); it
joins the proxy with weight 0, takes all new requests at once (runtime API), the old colour is
drained, and once it has no request in flight — in the current HAProxy worker and in any worker
still finishing before a reload — it is stopped and leaves the proxy. Rollback is the same update
towards the previous ServiceSpec, which the state keeps.

Without spare GPUs for a second colour, several replicas are replaced one at a time
(`replica_by_replica`): replica i of the old colour is drained out of the proxy and stopped, the new
version's replica i starts on the GPUs it freed, is checked, and joins the proxy; the other replicas
serve meanwhile. If any new replica fails, every replica already moved goes back the same way and
the old version serves on all of them again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmctl.deploy.base import Context, Driver, free_port, listen_args
from llmctl.deploy.progress import say
from llmctl.errors import CheckFailed
from llmctl.traffic.config import Server, backend_name
from llmctl.traffic.proxy import Proxy
from llmctl.traffic.state import Routes, apply_routes, load_routes, record_routes
from llmctl.typed import updated

if TYPE_CHECKING:
    from llmctl.service import ServiceSpec

PRIVATE_BIND = "127.0.0.1"
DRAIN_TIMEOUT_S = 900.0  # the longest stream the proxy lets run (traffic.config.STREAM_TIMEOUT_S)
UP_TIMEOUT_S = 60.0  # HAProxy's health check sees a ready instance within a few intervals


def proxy_of(ctx: Context, driver: Driver) -> Proxy:
    return driver.proxy(ctx)


def private(service: "ServiceSpec", port: int) -> "ServiceSpec":
    """The same service listening on a private port on 127.0.0.1 (the proxy holds the public one)."""
    ports = [updated(p, host=port, bind=PRIVATE_BIND) if i == 0 else p
             for i, p in enumerate(service.ports)]
    native = listen_args(service.native_argv, PRIVATE_BIND, port) if service.native_argv else []
    return updated(service, ports=ports, native_argv=native)


def public_url(service: "ServiceSpec") -> str:
    from llmctl.engines.base import probe_address

    port = service.ports[0]
    return f"http://{probe_address(port.bind)}:{port.host}"


def _servers(colour: str, record: dict[str, Any], replicas: int) -> list[Server]:
    """One server per instance the colour runs (consecutive ports); a target that runs one instance
    whatever the replica count (a systemd unit) says so in its record (`instances`)."""
    n = int(record.get("instances", replicas))
    return [Server(f"{colour}-{i + 1}", PRIVATE_BIND, int(record["port"]) + i, 0) for i in range(n)]


def _free_ports(n: int) -> int:
    """A first port with n free ports after it (replicas publish consecutive ports)."""
    for _ in range(50):
        first = free_port(PRIVATE_BIND)
        if all(_port_free(first + i) for i in range(1, n)):
            return first
    raise CheckFailed(f"no {n} consecutive free ports on {PRIVATE_BIND}")


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind((PRIVATE_BIND, port))
        except OSError:
            return False
    return True


def start_new(driver: Driver, ctx: Context, service: "ServiceSpec", colour: str, spec, smoke: bool,
              smoke_timeout_s: float, echo) -> tuple[dict[str, Any], "ServiceSpec"]:
    """Start `colour` on private ports and check it there; on failure nothing of it is left (raises)."""
    from llmctl.deploy.rollout import _start_checked

    inner = private(service, _free_ports(service.replicas))
    say(f"  starting {colour} on private port {inner.ports[0].host}")
    record = _start_checked(driver, ctx, inner, colour, spec, smoke, smoke_timeout_s, echo)
    record["private"] = True
    return record, inner


def first_start(driver: Driver, ctx: Context, service: "ServiceSpec", spec, smoke: bool, smoke_timeout_s: float,
                echo, colour: str = "blue") -> dict[str, Any]:
    record, _ = start_new(driver, ctx, service, colour, spec, smoke, smoke_timeout_s, echo)
    proxy = proxy_of(ctx, driver)
    routes = Routes(backend=backend_name(service), servers=[
        Server(s.name, s.host, s.port, 100) for s in _servers(colour, record, service.replicas)])
    try:
        apply_routes(service, proxy, routes)
        for s in routes.servers:
            proxy.admin.wait_status(routes.backend, s.name, "UP", UP_TIMEOUT_S)
    except BaseException:
        proxy.stop(timeout_s=5)
        driver.remove(ctx, record)
        raise
    say(f"  proxy on {public_url(service)} → {colour} ({', '.join(f'{s.host}:{s.port}' for s in routes.servers)})")
    return record


def _running_routes(ctx: Context, driver: Driver, old: dict[str, Any]) -> tuple[Proxy, Routes, str, str]:
    """The running proxy and its routes, the old colour and the next one; an update needs all four."""
    proxy = proxy_of(ctx, driver)
    routes = load_routes(proxy.dir)
    if routes is None or not proxy.running():
        raise CheckFailed("the deployment's proxy is not running\n  fix: `llmctl down` then `llmctl up` again")
    old_colour = old.get("color", "blue")
    return proxy, routes, old_colour, "green" if old_colour == "blue" else "blue"


def switch(driver: Driver, ctx: Context, service: "ServiceSpec", old: dict[str, Any], spec, smoke: bool,
           smoke_timeout_s: float, echo) -> dict[str, Any]:
    """Blue/green through the proxy; returns the new colour's record. The old one is stopped, not deleted
    from the state's memory: `rollback` brings its ServiceSpec back."""
    proxy, routes, old_colour, colour = _running_routes(ctx, driver, old)
    try:
        record, _ = start_new(driver, ctx, service, colour, spec, smoke, smoke_timeout_s, echo)
    except CheckFailed as exc:
        raise CheckFailed(f"{exc}\n  {colour} never received traffic; {old_colour} keeps serving at "
                          f"{public_url(service)}") from None
    new_servers = _servers(colour, record, service.replicas)
    old_names = [s.name for s in routes.servers if s.name.startswith(old_colour + "-")]
    try:
        routes.servers = [s for s in routes.servers if s.name in old_names] + new_servers
        apply_routes(service, proxy, routes)  # graceful reload: the new colour joins with weight 0
        for s in new_servers:
            proxy.admin.wait_status(routes.backend, s.name, "UP", UP_TIMEOUT_S)
    except BaseException:
        routes.servers = [s for s in routes.servers if s.name in old_names]
        apply_routes(service, proxy, routes)
        driver.remove(ctx, record)
        raise
    # all new requests to the new colour at once; the old one finishes what it serves
    for s in routes.servers:
        if s in new_servers:
            s.weight = 100
            proxy.admin.set_weight(routes.backend, s.name, 100)
    for name in old_names:
        proxy.admin.drain(routes.backend, name)
    for s in routes.servers:
        if s.name in old_names:
            s.weight = 0
    record_routes(proxy, routes)
    say(f"  {colour} takes all new requests; draining {old_colour}")
    for name in old_names:
        proxy.admin.wait_idle(routes.backend, name, DRAIN_TIMEOUT_S)
    proxy.wait_old_workers(DRAIN_TIMEOUT_S)
    routes.servers = new_servers
    apply_routes(service, proxy, routes)
    driver.remove(ctx, old)  # its ServiceSpec stays in the state: `rollback` starts it again
    say(f"  removed {old_colour}")
    return record


def stop_proxy(ctx: Context, driver: Driver) -> list[str]:
    proxy = proxy_of(ctx, driver)
    was = proxy.running()
    proxy.stop()
    (proxy.dir / "servers.json").unlink(missing_ok=True)
    return [f"proxy ({proxy.label})"] if was else []


def ensure_proxy(ctx: Context, driver: Driver, service: "ServiceSpec") -> None:
    """Start the proxy again from its recorded routes if it is not running (e.g. after a reboot)."""
    proxy = proxy_of(ctx, driver)
    routes = load_routes(proxy.dir)
    if routes is not None and not proxy.running():
        say("  the proxy was not running: starting it from its recorded routes")
        apply_routes(service, proxy, routes)


def gpus(service: "ServiceSpec") -> int:
    return len(service.gpu.device_ids) or service.gpu.count


def room_for_both(service: "ServiceSpec") -> bool:
    """Can the new colour start while the old one still holds its GPUs? Unknown hardware: assume so."""
    need = gpus(service) * service.replicas
    return need == 0 or service.spare_gpus is None or service.spare_gpus >= need


def replace_in_place(driver: Driver, ctx: Context, service: "ServiceSpec", old: dict[str, Any], spec, smoke: bool,
                     smoke_timeout_s: float, echo) -> dict[str, Any]:
    """One replica, no spare GPU (--allow-downtime): drain and stop the old colour, start the new one; if the
    new one fails, the old one starts again and takes the traffic back."""
    proxy, routes, old_colour, colour = _running_routes(ctx, driver, old)
    for s in routes.servers:
        proxy.admin.drain(routes.backend, s.name)
        proxy.admin.wait_idle(routes.backend, s.name, DRAIN_TIMEOUT_S)
    driver.stop(ctx, old)
    try:
        record, _ = start_new(driver, ctx, service, colour, spec, smoke, smoke_timeout_s, echo)
    except BaseException:
        say(f"  {colour} failed: starting {old_colour} again")
        driver.start(ctx, old)
        for s in routes.servers:
            proxy.admin.enable(routes.backend, s.name)
        raise
    routes.servers = [Server(s.name, s.host, s.port, 100) for s in _servers(colour, record, service.replicas)]
    apply_routes(service, proxy, routes)
    driver.remove(ctx, old)
    return record


def replica_by_replica(driver: Driver, ctx: Context, service: "ServiceSpec", old: dict[str, Any],
                       old_service: "ServiceSpec", spec, smoke: bool, smoke_timeout_s: float, echo) -> dict[str, Any]:
    """Several replicas, no spare GPUs: replace them one at a time (see the module's docstring)."""
    proxy, routes, old_colour, colour = _running_routes(ctx, driver, old)
    n = service.replicas
    # server <colour>-k is replica k-1 (port first + k-1): pair them by that number, not by list order
    olds = sorted((s for s in routes.servers if s.name.startswith(old_colour + "-")),
                  key=lambda s: int(s.name.rsplit("-", 1)[1]))
    if len(olds) != n:
        raise CheckFailed(f"the running version has {len(olds)} replicas and the new one {n}: a replica-by-replica "
                          "update pairs them one to one; nothing was changed\n  fix: list spare GPUs under "
                          "hardware:, or change the replica count in its own update")
    inner = private(service, _free_ports(n))
    news = _servers(colour, {"port": inner.ports[0].host}, n)
    say(f"  no spare GPUs: replacing the {n} replicas one at a time ({n - 1} of {n} serve throughout)")
    record: dict[str, Any] | None = None
    moved: list[int] = []
    i = 0
    try:
        for i in range(n):
            say(f"  replica {i + 1} of {n}: draining {olds[i].name}")
            _take_out(proxy, routes, olds[i].name)
            driver.stop_replica(ctx, old, i)
            record = driver.start_replica(ctx, inner, colour, i, record)
            driver.wait_replica(ctx, inner, record, i)
            if smoke:
                from llmctl.deploy.rollout import _smoke

                _smoke(driver, ctx, inner, driver.replica(record, i), spec, smoke_timeout_s, echo)
            _swap(service, proxy, routes, out=olds[i].name, into=news[i])
            moved.append(i)
    except BaseException as exc:
        say(f"  {colour} replica {i + 1} failed: every replica goes back to {old_colour}")
        logs = driver.logs(ctx, driver.replica(record, i)) if record is not None else ""
        try:
            _restore(driver, ctx, old_service, proxy, routes, old, olds, record, news, moved, failed=i)
        except CheckFailed as again:
            raise CheckFailed(f"{exc}\n  going back to {old_colour} failed too: {again}\n  fix: `llmctl status` shows "
                              "what runs; `llmctl rollback` or `llmctl up` again") from None
        if isinstance(exc, CheckFailed):
            from llmctl.deploy.progress import tail

            last = f"\n  last log lines:\n{tail(logs)}" if logs.strip() and "last log lines" not in str(exc) else ""
            raise CheckFailed(f"{exc}{last}\n  {old_colour} serves on all {n} replicas again at "
                              f"{public_url(service)}") from None
        raise
    record["private"] = True
    driver.remove(ctx, old)  # every old replica is stopped; its ServiceSpec stays in the state for `rollback`
    say(f"  removed {old_colour}")
    return record


def _take_out(proxy: Proxy, routes: Routes, name: str) -> None:
    """No new request to `name`, and none of its own still running (in this HAProxy worker or an older one)."""
    for s in routes.servers:
        if s.name == name:
            s.weight = 0
    proxy.admin.drain(routes.backend, name)
    record_routes(proxy, routes)
    proxy.admin.wait_idle(routes.backend, name, DRAIN_TIMEOUT_S)
    proxy.wait_old_workers(DRAIN_TIMEOUT_S)


def _swap(service: "ServiceSpec", proxy: Proxy, routes: Routes, *, out: str, into: Server) -> None:
    """Replace server `out` (drained) with `into` at full weight, once HAProxy sees it UP."""
    into = Server(into.name, into.host, into.port, 100)
    routes.servers = [s for s in routes.servers if s.name != out] + [into]
    apply_routes(service, proxy, routes)
    proxy.admin.wait_status(routes.backend, into.name, "UP", UP_TIMEOUT_S)


def _restore(driver: Driver, ctx: Context, old_service: "ServiceSpec", proxy: Proxy, routes: Routes,
             old: dict[str, Any], olds: list[Server], record: dict[str, Any] | None, news: list[Server],
             moved: list[int], failed: int) -> None:
    """Back to the old version on every replica: the failed one first (it never took traffic), then
    the moved ones, newest first, each drained before its old replica returns."""
    if record is not None:
        driver.stop_replica(ctx, record, failed)
    driver.restart_replica(ctx, old, failed)
    driver.wait_replica(ctx, old_service, old, failed)
    if any(s.name == olds[failed].name for s in routes.servers):
        for s in routes.servers:
            if s.name == olds[failed].name:
                s.weight = 100
        proxy.admin.set_weight(routes.backend, olds[failed].name, 100)
        proxy.admin.enable(routes.backend, olds[failed].name)
        record_routes(proxy, routes)
    else:  # the new replica had already taken its place in the configuration
        _swap(old_service, proxy, routes, out=news[failed].name, into=olds[failed])
    for j in reversed(moved):
        _take_out(proxy, routes, news[j].name)
        driver.stop_replica(ctx, record, j)
        driver.restart_replica(ctx, old, j)
        driver.wait_replica(ctx, old_service, old, j)
        _swap(old_service, proxy, routes, out=news[j].name, into=olds[j])
    if record is not None:
        driver.remove(ctx, record)
