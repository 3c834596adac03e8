"""Doctor checks of the compose target: a Docker engine and the compose CLI, the GPU runtime, HAProxy.
(The Docker checks live in doctor: the systemd target's docker runtime uses them too.)"""

from __future__ import annotations

from typing import Any, Sequence

from llmctl.doctor import CheckResult, Requirements
from llmctl.targets.proxy_check import check_haproxy


def checks(req: Requirements, env: dict[str, str],
           kubectl: str | Sequence[str]) -> tuple[list[CheckResult], dict[str, Any] | None]:
    from llmctl import doctor

    res, docker_info = doctor.check_container_engine(env.get("DOCKER_HOST"))
    results = [res, doctor.check_compose_cli(env)]
    if req.gpu_vendor == "nvidia":
        results.append(doctor.check_gpu_runtime(docker_info))
    elif req.gpu_vendor == "amd":
        results.append(doctor.check_amd_devices())
    results.append(check_haproxy())
    return results, docker_info
