"""systemd: the engine as a unit per colour (`<slug>-blue.service`, `<slug>-green.service`) in a container
(docker/podman) or as the native binary, on a private port behind HAProxy's own unit
(`<slug>-proxy.service`, llmctl/targets/systemd/proxy_unit.py) on the spec's address and port.

Every value sits inside double quotes with systemd's C escapes, `%` and `$` doubled
(llmctl/targets/quoting.py), so no value can split into extra arguments, add a directive or expand
a variable or specifier. Secrets reach the process through EnvironmentFile= only; a container gets
them as `-e NAME` (the value is taken from the unit's environment, never written on the command line).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmctl.errors import InputError
from llmctl.targets.base import RenderOptions, Target, gib, render_template, require_single_node
from llmctl.targets.quoting import systemd_arg
from llmctl.typed import updated

if TYPE_CHECKING:
    from llmctl.service import ServiceSpec

RUNTIMES = ("docker", "podman", "native")
# where the distributions install the CLIs (Debian/Ubuntu/Fedora packages); systemd needs absolute paths
_BINARIES = {"docker": "/usr/bin/docker", "podman": "/usr/bin/podman", "curl": "/usr/bin/curl"}


def command(argv: list[str]) -> str:
    """One command line for Exec*=, each argument quoted; long ones continue on the next line."""
    lines: list[list[str]] = []
    for i, arg in enumerate(argv):
        word = systemd_arg(arg)
        starts_option = arg.startswith("-") and i > 0
        if not lines or starts_option or not argv_option(lines[-1]) or len(lines[-1]) >= 2:
            lines.append([word])
        else:
            lines[-1].append(word)  # an option's value stays beside it
    if len(argv) <= 4:
        return " ".join(w for line in lines for w in line)
    return " \\\n    ".join(" ".join(line) for line in lines)


def argv_option(line: list[str]) -> bool:
    return line[0].startswith('"-')


class SystemdTarget(Target):
    name = "systemd"

    def render(self, service: "ServiceSpec", options: RenderOptions) -> dict[str, str]:
        """The whole deployment as `llmctl up` installs it: HAProxy's unit and configuration on the spec's
        address and port, and the engine unit of one colour on a private port behind it."""
        from llmctl.targets.systemd import layout
        from llmctl.targets.systemd.proxy_unit import render_proxy_unit
        from llmctl.traffic.config import Server, render_config

        require_single_node(service, "a systemd unit")
        colour = options.colour or layout.COLOURS[0]
        port = service.ports[0]
        inner = private_service(service, options.private_port or default_private_port(port.host))
        files = engine_files(inner, options, colour)
        env_dir = options.env_dir.rstrip("/")
        config = f"{env_dir}/{layout.proxy_config(service.slug)}"
        socket = str(layout.proxy_socket(service.slug, user=False))
        files[layout.proxy_config(service.slug)] = render_config(
            service, [Server(f"{colour}-1", PRIVATE_BIND, inner.ports[0].host, 100)], admin_socket=socket)
        files[layout.proxy_unit(service.slug)] = render_proxy_unit(
            slug=service.slug, name=service.name, public=f"{port.bind}:{port.host}", config=config, user=False,
            source=options.source)
        options.notes.append(
            f"systemd: {layout.proxy_unit(service.slug)} (HAProxy, reading {config}) holds {port.bind}:{port.host}; "
            f"{layout.engine_unit(service.slug, colour)} listens on {PRIVATE_BIND}:{inner.ports[0].host} behind it "
            "(`llmctl up` picks free private ports itself and updates blue/green through the proxy)")
        return files


PRIVATE_BIND = "127.0.0.1"  # the engine colours listen here only; the proxy holds the public address


# ExecStartPost=: poll the readiness URL ($1) once a second, at most $2 times (models load for minutes;
# start-up completes only when it answers). It gives up as soon as the main process has exited
# (systemd passes $MAINPID to control processes, systemd.exec(5) "Environment Variables in Spawned
# Processes"), so a version that cannot start fails its start job at once instead of after the whole
# start-up timeout. Values reach the script as arguments, never inside it.
WAIT_SCRIPT = (
    'i=0; until ' + _BINARIES["curl"] + ' --silent --fail --output /dev/null --max-time 5 "$1"; do '
    'if [ -n "${MAINPID:-}" ] && ! kill -0 "$MAINPID" 2>/dev/null; then '
    'echo "llmctl: the engine exited before $1 answered" >&2; exit 1; fi; '
    'i=$((i + 1)); if [ "$i" -ge "$2" ]; then echo "llmctl: $1 did not answer within $2 s" >&2; exit 1; fi; '
    'sleep 1; done'
)


def default_private_port(public: int) -> int:
    """The rendered engine's private port: the next one after the public port (the one before it when
    the public port is the last one). `llmctl up` picks free ports at run time instead."""
    return public + 1 if public < 65535 else public - 1


def private_service(service: "ServiceSpec", port: int) -> "ServiceSpec":
    """The service listening on 127.0.0.1:`port` (the proxy holds the public address)."""
    from llmctl.deploy.base import listen_args

    ports = [updated(p, host=port, bind=PRIVATE_BIND) if i == 0 else p
             for i, p in enumerate(service.ports)]
    native = listen_args(service.native_argv, PRIVATE_BIND, port) if service.native_argv else []
    return updated(service, ports=ports, native_argv=native)


def engine_files(service: "ServiceSpec", options: RenderOptions, colour: str) -> dict[str, str]:
    """The engine unit of one colour (`<slug>-<colour>.service`), listening where `service` says, and
    the env file's example when the service has secrets."""
    from llmctl.targets.systemd import layout

    s = service
    if colour not in layout.COLOURS:
        raise InputError(f"--colour: {colour!r} is not one of {', '.join(layout.COLOURS)}")
    runtime = options.runtime
    if runtime not in RUNTIMES:
        raise InputError(f"--runtime: {runtime!r} is not one of {', '.join(RUNTIMES)}")
    unit = layout.engine_unit(s.slug, colour)
    env_path = f"{options.env_dir.rstrip('/')}/{layout.env_file(s.slug, colour)}"
    if not env_path.startswith("/") or any(c in env_path for c in " \t\n\"'\\%$"):
        raise InputError(f"--env-dir: {options.env_dir!r} must be an absolute path without spaces, quotes, % or $")
    port = s.ports[0]
    from llmctl.engines.base import probe_address

    health_url = f"http://{probe_address(port.bind)}:{port.host}{s.health.path}"
    wait = ["/bin/sh", "-c", WAIT_SCRIPT, "llmctl-wait", health_url, str(max(1, s.health.startup_timeout_s))]
    extra_comments: list[str] = []
    if s.replicas > 1:
        extra_comments.append(
            f"The plan wants {s.replicas} replicas: install this unit on {s.replicas} hosts and balance across them."
        )
        options.notes.append(f"systemd: install {unit} on {s.replicas} hosts (one replica each)")
    ctx = dict(
        s=s, unit=unit, colour=colour, env_path=env_path,
        header=f"{s.name} — {s.engine} serving {s.served_model_name} ({colour})",
        source=options.source, env_required=any(x.required for x in s.secrets),
        secret_names=", ".join(x.env for x in s.secrets), extra_comments=extra_comments,
        proxy_unit=layout.proxy_unit(s.slug),
    )
    if runtime == "native":
        ctx.update(_native(s, wait, options.user))
    else:
        ctx.update(_container(s, runtime, wait, colour))
    files = {unit: render_template("systemd/service.j2", **ctx)}
    check_unit(files[unit], unit)
    if s.secrets:
        files[f"{s.slug}.env.example"] = render_template("compose/env.example.j2", s=s, env_file=env_path)
        options.notes.append(
            f"create {env_path} (mode 0600) with {ctx['secret_names']}: `llmctl up` does it from your environment"
        )
    return files


# ---------------------------------------------------------------------- container (docker / podman)
def _container(s: "ServiceSpec", runtime: str, wait: list[str], colour: str) -> dict:
    cli = _BINARIES[runtime]
    name = f"{s.slug}-{colour}"  # both colours run side by side during an update
    port = s.ports[0]
    from llmctl.engines.base import host_address

    run = [cli, "run", "--rm", "--name", name, "--pull", "missing", "--init",
           "--label", f"dev.llmctl.name={s.name}",
           "--security-opt", "no-new-privileges",
           "--publish", f"{host_address(port.bind)}:{port.host}:{port.container}"]
    for v in s.volumes:
        if v.host_path:
            fields = ["type=bind", f"source={v.host_path}", f"target={v.mount}"] + (["readonly"] if v.read_only else [])
        else:
            fields = ["type=volume", f"source=llmctl-{s.slug}-{v.name}", f"target={v.mount}"]
        run += ["--mount", ",".join(_csv_field(f) for f in fields)]
    if s.resources.shm_size_gib:
        run += ["--shm-size", gib(s.resources.shm_size_gib).replace("Gi", "g").replace("Mi", "m")]
    if s.resources.memory_limit_gib:
        run += ["--memory", gib(s.resources.memory_limit_gib).replace("Gi", "g").replace("Mi", "m")]
    run += _gpu_args(s, runtime)
    for key in sorted(s.env):
        run += ["--env", key]  # value from this unit's Environment= (docker/podman read it when no `=` is given)
    for sec in s.secrets:
        run += ["--env", sec.env]  # value from EnvironmentFile=, never on the command line
    run += ["--entrypoint", s.argv[0], s.image, *s.argv[1:]]
    deps = [f"{runtime}.service"] if runtime == "docker" else []
    return dict(
        env=dict(s.env),
        after=["network-online.target", *deps],
        wants=["network-online.target"],
        requires=deps,
        service_settings=[],
        pre=["-" + command([cli, "rm", "--force", name])],  # a container left by a crash
        start=command(run),
        post=[command(wait)],
        stop=[command([cli, "stop", "--time", "30", name])],
        protect_system="full",  # the CLI only talks to the engine's socket; /usr, /boot and /etc stay read-only
        protect_home="read-only",  # registry credentials in ~/.docker stay readable
        hardening=[],
    )


# ---------------------------------------------------------------------- native binary
def _native(s: "ServiceSpec", wait: list[str], user: bool = False) -> dict:
    from llmctl.engines.base import native_env

    if not s.native_argv:
        raise InputError(f"--runtime native: {s.engine} has no host binary form")
    from llmctl.targets.systemd import layout

    # StateDirectory= is relative to /var/lib, or to $XDG_STATE_HOME for the user's manager (systemd.exec(5))
    state = f"{layout.state_root(user)}/llmctl/{s.slug}"
    env = native_env(s, state)
    env.setdefault("HOME", state)
    if env.get("HOME") == "/tmp":
        env["HOME"] = state
    gpu = s.gpu.count > 0 or bool(s.gpu.device_ids)
    hardening = [
        # both colours share the user (systemd allocates one dynamic UID per name, shared by the units
        # naming it), so the StateDirectory they share keeps one owner during an update; the user's
        # manager runs everything as that user already and cannot allocate one
        *([] if user else [("DynamicUser", "yes"), ("User", s.slug)]),
        ("StateDirectory", f"llmctl/{s.slug}"),
        ("WorkingDirectory", state),
        ("CapabilityBoundingSet", ""),
        ("RestrictNamespaces", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK"),
        ("PrivateDevices", "no" if gpu else "yes"),  # a GPU is a device node
        ("UMask", "0077"),
    ]
    if gpu and s.gpu.vendor == "amd":
        hardening.append(("SupplementaryGroups", "video render"))  # /dev/kfd and /dev/dri (ROCm install guide)
    if gpu and s.gpu.device_ids:
        key = "HIP_VISIBLE_DEVICES" if s.gpu.vendor == "amd" else "CUDA_VISIBLE_DEVICES"
        env[key] = ",".join(s.gpu.device_ids)
    home_paths = [v.host_path for v in s.volumes if v.host_path and v.host_path.startswith(("/home", "/root"))]
    return dict(
        env=env,
        after=["network-online.target"],
        wants=["network-online.target"],
        requires=[],
        service_settings=[],
        pre=[command(step.argv) for step in s.prepare],
        start=command(s.native_argv),
        post=[command(wait)],
        stop=[],
        protect_system="strict",  # writable only: the StateDirectory (models, caches)
        protect_home="read-only" if home_paths else "yes",
        hardening=hardening,
    )


def _gpu_args(s: "ServiceSpec", runtime: str) -> list[str]:
    if s.gpu.vendor == "amd" and (s.gpu.count or s.gpu.device_ids):
        # ROCm containers: the kernel driver and render nodes (ROCm docs, "Running ROCm Docker containers");
        # every render node is passed, so HIP_VISIBLE_DEVICES limits the engine to its own GPUs
        out = ["--device", "/dev/kfd", "--device", "/dev/dri", "--group-add", "video"]
        if s.gpu.device_ids:
            out += ["--env", "HIP_VISIBLE_DEVICES=" + ",".join(s.gpu.device_ids)]
        return out
    if not (s.gpu.count or s.gpu.device_ids):
        return []
    if runtime == "podman":
        # Podman uses CDI device names (NVIDIA Container Toolkit docs, "Support for Container Device Interface")
        ids = s.gpu.device_ids or [str(i) for i in range(s.gpu.count)]
        out: list[str] = []
        for i in ids:
            out += ["--device", f"nvidia.com/gpu={i}"]
        return out
    if s.gpu.device_ids:
        # the value is CSV-parsed by docker: several ids need the quotes (docs.docker.com, "--gpus")
        return ["--gpus", '"device=' + ",".join(s.gpu.device_ids) + '"']
    return ["--gpus", str(s.gpu.count)]


def _csv_field(field: str) -> str:
    """docker/podman --mount values are CSV: quote a field holding a comma or a quote."""
    if any(c in field for c in ',"\n\r'):
        return '"' + field.replace('"', '""') + '"'
    return field


def check_unit(text: str, filename: str) -> None:
    """Every line must be blank, a comment, a [Section] or Key=value (continuations joined first)."""
    import re

    logical = text.replace("\\\n", " ")
    for n, line in enumerate(logical.split("\n"), 1):
        if not line.strip() or line.lstrip().startswith(("#", ";")):
            continue
        if re.fullmatch(r"\[[A-Za-z]+\]", line) or re.match(r"[A-Za-z][A-Za-z0-9]*=", line):
            continue
        raise RuntimeError(f"rendered {filename}: line {n} is not a unit-file line: {line[:80]!r}")
