"""haproxy.cfg for one service, rendered from its ServiceSpec and the engine instances behind it.

Facts from the HAProxy 2.6 configuration manual (docs.haproxy.org/2.6/configuration.html):
- `balance leastconn` and `roundrobin` honour weights changed at run time; `static-rr` does not.
- `option http-no-delay` sends each chunk at once (no Nagle-style merging): streamed tokens are not held.
- `option httpchk` + `http-check send meth GET uri …` + `http-check expect status 200`: a server takes
  traffic only while its readiness path answers 200.
- `retry-on conn-failure empty-response` with `option redispatch`: a request whose connection to a
  server fails before any answer goes to another server instead of failing.
- `stats socket … level admin`: the runtime API (`set server BE/SRV weight N`, `… state drain`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from llmctl.errors import InputError

if TYPE_CHECKING:
    from llmctl.service import ServiceSpec

MAX_WEIGHT = 256  # HAProxy's weight range is 0..256
STREAM_TIMEOUT_S = 900  # a long generation streams for minutes: no proxy time-out may cut it
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass
class Server:
    """One engine instance behind the proxy."""

    name: str  # e.g. blue-1
    host: str
    port: int
    weight: int = 100  # 0: no new requests (drained)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def backend_name(service: "ServiceSpec") -> str:
    return f"be_{service.slug}"


def render_config(service: "ServiceSpec", servers: list[Server], *, admin_socket: str,
                  bind: str | None = None, port: int | None = None) -> str:
    from llmctl.engines.base import host_address
    from llmctl.targets.base import render_template

    path = service.health.path
    if not path.startswith("/") or re.search(r"[\s#\\\"']", path):
        raise InputError(f"health.path: {path!r} cannot be used as an HAProxy health-check path")
    for s in servers:
        if not _NAME.match(s.name):
            raise InputError(f"traffic: server name {s.name!r} must be letters, digits, '-', '_' or '.'")
        if not 0 <= s.weight <= MAX_WEIGHT:
            raise InputError(f"traffic: weight {s.weight} of {s.name} is outside 0..{MAX_WEIGHT}")
    front = service.ports[0]
    return render_template(
        "traffic/haproxy.cfg.j2", s=service, servers=servers, backend=backend_name(service),
        admin_socket=admin_socket, bind=host_address(bind or front.bind), port=port or front.host,
        stream_timeout=STREAM_TIMEOUT_S, health=service.health, host_address=host_address,
    )
