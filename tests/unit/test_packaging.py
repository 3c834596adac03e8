"""`pip install .` (not only -e) ships each package's templates/ and profiles/ inside the package, and llmctl runs from anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_installed_package_carries_its_data(tmp_path: Path) -> None:
    target = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(ROOT)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr
    assert (target / "llmctl" / "profiles" / "gpus.yaml").is_file()
    for pkg in ("targets/compose", "targets/systemd", "targets/kubernetes", "traffic"):
        assert any((target / "llmctl" / pkg / "templates").glob("*.j2")), pkg
    env = {**os.environ, "PYTHONPATH": str(target), "LLMCTL_CACHE_DIR": str(tmp_path / "cache")}
    where = subprocess.run([sys.executable, "-c", "import llmctl; print(llmctl.__file__)"], capture_output=True,
                           text=True, env=env, cwd="/")
    assert where.stdout.strip().startswith(str(target)), where.stdout  # the installed copy, not the checkout
    run = subprocess.run([sys.executable, "-m", "llmctl", "plan", str(ROOT / "examples/laptop-cpu.yaml"), "-o", "json"],
                         capture_output=True, text=True, env=env, cwd="/", timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["backend"] in ("ollama", "llama.cpp")
    out = tmp_path / "rendered"
    run = subprocess.run([sys.executable, "-m", "llmctl", "render", str(ROOT / "examples/team-rtx4090.yaml"),
                          "--out", str(out)], capture_output=True, text=True, env=env, cwd="/", timeout=120)
    assert run.returncode == 0, run.stderr
    assert any(out.iterdir())
