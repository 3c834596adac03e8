"""The tiny test model: a Hugging Face folder and a GGUF file of the same weights and tokenizer."""

from __future__ import annotations

import json

import numpy as np

from support import tiny_models as tm


def test_hf_folder_has_a_vllm_cpu_friendly_llama(tiny_hf_model):
    config = json.loads((tiny_hf_model / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["hidden_size"] // config["num_attention_heads"] == 32  # head size vLLM's CPU attention supports
    tok = json.loads((tiny_hf_model / "tokenizer_config.json").read_text())
    assert tok["tokenizer_class"] == "LlamaTokenizer" and "{% for message in messages %}" in tok["chat_template"]
    from safetensors.numpy import load_file

    weights = load_file(str(tiny_hf_model / "model.safetensors"))
    assert weights["model.embed_tokens.weight"].shape == (tm.VOCAB, tm.HIDDEN)
    assert weights["lm_head.weight"][tm.EOS].any() == False  # noqa: E712 - EOS never wins a greedy pick


def test_gguf_holds_the_same_weights_and_tokenizer(tiny_hf_model, tiny_gguf):
    import gguf
    import sentencepiece as spm
    from safetensors.numpy import load_file

    reader = gguf.GGUFReader(str(tiny_gguf))
    fields = reader.fields
    assert bytes(fields["general.architecture"].parts[-1]).decode() == "llama"
    assert int(fields["llama.attention.head_count"].parts[-1][0]) == tm.HEADS
    assert bytes(fields["tokenizer.chat_template"].parts[-1]).decode() == tm.CHAT_TEMPLATE
    sp = spm.SentencePieceProcessor(model_file=str(tiny_hf_model / "tokenizer.model"))
    tokens = fields["tokenizer.ggml.tokens"]
    assert len(tokens.data) == sp.get_piece_size() == tm.VOCAB
    assert bytes(tokens.parts[tokens.data[300]]).decode() == sp.id_to_piece(300)

    hf = load_file(str(tiny_hf_model / "model.safetensors"))
    tensors = {t.name: t for t in reader.tensors}
    assert len(tensors) == len(hf)
    np.testing.assert_array_equal(np.asarray(tensors["token_embd.weight"].data), hf["model.embed_tokens.weight"])
    np.testing.assert_array_equal(np.asarray(tensors["blk.1.ffn_down.weight"].data), hf["model.layers.1.mlp.down_proj.weight"])
    # q/k rows are reordered for GGUF's rope layout, not changed
    q = np.asarray(tensors["blk.0.attn_q.weight"].data)
    np.testing.assert_array_equal(np.sort(q, axis=None), np.sort(hf["model.layers.0.self_attn.q_proj.weight"], axis=None))


def test_tokenizer_round_trips_text(tiny_hf_model):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tiny_hf_model / "tokenizer.model"))
    text = "hello world, the model serves tokens 42 ünïcode"
    ids = sp.encode(text)
    assert sp.decode(ids) == text  # byte fallback covers characters never seen in training
