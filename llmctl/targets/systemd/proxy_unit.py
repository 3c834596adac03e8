"""The deployment's HAProxy as its own systemd unit, `<slug>-proxy.service`: rendered here, and run
through systemctl by SystemdSupervisor, which the traffic layer (llmctl/traffic/proxy.py) uses in place
of the llmctl-run daemon. Configuration, routes, weights and drains stay the traffic layer's; systemd
only starts the master (`haproxy -Ws`, Type=notify), reloads it (ExecReload: `haproxy -c`, then SIGUSR2
to $MAINPID) and stops it — the shape of HAProxy's own unit file (admin/systemd/haproxy.service.in)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from llmctl.deploy.base import CHANGE_TIMEOUT_S, QUERY_TIMEOUT_S, run_bounded
from llmctl.targets.systemd import layout
from llmctl.traffic.supervisor import Supervisor

if TYPE_CHECKING:
    from llmctl.traffic.proxy import Proxy

HAPROXY = "/usr/sbin/haproxy"  # where Debian, Ubuntu and Fedora install it (systemd needs an absolute path)


def render_proxy_unit(*, slug: str, config: str, user: bool, source: str, name: str = "", public: str = "",
                      haproxy: str = HAPROXY) -> str:
    from llmctl.targets.base import render_template
    from llmctl.targets.systemd.render import check_unit, command

    unit = layout.proxy_unit(slug)
    text = render_template(
        "systemd/proxy.service.j2", unit=unit, slug=slug, name=name or slug, header=f"{name or slug} — traffic (HAProxy)",
        source=source, public=public, config=config, unit_dir=str(layout.unit_dir(user)),
        start=command([haproxy, "-Ws", "-f", config]), check=command([haproxy, "-c", "-q", "-f", config]),
        runtime_dir=layout.proxy_runtime_dir(slug), hardened=not user,
        wanted_by="default.target" if user else "multi-user.target")
    check_unit(text, unit)
    return text


class SystemdSupervisor(Supervisor):
    """HAProxy run by the system manager (or the user's, with `user`)."""

    def __init__(self, *, slug: str, user: bool, source: str) -> None:
        self.slug, self.user, self.source = slug, user, source
        self.unit = layout.proxy_unit(slug)
        self.unit_path = layout.unit_dir(user) / self.unit
        self.label = self.unit

    def _systemctl(self, *args: str, check: bool = True) -> None:
        from llmctl.targets.systemd.apply import run, systemctl_argv

        if check:
            run(systemctl_argv(self.user, *args))
        else:
            run_bounded(systemctl_argv(self.user, *args), capture_output=True, timeout=CHANGE_TIMEOUT_S)

    def show(self) -> dict[str, str]:
        from llmctl.targets.systemd.apply import SYSTEMD_RUNTIME_DIR, systemctl_argv

        if not Path(SYSTEMD_RUNTIME_DIR).is_dir():
            return {}
        out = run_bounded(systemctl_argv(self.user, "show", self.unit, "--property", "MainPID,ActiveState,SubState"),
                          capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
        return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)

    def master_pid(self, config: Path) -> int | None:
        st = self.show()
        pid = int(st.get("MainPID") or 0)
        return pid if pid and st.get("ActiveState") in ("active", "reloading") else None

    def launch(self, config: Path) -> None:
        from llmctl.deploy.progress import tail
        from llmctl.errors import CheckFailed
        from llmctl.fileio import write_atomic

        from llmctl.traffic.supervisor import haproxy_binary

        text = render_proxy_unit(slug=self.slug, config=str(config), user=self.user, source=self.source,
                                 haproxy=str(Path(haproxy_binary()).resolve()))
        write_atomic(self.unit_path, text)
        self._systemctl("daemon-reload")
        self._systemctl("reset-failed", self.unit, check=False)
        try:
            self._systemctl("enable", "--now", self.unit)
        except CheckFailed as exc:
            raise CheckFailed(f"{exc}\n  last journal lines of {self.unit}:\n{tail(self.log_tail())}") from None

    def reload(self, config: Path, pid: int) -> None:
        self._systemctl("reload", self.unit)

    def stop(self, config: Path, timeout_s: float) -> None:
        """`down`: stop and disable the unit, remove it and its configuration."""
        if self.unit_path.exists() or self.master_pid(config):
            self._systemctl("disable", "--now", self.unit, check=False)
        self.unit_path.unlink(missing_ok=True)
        config.unlink(missing_ok=True)
        self._systemctl("daemon-reload", check=False)
        self._systemctl("reset-failed", self.unit, check=False)

    def log_tail(self, n: int = 20) -> str:
        from llmctl.targets.systemd.apply import journalctl_argv

        out = run_bounded(journalctl_argv(self.user, self.unit, n), capture_output=True, text=True,
                          timeout=QUERY_TIMEOUT_S)
        return out.stdout or out.stderr


def systemd_proxy(run_dir: Path, *, slug: str, user: bool, source: str) -> "Proxy":
    """The Proxy of a systemd deployment: records in `run_dir`, configuration beside the env files,
    admin socket in the unit's RuntimeDirectory."""
    from llmctl.traffic.proxy import Proxy

    return Proxy(run_dir, config=layout.config_dir(user) / layout.proxy_config(slug),
                 socket=layout.proxy_socket(slug, user),
                 supervisor=SystemdSupervisor(slug=slug, user=user, source=source))
