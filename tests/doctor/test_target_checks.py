"""Target-specific doctor checks come from the target registry: local and compose check the traffic
layer's haproxy (installed here by scripts/test), systemd its init system."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llmctl import doctor
from llmctl.doctor import PASS, Requirements


def _names(target: str) -> dict[str, str]:
    results = doctor.check_requirements(Requirements(target=target), env={"PATH": "/usr/bin:/bin:/usr/sbin"})
    return {r.name: r.status for r in results}


@pytest.mark.skipif(not (shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists()), reason="haproxy not installed")
def test_local_checks_haproxy():
    names = _names("local")
    assert names["haproxy (traffic layer)"] == PASS
    assert "systemd" not in names


def test_systemd_checks_its_init_system_and_its_proxy():
    names = _names("systemd")
    assert "systemd" in names and "haproxy (traffic layer)" in names  # the proxy unit runs HAProxy
