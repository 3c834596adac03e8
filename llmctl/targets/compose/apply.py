"""Docker Compose: `docker compose` applies the rendered file; the Docker engine API (docker SDK)
inspects what runs. Everything carries labels (compose's project label and `dev.llmctl.*`), so
`status` and `down` find exactly what `up` made.

Each colour of a blue/green pair is its own compose project, `llmctl-<slug>-<colour>`, made from the
rendered compose.yaml plus a small override file (compose.llmctl.yaml) that adds the labels and,
with `--network host`, host networking: the engine then listens on its private address and port
itself (no published ports), which is what a Docker engine without a bridge network can run. Each
colour publishes private ports on 127.0.0.1; HAProxy on the spec's port sends requests to them
(llmctl/deploy/proxied.py), so an update switches colours without dropping a request.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmctl.deploy.base import PULL_TIMEOUT_S, Context, Driver, listen_args, run_bounded
from llmctl.deploy.progress import Poll, http_status, say, tail, wait_for
from llmctl.errors import CheckFailed, InputError

if TYPE_CHECKING:
    from llmctl.service import ServiceSpec

LABEL = "dev.llmctl.deployment"  # value: the service slug
COLOR_LABEL = "dev.llmctl.color"
PROJECT_LABEL = "com.docker.compose.project"  # set by docker compose on everything it creates
SERVICE_LABEL = "com.docker.compose.service"  # the compose service a container belongs to
OVERRIDE = "compose.llmctl.yaml"
# healthcheck.start_interval needs Docker Engine 25 (API 1.44); older engines refuse the container
# (docs.docker.com/reference/compose-file/services/#healthcheck, "start_interval … Docker Engine 25.0")
START_INTERVAL_API = (1, 44)


def project_name(slug: str, color: str) -> str:
    return f"llmctl-{slug}-{color}"


class ComposeDriver(Driver):
    name = "compose"
    proxied = True  # containers publish private ports on 127.0.0.1 behind the traffic layer (llmctl/traffic)

    def __init__(self) -> None:
        self._client = None

    # ------------------------------------------------------------------ files
    def files(self, ctx: Context, service: "ServiceSpec", color: str) -> dict[str, str]:
        from llmctl.render import render_service
        from llmctl.targets import RenderOptions

        rendered = render_service(service, "compose", RenderOptions(source=ctx.spec_path.name))
        files = {"compose.yaml": rendered.files["compose.yaml"]}
        files[OVERRIDE] = override_text(service, color, network=ctx.options.get("network", "bridge"),
                                        start_interval=self.api_version() >= START_INTERVAL_API)
        return files

    # ------------------------------------------------------------------ checks
    def preflight(self, ctx: Context, service: "ServiceSpec") -> None:
        docker_cli()
        if ctx.options.get("network", "bridge") == "bridge":
            nets = {n.name for n in self.client().networks.list()}
            if "bridge" not in nets:
                raise CheckFailed(
                    "this Docker engine has no bridge network (dockerd runs with --bridge=none), so compose "
                    "cannot publish the service's port; nothing was started\n"
                    "  fix: `llmctl up --network host` (the engine listens on the spec's address and port itself)")
        if service.replicas > 1 and ctx.options.get("network") == "host":
            raise InputError("--network host: the plan has several replicas, which cannot share one host port",
                             hint="use the default bridge network")

    # ------------------------------------------------------------------ apply
    def apply(self, ctx: Context, service: "ServiceSpec", color: str) -> dict[str, Any]:
        record = self._prepare(ctx, service, color)
        folder, project = Path(record["dir"]), record["project"]
        out = compose(folder, project, "up", "--detach", "--remove-orphans", "--pull", "never")
        if out.returncode != 0:
            compose(folder, project, "down", "--remove-orphans")  # what it created before failing
            raise CheckFailed(f"docker compose up ({project}) failed:\n{tail(out.stdout + out.stderr)}")
        return record

    def _prepare(self, ctx: Context, service: "ServiceSpec", color: str) -> dict[str, Any]:
        """The colour's files written and its image present; its record (nothing started yet)."""
        from llmctl.deploy.secrets import env_file_text
        from llmctl.fileio import write_atomic
        from llmctl.targets.compose.render import replica_services

        folder = ctx.dir / color
        for name, text in self.files(ctx, service, color).items():
            write_atomic(folder / name, text)
        if service.secrets:
            write_atomic(folder / f"{service.slug}.env", env_file_text(ctx.secrets), mode=0o600)
        project = project_name(service.slug, color)
        port = service.ports[0]
        record = {"color": color, "project": project, "dir": str(folder), "port": port.host, "bind": port.bind,
                  "network": ctx.options.get("network", "bridge"),
                  "services": [m["name"] for m in replica_services(service)]}
        self._pull(folder, project, service.image)
        return record

    # ------------------------------------------------------------------ one replica at a time
    # Replicas that need GPUs are one compose service each (<slug>, <slug>-2, …; compose/render.py),
    # each publishing its own port (the colour's first port + i): each can be started, stopped and
    # checked alone. Replicas without GPUs are one scaled service, but they never need this (an
    # update without GPUs always has room for a second colour).
    replica_by_replica = True

    def start_replica(self, ctx: Context, service: "ServiceSpec", color: str, index: int,
                      record: dict[str, Any] | None) -> dict[str, Any]:
        record = record or self._prepare(ctx, service, color)
        name = self._service_name(record, index)
        out = compose(Path(record["dir"]), record["project"], "up", "--detach", "--no-deps", "--pull", "never", name)
        if out.returncode != 0:
            raise CheckFailed(f"docker compose up {name} ({record['project']}) failed:\n{tail(out.stdout + out.stderr)}")
        return record

    def replica(self, record: dict[str, Any], index: int) -> dict[str, Any]:
        return {**record, "port": int(record["port"]) + index, "service": self._service_name(record, index)}

    def stop_replica(self, ctx: Context, record: dict[str, Any], index: int) -> None:
        self._compose_or_sdk(self.replica(record, index), "stop")

    def restart_replica(self, ctx: Context, record: dict[str, Any], index: int) -> None:
        self._compose_or_sdk(self.replica(record, index), "start")

    def wait_replica(self, ctx: Context, service: "ServiceSpec", record: dict[str, Any], index: int) -> None:
        self.wait_ready(ctx, service, self.replica(record, index))

    def _service_name(self, record: dict[str, Any], index: int) -> str:
        # a colour started before records named its services: <slug>, <slug>-2, … from the containers' labels
        names = record.get("services") or sorted(
            {c.labels.get(SERVICE_LABEL, "") for c in self.containers(record["project"])}, key=lambda n: (len(n), n))
        if len(names) <= index:
            raise CheckFailed(f"{record['project']} runs its replicas as one scaled compose service (no GPUs to pin), "
                              "so they cannot be replaced one at a time")
        return names[index]

    def _pull(self, folder: Path, project: str, image: str) -> None:
        """Pull the image when the engine lacks it, with docker compose's own progress display."""
        import docker.errors

        try:
            self.client().images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
        say(f"  pulling {image} …")
        # docker compose draws its own pull progress (layers, bytes) on stderr: let it through live
        proc = run_bounded(compose_argv(folder, project, "pull"), timeout=PULL_TIMEOUT_S)
        if proc.returncode != 0:
            raise CheckFailed(
                f"cannot pull image {image} (see above); nothing was started.\n"
                "  fix: check the name and your registry access, or set overrides.image to an image this engine has")

    # ------------------------------------------------------------------ inspection
    def client(self):
        if self._client is None:
            import docker

            try:
                self._client = docker.DockerClient(base_url=os.environ.get("DOCKER_HOST") or None, timeout=60) \
                    if os.environ.get("DOCKER_HOST") else docker.from_env(timeout=60)
                self._client.ping()
            except Exception as exc:  # noqa: BLE001 - the SDK raises several kinds for "no daemon"
                raise CheckFailed(f"cannot reach the Docker engine ({os.environ.get('DOCKER_HOST') or 'default socket'}): "
                                  f"{str(exc).splitlines()[0][:200]}\n  fix: start Docker (`sudo systemctl start docker`) "
                                  "or set DOCKER_HOST") from None
        return self._client

    def api_version(self) -> tuple[int, ...]:
        try:
            return tuple(int(x) for x in self.client().version().get("ApiVersion", "0").split("."))
        except (ValueError, AttributeError):
            return (0,)

    def containers(self, project: str, service: str | None = None) -> list:
        """The project's containers (all states), or only those of one compose service."""
        labels = [f"{PROJECT_LABEL}={project}"] + ([f"{SERVICE_LABEL}={service}"] if service else [])
        return self.client().containers.list(all=True, filters={"label": labels})

    def wait_ready(self, ctx: Context, service: "ServiceSpec", record: dict[str, Any]) -> None:
        url = self.url(ctx, service, record) + service.health.path
        api_key = next((ctx.secrets[s.key] for s in service.secrets if s.env.endswith("API_KEY") and s.key in ctx.secrets), None)
        last_log = [""]

        def probe() -> Poll:
            cs = self.containers(record["project"], record.get("service"))  # "service": one replica (replica())
            if not cs:
                return Poll(status="no container yet")
            states = []
            for c in cs:
                c.reload()
                st = c.attrs.get("State", {})
                if st.get("Status") in ("exited", "dead") or st.get("Status") == "restarting" or c.attrs.get("RestartCount", 0) > 0:
                    return Poll(failed=f"container {c.name} exited with code {st.get('ExitCode')}"
                                + (f" ({st.get('Error')})" if st.get("Error") else ""))
                health = (st.get("Health") or {}).get("Status", "none")
                states.append(f"{st.get('Status')}, health {health}")
                try:
                    line = c.logs(tail=1).decode("utf-8", "replace").strip().splitlines()
                    if line:
                        last_log[0] = line[-1][:120]
                except Exception:  # noqa: BLE001
                    pass
            code = http_status(url, api_key=api_key)
            status = f"container {'; '.join(states)}; GET {service.health.path}: {code or 'no answer'}"
            if last_log[0]:
                status += f" | {last_log[0]}"
            return Poll(done=code == 200, status=status)

        wait_for(probe, what=f"{record['project']}", timeout_s=ctx.timeout_s,
                 on_fail=lambda _r: "  last log lines:\n" + tail(self.logs(ctx, record)))

    def logs(self, ctx: Context, record: dict[str, Any], n: int = 20) -> str:
        out = []
        for c in self.containers(record["project"], record.get("service")):
            try:
                out.append(c.logs(tail=n).decode("utf-8", "replace"))
            except Exception as exc:  # noqa: BLE001
                out.append(f"(no logs: {exc})")
        return "\n".join(out)

    def logs_argv(self, ctx: Context, record: dict[str, Any], *, lines: int, follow: bool) -> list[str] | None:
        follow_arg = ["--follow"] if follow else []
        folder = Path(record["dir"])
        if (folder / "compose.yaml").exists():
            return compose_argv(folder, record["project"], "logs", "--no-color", "--tail", str(lines), *follow_arg)
        names = [c.name for c in self.containers(record["project"])]  # the files are gone: the labelled container
        return [docker_cli(), "logs", "--tail", str(lines), *follow_arg, names[0]] if names else None

    def running(self, ctx: Context, record: dict[str, Any]) -> bool:
        cs = self.containers(record["project"])
        return bool(cs) and all(c.status == "running" for c in cs)

    def describe(self, ctx: Context, record: dict[str, Any]) -> list[dict[str, str]]:
        rows = []
        for c in self.containers(record["project"]):
            st = c.attrs.get("State", {})
            rows.append({"kind": "container", "name": c.name, "id": c.short_id, "state": st.get("Status", c.status),
                         "health": (st.get("Health") or {}).get("Status", "-"), "project": record["project"]})
        return rows

    def leftovers(self, ctx: Context) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for c in self.client().containers.list(all=True, filters={"label": [f"{LABEL}={ctx.slug}"]}):
            project = c.labels.get(PROJECT_LABEL)
            color = c.labels.get(COLOR_LABEL, "")
            if project:
                found[project] = {"color": color, "project": project, "dir": str(ctx.dir / color)}
        return list(found.values())

    # ------------------------------------------------------------------ lifecycle
    def stop(self, ctx: Context, record: dict[str, Any]) -> None:
        self._compose_or_sdk(record, "stop")

    def start(self, ctx: Context, record: dict[str, Any]) -> None:
        self._compose_or_sdk(record, "start")

    def remove(self, ctx: Context, record: dict[str, Any], *, volumes: bool = False) -> list[str]:
        names = [c.name for c in self.containers(record["project"])]
        args = ["down", "--remove-orphans", "--timeout", "30"] + (["--volumes"] if volumes else [])
        self._compose_or_sdk(record, *args)
        return names

    def _compose_or_sdk(self, record: dict[str, Any], *args: str) -> None:
        """`docker compose ARGS` on the colour (or only on record["service"], one replica's), else the SDK."""
        folder = Path(record["dir"])
        only = [record["service"]] if record.get("service") and args[0] in ("stop", "start") else []
        if (folder / "compose.yaml").exists():
            out = compose(folder, record["project"], *args, *only)
            if out.returncode == 0:
                return
            if args[0] != "down":
                raise CheckFailed(f"docker compose {args[0]} ({record['project']}) failed:\n{tail(out.stdout + out.stderr)}")
        # the files are gone (or compose refused them): act on the labelled objects directly
        for c in self.containers(record["project"], only[0] if only else None):
            if args[0] == "stop":
                c.stop(timeout=30)
            elif args[0] == "start":
                c.start()
            else:
                c.remove(force=True, v=False)
        if args[0] == "down":
            for net in self.client().networks.list(filters={"label": [f"{PROJECT_LABEL}={record['project']}"]}):
                net.remove()
            if "--volumes" in args:
                for vol in self.client().volumes.list(filters={"label": [f"{PROJECT_LABEL}={record['project']}"]}):
                    vol.remove(force=True)


# --------------------------------------------------------------------------- helpers


def override_text(service: "ServiceSpec", color: str, *, network: str, start_interval: bool = True) -> str:
    """compose.llmctl.yaml: labels for this colour, and with host networking the engine's own listen
    address and port (compose merge rules: `entrypoint` and `healthcheck.test` replace, `!reset` clears)."""
    from llmctl.targets.quoting import compose_value as c

    from llmctl.targets.compose.render import replica_services

    s = service
    lines = [
        "# Added by `llmctl up` on top of compose.yaml: labels that let `llmctl status` and `llmctl down`",
        "# find this deployment" + (", and host networking (--network host)." if network == "host" else "."),
        "services:",
    ]
    for member in replica_services(s)[1:]:
        lines += [f"  {member['name']}:", "    labels:", f"      {c(LABEL)}: {c(s.slug)}",
                  f"      {c(COLOR_LABEL)}: {c(color)}"]
    lines += [
        f"  {s.slug}:",
        "    labels:",
        f"      {c(LABEL)}: {c(s.slug)}",
        f"      {c(COLOR_LABEL)}: {c(color)}",
    ]
    if network == "host":
        port = s.ports[0]
        argv = listen_args(s.argv, port.bind, port.host)
        health = [a.replace(f":{port.container}/", f":{port.host}/") for a in (s.health.ready_command or s.health.command)]
        lines += ["    network_mode: host", "    ports: !reset []", "    entrypoint:"]
        lines += [f"      - {c(a)}" for a in argv]
        lines += ["    healthcheck:", "      test:", '        - "CMD"'] + [f"        - {c(a)}" for a in health]
        if not start_interval:
            lines += ["      start_interval: !reset null  # this Docker Engine predates 25.0"]
    elif not start_interval:
        lines += ["    healthcheck:", "      start_interval: !reset null  # this Docker Engine predates 25.0"]
        if "OLLAMA_HOST" in s.env:
            from llmctl.engines.base import host_address

            lines += ["    environment:", f"      OLLAMA_HOST: {c(f'{host_address(port.bind)}:{port.host}')}"]
    return "\n".join(lines) + "\n"


def docker_cli() -> str:
    path = shutil.which("docker")
    if path is None:
        raise CheckFailed("the `docker` command is not installed; compose deployments need it with the compose plugin\n"
                          "  fix: install Docker Engine and the compose plugin (Debian: `apt-get install docker.io "
                          "docker-compose`), or deploy with --target local")
    return path


def compose_argv(folder: Path, project: str, *args: str) -> list[str]:
    return [docker_cli(), "compose", "--project-name", project, "--project-directory", str(folder),
            "-f", str(folder / "compose.yaml"), "-f", str(folder / OVERRIDE), *args]


def compose(folder: Path, project: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(compose_argv(folder, project, *args), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"docker compose {args[0]} ({project}) did not finish within {timeout:.0f}s") from None
