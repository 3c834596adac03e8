"""systemd: install the rendered unit (system, or `--user`), `daemon-reload`, `enable --now`; `down`
stops, disables and removes it. Updates restart the unit in place (one unit per service: systemd
has no second copy to run beside it), so a failed update leaves the unit failed and `up` exits 1
with the journal's last lines.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmctl.deploy.base import CHANGE_TIMEOUT_S, QUERY_TIMEOUT_S, Context, Driver, run_bounded
from llmctl.deploy.progress import Poll, http_status, tail, wait_for
from llmctl.errors import CheckFailed

if TYPE_CHECKING:
    from llmctl.service import ServiceSpec

# systemd(1): "/run/systemd/system/ … exists if systemd is PID 1" (sd_booted(3) tests this path)
SYSTEMD_RUNTIME_DIR = "/run/systemd/system"
SYSTEM_UNIT_DIR = "/etc/systemd/system"  # systemd.unit(5): local configuration, system manager
SYSTEM_ENV_DIR = "/etc/llmctl"  # render's default --env-dir


def user_unit_dir() -> Path:
    # systemd.unit(5): user units in $XDG_CONFIG_HOME/systemd/user (default ~/.config/systemd/user)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


def systemctl_argv(user: bool, *args: str) -> list[str]:
    return ["systemctl", *(["--user"] if user else []), *args]


def journalctl_argv(user: bool, unit: str, n: int) -> list[str]:
    return ["journalctl", *(["--user"] if user else []), "--unit", unit, "--lines", str(n), "--no-pager",
            "--output", "cat"]


class SystemdDriver(Driver):
    name = "systemd"
    blue_green = False

    def _user(self, ctx: Context) -> bool:
        return bool(ctx.options.get("user"))

    def _paths(self, ctx: Context, slug: str) -> tuple[Path, Path]:
        if self._user(ctx):
            return user_unit_dir() / f"{slug}.service", user_unit_dir().parent.parent / "llmctl" / f"{slug}.env"
        return Path(SYSTEM_UNIT_DIR) / f"{slug}.service", Path(SYSTEM_ENV_DIR) / f"{slug}.env"

    def files(self, ctx: Context, service: "ServiceSpec", color: str) -> dict[str, str]:
        from llmctl.render import render_service
        from llmctl.targets import RenderOptions

        _, env_path = self._paths(ctx, service.slug)
        rendered = render_service(service, "systemd", RenderOptions(
            source=ctx.spec_path.name, runtime=ctx.options.get("runtime", "docker"), env_dir=str(env_path.parent)))
        unit = f"{service.slug}.service"
        return {unit: rendered.files[unit]}

    def preflight(self, ctx: Context, service: "ServiceSpec") -> None:
        require_systemd()

    def apply(self, ctx: Context, service: "ServiceSpec", color: str) -> dict[str, Any]:
        from llmctl.deploy.secrets import env_file_text
        from llmctl.fileio import write_atomic

        unit_path, env_path = self._paths(ctx, service.slug)
        unit = unit_path.name
        write_atomic(unit_path, self.files(ctx, service, color)[unit])
        if service.secrets:
            write_atomic(env_path, env_file_text(ctx.secrets), mode=0o600)
        user = self._user(ctx)
        record = {"color": color, "unit": unit, "unit_path": str(unit_path), "env_path": str(env_path), "user": user,
                  "port": service.ports[0].host, "bind": service.ports[0].bind,
                  "runtime": ctx.options.get("runtime", "docker")}
        run(systemctl_argv(user, "daemon-reload"))
        active = self.running(ctx, record)
        try:
            run(systemctl_argv(user, "enable", "--now", unit))
            if active:
                run(systemctl_argv(user, "restart", unit))  # the unit file changed: start the new definition
        except CheckFailed as exc:
            raise CheckFailed(f"{exc}\n  last journal lines:\n{tail(self.logs(ctx, record))}") from None
        return record

    def _show(self, record: dict[str, Any]) -> dict[str, str]:
        out = run_bounded(systemctl_argv(record["user"], "show", record["unit"], "--property",
                                         "ActiveState,SubState,NRestarts,Result"),
                          capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
        return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)

    def running(self, ctx: Context, record: dict[str, Any]) -> bool:
        if not Path(SYSTEMD_RUNTIME_DIR).is_dir():
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
            # the unit's named volume (llmctl/targets/systemd/render.py: source=llmctl-<slug>-<volume>)
            slug = record["unit"].removesuffix(".service")
            run_bounded([record["runtime"], "volume", "rm", f"llmctl-{slug}-models"], capture_output=True,
                        timeout=CHANGE_TIMEOUT_S)
        return [f"unit {record['unit']}"] + removed[1:]

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
