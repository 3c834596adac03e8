"""Traffic shares between colours: `green=10%` → HAProxy weights, applied at run time."""

from __future__ import annotations

import re

from llmctl.errors import InputError
from llmctl.traffic.proxy import Proxy
from llmctl.traffic.state import Routes, record_routes

_SHARE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_.-]*)\s*=\s*(\d{1,3}(?:\.\d+)?)\s*%?\s*$")
FULL = 200  # weight of a colour's whole share when it has one server (HAProxy allows 0..256)


def parse_shares(values: list[str] | tuple[str, ...], colours: list[str]) -> dict[str, float]:
    """["green=10%"] with colours blue, green → {"green": 10, "blue": 90}: colours not named share the rest."""
    shares: dict[str, float] = {}
    for text in values:
        for part in text.split(","):
            m = _SHARE.match(part)
            if not m:
                raise InputError(f"--to: {part!r} is not COLOUR=PERCENT (e.g. green=10%)")
            name, pct = m.group(1), float(m.group(2))
            if name not in colours:
                raise InputError(f"--to: no colour {name!r} behind the proxy", hint="running: " + ", ".join(colours))
            if pct > 100:
                raise InputError(f"--to: {name}={pct:g}% is more than 100%")
            shares[name] = pct
    total = sum(shares.values())
    if total > 100 + 1e-9:
        raise InputError(f"--to: the shares add up to {total:g}%, more than 100%")
    rest = [c for c in colours if c not in shares]
    if not rest and abs(total - 100) > 1e-6:
        raise InputError(f"--to: the shares add up to {total:g}%, not 100%")
    for c in rest:
        shares[c] = (100 - total) / len(rest)
    return shares


def weights_for(routes: Routes, shares: dict[str, float]) -> dict[str, int]:
    """Per-server weights: a colour's share spread evenly over its servers."""
    out = {}
    for colour, servers in routes.colours().items():
        per = shares.get(colour, 0.0) / 100 * FULL / len(servers)
        for s in servers:
            out[s.name] = int(round(per))
    return out


def apply_shares(proxy: Proxy, routes: Routes, shares: dict[str, float]) -> dict[str, int]:
    """Set the weights over the admin socket (at once, for new requests) and record them."""
    weights = weights_for(routes, shares)
    for s in routes.servers:
        proxy.admin.set_weight(routes.backend, s.name, weights[s.name])
        if weights[s.name] > 0:
            proxy.admin.enable(routes.backend, s.name)  # a drained server takes new requests again
        s.weight = weights[s.name]
    record_routes(proxy, routes)
    return weights


def parse_split(text: str) -> dict[str, float]:
    """"blue=90%,green=10%" → {"blue": 90, "green": 10} (shares must add up to 100)."""
    shares: dict[str, float] = {}
    for part in text.split(","):
        m = _SHARE.match(part)
        if not m:
            raise InputError(f"--shift: {part!r} is not COLOUR=PERCENT (e.g. blue=90%,green=10%)")
        shares[m.group(1)] = float(m.group(2))
    return shares
