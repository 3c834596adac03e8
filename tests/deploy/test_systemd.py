"""The systemd target. The build machines run without systemd as PID 1, so `up --target systemd` must
say so clearly and change nothing; the systemctl/journalctl command lines are checked as data."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.conftest import write_spec
from llmctl.targets.systemd import apply as sd
from support.cli import run_llmctl


def test_systemctl_and_journalctl_argv():
    assert sd.systemctl_argv(False, "enable", "--now", "x.service") == ["systemctl", "enable", "--now", "x.service"]
    assert sd.systemctl_argv(True, "daemon-reload") == ["systemctl", "--user", "daemon-reload"]
    assert sd.journalctl_argv(True, "x.service", 20) == ["journalctl", "--user", "--unit", "x.service", "--lines", "20",
                                                         "--no-pager", "--output", "cat"]


def test_user_unit_dir_follows_xdg_config_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert sd.user_unit_dir() == tmp_path / "systemd" / "user"


def test_require_systemd_names_the_missing_runtime_dir(tmp_path):
    from llmctl.errors import CheckFailed

    with pytest.raises(CheckFailed, match="does not run systemd") as exc:
        sd.require_systemd(str(tmp_path / "absent"))
    assert "--target compose" in str(exc.value)


@pytest.mark.skipif(Path(sd.SYSTEMD_RUNTIME_DIR).is_dir(), reason="this host runs systemd")
@pytest.mark.parametrize("user", [False, True])
def test_up_on_a_host_without_systemd(tmp_path, tiny_gguf, monkeypatch, user):
    spec = write_spec(tmp_path / "llmctl.yaml", model=str(tiny_gguf), port=18081, target="systemd")
    before = set(Path(sd.SYSTEM_UNIT_DIR).glob("*")) if Path(sd.SYSTEM_UNIT_DIR).is_dir() else set()
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    r = run_llmctl("up", spec, *(["--user"] if user else []), env=env)
    assert r.code == 1, r.output
    assert "this host does not run systemd" in r.stderr and "Traceback" not in r.output
    after = set(Path(sd.SYSTEM_UNIT_DIR).glob("*")) if Path(sd.SYSTEM_UNIT_DIR).is_dir() else set()
    assert after == before and not (tmp_path / "config").exists()
