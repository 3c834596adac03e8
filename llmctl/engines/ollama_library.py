"""Which quantizations the Ollama library publishes for a catalog tag (profiles/ollama_library.yaml).

Ollama pulls by tag, and the library does not publish every quantization of every model (qwen3:8b comes in
q4_K_M, q8_0 and fp16 only). A plan that pulls by library name may only propose what the list names; a tag the
list does not cover (a model newer than the recorded scrape) is known only by its default quantization.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from llmctl.errors import InputError
from llmctl.typed import FrozenRecord as _Block
from llmctl.typed import Invalid, convert


class LibrarySource(_Block):
    repository: str   # the public scrape of https://ollama.com/library the lists were read from
    path: str         # its file
    commit: str       # the commit it was read at
    scraped: str      # the scrape's own date (lastUpdated)


class OllamaLibrary(_Block):
    source: LibrarySource
    # bare tag (name:size) -> quantization id of profiles/quantizations.yaml -> the library tag holding it
    published: dict[str, dict[str, str]]

    def cited(self) -> str:
        """Where the lists come from, for a sentence: `the library scrape of 2026-08-21, github.com/…@31464bb1`."""
        s = self.source
        return f"the library scrape of {s.scraped[:10]}, {s.repository.removeprefix('https://')}@{s.commit[:8]}"


@lru_cache(maxsize=1)
def library() -> OllamaLibrary:
    from llmctl.paths import profiles_dir
    from llmctl.profiles_io import profile

    try:
        return convert(profile("ollama_library.yaml") or {}, OllamaLibrary)
    except Invalid as exc:
        raise InputError(str(exc), where=str(profiles_dir() / "ollama_library.yaml")) from None


def bare_tag(ollama: dict[str, Any]) -> str:
    """The tag a catalog entry pulls by default (names[0]:size_tags[0], `latest` without a size)."""
    from llmctl.model_refs import library_tag

    return library_tag(ollama, None)


def published(ollama: dict[str, Any]) -> dict[str, str] | None:
    """Quantization id -> library tag for a catalog entry's Ollama block; None when the list is not recorded."""
    if not ollama.get("names"):
        return None
    return library().published.get(bare_tag(ollama))


def not_published(ollama: dict[str, Any], quant_id: str) -> str | None:
    """Why the library has no tag for `quant_id` of a catalog entry ("the Ollama library publishes qwen3:8b
    only in Q4_K_M, Q8_0, F16 (per …): qwen3:8b-q6_K does not exist"), or None when it has one or its list
    is not recorded."""
    from llmctl.model_refs import library_tag

    listed = published(ollama)
    if listed is None or quant_id in listed:
        return None
    return (f"the Ollama library publishes {bare_tag(ollama)} only in {', '.join(listed)} (per {library().cited()}): "
            f"{library_tag(ollama, quant_id)} does not exist")
