"""A tiny Llama model made at test time, in two forms fed by the same weights:

* a Hugging Face folder (config.json, model.safetensors, tokenizer files) for vLLM, and
* a GGUF file for llama.cpp (tokenizer in the GGUF metadata).

Nothing is downloaded. The tokenizer is a sentencepiece BPE model (vocab 320, byte fallback) trained
here on generated text. Weights are random with a fixed seed; the output rows of the special and
byte tokens are zero, so greedy decoding never picks end-of-sequence and always returns readable
text. Both servers fed these weights should agree on greedy output.

Sizes: hidden 64, 2 layers, 2 heads of 32. vLLM's CPU attention supports head sizes 32, 64, 80, 96,
112, 128, … only (4 heads of 16 crash the engine on its first request).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

# Bump when anything below changes: cached copies live under tiny-models/<VERSION>.
VERSION = "llama-h64-l2-v320-1"

SEED = 1234
VOCAB = 320
HIDDEN = 64
INTERMEDIATE = 128
LAYERS = 2
HEADS = 2
KV_HEADS = 2
HEAD_DIM = HIDDEN // HEADS
MAX_POSITIONS = 2048
RMS_EPS = 1e-5
ROPE_THETA = 10000.0
UNK, BOS, EOS = 0, 1, 2

# A small Jinja chat template (same text in tokenizer_config.json and in the GGUF metadata).
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<{{ message['role'] }}>: {{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}<assistant>: {% endif %}"
)

_WORDS = (
    "the a model serves tokens fast slow queue batch replica engine cache memory plan spec "
    "deploy check smoke latency first token stream server port health metrics prompt output "
    "context window llama vllm ollama compose unit pod node gpu cpu quant weight layer head "
    "one two three four five six seven eight nine ten hello world yes no ok"
).split()


def cache_root(weight_seed: int = SEED) -> Path:
    """The cache folder of one build; a model with other weights (`weight_seed`) is cached apart."""
    base = os.environ.get("LLMCTL_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "llmctl")
    name = VERSION if weight_seed == SEED else f"{VERSION}-seed{weight_seed}"
    return Path(base) / "tiny-models" / name


def ensure_tiny_models(root: Path | None = None, *, weight_seed: int = SEED) -> tuple[Path, Path]:
    """Build (once) and return (hf_dir, gguf_path). `weight_seed`: another seed gives the same shapes
    and tokenizer with other random weights (a model that must not pass as the same one)."""
    root = root or cache_root(weight_seed)
    hf_dir, gguf_path = root / "hf", root / "tiny.gguf"
    if (root / ".complete").exists() and hf_dir.is_dir() and gguf_path.is_file():
        return hf_dir, gguf_path
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root.parent))
    try:
        build(tmp / "hf", tmp / "tiny.gguf", weight_seed=weight_seed)
        (tmp / ".complete").write_text(VERSION + "\n")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return hf_dir, gguf_path


def build(hf_dir: Path, gguf_path: Path, *, weight_seed: int = SEED) -> None:
    hf_dir.mkdir(parents=True, exist_ok=True)
    sp_model = train_tokenizer()
    (hf_dir / "tokenizer.model").write_bytes(sp_model)
    weights = make_weights(sp_model, weight_seed)
    write_hf(hf_dir, weights)
    write_gguf(gguf_path, weights, sp_model)


# --------------------------------------------------------------------------- tokenizer


def _corpus(lines: int = 3000) -> list[str]:
    import random

    rng = random.Random(SEED)
    out = []
    for _ in range(lines):
        n = rng.randint(3, 12)
        words = [rng.choice(_WORDS) for _ in range(n)]
        s = " ".join(words)
        if rng.random() < 0.3:
            s += rng.choice([".", "?", ","])
        if rng.random() < 0.2:
            s += f" {rng.randint(0, 999)}"
        out.append(s)
    return out


def train_tokenizer() -> bytes:
    """Train a sentencepiece BPE model shaped like Llama's (byte fallback, <unk> <s> </s> = 0 1 2)."""
    import io

    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_corpus()),
        model_writer=buf,
        model_type="bpe",
        vocab_size=VOCAB,
        byte_fallback=True,
        character_coverage=1.0,
        unk_id=UNK,
        bos_id=BOS,
        eos_id=EOS,
        pad_id=-1,
        add_dummy_prefix=True,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        split_digits=True,
        num_threads=1,
        minloglevel=2,
    )
    return buf.getvalue()


def _processor(sp_model: bytes):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_proto=sp_model)


# --------------------------------------------------------------------------- weights


def make_weights(sp_model: bytes, weight_seed: int = SEED) -> dict[str, "object"]:
    """HF-named float32 arrays (Llama layout), random from `weight_seed`."""
    import numpy as np

    sp = _processor(sp_model)
    assert sp.get_piece_size() == VOCAB, sp.get_piece_size()
    rng = np.random.default_rng(weight_seed)

    def linear(out_dim: int, in_dim: int) -> "np.ndarray":
        return (rng.standard_normal((out_dim, in_dim)) / np.sqrt(in_dim)).astype(np.float32)

    w: dict[str, np.ndarray] = {}
    w["model.embed_tokens.weight"] = rng.standard_normal((VOCAB, HIDDEN)).astype(np.float32)
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = np.ones(HIDDEN, np.float32)
        w[p + "self_attn.q_proj.weight"] = linear(HEADS * HEAD_DIM, HIDDEN)
        w[p + "self_attn.k_proj.weight"] = linear(KV_HEADS * HEAD_DIM, HIDDEN)
        w[p + "self_attn.v_proj.weight"] = linear(KV_HEADS * HEAD_DIM, HIDDEN)
        w[p + "self_attn.o_proj.weight"] = linear(HIDDEN, HEADS * HEAD_DIM)
        w[p + "post_attention_layernorm.weight"] = np.ones(HIDDEN, np.float32)
        w[p + "mlp.gate_proj.weight"] = linear(INTERMEDIATE, HIDDEN)
        w[p + "mlp.up_proj.weight"] = linear(INTERMEDIATE, HIDDEN)
        w[p + "mlp.down_proj.weight"] = linear(HIDDEN, INTERMEDIATE)
    w["model.norm.weight"] = np.ones(HIDDEN, np.float32)
    # Peaked logits (scale 4) so greedy choices are clear-cut in both engines' arithmetic.
    head = 4.0 * linear(VOCAB, HIDDEN)
    for tid in range(VOCAB):
        if sp.is_control(tid) or sp.is_unknown(tid) or sp.is_byte(tid):
            head[tid] = 0.0  # never the argmax: no early end-of-sequence, no stray bytes
    w["lm_head.weight"] = head
    return w


# --------------------------------------------------------------------------- Hugging Face folder


def write_hf(hf_dir: Path, weights: dict) -> None:
    from safetensors.numpy import save_file

    save_file(weights, str(hf_dir / "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": VOCAB,
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": HEAD_DIM,
        "max_position_embeddings": MAX_POSITIONS,
        "rms_norm_eps": RMS_EPS,
        "rope_theta": ROPE_THETA,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "attention_bias": False,
        "mlp_bias": False,
        "initializer_range": 0.02,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "torch_dtype": "float32",
    }
    (hf_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (hf_dir / "generation_config.json").write_text(
        json.dumps({"bos_token_id": BOS, "eos_token_id": EOS}, indent=2) + "\n"
    )
    tok_config = {
        "tokenizer_class": "LlamaTokenizer",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": None,
        "add_bos_token": True,
        "add_eos_token": False,
        "legacy": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": MAX_POSITIONS,
        "chat_template": CHAT_TEMPLATE,
    }
    (hf_dir / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n")
    (hf_dir / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}, indent=2) + "\n"
    )


# --------------------------------------------------------------------------- GGUF


def _rope_permute(w, n_head: int):
    """HF stores q/k rows in rotate-half order; GGUF 'llama' expects interleaved pairs per head."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(path: Path, weights: dict, sp_model: bytes) -> None:
    import gguf

    sp = _processor(sp_model)
    tokens, scores, types = [], [], []
    for tid in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(tid).encode("utf-8"))
        scores.append(float(sp.get_score(tid)))
        if sp.is_unknown(tid):
            types.append(gguf.TokenType.UNKNOWN)
        elif sp.is_control(tid):
            types.append(gguf.TokenType.CONTROL)
        elif sp.is_byte(tid):
            types.append(gguf.TokenType.BYTE)
        elif sp.is_unused(tid):
            types.append(gguf.TokenType.UNUSED)
        else:
            types.append(gguf.TokenType.NORMAL)

    wr = gguf.GGUFWriter(str(path), "llama")
    wr.add_name("tiny")
    wr.add_context_length(MAX_POSITIONS)
    wr.add_embedding_length(HIDDEN)
    wr.add_block_count(LAYERS)
    wr.add_feed_forward_length(INTERMEDIATE)
    wr.add_head_count(HEADS)
    wr.add_head_count_kv(KV_HEADS)
    wr.add_rope_dimension_count(HEAD_DIM)
    wr.add_rope_freq_base(ROPE_THETA)
    wr.add_layer_norm_rms_eps(RMS_EPS)
    wr.add_vocab_size(VOCAB)
    wr.add_file_type(gguf.LlamaFileType.ALL_F32)
    wr.add_tokenizer_model("llama")
    wr.add_token_list(tokens)
    wr.add_token_scores(scores)
    wr.add_token_types(types)
    wr.add_bos_token_id(BOS)
    wr.add_eos_token_id(EOS)
    wr.add_unk_token_id(UNK)
    wr.add_add_bos_token(True)
    wr.add_add_eos_token(False)
    wr.add_chat_template(CHAT_TEMPLATE)

    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    per_layer = {
        "input_layernorm.weight": "attn_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight",
        "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.v_proj.weight": "attn_v.weight",
        "self_attn.o_proj.weight": "attn_output.weight",
        "post_attention_layernorm.weight": "ffn_norm.weight",
        "mlp.gate_proj.weight": "ffn_gate.weight",
        "mlp.up_proj.weight": "ffn_up.weight",
        "mlp.down_proj.weight": "ffn_down.weight",
    }
    for i in range(LAYERS):
        for hf, gg in per_layer.items():
            names[f"model.layers.{i}.{hf}"] = f"blk.{i}.{gg}"
    for hf_name, array in weights.items():
        if hf_name.endswith("q_proj.weight"):
            array = _rope_permute(array, HEADS)
        elif hf_name.endswith("k_proj.weight"):
            array = _rope_permute(array, KV_HEADS)
        wr.add_tensor(names[hf_name], array)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
