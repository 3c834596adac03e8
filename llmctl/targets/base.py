"""Targets render a ServiceSpec into files. Shared: the Jinja environment, render options, checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from llmctl.errors import InputError

if TYPE_CHECKING:
    import jinja2

    from llmctl.service import ServiceSpec


@dataclass
class RenderOptions:
    """What the command line adds to a plan: where files came from, runtime choices."""

    source: str = "llmctl.yaml"  # the spec file, named in each file's header
    runtime: str = "docker"  # systemd: docker | podman | native
    env_dir: str = "/etc/llmctl"  # systemd: where the unit's EnvironmentFile= lives
    notes: list[str] = field(default_factory=list)  # what the operator must do next (printed by render)
    # kubernetes blue/green: render this colour's objects (<slug>-<colour>), and a Gateway API HTTPRoute
    # splitting requests between colours ({"blue": 90, "green": 10}) on the Gateway `gateway` ([ns/]name)
    colour: str | None = None
    shift: dict[str, float] | None = None
    gateway: str | None = None
    namespace: str | None = None  # kubernetes: metadata.namespace of every object (else the context's)
    private_port: int | None = None  # systemd: the engine colour's port on 127.0.0.1 behind the proxy
    user: bool = False  # systemd: units for the user's manager (`--user`) rather than the system's


NAMESPACE_RE = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"  # RFC 1123 label, at most 63 characters


class Target:
    name = ""
    namespaced = False  # its objects live in a namespace (RenderOptions.namespace applies)

    def render(self, service: "ServiceSpec", options: RenderOptions) -> dict[str, str]:
        raise NotImplementedError


@lru_cache(maxsize=1)
def jinja_env() -> "jinja2.Environment":
    import jinja2

    from llmctl.paths import template_dirs
    from llmctl.targets import quoting

    env = jinja2.Environment(
        loader=jinja2.PrefixLoader({prefix: jinja2.FileSystemLoader(str(d)) for prefix, d in template_dirs().items()}),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        y=quoting.yaml_value,
        c=quoting.compose_value,
        k=quoting.kube_expand_value,
        sdarg=quoting.systemd_arg,
        sdenv=quoting.systemd_env,
        sdtext=quoting.systemd_text,
        comment=quoting.comment_text,
    )
    return env


def render_template(path: str, **context: Any) -> str:
    import jinja2

    try:
        return jinja_env().get_template(path).render(**context)
    except jinja2.UndefinedError as exc:  # a template bug, not user input: say which
        raise RuntimeError(f"template {path}: {exc}") from exc


def parse_yaml_documents(text: str, filename: str) -> list[Any]:
    """Parse rendered YAML back (every document) — a rendered file must be what we meant."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        docs = [d for d in YAML(typ="safe", pure=True).load_all(text) if d is not None]
    except YAMLError as exc:
        raise RuntimeError(f"rendered {filename} is not valid YAML: {exc}") from exc
    for d in docs:
        if not isinstance(d, dict):
            raise RuntimeError(f"rendered {filename}: a document is not a mapping")
    return docs


def gib(value: float) -> str:
    """Kubernetes/compose quantity for GiB, exact and stable: whole GiB or MiB."""
    mib = int(round(value * 1024))
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def require_single_node(service: "ServiceSpec", target: str) -> None:
    if service.nodes_per_replica > 1:
        raise InputError(
            f"target: one replica spans {service.nodes_per_replica} nodes (pipeline parallel), "
            f"which {target} cannot run",
            hint="render with --target kubernetes (LeaderWorkerSet)",
        )
