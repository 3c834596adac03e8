"""A proxy that routes by path to several backend groups whose colours shift together.

A migration keeps one client-facing address while two servers answer behind it: requests under
`/api/` (Ollama's native API) go to group `api`, everything else (`/v1/...`) to group `v1`. Each group
has one server per colour (`ollama-1`, `vllm-1`); a share applies to the colour in every group, so a
native client and an OpenAI client move at the same moment. A colour's server may be any address —
an external server llmctl did not start and never stops.

State: `<proxy dir>/routes.json` (schema llmctl.traffic.paths/v1), so a later command renders the
same configuration with the same weights.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llmctl.errors import InputError
from llmctl.traffic.config import MAX_WEIGHT, STREAM_TIMEOUT_S, Server
from llmctl.traffic.proxy import Proxy
from llmctl.traffic.state import colour_of, read_record

SCHEMA = "llmctl.traffic.paths/v1"
FULL = 200  # weight of a whole share (HAProxy allows 0..256), as llmctl.traffic.shift.FULL
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_PATH = re.compile(r"^/[A-Za-z0-9/_.-]*$")
# HAProxy `show stat` counters of a server that mean a failed request (HAProxy 2.6 management guide,
# 9.1 "CSV format"): hrsp_5xx answers with a 5xx status, econ failed connections, eresp failed answers.
ERROR_FIELDS = ("hrsp_5xx", "econ", "eresp")


@dataclass
class Group:
    name: str  # e.g. api, v1
    prefix: str | None  # requests whose path starts with it; None: every other request
    health: str  # GET path answering 200 on a healthy server of this group
    servers: list[Server] = field(default_factory=list)


@dataclass
class PathRoutes:
    groups: list[Group]
    bind: str = "127.0.0.1"
    port: int = 0
    title: str = "migration"
    schema: str = SCHEMA

    def validate(self) -> None:
        defaults = [g for g in self.groups if not g.prefix]
        if len(defaults) != 1:
            raise InputError("traffic: exactly one path group must take the requests no prefix matches")
        for g in self.groups:
            if not _NAME.match(g.name):
                raise InputError(f"traffic: group name {g.name!r} must be lower-case letters, digits or '_'")
            for path in (g.prefix, g.health):
                if path is not None and not _PATH.match(path):
                    raise InputError(f"traffic: {path!r} of group {g.name} cannot be used as an HAProxy path")
            for s in g.servers:
                if not 0 <= s.weight <= MAX_WEIGHT:
                    raise InputError(f"traffic: weight {s.weight} of {g.name}/{s.name} is outside 0..{MAX_WEIGHT}")
        if not 0 < self.port < 65536:
            raise InputError(f"traffic: port {self.port} is outside 1..65535")

    def colours(self) -> list[str]:
        return sorted({colour_of(s.name) for g in self.groups for s in g.servers})

    def shares(self) -> dict[str, float]:
        """Each colour's share of new requests, from the weights of the default group."""
        group = next(g for g in self.groups if not g.prefix)
        total = sum(s.weight for s in group.servers)
        out = {c: 0.0 for c in self.colours()}
        for s in group.servers:
            out[colour_of(s.name)] += 100 * s.weight / total if total else 0.0
        return {k: round(v, 1) for k, v in out.items()}

    def save(self, proxy_dir: Path) -> None:
        from llmctl.fileio import write_atomic

        write_atomic(Path(proxy_dir) / "routes.json", json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, proxy_dir: Path) -> "PathRoutes | None":
        def build(data: dict) -> "PathRoutes":
            groups = [Group(g["name"], g["prefix"], g["health"], [Server(**s) for s in g["servers"]])
                      for g in data["groups"]]
            return cls(groups=groups, bind=data["bind"], port=int(data["port"]), title=data.get("title", ""))

        return read_record(Path(proxy_dir) / "routes.json", SCHEMA, build, "proxy routes")


def render_paths_config(routes: PathRoutes, admin_socket: str) -> str:
    from llmctl.engines.base import host_address
    from llmctl.targets.base import render_template

    routes.validate()
    default = next(g.name for g in routes.groups if not g.prefix)
    return render_template("traffic/paths.cfg.j2", title=routes.title, groups=routes.groups, default_group=default,
                           admin_socket=admin_socket, bind=host_address(routes.bind), port=routes.port,
                           stream_timeout=STREAM_TIMEOUT_S, host_address=host_address)


def start_paths(proxy: Proxy, routes: PathRoutes) -> None:
    """Start the proxy (or reload it gracefully) with these routes, and record them."""
    proxy.start(render_paths_config(routes, str(proxy.socket_path)))
    routes.save(proxy.dir)


def weights_for_shares(routes: PathRoutes, shares: dict[str, float]) -> dict[tuple[str, str], int]:
    out = {}
    for g in routes.groups:
        by_colour: dict[str, list[Server]] = {}
        for s in g.servers:
            by_colour.setdefault(colour_of(s.name), []).append(s)
        for colour, servers in by_colour.items():
            for s in servers:
                out[(g.name, s.name)] = int(round(shares.get(colour, 0.0) / 100 * FULL / len(servers)))
    return out


def apply_path_shares(proxy: Proxy, routes: PathRoutes, shares: dict[str, float]) -> None:
    """Set every group's weights at once over the admin socket (new requests; those in flight finish
    where they are), then record them and rewrite the configuration so a reload keeps them."""
    unknown = set(shares) - set(routes.colours())
    if unknown:
        raise InputError(f"traffic: no colour {', '.join(sorted(unknown))} behind the proxy")
    weights = weights_for_shares(routes, shares)
    for g in routes.groups:
        for s in g.servers:
            w = weights[(g.name, s.name)]
            proxy.admin.set_weight(f"be_{g.name}", s.name, w)
            if w > 0:
                proxy.admin.enable(f"be_{g.name}", s.name)
            s.weight = w
    routes.save(proxy.dir)
    proxy.write_config(render_paths_config(routes, str(proxy.socket_path)))


def colour_counters(proxy: Proxy, routes: PathRoutes) -> dict[str, dict[str, object]]:
    """Per colour, summed over the groups: requests served (stot), errors (ERROR_FIELDS) and the
    health status of each of its servers."""
    out: dict[str, dict[str, object]] = {c: {"requests": 0, "errors": 0, "status": {}} for c in routes.colours()}
    for g in routes.groups:
        rows = proxy.admin.stats(f"be_{g.name}")
        for s in g.servers:
            row = rows.get(s.name, {})
            c = out[colour_of(s.name)]
            c["requests"] += int(row.get("stot") or 0)
            c["errors"] += sum(int(row.get(f) or 0) for f in ERROR_FIELDS)
            c["status"][f"{g.name}/{s.name}"] = (row.get("status") or "absent").split()[0]
    return out
