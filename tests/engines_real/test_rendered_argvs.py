"""Every command line llmctl renders, judged by the engines themselves.

A matrix of real plans (tests/support/render_matrix.py: models × hardware × engines × needs ×
environments, each planned by the planner and rendered by every target) is handed to vLLM's own
serve parser, the real llama-server (started on the tiny GGUF, its /health and /metrics probed as
the rendered probes and PodMonitor do), and, since Ollama cannot run here, the contract table read
from Ollama's source (tests/support/ollama_contract.py).
"""

from __future__ import annotations

from llmctl.typed import updated
import pytest

from support.requires import require
from support import ollama_contract, vllm_args
from support.llama_server import check_argv, local_argv
from support.render_matrix import build_matrix, distinct_argvs

pytestmark = pytest.mark.e2e

KEY = "sk-test-only"


@pytest.fixture(scope="module")
def matrix():
    items, _skipped = build_matrix()
    return items


def test_the_matrix_covers_engines_targets_and_needs(matrix):
    assert len(matrix) >= 50
    assert {r.service.engine for r in matrix} == {"vllm", "llama.cpp", "ollama"}
    assert all(r.targets == ("compose", "systemd", "kubernetes") for r in matrix)
    needs = {n for r in matrix for n in r.spec.needs}
    assert {"tool_calling", "lora", "structured_output", "prefix_caching"} <= needs


def test_vllm_parser_accepts_every_rendered_argv(matrix):
    require(vllm_args.missing_reason() is None, vllm_args.missing_reason() or "")
    argvs = distinct_argvs(matrix, "vllm")
    tooled = next(a for a in argvs if "--tool-call-parser" in a)
    # the judge can say no: the same line without its parser is what vLLM refuses at start
    i = tooled.index("--tool-call-parser")
    broken = [*tooled[:i], *tooled[i + 2:]]
    results = vllm_args.check_vllm_argvs([list(a) for a in argvs] + [broken])
    *rendered, refused = results
    bad = [f"{argvs[tuple(r.argv)]}: {r}" for r in rendered if not r.ok]
    assert not bad, "\n".join(bad)
    assert not refused.ok and "tool" in refused.error.lower()


def test_llama_server_starts_every_rendered_argv(matrix, tiny_gguf, llama_server_binary):
    seen: dict[tuple[str, ...], object] = {}
    for r in matrix:
        if r.service.engine == "llama.cpp":
            seen.setdefault(tuple(local_argv(list(r.service.argv), tiny_gguf, 0, llama_server_binary)), r)
    assert len(seen) >= 5
    for r in seen.values():
        keyed = any(s.env == "LLAMA_API_KEY" for s in r.service.secrets)
        res = check_argv(list(r.service.argv), tiny_gguf, env={"LLAMA_API_KEY": KEY} if keyed else None,
                         probe=("/health", "/metrics"), api_key=KEY if keyed else None)
        assert res.accepted and res.started, f"{r.label}: {res}"
        # the rendered probes call /health without credentials
        assert res.probes["/health"]["anonymous"] == 200, r.label
        if keyed:
            # /metrics needs the key: the PodMonitor sends it from the Secret
            assert res.probes["/metrics"] == {"anonymous": 401, "with_key": 200}, r.label
            assert r.service.metrics_secret_key == "LLAMA_API_KEY"
        else:
            assert res.probes["/metrics"]["anonymous"] == 200, r.label


def test_ollama_renders_keep_the_contract(matrix):
    ollama = [r for r in matrix if r.service.engine == "ollama"]
    assert ollama
    bad = [f"{r.label}: {v}" for r in ollama for v in ollama_contract.violations(r.service)]
    assert not bad, "\n".join(bad)
    # the table can say no
    s = ollama[0].service
    broken = updated(s, env={**s.env, "OLLAMA_KEEP_ALIVE": "forever", "OLLAMA_NEW_ENGINE": "1"})
    assert len(ollama_contract.violations(broken)) == 2
