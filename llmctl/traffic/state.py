"""What the proxy of one deployment routes to, kept in `.llmctl/<slug>/proxy/servers.json` so that a
later command (`llmctl traffic`, an update, a reload) renders the same configuration with the same
weights as the running one."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from llmctl.errors import InputError
from llmctl.traffic.config import Server, backend_name, render_config
from llmctl.traffic.proxy import Proxy
from llmctl.typed import convert, dump

if TYPE_CHECKING:
    from llmctl.service import ServiceSpec

SCHEMA = "llmctl.traffic/v1"


@dataclass
class Routes:
    backend: str
    servers: list[Server] = field(default_factory=list)
    service: dict = field(default_factory=dict)  # the ServiceSpec the configuration is rendered from
    schema: str = SCHEMA

    def save(self, proxy_dir: Path) -> None:
        from llmctl.fileio import write_atomic

        data = {"schema": self.schema, "backend": self.backend, "servers": [asdict(s) for s in self.servers],
                "service": self.service}
        write_atomic(proxy_dir / "servers.json", json.dumps(data, indent=2, sort_keys=True) + "\n")

    def colours(self) -> dict[str, list[Server]]:
        out: dict[str, list[Server]] = {}
        for s in self.servers:
            out.setdefault(colour_of(s.name), []).append(s)
        return out


def colour_of(server_name: str) -> str:
    return server_name.rsplit("-", 1)[0]


def read_record(path: Path, schema: str, build, what: str):
    """A JSON file the traffic layer wrote, checked against its schema and turned into `build(data)`;
    None when there is none; anything unreadable is an input error naming the file."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("schema") != schema:
            raise ValueError(f"schema {data.get('schema')!r}, expected {schema}")
        return build(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"unreadable {what}: {exc}", where=str(path)) from None


def load_routes(proxy_dir: Path) -> Routes | None:
    return read_record(proxy_dir / "servers.json", SCHEMA, lambda data: Routes(
        backend=data["backend"], servers=[Server(**s) for s in data["servers"]], service=data.get("service") or {}),
        "proxy state")


def apply_routes(service: "ServiceSpec", proxy: Proxy, routes: Routes) -> None:
    """Render the configuration for `routes` and start the proxy, or reload it gracefully."""
    routes.backend = backend_name(service)
    routes.service = dump(service)
    proxy.start(render_config(service, routes.servers, admin_socket=str(proxy.socket_path)))
    routes.save(proxy.dir)


def record_routes(proxy: Proxy, routes: Routes) -> None:
    """After weights changed at run time: save them and rewrite the configuration (without reloading),
    so that the next reload starts from the same weights instead of the old ones."""
    from llmctl.service import ServiceSpec

    routes.save(proxy.dir)
    if routes.service:
        service = convert(routes.service, ServiceSpec)
        proxy.write_config(render_config(service, routes.servers, admin_socket=str(proxy.socket_path)))
