"""docker compose: one service per plan, GPUs reserved, ports on 127.0.0.1 unless the spec opens them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmctl.targets.base import RenderOptions, Target, gib, parse_yaml_documents, render_template, require_single_node

if TYPE_CHECKING:
    from llmctl.service import Port, ServiceSpec


class ComposeTarget(Target):
    name = "compose"

    def render(self, service: "ServiceSpec", options: RenderOptions) -> dict[str, str]:
        from llmctl.engines.base import engine_profiles

        require_single_node(service, "docker compose")
        s = service
        env_file = f"{s.slug}.env"

        def published(p: "Port") -> str:
            # replicas share one host port range, one port each (compose spec: ports, long syntax)
            return str(p.host) if s.replicas == 1 else f"{p.host}-{p.host + s.replicas - 1}"

        ctx = dict(
            s=s,
            header=f"{s.name} — {s.engine} serving {s.served_model_name}",
            source=options.source,
            env_file=env_file,
            published=published,
            healthcheck=engine_profiles()[s.engine]["healthcheck"],
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


def _bytes(value: float | None) -> str:
    if not value:
        return ""
    return gib(value).replace("Gi", "g").replace("Mi", "m")
