"""Prompts of a requested length in tokens, for `llmctl bench`.

Text is made of plain words drawn with a seed; every request gets the same words in its own order (so
a prefix cache does not turn the benchmark into a cache test, and every prompt has the same length). Its length in tokens is found, in this order:

* ``tokenize`` — the server's own tokenizer: POST /tokenize (vLLM: {"model", "prompt"} → "count"/"tokens";
  llama-server: {"content"} → "tokens"). The word count is searched until the text has the length.
* ``usage`` — no /tokenize: one request with max_tokens 1 and the server's usage counts
  (OpenAI `usage.prompt_tokens`, Ollama `prompt_eval_count`) give tokens per word, refined twice.
* ``estimate`` — neither: 1.3 tokens per word (English text in BPE tokenizers), and the result says so.

The lengths every request really had are measured again from each reply's usage counts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but have an "
    "they you were her she there one all we their been has would when if more will who what so out up into "
    "time only new some could these two may first then do any like my now over such our man me even most "
    "made after also did many before must through back years where much your way well down should because "
    "each just those people how too little state good very make world still own see men work long get here "
    "between both life being under never day same another know while last might us great old year off come "
    "since against go came right used take three river city music garden paper window summer number letter"
).split()
TOKENS_PER_WORD_GUESS = 1.3
MAX_SEARCH = 12  # tokenize calls to hit the length


@dataclass
class PromptSet:
    texts: list[str]
    target_tokens: int
    method: str  # tokenize | usage | estimate | file
    measured_tokens: int | None  # the length the method found for the first text
    note: str = ""


def words_text(n_words: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(max(1, n_words)))


def shuffled(text: str, seed: int) -> str:
    """The same words in another order: the same length in tokens (tokenizers split at spaces first),
    a different prefix for every request."""
    words = text.split(" ")
    random.Random(seed).shuffle(words)
    return " ".join(words)


def from_file(path: str, n: int) -> PromptSet:
    """Prompts from a file: one per line, or JSON lines with a "prompt" (or "text") field."""
    import json

    from llmctl.errors import InputError
    from llmctl.fileio import read_text_input

    text = read_text_input(path, what="prompts", max_bytes=64 * 1024 * 1024)
    prompts: list[str] = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"not valid JSON: {exc.msg}", where=f"{path}:{i}") from None
            value = obj.get("prompt", obj.get("text")) if isinstance(obj, dict) else None
            if not isinstance(value, str) or not value:
                raise InputError('a JSON line needs a non-empty "prompt" (or "text") string', where=f"{path}:{i}")
            prompts.append(value)
        else:
            prompts.append(line)
    if not prompts:
        raise InputError("no prompts in the file", where=path, hint="one prompt per line, or JSON lines with \"prompt\"")
    return PromptSet(texts=[prompts[i % len(prompts)] for i in range(n)], target_tokens=0, method="file",
                     measured_tokens=None, note=f"{len(prompts)} prompts from {path}")
