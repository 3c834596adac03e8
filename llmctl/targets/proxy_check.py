"""The doctor check of the traffic layer in front of local, compose and systemd deployments."""

from __future__ import annotations

from llmctl.doctor import FAIL, PASS, CheckResult


def check_haproxy() -> CheckResult:
    """The traffic layer in front of local, compose and systemd deployments needs the haproxy binary."""
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
