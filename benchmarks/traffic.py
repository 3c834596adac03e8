"""Updates through the traffic layer: `python -m benchmarks.traffic [UPDATES]`.

Deploys the tiny llama.cpp model with `llmctl up --target local` (HAProxy in front), streams chat
completions through it with the load generator of the tests, runs UPDATES spec changes (default 3),
each one an `llmctl up`, and prints per update: wall time, streams finished and streams dropped
or cut, and HAProxy's resident memory (master + workers) under load. Needs llama-cpp-python[server]
and haproxy (scripts/test installs both).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    from deploy.conftest import write_spec
    from support.cli import run_llmctl
    from support.images import llama_server_script
    from support.load import StreamLoad
    from support.net import free_port
    from support.tiny_models import ensure_tiny_models

    from llmctl.deploy.state import deployment_dir
    from llmctl.traffic.proxy import Proxy

    updates = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    gguf = ensure_tiny_models()[1]
    with tempfile.TemporaryDirectory(prefix="llmctl-bench-") as tmp:
        work = Path(tmp)
        (work / "bin").mkdir()
        shim = work / "bin" / "llama-server"
        shim.write_text(llama_server_script(sys.executable))
        shim.chmod(0o755)
        env = {"PATH": f"{work / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
        port = free_port()
        spec = write_spec(work / "llmctl.yaml", model=str(gguf), port=port, target="local", name="bench")
        proxy = Proxy(deployment_dir(spec, "bench") / "proxy")
        rows = []
        r = run_llmctl("up", spec, "--timeout", "120", env=env)
        if r.code != 0:
            raise SystemExit(f"llmctl up failed:\n{r.output}")
        idle_rss = proxy.rss_kib() / 1024
        load = StreamLoad(f"http://127.0.0.1:{port}", str(gguf), workers=2, max_tokens=16).start()
        try:
            load.wait_for(4, timeout_s=120)
            for i in range(updates):
                before_ok, before_failed = load.report.ok, len(load.report.failed)
                write_spec(work / "llmctl.yaml", model=str(gguf), port=port, target="local", name="bench",
                           concurrency=3 + i)
                start = time.monotonic()
                r = run_llmctl("up", spec, "--timeout", "120", env=env)
                took = time.monotonic() - start
                if r.code != 0:
                    raise SystemExit(f"update {i + 1} failed:\n{r.output}")
                rss = proxy.rss_kib() / 1024
                load.wait_for(load.report.total + 2, timeout_s=120)
                rows.append([i + 1, f"{took:.1f} s", load.report.ok - before_ok,
                             len(load.report.failed) - before_failed, f"{rss:.1f} MiB"])
        finally:
            report = load.stop()
            run_llmctl("down", spec, env=env)
    print(tabulate(rows, headers=["update", "wall time (incl. smoke test)", "streams finished", "dropped or cut",
                                  "HAProxy RSS"]))
    print(f"\nall: {report.ok} streams finished, {len(report.failed)} dropped or cut; HAProxy RSS idle {idle_rss:.1f} MiB")
    return 0 if not report.failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
