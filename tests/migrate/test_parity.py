"""Parity between two servers: the logprob shapes of every API normalised, the first-difference rule,
and real runs — two llama.cpp servers on the same tiny GGUF pass with exact agreement, and a server on
a tiny model with other weights (same shapes and tokenizer) fails it.

The answer bodies in the shape tests follow the engines' sources: Ollama v0.32.15 api/types.go
(Logprob, TokenLogprob) and openai/openai.go (ChoiceLogprobs{content}), vLLM's OpenAI protocol
(chat `logprobs.content`, legacy completions `tokens/token_logprobs/top_logprobs`)."""

from __future__ import annotations

import json

import pytest

from llmctl.errors import CheckFailed, InputError
from llmctl.migrate.parity import Side, Step, compare_greedy, cosine, run_parity, token_steps, write_parity


def _tl(token, lp, top):
    return {"token": token, "logprob": lp, "bytes": list(token.encode()),
            "top_logprobs": [{"token": t, "logprob": v} for t, v in top]}


def test_the_three_logprob_shapes_give_the_same_steps():
    entries = [_tl(" a", -0.1, [(" a", -0.1), (" b", -2.0)]), _tl(" c", -0.3, [(" c", -0.3), (" d", -1.5)])]
    chat = {"choices": [{"message": {"content": " a c"}, "logprobs": {"content": entries}}]}
    ollama_native = {"message": {"content": " a c"}, "logprobs": entries, "eval_count": 2}
    legacy = {"choices": [{"text": " a c", "logprobs": {
        "tokens": [" a", " c"], "token_logprobs": [-0.1, -0.3],
        "top_logprobs": [{" a": -0.1, " b": -2.0}, {" c": -0.3, " d": -1.5}]}}]}
    want = [Step(" a", -0.1, {" a": -0.1, " b": -2.0}), Step(" c", -0.3, {" c": -0.3, " d": -1.5})]
    assert token_steps(chat) == token_steps(ollama_native) == token_steps(legacy) == want
    assert token_steps({"choices": [{"message": {"content": "x"}}]}) == []
    with pytest.raises(CheckFailed, match="unknown logprobs shape"):
        token_steps({"choices": [{"logprobs": {"odd": 1}}]})


def test_first_difference_must_be_in_each_others_top_n():
    old = [Step("a", 0, {"a": 0, "b": -1}), Step("x", 0, {"x": 0, "y": -1})]
    near = [Step("a", 0, {"a": 0}), Step("y", 0, {"y": 0, "x": -0.5})]
    far = [Step("a", 0, {"a": 0}), Step("z", 0, {"z": 0, "q": -0.5})]
    r = compare_greedy(old, near, 5)
    assert (r["first_difference"], r["matched"], r["compared"], r["ok"]) == (1, 1, 2, True)
    r = compare_greedy(old, far, 5)
    assert r["ok"] is False and r["old_in_new_top"] is False and r["new_in_old_top"] is False
    same = compare_greedy(old, old, 5)
    assert same["first_difference"] is None and same["ok"] and same["matched"] == same["compared"] == 2


def test_a_numerical_tie_counts_as_agreement_and_ends_the_comparison():
    # the first-token logprobs of vLLM (float32) and llama.cpp (F16 KV cache) on the same tiny weights
    vllm = [Step("u", -1.2342, {"u": -1.2342, "m": -1.2394, "a": -2.8566}), Step("6", -0.68, {"6": -0.68})]
    llama = [Step("m", -1.2360, {"m": -1.2360, "u": -1.2372, "a": -2.8554}), Step("v", -1.48, {"v": -1.48})]
    r = compare_greedy(llama, vllm, 5, tie_gap=0.02)
    assert r["tie"] and r["ok"] and (r["matched"], r["compared"]) == (1, 1)
    strict = compare_greedy(llama, vllm, 5, tie_gap=0.001)
    assert not strict["tie"] and (strict["matched"], strict["compared"]) == (0, 1)


def test_cosine_and_mismatched_sizes():
    assert cosine([1, 0], [1, 0]) == pytest.approx(1.0)
    assert cosine([1, 0], [0, 1]) == pytest.approx(0.0)
    with pytest.raises(CheckFailed, match="different sizes"):
        cosine([1, 0], [1, 0, 0])


def test_bad_side_api_and_weights_are_input_errors():
    with pytest.raises(InputError, match="API 'grpc'"):
        Side("ollama", "http://x", "m", api="grpc")
    with pytest.raises(InputError, match="weights must be"):
        run_parity(Side("ollama", "http://x", "m"), Side("vllm", "http://y", "m"), weights="maybe")


@pytest.mark.e2e
def test_same_weights_pass_exactly_and_other_weights_fail(start_llama_server, tmp_path, e2e_log_dir):
    """Real llama.cpp servers: the old side and a new side on the same GGUF agree token for token;
    a new side on a model with other random weights (tests/support/tiny_models.py, weight_seed)
    diverges where the other side's top 5 does not hold its token, and the run says FAILED."""
    from support import servers
    from support.tiny_models import ensure_tiny_models

    old = start_llama_server()
    same = start_llama_server()
    doc = run_parity(Side("ollama", old.base_url, "tiny"), Side("vllm", same.base_url, "tiny"), weights="same")
    assert doc["passed"], json.dumps(doc["checks"], indent=1)[:2000]
    assert doc["checks"]["greedy"]["top1_agreement"] == 1.0
    assert doc["checks"]["tasks"]["same_answers"] is True and doc["chat_template"]["same"] is True
    perf = doc["performance"]
    assert perf["ollama"]["smoke_ok"] and perf["vllm"]["decode_tokens_per_s"] > 0
    json_path, md_path = write_parity(tmp_path, doc)
    assert json.loads(json_path.read_text())["schema"] == "llmctl.migrate.parity/v1"
    assert "**PASSED**" in md_path.read_text()
    same.stop()

    _, other_gguf = ensure_tiny_models(weight_seed=4321)
    other = servers.start_llama_server(other_gguf, e2e_log_dir)
    try:
        bad = run_parity(Side("ollama", old.base_url, "tiny"), Side("vllm", other.base_url, "tiny"),
                         weights="same", perf=False)
    finally:
        other.stop()
    assert not bad["passed"]
    assert bad["checks"]["greedy"]["top1_agreement"] < 1.0
    write_parity(tmp_path, bad)
    assert "**FAILED**" in (tmp_path / "parity.md").read_text()
