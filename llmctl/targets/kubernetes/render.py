"""Kubernetes: Deployment (or LeaderWorkerSet across nodes), Service, PVC, autoscaler, PodMonitor.

Secrets are referenced (`secretKeyRef` to `<slug>-secrets`), never rendered; render prints the
`kubectl create secret` command that fills them from the operator's environment.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from llmctl.targets.base import RenderOptions, Target, gib, parse_yaml_documents, render_template

if TYPE_CHECKING:
    from llmctl.service import ServiceSpec

ROLE_LABEL = "llmctl.dev/role"
COLOUR_LABEL = "llmctl.dev/color"
STREAM_TIMEOUT_S = 900  # a streamed answer may run this long through the gateway (as through HAProxy)


class KubernetesTarget(Target):
    name = "kubernetes"
    namespaced = True

    def render(self, service: "ServiceSpec", options: RenderOptions) -> dict[str, str]:
        from llmctl.engines import get_engine
        from llmctl.engines.base import engine_profiles

        s = service
        kprof = engine_profiles()["kubernetes"]
        header = f"{s.name} — {s.engine} serving {s.served_model_name}"
        labels = dict(s.labels)
        selector = {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}
        name = s.slug
        if options.colour:
            colour = _colour(options.colour)
            name = f"{s.slug}-{colour}"
            labels[COLOUR_LABEL] = colour
            selector[COLOUR_LABEL] = colour
        multinode = s.nodes_per_replica > 1
        # several pods read the model cache: replicas, the nodes of one replica, or two colours
        shared_cache = s.replicas > 1 or multinode or bool(options.colour)
        autoscale = s.replicas > 1
        metric = s.autoscale_metric
        use_hpa = autoscale and not metric

        def meta(name: str, extra: dict[str, str] | None = None) -> str:
            return render_template("kubernetes/_meta.yaml.j2", s=s, name=name, labels={**labels, **(extra or {})},
                                   namespace=options.namespace).rstrip()

        def pod(argv: list[str], *, serve: bool) -> str:
            return render_template("kubernetes/_pod.yaml.j2", s=s, pod=self._pod(s, argv, serve=serve, hpa=use_hpa)).rstrip()

        files: dict[str, str] = {}
        common = dict(s=s, header=header, source=options.source, target_name=name)
        target_api, target_kind = "apps/v1", "Deployment"
        if multinode:
            leader_argv, worker_argv = get_engine(s.engine).multinode_argv(s)
            files["leaderworkerset.yaml"] = render_template(
                "kubernetes/leaderworkerset.yaml.j2", **common, meta=meta(name), rollout=rollout_strategy(s),
                leader_labels={**labels, ROLE_LABEL: "leader"}, worker_labels={**labels, ROLE_LABEL: "worker"},
                leader_spec=pod(leader_argv, serve=True), worker_spec=pod(worker_argv, serve=False),
            )
            target_api, target_kind = "leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"
            service_selector = {**selector, ROLE_LABEL: "leader"}
        else:
            files["deployment.yaml"] = render_template(
                "kubernetes/deployment.yaml.j2", **common, meta=meta(name), selector=selector, labels=labels,
                rollout=rollout_strategy(s), progress_deadline=s.health.startup_timeout_s + 600,
                pod_spec=pod(s.argv, serve=True),
            )
            service_selector = selector
        port = s.ports[0]
        files["service.yaml"] = render_template(
            "kubernetes/service.yaml.j2", **common, meta=meta(name), selector=service_selector,
            exposed=port.bind not in ("127.0.0.1", "::1", "localhost"), bind=port.bind,
        )
        for v in s.volumes:
            if v.host_path is None:
                files[f"pvc-{v.name}.yaml"] = render_template(
                    "kubernetes/pvc.yaml.j2", **common, meta=meta(f"{s.slug}-{v.name}"), shared=shared_cache,
                    size=f"{v.size_gib}Gi",
                )
        if autoscale:
            low, high = autoscale_bounds(s)
            scale = dict(target_api=target_api, target_kind=target_kind, min_replicas=low, max_replicas=high)
            if use_hpa:
                files["hpa.yaml"] = render_template("kubernetes/hpa.yaml.j2", **common, meta=meta(name), **scale)
            else:
                # pods of a Deployment are named <slug>-<hash>-<id>, LWS pods <slug>-<group>[-<index>]
                query = f'sum({metric}{{pod=~"{name}-.*"}})'
                files["scaledobject.yaml"] = render_template(
                    "kubernetes/scaledobject.yaml.j2", **common, meta=meta(name), metric=metric, query=query,
                    prometheus=kprof["prometheus_url"], threshold=str(kprof["queue_per_replica"]), **scale,
                )
            if s.metrics_path:
                files["podmonitor.yaml"] = render_template(
                    "kubernetes/podmonitor.yaml.j2", **common, meta=meta(name),
                    selector=service_selector, interval=kprof["scrape_interval"], secret_name=f"{s.slug}-secrets",
                )
        if options.shift:
            files["httproute.yaml"] = self._route(s, options, common, meta)
        for fname, text in files.items():
            parse_yaml_documents(text, fname)
        if s.secrets:
            parts = " ".join(f'--from-literal={x.key}="${x.env}"' for x in s.secrets)
            ns = f" -n {options.namespace}" if options.namespace else ""
            options.notes.append(f"create the Secret first: kubectl create secret generic {s.slug}-secrets {parts}{ns}")
        if rollout_strategy(s)["downtime"]:
            options.notes.append("one replica and no spare GPU: an update stops the running pod before the new one "
                                 "loads the model (downtime); list a spare GPU under hardware: to update without it")
        if any(v.host_path for v in s.volumes):
            options.notes.append("the pod mounts files from the node (hostPath): it runs only where they exist")
        return files

    # ------------------------------------------------------------------ gradual shift
    def _route(self, s: "ServiceSpec", options: RenderOptions, common: dict[str, Any], meta) -> str:
        """A Gateway API HTTPRoute sending each colour's share of requests to its Service."""
        from llmctl.errors import InputError

        if not options.gateway:
            raise InputError("--gateway: a gradual shift needs the Gateway the route attaches to ([namespace/]name)")
        ns, _, gw = options.gateway.rpartition("/")
        for part, what in ((gw, "name"), (ns, "namespace")):
            if part and not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", part):
                raise InputError(f"--gateway: {part!r} is not a valid Gateway {what}")
        shares = {_colour(c): pct for c, pct in (options.shift or {}).items()}
        if abs(sum(shares.values()) - 100) > 1e-6:
            raise InputError(f"--shift: the shares add up to {sum(shares.values()):g}%, not 100%")
        backends = [dict(name=f"{s.slug}-{c}", weight=int(round(pct))) for c, pct in sorted(shares.items())]
        return render_template("kubernetes/httproute.yaml.j2", **{**common, "target_name": s.slug}, meta=meta(s.slug),
                               gateway=gw, gateway_ns=ns or None, backends=backends, port=s.ports[0].host,
                               timeout=f"{STREAM_TIMEOUT_S}s")

    # ------------------------------------------------------------------ the pod
    def _pod(self, s: "ServiceSpec", argv: list[str], *, serve: bool, hpa: bool) -> dict[str, Any]:
        gpu_key = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}.get(s.gpu.vendor)
        gpus = len(s.gpu.device_ids) or s.gpu.count
        requests: list[tuple[str, Any]] = []
        limits: list[tuple[str, Any]] = []
        cpus = s.resources.cpus or (2 if hpa else None)  # an HPA on CPU needs a CPU request
        if cpus:
            requests.append(("cpu", _cpu(cpus)))
        if s.resources.memory_request_gib:
            requests.append(("memory", gib(s.resources.memory_request_gib)))
        if s.resources.memory_limit_gib:
            limits.append(("memory", gib(s.resources.memory_limit_gib)))
        if gpu_key and gpus:
            # extended resources: requests must equal limits (kubernetes.io docs, "Schedule GPUs")
            requests.append((gpu_key, gpus))
            limits.append((gpu_key, gpus))
        mounts: list[dict[str, Any]] = []
        volumes: list[dict[str, Any]] = []
        for v in s.volumes:
            vname = v.name
            if v.host_path is None:
                volumes.append(dict(name=vname, kind="pvc", claim=f"{s.slug}-{v.name}"))
            else:
                is_file = v.host_path.lower().endswith((".gguf", ".safetensors", ".bin"))
                volumes.append(dict(name=vname, kind="host", path=v.host_path, type="File" if is_file else "Directory"))
            mounts.append(dict(name=vname, path=v.mount, read_only=v.read_only))
        if s.resources.shm_size_gib:
            volumes.append(dict(name="dshm", kind="shm", size=gib(s.resources.shm_size_gib)))
            mounts.append(dict(name="dshm", path="/dev/shm", read_only=False))
        security_pod: list[tuple[str, Any]] = []
        if s.run_as_user is not None:
            security_pod = [("runAsNonRoot", True), ("runAsUser", s.run_as_user), ("runAsGroup", s.run_as_user),
                            ("fsGroup", s.run_as_user)]
        return dict(
            container_name=s.engine.replace(".", ""),
            argv=argv,
            env=dict(s.env),
            secrets=s.secrets,
            secret_name=f"{s.slug}-secrets",
            serve=serve,
            period=10,
            startup_failures=max(1, math.ceil(s.health.startup_timeout_s / 10)),
            requests=requests or [("memory", "1Gi")],
            limits=limits,
            mounts=mounts,
            volumes=volumes,
            security_pod=security_pod,
            node_selector={"nvidia.com/gpu.product": s.gpu_product_label} if s.gpu_product_label and gpus else {},
            tolerations=[gpu_key] if gpu_key and gpus else [],
        )


def rollout_strategy(s: "ServiceSpec") -> dict[str, Any]:
    """RollingUpdate limits that never take capacity the hardware cannot give back.

    maxSurge starts new pods beside the old ones: only as many as there are spare GPUs for. Without
    a spare GPU and with several replicas, one replica at a time is replaced (maxUnavailable 1); with
    one replica and an unknown cluster, the new pod waits for a free GPU while the old one serves
    (a stalled rollout is reported by progressDeadlineSeconds, not an outage).
    """
    per_replica = (len(s.gpu.device_ids) or s.gpu.count) * max(1, s.nodes_per_replica)
    if per_replica == 0:
        return dict(max_surge=1, max_unavailable=0, downtime=False, why="no GPU: a new pod starts beside the old")
    if s.spare_gpus is None:
        if s.replicas > 1:
            return dict(max_surge=0, max_unavailable=1, downtime=False,
                        why="spare GPUs unknown: one replica at a time is replaced")
        return dict(max_surge=1, max_unavailable=0, downtime=False,
                    why="spare GPUs unknown: the new pod waits for a free GPU while the old one serves")
    surge = min(s.replicas, s.spare_gpus // per_replica)
    if surge > 0:
        return dict(max_surge=surge, max_unavailable=0, downtime=False,
                    why=f"{s.spare_gpus} spare GPUs: {surge} new replica(s) start beside the old")
    if s.replicas > 1:
        return dict(max_surge=0, max_unavailable=1, downtime=False,
                    why="no spare GPU: one replica at a time is replaced")
    return dict(max_surge=0, max_unavailable=1, downtime=True,
                why="one replica and no spare GPU: the update restarts it (downtime)")


def autoscale_bounds(s: "ServiceSpec") -> tuple[int, int]:
    """(min, max) replicas: never below the plan (it was sized for the load), and room above it —
    as many replicas as the spare GPUs hold, or twice the plan when the hardware is not listed."""
    per_replica = (len(s.gpu.device_ids) or s.gpu.count) * max(1, s.nodes_per_replica)
    if per_replica and s.spare_gpus is not None:
        extra = max(1, s.spare_gpus // per_replica)
    else:
        extra = s.replicas
    return s.replicas, s.replicas + extra


def _cpu(value: float) -> str:
    milli = int(round(value * 1000))
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def _colour(value: str) -> str:
    from llmctl.errors import InputError

    if not re.fullmatch(r"[a-z]([-a-z0-9]{0,14}[a-z0-9])?", value):
        raise InputError(f"colour: {value!r} must be a short lower-case name such as blue or green")
    return value
