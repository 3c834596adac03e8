"""Kubernetes: `kubectl apply --server-side --field-manager=llmctl`, wait for the rollout, and smoke-test
through `kubectl port-forward`. The Deployment rolls out by itself (new pods must be Ready before old
ones go); when the new revision fails, `up` runs `kubectl rollout undo` so the old one keeps serving.
Secrets become a Secret applied from memory (never a file).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmctl.deploy.base import CHANGE_TIMEOUT_S, QUERY_TIMEOUT_S, Context, Driver, free_port, run_bounded
from llmctl.deploy.progress import run_with_progress, tail
from llmctl.errors import CheckFailed

if TYPE_CHECKING:
    from llmctl.service import ServiceSpec

FIELD_MANAGER = "llmctl"
PORT_FORWARD_READY_S = 30.0


def kubectl_base(options: dict[str, Any]) -> list[str]:
    argv = ["kubectl"]
    if options.get("kubeconfig"):
        argv += ["--kubeconfig", options["kubeconfig"]]
    if options.get("context"):
        argv += ["--context", options["context"]]
    if options.get("namespace"):
        argv += ["--namespace", options["namespace"]]
    return argv


def apply_argv(options: dict[str, Any], path: str) -> list[str]:
    return [*kubectl_base(options), "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", path]


def rollout_argv(options: dict[str, Any], kind: str, name: str, timeout_s: float) -> list[str]:
    return [*kubectl_base(options), "rollout", "status", f"{kind}/{name}", f"--timeout={int(timeout_s)}s"]


def port_forward_argv(options: dict[str, Any], name: str, local: int, remote: int) -> list[str]:
    return [*kubectl_base(options), "port-forward", "--address", "127.0.0.1", f"service/{name}", f"{local}:{remote}"]


def delete_argv(options: dict[str, Any], paths: list[str]) -> list[str]:
    argv = [*kubectl_base(options), "delete", "--ignore-not-found", "--wait=false"]
    for p in paths:
        argv += ["-f", p]
    return argv


def secret_manifest(service: "ServiceSpec", values: dict[str, str]) -> dict[str, Any]:
    # the Secret the rendered pods reference (llmctl/targets/kubernetes/render.py: secret_name=<slug>-secrets)
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": f"{service.slug}-secrets", "labels": dict(service.labels)},
            "stringData": dict(values)}


def check_kubectl(options: dict[str, Any]) -> None:
    """kubectl installed and a context to talk to; otherwise a CheckFailed that says how to fix it."""
    if shutil.which("kubectl") is None:
        raise CheckFailed("kubectl is not installed; nothing was applied\n"
                          "  fix: install kubectl (https://kubernetes.io/docs/tasks/tools/) and configure a context")
    if options.get("context"):
        argv = [*kubectl_base({}), "config", "get-contexts", options["context"], "--output", "name"]
    else:
        argv = ["kubectl", "config", "current-context"]
    out = run_bounded(argv, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
    if out.returncode != 0 or not out.stdout.strip():
        what = f"context {options['context']!r} does not exist" if options.get("context") else "kubectl has no current context"
        raise CheckFailed(f"{what} ({(out.stderr or out.stdout).strip()[:200] or 'empty'}); nothing was applied\n"
                          "  fix: `kubectl config use-context NAME` (see `kubectl config get-contexts`), "
                          "or pass --context NAME")


class KubernetesDriver(Driver):
    name = "kubernetes"
    blue_green = False

    def __init__(self) -> None:
        self._forwards: list[subprocess.Popen] = []
        self._forwarded: list[dict[str, Any]] = []

    def files(self, ctx: Context, service: "ServiceSpec", color: str) -> dict[str, str]:
        from llmctl.render import render_service
        from llmctl.targets import RenderOptions

        return render_service(service, "kubernetes", RenderOptions(source=ctx.spec_path.name)).files

    def preflight(self, ctx: Context, service: "ServiceSpec") -> None:
        check_kubectl(ctx.options)

    def _kind(self, service: "ServiceSpec") -> str:
        return "leaderworkerset" if service.nodes_per_replica > 1 else "deployment"

    def apply(self, ctx: Context, service: "ServiceSpec", color: str) -> dict[str, Any]:
        from llmctl.fileio import write_atomic

        folder = ctx.dir / "kubernetes"
        for name, text in self.files(ctx, service, color).items():
            write_atomic(folder / name, text)
        if service.secrets:
            _run(apply_argv(ctx.options, "-"), stdin=json.dumps(secret_manifest(service, ctx.secrets)))
        _run(apply_argv(ctx.options, str(folder)))
        return {"color": color, "dir": str(folder), "kind": self._kind(service), "name": service.slug,
                "remote_port": service.ports[0].container, "port": None}

    def wait_ready(self, ctx: Context, service: "ServiceSpec", record: dict[str, Any]) -> None:
        code, output = run_with_progress(rollout_argv(ctx.options, record["kind"], record["name"], ctx.timeout_s),
                                         what=f"rollout of {record['kind']}/{record['name']}", budget_s=ctx.timeout_s,
                                         grace_s=QUERY_TIMEOUT_S)
        if code != 0:
            run_bounded([*kubectl_base(ctx.options), "rollout", "undo", f"{record['kind']}/{record['name']}"],
                        capture_output=True, timeout=CHANGE_TIMEOUT_S)
            raise CheckFailed(f"rollout of {record['kind']}/{record['name']} failed: {output.strip()[-300:]}"
                              f" (rolled back to the previous revision)\n  last log lines:\n{tail(self.logs(ctx, record))}")
        record["port"] = self._port_forward(ctx, record)
        self._forwarded.append(record)

    def _port_forward(self, ctx: Context, record: dict[str, Any]) -> int:
        import time

        local = free_port()
        proc = subprocess.Popen(port_forward_argv(ctx.options, record["name"], local, record["remote_port"]),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
        self._forwards.append(proc)
        deadline = time.monotonic() + PORT_FORWARD_READY_S
        import select

        while time.monotonic() < deadline and proc.stdout is not None:
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            line = proc.stdout.readline()
            if line.startswith("Forwarding from"):
                return local
            if not line and proc.poll() is not None:
                break
        raise CheckFailed(f"kubectl port-forward to service/{record['name']} did not start")

    def close(self) -> None:
        for proc in self._forwards:
            proc.terminate()
            proc.wait(timeout=10)
        for record in self._forwarded:
            record["port"] = None  # the forward ended with `up`; the service keeps its in-cluster address

    def url(self, ctx: Context, service: "ServiceSpec", record: dict[str, Any]) -> str:
        if record.get("port"):
            return f"http://127.0.0.1:{record['port']}"
        return f"service/{record['name']}:{record['remote_port']}"

    def logs(self, ctx: Context, record: dict[str, Any], n: int = 20) -> str:
        out = run_bounded([*kubectl_base(ctx.options), "logs", f"{record['kind']}/{record['name']}",
                           f"--tail={n}", "--all-containers"], capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
        return out.stdout or out.stderr

    def logs_argv(self, ctx: Context, record: dict[str, Any], *, lines: int, follow: bool) -> list[str] | None:
        return [*kubectl_base(ctx.options), "logs", f"{record['kind']}/{record['name']}", f"--tail={lines}",
                "--all-containers", "--prefix", *(["--follow"] if follow else [])]

    def running(self, ctx: Context, record: dict[str, Any]) -> bool:
        out = run_bounded([*kubectl_base(ctx.options), "get", f"{record['kind']}/{record['name']}", "--output",
                           "jsonpath={.status.readyReplicas}"], capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
        return out.returncode == 0 and out.stdout.strip() not in ("", "0")

    def stop(self, ctx: Context, record: dict[str, Any]) -> None:
        _run([*kubectl_base(ctx.options), "scale", f"{record['kind']}/{record['name']}", "--replicas=0"])

    def start(self, ctx: Context, record: dict[str, Any]) -> None:
        _run(apply_argv(ctx.options, record["dir"]))

    def remove(self, ctx: Context, record: dict[str, Any], *, volumes: bool = False) -> list[str]:
        folder = Path(record["dir"])
        paths = [str(p) for p in sorted(folder.glob("*.yaml")) if volumes or not p.name.startswith("pvc-")]
        if paths:
            _run(delete_argv(ctx.options, paths))
        _run([*kubectl_base(ctx.options), "delete", "--ignore-not-found", "secret", f"{record['name']}-secrets"])
        return [f"{record['kind']}/{record['name']}"] + (["its PersistentVolumeClaims"] if volumes else [])

    def describe(self, ctx: Context, record: dict[str, Any]) -> list[dict[str, str]]:
        return [{"kind": record["kind"], "name": record["name"], "id": "-",
                 "state": "ready" if self.running(ctx, record) else "not ready", "health": "-"}]


def _run(argv: list[str], *, stdin: str | None = None) -> None:
    out = run_bounded(argv, capture_output=True, text=True, input=stdin, timeout=CHANGE_TIMEOUT_S)
    if out.returncode != 0:
        raise CheckFailed(f"`{' '.join(argv)}` failed (exit {out.returncode}): {(out.stderr or out.stdout).strip()[:500]}")
