"""docker compose: one service per plan, GPUs reserved, ports on 127.0.0.1 unless the spec opens them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmctl.targets.base import RenderOptions, Target, gib, parse_yaml_documents, render_template, require_single_node

if TYPE_CHECKING:
    from llmctl.service import Port, ServiceSpec


class ComposeTarget(Target):
    name = "compose"

    def render(self, service: "ServiceSpec", options: RenderOptions) -> dict[str, str]:
        require_single_node(service, "docker compose")
        s = service
        env_file = f"{s.slug}.env"

        members = replica_services(s)
        pinned = len(members) > 1

        def published(p: "Port", index: int = 0) -> str:
            if pinned:  # one service per replica, each on its own port
                return str(p.host + index)
            # replicas share one host port range, one port each (compose spec: ports, long syntax)
            return str(p.host) if s.replicas == 1 else f"{p.host}-{p.host + s.replicas - 1}"

        ctx = dict(
            s=s,
            header=f"{s.name} — {s.engine} serving {s.served_model_name}",
            source=options.source,
            env_file=env_file,
            published=published,
            members=members,
            replicas=1 if pinned else s.replicas,
            healthcheck=s.health.ready_command or s.health.command,
            shm=_bytes(s.resources.shm_size_gib),
            mem_limit=_bytes(s.resources.memory_limit_gib),
            mem_request=_bytes(s.resources.memory_request_gib),
            nvidia=s.gpu.vendor == "nvidia" and (s.gpu.count > 0 or bool(s.gpu.device_ids)),
            amd=s.gpu.vendor == "amd" and (s.gpu.count > 0 or bool(s.gpu.device_ids)),
        )
        files = {"compose.yaml": render_template("compose/compose.yaml.j2", **ctx)}
        parse_yaml_documents(files["compose.yaml"], "compose.yaml")
        if s.secrets:
            files[f"{env_file}.example"] = render_template("compose/env.example.j2", **ctx)
            need = ", ".join(sec.key for sec in s.secrets)
            options.notes.append(
                f"create {env_file} beside compose.yaml with {need} (mode 0600): "
                f"`llmctl up` does it from your environment"
            )
        return files


def replica_services(s: "ServiceSpec") -> list[dict]:
    """The compose services of one deployment: one per replica when replicas need GPUs (each its own
    devices and port, named <slug>, <slug>-2, …), else one service that compose scales."""
    from llmctl.targets.placement import replica_devices

    devices = replica_devices(s)
    if s.replicas == 1 or not any(devices):
        return [dict(name=s.slug, index=0, devices=list(s.gpu.device_ids), env={})]
    out = []
    for i, ids in enumerate(devices):
        env = {"HIP_VISIBLE_DEVICES": ",".join(ids)} if s.gpu.vendor == "amd" else {}
        out.append(dict(name=s.slug if i == 0 else f"{s.slug}-{i + 1}", index=i, devices=ids, env=env))
    return out


def _bytes(value: float | None) -> str:
    if not value:
        return ""
    return gib(value).replace("Gi", "g").replace("Mi", "m")
