"""Where an engine gets a catalog model's weights (profiles/model_sources.yaml): the GGUF repository
and the quantizations it holds, pre-quantized Hugging Face checkpoints, and the family's vLLM
parsers. A plan names only sources listed there; what is not listed is not guessed."""

from __future__ import annotations

from functools import lru_cache

from llmctl.errors import InputError
from llmctl.typed import FrozenRecord, Invalid, convert

# full-precision GGUF files: a repository ships one or the other, of the same size
_FULL_PRECISION = ("F16", "BF16")


class ModelSources(FrozenRecord):
    gguf_repo: str | None = None
    gguf_quants: tuple[str, ...] | None = None
    split: bool = False
    gguf_repo_alt: str | None = None
    gguf_quants_alt: tuple[str, ...] | None = None
    gguf_repo_vendor: str | None = None
    quantized: dict[str, str | None] = {}
    tool_call_parser: str | None = None
    reasoning_parser: str | None = None
    notes: str | None = None

    def checkpoint(self, quant: str) -> str | None:
        """The listed pre-quantized checkpoint in format `quant`, or None."""
        return self.quantized.get(quant)

    def gguf(self, quant: str) -> str | None:
        """`repo:QUANT` for llama.cpp's -hf, or None when no listed repository holds `quant`."""
        for repo, quants in ((self.gguf_repo, self.gguf_quants), (self.gguf_repo_alt, self.gguf_quants_alt)):
            if not repo or not quants:
                continue
            held = {q.upper() for q in quants}
            want = quant.upper()
            if want in held:
                return f"{repo}:{want}"
            if want in _FULL_PRECISION:
                other = next((q for q in _FULL_PRECISION if q in held), None)
                if other:
                    return f"{repo}:{other}"
        return None

    def gguf_listing(self) -> str:
        if not self.gguf_repo:
            return "no GGUF repository is known"
        return f"{self.gguf_repo} holds " + (", ".join(self.gguf_quants) if self.gguf_quants else "unverified files")


@lru_cache(maxsize=1)
def _all() -> dict[str, ModelSources]:
    from llmctl.paths import profiles_dir
    from llmctl.profiles_io import profile

    where = str(profiles_dir() / "model_sources.yaml")
    raw = (profile("model_sources.yaml") or {}).get("models") or {}
    out: dict[str, ModelSources] = {}
    for model_id, block in raw.items():
        try:
            out[model_id] = convert(block or {}, ModelSources)
        except Invalid as exc:
            key = ".".join(str(p) for p in ("models", model_id, *exc.loc))
            raise InputError(f"{key}: {exc.message}", where=where) from None
    return out


def sources_for(model_id: str) -> ModelSources:
    """The listed sources of a catalog model (empty for a model the file does not list)."""
    return _all().get(model_id) or ModelSources()
