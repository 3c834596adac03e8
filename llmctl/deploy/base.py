"""What every deployment target implements for `up`, `down` and `status`, and what they share."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmctl.errors import CheckFailed
from llmctl.typed import updated

if TYPE_CHECKING:
    from llmctl.service import ServiceSpec
    from llmctl.traffic.proxy import Proxy


@dataclass
class Context:
    spec_path: Path  # the spec file, absolute
    slug: str
    dir: Path  # .llmctl/<slug>/ beside the spec
    options: dict[str, Any] = field(default_factory=dict)  # target options from the command line
    secrets: dict[str, str] = field(default_factory=dict)  # env file values (never printed)
    timeout_s: float = 600.0  # readiness deadline


class Driver:
    """One target. `record`: a JSON-able dict describing one running instance (kept in state.json)."""

    name = ""
    blue_green = True  # False: updates are applied in place (the target rolls out by itself)
    proxied = False  # True: colours on private ports behind the traffic layer (llmctl/deploy/proxied.py)
    # proxied targets: a deployment from before the traffic layer (the engine on the public port) is
    # updated with the staging-port blue/green; False: `up` asks for `down` + `up` instead
    pre_proxy_updates = True

    def files(self, ctx: Context, service: "ServiceSpec", color: str) -> dict[str, str]:
        """The files this instance is made from (hashed to tell whether anything changed)."""
        raise NotImplementedError

    def preflight(self, ctx: Context, service: "ServiceSpec") -> None:
        """Target-specific checks before anything starts (a tool, a daemon): raise with the fix."""

    def apply(self, ctx: Context, service: "ServiceSpec", color: str) -> dict[str, Any]:
        raise NotImplementedError

    def wait_ready(self, ctx: Context, service: "ServiceSpec", record: dict[str, Any]) -> None:
        raise NotImplementedError

    def logs(self, ctx: Context, record: dict[str, Any], n: int = 20) -> str:
        return ""

    def logs_argv(self, ctx: Context, record: dict[str, Any], *, lines: int, follow: bool) -> list[str] | None:
        """The command that prints the instance's last `lines` log lines, and with `follow` keeps
        printing new ones (`docker compose logs -f`, `journalctl -f`, `kubectl logs -f`); None when
        the log is a file (`log_file`) or only `logs()` can read it."""
        return None

    def log_file(self, ctx: Context, record: dict[str, Any]) -> Path | None:
        """The file the instance logs to, when it logs to a file (the local target)."""
        return None

    def stop(self, ctx: Context, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def start(self, ctx: Context, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def remove(self, ctx: Context, record: dict[str, Any], *, volumes: bool = False) -> list[str]:
        """Remove the instance; return what was removed (for the user)."""
        raise NotImplementedError

    def running(self, ctx: Context, record: dict[str, Any]) -> bool:
        raise NotImplementedError

    def describe(self, ctx: Context, record: dict[str, Any]) -> list[dict[str, str]]:
        """Rows for `status`: what exists and its state."""
        return []

    def close(self) -> None:
        """Release what `up` held only while it ran (e.g. a port-forward for the smoke test)."""

    # Replica by replica: an update with several replicas and no spare GPUs replaces one replica at a
    # time (llmctl/deploy/proxied.py). A driver that can start, stop and check a single replica of a
    # colour sets `replica_by_replica` and implements the four methods below; `up` refuses such an
    # update on the others and says how to make room.
    replica_by_replica = False

    def start_replica(self, ctx: Context, service: "ServiceSpec", color: str, index: int,
                      record: dict[str, Any] | None) -> dict[str, Any]:
        """Start replica `index` (0-based) of `color`; the first call (record None) makes the colour's
        record, later calls start further replicas of it. Returns the colour's record."""
        raise NotImplementedError

    def replica(self, record: dict[str, Any], index: int) -> dict[str, Any]:
        """What `url`, `logs` and the smoke test need to reach replica `index` of a colour alone."""
        raise NotImplementedError

    def stop_replica(self, ctx: Context, record: dict[str, Any], index: int) -> None:
        raise NotImplementedError

    def restart_replica(self, ctx: Context, record: dict[str, Any], index: int) -> None:
        """Start a stopped replica of a colour again, as it was (the old version, after a failed update);
        nothing when it still runs."""
        raise NotImplementedError

    def wait_replica(self, ctx: Context, service: "ServiceSpec", record: dict[str, Any], index: int) -> None:
        raise NotImplementedError

    def leftovers(self, ctx: Context) -> list[dict[str, Any]]:
        """Records of instances this deployment made that the state no longer names (for `down`)."""
        return []

    def proxy(self, ctx: Context) -> "Proxy":
        """The deployment's HAProxy (proxied targets): run by llmctl itself unless the target supervises it."""
        from llmctl.traffic.proxy import Proxy

        return Proxy(ctx.dir / "proxy")

    def url(self, ctx: Context, service: "ServiceSpec", record: dict[str, Any]) -> str:
        from llmctl.engines.base import probe_address

        port = service.ports[0]
        return f"http://{probe_address(port.bind)}:{record.get('port', port.host)}"


# Every external command has a bound, so no `up`, `down`, `status` or `logs` can hang on a stuck daemon
QUERY_TIMEOUT_S = 30.0  # a status query (systemctl show, kubectl get, journalctl -n)
CHANGE_TIMEOUT_S = 600.0  # a change (kubectl apply/delete, systemctl enable --now: the unit's start is async)
PULL_TIMEOUT_S = 2 * 3600.0  # an image pull: a vLLM image is ~10 GB; 2 h is ~1.4 MB/s


def run_bounded(argv: list[str], *, timeout: float, **kwargs: Any) -> subprocess.CompletedProcess:
    """subprocess.run with a timeout that ends in a CheckFailed naming the command, never a hang."""
    kwargs.setdefault("stdin", subprocess.DEVNULL if "input" not in kwargs else None)
    if kwargs["stdin"] is None:
        del kwargs["stdin"]
    try:
        return subprocess.run(argv, check=False, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"`{' '.join(argv)}` did not finish within {timeout:.0f}s") from None
    except OSError as exc:
        raise CheckFailed(f"cannot run {argv[0]}: {exc.strerror or exc}") from None


def with_host_port(service: "ServiceSpec", port: int) -> "ServiceSpec":
    """The same service published on another host port (a blue/green candidate's staging port)."""
    ports = [updated(p, host=port) if i == 0 else p for i, p in enumerate(service.ports)]
    native = listen_args(service.native_argv, None, port) if service.native_argv else []
    # env (OLLAMA_HOST among it) is the container side, which does not change; native_env() derives
    # the host side from ports
    return updated(service, ports=ports, native_argv=native)


def listen_args(argv: list[str], bind: str | None, port: int | None) -> list[str]:
    """argv with the values of --host and --port replaced (when present)."""
    out = list(argv)
    for flag, value in (("--host", bind), ("--port", None if port is None else str(port))):
        if value is not None and flag in out[:-1]:
            out[out.index(flag) + 1] = value
    return out


def free_port(bind: str = "127.0.0.1") -> int:
    import socket

    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((bind if bind not in ("0.0.0.0", "::") else ("127.0.0.1" if family == socket.AF_INET else "::1"), 0))
        return s.getsockname()[1]
