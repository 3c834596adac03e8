"""`llmctl traffic SPEC [--to COLOUR=PCT%]`: show or change how the deployment's proxy splits requests."""

from __future__ import annotations

import click


@click.command("traffic")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--to", "to", multiple=True, metavar="COLOUR=PCT%",
              help="Share of new requests for a colour, e.g. green=10% (colours not named share the rest).")
def traffic_cmd(spec_path, to) -> int:
    """Show the proxy's routes for SPEC, or shift new requests between colours (requests in flight finish
    where they are)."""
    from llmctl.deploy.proxied import proxy_of
    from llmctl.deploy.rollout import deployment_context
    from llmctl.errors import CheckFailed
    from llmctl.traffic.shift import apply_shares, parse_shares
    from llmctl.traffic.state import load_routes

    ctx, _state, driver, _target = deployment_context(spec_path, None, {})
    proxy = proxy_of(ctx, driver)  # run by llmctl, or by the deployment's systemd unit
    routes = load_routes(proxy.dir)
    if routes is None or not proxy.running():
        raise CheckFailed(f"{ctx.slug}: no proxy is running for this deployment\n"
                          "  fix: `llmctl up` it first (the local, compose and systemd targets put a proxy in front)")
    if to:
        shares = parse_shares(to, sorted(routes.colours()))
        apply_shares(proxy, routes, shares)
    stats = proxy.admin.stats(routes.backend)
    total = sum(s.weight for s in routes.servers) or 1
    for s in routes.servers:
        row = stats.get(s.name, {})
        click.echo(f"{s.name:<12} {s.host}:{s.port:<6} weight {s.weight:>3} ({100 * s.weight / total:5.1f}%)  "
                   f"{row.get('status', '?'):<6} in flight {row.get('scur', '?')}")
    return 0
