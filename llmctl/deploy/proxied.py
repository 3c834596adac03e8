"""Updates through the traffic layer: engine instances on private ports behind HAProxy on the spec's
address and port, so the service's address never changes hands.

First start: the instance starts on a private port, passes readiness and the smoke test there, and
only then enters the proxy. Update: the new colour starts beside the old one on another private port
and is checked there (a failing one never enters the proxy, so it never receives a request); it
joins the proxy with weight 0, takes all new requests at once (runtime API), the old colour is
drained, and once it has no request in flight — in the current HAProxy worker and in any worker
still finishing before a reload — it is stopped and leaves the proxy. Rollback is the same update
towards the previous ServiceSpec, which the state keeps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmctl.deploy.base import Context, Driver, free_port, listen_args
from llmctl.deploy.progress import say
from llmctl.errors import CheckFailed
from llmctl.traffic.config import Server, backend_name
from llmctl.traffic.proxy import Proxy
from llmctl.traffic.state import Routes, apply_routes, load_routes, record_routes

if TYPE_CHECKING:
    from llmctl.service import ServiceSpec

PRIVATE_BIND = "127.0.0.1"
DRAIN_TIMEOUT_S = 900.0  # the longest stream the proxy lets run (traffic.config.STREAM_TIMEOUT_S)
UP_TIMEOUT_S = 60.0  # HAProxy's health check sees a ready instance within a few intervals


def proxy_of(ctx: Context, driver: Driver) -> Proxy:
    return driver.proxy(ctx)


def private(service: "ServiceSpec", port: int) -> "ServiceSpec":
    """The same service listening on a private port on 127.0.0.1 (the proxy holds the public one)."""
    ports = [p.model_copy(update={"host": port, "bind": PRIVATE_BIND}) if i == 0 else p
             for i, p in enumerate(service.ports)]
    native = listen_args(service.native_argv, PRIVATE_BIND, port) if service.native_argv else []
    return service.model_copy(update={"ports": ports, "native_argv": native})


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
