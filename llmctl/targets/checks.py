"""Doctor checks that belong to one target (the registry names them): what each needs on the machine
that deploys it. The generic checks (GPUs, driver, disk, ports, /dev/shm, token) stay in doctor."""

from __future__ import annotations

from typing import Any, Sequence

from llmctl.doctor import FAIL, PASS, CheckResult, Requirements


def compose_checks(req: Requirements, env: dict[str, str], kubectl: "str | Sequence[str]") -> tuple[list[CheckResult], dict[str, Any] | None]:
    from llmctl import doctor

    res, docker_info = doctor.check_container_engine(env.get("DOCKER_HOST"))
    results = [res, doctor.check_compose_cli(env)]
    if req.gpu_vendor == "nvidia":
        results.append(doctor.check_gpu_runtime(docker_info))
    elif req.gpu_vendor == "amd":
        results.append(doctor.check_amd_devices())
    results.append(check_haproxy())
    return results, docker_info


def systemd_checks(req: Requirements, env: dict[str, str], kubectl: "str | Sequence[str]") -> tuple[list[CheckResult], None]:
    from llmctl import doctor

    return [doctor.check_systemd()], None


def kubernetes_checks(req: Requirements, env: dict[str, str], kubectl: "str | Sequence[str]") -> tuple[list[CheckResult], None]:
    from llmctl import doctor

    res, ok = doctor.check_kubectl_context(kubectl, env)
    results = [res]
    if req.gpu_vendor in ("nvidia", "amd"):
        if ok:
            nodes, err = doctor.kubectl_nodes(kubectl, env)
            results.append(
                doctor.check_k8s_gpu_capacity(nodes, req.gpus_per_node, req.replicas, req.gpu_product_label,
                                              vendor=req.gpu_vendor)
                if nodes is not None
                else CheckResult("kubernetes GPUs", FAIL, f"cannot list nodes: {err}",
                                 "check that your user may `kubectl get nodes`"))
        else:
            results.append(CheckResult("kubernetes GPUs", doctor.SKIP, "no usable kubectl context"))
    if req.kube_secret:
        results.append(doctor.check_k8s_secret(req.kube_secret, req.kube_secret_keys, kubectl, env) if ok else
                       CheckResult("kubernetes secret", doctor.SKIP, "no usable kubectl context"))
    return results, None


def local_checks(req: Requirements, env: dict[str, str], kubectl: "str | Sequence[str]") -> tuple[list[CheckResult], None]:
    return [check_haproxy()], None


def check_haproxy() -> CheckResult:
    """The traffic layer in front of local and compose deployments needs the haproxy binary."""
    import subprocess

    from llmctl.errors import CheckFailed
    from llmctl.traffic.proxy import haproxy_binary

    name = "haproxy (traffic layer)"
    try:
        exe = haproxy_binary()
    except CheckFailed as exc:
        return CheckResult(name, FAIL, "haproxy is not installed: updates switch traffic through it",
                           str(exc).split("fix: ", 1)[-1])
    out = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=10, check=False)
    first = (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else exe
    return CheckResult(name, PASS, first.strip()[:80])
