"""Doctor checks of the kubernetes target: a kubectl context (the named one, if given), GPU nodes that
fit a replica, and the Secret the pods read in the namespace."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any, Sequence

from llmctl.doctor import FAIL, PASS, PROBE_TIMEOUT_S, SKIP, WARN, CheckResult, Requirements, brief_error
from llmctl.term import count

# the Kubernetes extended resource the NVIDIA device plugin advertises, and GPU feature discovery's
# product label (https://github.com/NVIDIA/k8s-device-plugin)
K8S_GPU_RESOURCE = "nvidia.com/gpu"
K8S_AMD_GPU_RESOURCE = "amd.com/gpu"
K8S_GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"


def checks(req: Requirements, env: dict[str, str], kubectl: str | Sequence[str]) -> tuple[list[CheckResult], None]:
    res, ok = check_kubectl_context(kubectl, env)
    results = [res]
    if req.gpu_vendor in ("nvidia", "amd"):
        if ok:
            nodes, err = kubectl_nodes(kubectl, env)
            results.append(
                check_k8s_gpu_capacity(nodes, req.gpus_per_node, req.replicas, req.gpu_product_label,
                                       vendor=req.gpu_vendor)
                if nodes is not None
                else CheckResult("kubernetes GPUs", FAIL, f"cannot list nodes: {err}",
                                 "check that your user may `kubectl get nodes`"))
        else:
            results.append(CheckResult("kubernetes GPUs", SKIP, "no usable kubectl context"))
    if req.kube_secret:
        results.append(check_k8s_secret(req.kube_secret, req.kube_secret_keys, kubectl, env) if ok else
                       CheckResult("kubernetes secret", SKIP, "no usable kubectl context"))
    return results, None


def kubectl_argv(kubectl: str | Sequence[str] = "kubectl") -> list[str]:
    """The kubectl program and its global flags (--kubeconfig, --context, --namespace) as one argv prefix."""
    return [kubectl] if isinstance(kubectl, str) else list(kubectl)


def _flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv[:-1] else None


def check_kubectl_context(kubectl: str | Sequence[str] = "kubectl",
                          env: dict[str, str] | None = None) -> tuple[CheckResult, bool]:
    """The context kubectl will use: the one given with --context (it must exist), else the current one."""
    name = "kubectl context"
    argv = kubectl_argv(kubectl)
    if shutil.which(argv[0], path=(env or os.environ).get("PATH")) is None:
        return CheckResult(name, FAIL, f"{argv[0]} is not installed",
                           "install kubectl (https://kubernetes.io/docs/tasks/tools/)"), False
    wanted = _flag(argv, "--context")
    base = [a for i, a in enumerate(argv) if a != "--namespace" and (i == 0 or argv[i - 1] != "--namespace")]
    query = [*base, "config", "get-contexts", wanted, "-o", "name"] if wanted else [*base, "config", "current-context"]
    try:
        out = subprocess.run(query, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, env=env)
    except (OSError, subprocess.SubprocessError) as exc:
        return CheckResult(name, FAIL, f"kubectl failed: {brief_error(exc)}"), False
    if out.returncode != 0 or not out.stdout.strip():
        msg = (out.stderr.strip() or "no current context").splitlines()[0]
        if wanted:
            return CheckResult(name, FAIL, f"context {wanted!r} does not exist: {msg}",
                               "see `kubectl config get-contexts` for the names"), False
        return CheckResult(name, FAIL, f"no kubectl context: {msg}",
                           "point KUBECONFIG at your cluster's config and `kubectl config use-context NAME`"), False
    namespace = _flag(argv, "--namespace")
    where = f"context {out.stdout.strip()}" + (f", namespace {namespace}" if namespace else "")
    return CheckResult(name, PASS, where), True


def kubectl_nodes(kubectl: str | Sequence[str] = "kubectl", env: dict[str, str] | None = None) -> tuple[dict | None, str]:
    try:
        out = subprocess.run([*kubectl_argv(kubectl), "get", "nodes", "-o", "json", f"--request-timeout={PROBE_TIMEOUT_S}s"],
                             capture_output=True, text=True, timeout=PROBE_TIMEOUT_S + 5, env=env)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, brief_error(exc)
    if out.returncode != 0:
        return None, (out.stderr.strip() or f"exit {out.returncode}").splitlines()[0]
    try:
        return json.loads(out.stdout), ""
    except ValueError as exc:
        return None, f"kubectl printed no JSON ({exc})"


def check_k8s_secret(secret: str, keys: list[str], kubectl: str | Sequence[str] = "kubectl",
                     env: dict[str, str] | None = None) -> CheckResult:
    """The Secret the pods read their required keys from exists in the namespace, with those keys: a
    missing one leaves every pod in CreateContainerConfigError."""
    name = "kubernetes secret"
    argv = kubectl_argv(kubectl)
    namespace = _flag(argv, "--namespace") or "the context's namespace"
    fill = " ".join(f'--from-literal={k}="${k}"' for k in keys)
    fix = f"kubectl create secret generic {secret} {fill}" + (f" -n {_flag(argv, '--namespace')}"
                                                             if _flag(argv, "--namespace") else "")
    try:
        out = subprocess.run([*argv, "get", "secret", secret, "-o", "json", f"--request-timeout={PROBE_TIMEOUT_S}s"],
                             capture_output=True, text=True, timeout=PROBE_TIMEOUT_S + 5, env=env)
    except (OSError, subprocess.SubprocessError) as exc:
        return CheckResult(name, FAIL, f"cannot read secret {secret} in {namespace}: {brief_error(exc)}")
    if out.returncode != 0:
        err = (out.stderr.strip() or f"exit {out.returncode}").splitlines()[0]
        if "NotFound" in err or "not found" in err:
            return CheckResult(name, FAIL, f"secret {secret} does not exist in {namespace}", fix)
        return CheckResult(name, FAIL, f"cannot read secret {secret} in {namespace}: {err}",
                           "check that your user may `kubectl get secret` there")
    try:
        data = json.loads(out.stdout).get("data") or {}
    except ValueError:
        data = {}
    missing = [k for k in keys if k not in data]
    if missing:
        return CheckResult(name, FAIL, f"secret {secret} in {namespace} lacks {', '.join(missing)}", fix)
    return CheckResult(name, PASS, f"{secret} in {namespace} has {', '.join(keys)}")


def _quantity(value: Any) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


def check_k8s_gpu_capacity(nodes_doc: dict[str, Any], gpus_per_node: int, replicas: int = 1,
                           product: str | None = None, *, vendor: str = "nvidia") -> CheckResult:
    """Allocatable GPUs per node (`kubectl get nodes -o json`) against what one replica needs per node."""
    name = "kubernetes GPUs"
    resource = K8S_GPU_RESOURCE if vendor == "nvidia" else K8S_AMD_GPU_RESOURCE
    usable = []
    for node in nodes_doc.get("items", []):
        meta, spec, status = node.get("metadata", {}), node.get("spec", {}), node.get("status", {})
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
        gpus = _quantity((status.get("allocatable") or {}).get(resource))
        label = (meta.get("labels") or {}).get(K8S_GPU_PRODUCT_LABEL)
        if gpus and ready and not spec.get("unschedulable"):
            usable.append((meta.get("name", "?"), gpus, label))
    if product:
        matching = [u for u in usable if u[2] == product]
        if usable and not matching:
            seen = sorted({u[2] or "unlabelled" for u in usable})
            return CheckResult(name, FAIL, f"no ready node has {K8S_GPU_PRODUCT_LABEL}={product} (found: {', '.join(seen)})",
                               "add such nodes, or plan for the GPU the cluster has (`overrides.gpu_type`)")
        usable = matching
    if not usable:
        return CheckResult(name, FAIL, f"no ready, schedulable node advertises allocatable {resource}",
                           "install the NVIDIA GPU Operator or device plugin on the GPU nodes"
                           if vendor == "nvidia" else "install the AMD GPU device plugin on the GPU nodes")
    fit = [u for u in usable if u[1] >= gpus_per_node]
    desc = ", ".join(f"{n}: {g}" for n, g, _ in usable[:8]) + (" …" if len(usable) > 8 else "")
    if not fit:
        return CheckResult(name, FAIL, f"a replica needs {gpus_per_node} {resource} on one node; largest node has "
                           f"{max(u[1] for u in usable)} ({desc})",
                           "add bigger GPU nodes, or plan with fewer GPUs per replica")
    slots = sum(g // max(1, gpus_per_node) for _, g, _ in fit)
    if slots < replicas:
        return CheckResult(name, WARN, f"room for {slots} of {replicas} replicas at {count(gpus_per_node, 'GPU')} each ({desc})",
                           "add GPU nodes or lower replicas; allocatable is an upper bound (other pods use GPUs too)")
    return CheckResult(name, PASS, f"{count(len(fit), 'node')} fit a replica of {count(gpus_per_node, 'GPU')}; "
                       f"{count(slots, 'slot')} for {count(replicas, 'replica')} ({desc})")
