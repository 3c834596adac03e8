"""systemd: blue/green units behind HAProxy's own unit (llmctl/targets/systemd/layout.py names them).

`up` installs `<slug>-proxy.service` (HAProxy on the spec's address and port) and the engine as
`<slug>-blue.service` on a private 127.0.0.1 port. An update installs the other colour as its own unit
on another private port, checks it there (a failing one is removed and never enters the proxy; `up`
exits 1 with its journal's last lines), then moves new requests to it through the proxy's admin
socket, drains the old colour and removes its unit (llmctl/deploy/proxied.py does the sequence for
every proxied target). `down` stops, disables and removes the colour units, the proxy unit, its
configuration and the env files. With `--user` everything goes to the user's manager instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmctl.deploy.base import CHANGE_TIMEOUT_S, QUERY_TIMEOUT_S, Context, Driver, run_bounded
from llmctl.deploy.progress import Poll, http_status, say, tail, wait_for
from llmctl.errors import CheckFailed
from llmctl.targets.systemd import layout
from llmctl.targets.systemd.layout import SYSTEM_ENV_DIR, SYSTEM_UNIT_DIR, user_unit_dir  # noqa: F401

if TYPE_CHECKING:
    from llmctl.service import ServiceSpec
    from llmctl.traffic.proxy import Proxy

# systemd(1): "/run/systemd/system/ … exists if systemd is PID 1" (sd_booted(3) tests this path)
SYSTEMD_RUNTIME_DIR = "/run/systemd/system"


def systemctl_argv(user: bool, *args: str) -> list[str]:
    return ["systemctl", *(["--user"] if user else []), *args]


def journalctl_argv(user: bool, unit: str, n: int) -> list[str]:
    return ["journalctl", *(["--user"] if user else []), "--unit", unit, "--lines", str(n), "--no-pager",
            "--output", "cat"]


class SystemdDriver(Driver):
    name = "systemd"
    proxied = True  # colour units on private ports behind the proxy unit (llmctl/traffic)
    # a unit from before the proxy (`<slug>.service` on the public port) is not updated: `up` asks for
    # `down` + `up`, which moves the deployment behind the proxy
    pre_proxy_updates = False

    def _user(self, ctx: Context) -> bool:
        return bool(ctx.options.get("user"))

    def _render_options(self, ctx: Context):
        from llmctl.targets import RenderOptions

        return RenderOptions(source=ctx.spec_path.name, runtime=ctx.options.get("runtime", "docker"),
                             env_dir=str(layout.config_dir(self._user(ctx))), user=self._user(ctx))

    def files(self, ctx: Context, service: "ServiceSpec", color: str) -> dict[str, str]:
        from llmctl.render import leak_check
        from llmctl.targets.systemd.render import engine_files

        colour = color if color in layout.COLOURS else layout.COLOURS[0]
        unit = layout.engine_unit(service.slug, colour)
        files = {unit: engine_files(service, self._render_options(ctx), colour)[unit]}
        leak_check(files, service)
        return files

    def preflight(self, ctx: Context, service: "ServiceSpec") -> None:
        from llmctl.traffic.proxy import haproxy_binary

        require_systemd()
        haproxy_binary()

    def proxy(self, ctx: Context) -> "Proxy":
        from llmctl.targets.systemd.proxy_unit import systemd_proxy

        return systemd_proxy(ctx.dir / "proxy", slug=ctx.slug, user=self._user(ctx), source=ctx.spec_path.name)

    def _record(self, ctx: Context, slug: str, colour: str, unit: str | None = None,
                env: str | None = None) -> dict[str, Any]:
        user = self._user(ctx)
        unit = unit or layout.engine_unit(slug, colour)
        return {"color": colour, "unit": unit, "unit_path": str(layout.unit_dir(user) / unit),
                "env_path": str(layout.config_dir(user) / (env or layout.env_file(slug, colour))), "user": user,
                "runtime": ctx.options.get("runtime", "docker"), "instances": 1}

    def apply(self, ctx: Context, service: "ServiceSpec", color: str) -> dict[str, Any]:
        from llmctl.deploy.secrets import env_file_text
        from llmctl.fileio import write_atomic

        record = self._record(ctx, service.slug, color)
        record.update(port=service.ports[0].host, bind=service.ports[0].bind)
        unit, user = record["unit"], record["user"]
        write_atomic(Path(record["unit_path"]), self.files(ctx, service, color)[unit])
        if service.secrets:
            write_atomic(Path(record["env_path"]), env_file_text(ctx.secrets), mode=0o600)
        try:
            run(systemctl_argv(user, "daemon-reload"))
            run_bounded(systemctl_argv(user, "reset-failed", unit), capture_output=True, timeout=QUERY_TIMEOUT_S)
            run(systemctl_argv(user, "enable", unit))
            # start (or, for a leftover of this colour, restart with the new definition); the start job
            # ends when ExecStartPost= sees the engine answer on its private port, or fails
            run(systemctl_argv(user, "restart", unit))
        except CheckFailed as exc:
            logs = self.logs(ctx, record)
            self.remove(ctx, record)
            say(f"  removed the failed unit {unit}; nothing of it is left running")
            raise CheckFailed(f"{exc}\n  last journal lines of {unit}:\n{tail(logs)}") from None
        return record

    def _show(self, record: dict[str, Any]) -> dict[str, str]:
        out = run_bounded(systemctl_argv(record["user"], "show", record["unit"], "--property",
                                         "ActiveState,SubState,NRestarts,Result,MainPID"),
                          capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
        return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)

    def running(self, ctx: Context, record: dict[str, Any]) -> bool:
        if not Path(SYSTEMD_RUNTIME_DIR).is_dir() or not record.get("unit"):
            return False
        return self._show(record).get("ActiveState") in ("active", "activating", "reloading")

    def wait_ready(self, ctx: Context, service: "ServiceSpec", record: dict[str, Any]) -> None:
        url = self.url(ctx, service, record) + service.health.path

        def probe() -> Poll:
            st = self._show(record)
            if st.get("ActiveState") == "failed" or st.get("NRestarts", "0") not in ("0", ""):
                return Poll(failed=f"unit {record['unit']} {st.get('ActiveState')} ({st.get('Result')})")
            code = http_status(url)
            return Poll(done=code == 200, status=f"{st.get('ActiveState')}/{st.get('SubState')}; "
                                                  f"GET {service.health.path}: {code or 'no answer'}")

        wait_for(probe, what=record["unit"], timeout_s=ctx.timeout_s,
                 on_fail=lambda _r: "  last journal lines:\n" + tail(self.logs(ctx, record)))

    def logs(self, ctx: Context, record: dict[str, Any], n: int = 20) -> str:
        out = run_bounded(journalctl_argv(record["user"], record["unit"], n), capture_output=True, text=True,
                          timeout=QUERY_TIMEOUT_S)
        return out.stdout or out.stderr

    def logs_argv(self, ctx: Context, record: dict[str, Any], *, lines: int, follow: bool) -> list[str] | None:
        return journalctl_argv(record["user"], record["unit"], lines) + (["--follow"] if follow else [])

    def stop(self, ctx: Context, record: dict[str, Any]) -> None:
        run(systemctl_argv(record["user"], "stop", record["unit"]))

    def start(self, ctx: Context, record: dict[str, Any]) -> None:
        run(systemctl_argv(record["user"], "start", record["unit"]))

    def remove(self, ctx: Context, record: dict[str, Any], *, volumes: bool = False) -> list[str]:
        """Stop, disable and delete one colour's unit and its env file (the other colour keeps its own)."""
        require_systemd()
        user = record["user"]
        run_bounded(systemctl_argv(user, "disable", "--now", record["unit"]), capture_output=True, timeout=CHANGE_TIMEOUT_S)
        removed = []
        for p in (record["unit_path"], record["env_path"]):
            if Path(p).exists():
                Path(p).unlink()
                removed.append(p)
        run(systemctl_argv(user, "daemon-reload"))
        run_bounded(systemctl_argv(user, "reset-failed", record["unit"]), capture_output=True, timeout=QUERY_TIMEOUT_S)
        if volumes and record.get("runtime") in ("docker", "podman") and shutil.which(record["runtime"]):
            # the units' named volume (llmctl/targets/systemd/render.py: source=llmctl-<slug>-<volume>)
            run_bounded([record["runtime"], "volume", "rm", f"llmctl-{ctx.slug}-models"], capture_output=True,
                        timeout=CHANGE_TIMEOUT_S)
        return [f"unit {record['unit']}"] + [p for p in removed if p != record["unit_path"]]

    def leftovers(self, ctx: Context) -> list[dict[str, Any]]:
        """Colour units of this deployment still installed (and a unit from before the traffic layer,
        `<slug>.service`, which updated in place)."""
        found = []
        candidates = [(c, None, None) for c in layout.COLOURS]
        candidates.append(("single", f"{ctx.slug}.service", f"{ctx.slug}.env"))
        for colour, unit, env in candidates:
            record = self._record(ctx, ctx.slug, colour, unit, env)
            if Path(record["unit_path"]).exists():
                found.append(record)
        return found

    def describe(self, ctx: Context, record: dict[str, Any]) -> list[dict[str, str]]:
        st = self._show(record) if Path(SYSTEMD_RUNTIME_DIR).is_dir() else {}
        return [{"kind": "unit", "name": record["unit"], "id": record["unit_path"],
                 "state": f"{st.get('ActiveState', '?')}/{st.get('SubState', '?')}", "health": "-"}]


def require_systemd(runtime_dir: str = SYSTEMD_RUNTIME_DIR) -> None:
    if shutil.which("systemctl") is None or not Path(runtime_dir).is_dir():
        raise CheckFailed(
            f"this host does not run systemd ({runtime_dir} is missing, so systemd is not PID 1 — a container "
            "or WSL without systemd): a unit cannot be installed here; nothing was changed\n"
            "  fix: deploy with --target compose or --target local, or run on a host booted with systemd")


def run(argv: list[str]) -> None:
    out = run_bounded(argv, capture_output=True, text=True, timeout=CHANGE_TIMEOUT_S)
    if out.returncode != 0:
        raise CheckFailed(f"`{' '.join(argv)}` failed (exit {out.returncode}): {(out.stderr or out.stdout).strip()[:500]}")
