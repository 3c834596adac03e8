#!/usr/bin/env python3
"""Write profiles/ollama_library.yaml: which quantizations the Ollama library publishes for each catalog tag.

    python scripts/ollama_published.py MODELS_JSON --commit SHA          # rewrite the profile
    python scripts/ollama_published.py MODELS_JSON --commit SHA --check  # exit 1 if the profile differs
    python scripts/ollama_published.py MODELS_JSON --templates           # catalog quant_tag spellings to review

MODELS_JSON is data/models.json of a local clone of https://github.com/auditomatic/ollama-models-registry (a daily
scrape of https://ollama.com/library: "lastUpdated", then "models": {name: {"tags": {tag: {...}}}}); SHA is the
commit it was read at. The script reads only that file and the catalog, never the network.

For every catalog model with an Ollama block, each GGUF quantization of profiles/quantizations.yaml is spelled as a
tag exactly as a plan renders it (llmctl.model_refs.library_tag: `quant_tag`, `f16_word`, the bare size tag for
the default) and kept when the scrape lists that tag. A model the scrape does not list gets no entry: the planner
then knows nothing beyond the tag's default quantization.

`--templates` prints, for each model whose bare tag shares its manifest digest with a tag that names a quantization
in another spelling than the catalog's `quant_tag`, the spelling that digest suggests and how many quantizations it
would reach: the catalog's quant_tag is edited by hand (scripts/catalog/models.in.yaml or the hand-curated part of
profiles/models.yaml), then this script is run again.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET = ROOT / "profiles" / "ollama_library.yaml"
REPOSITORY = "https://github.com/auditomatic/ollama-models-registry"
_QUANT_WORD = re.compile(r"(^|-)(q\d\w*|fp16|bf16|f16)$", re.I)

HEADER = """\
# Which quantizations the Ollama library publishes for each catalog tag, as pull tags.
#
# Written by scripts/ollama_published.py from a scrape of https://ollama.com/library (the `source` below: that
# repository's data/models.json at that commit, scraped at that date). Keyed by the bare tag a catalog model pulls
# by default (profiles/models.yaml `ollama`: names[0]:size_tags[0]); each quantization id of
# profiles/quantizations.yaml maps to the library tag that holds it, spelled as a plan renders it. Only tags the
# scrape lists are here. A catalog model with no entry (newer than the scrape) has an unknown list: the planner
# then proposes only the tag's default quantization and says so.
"""


def published(catalog, library: dict) -> dict[str, dict[str, str]]:
    from llmctl.model_refs import library_tag

    gguf = [q.id for q in catalog.quantizations if q.is_gguf]
    out: dict[str, dict[str, str]] = {}
    for m in catalog.models:
        o = m.ollama or {}
        if not o.get("names"):
            continue
        entry = library.get(str(o["names"][0]))
        if entry is None:
            continue
        tags = entry.get("tags") or {}
        bare = library_tag(o, None)
        found = {q: library_tag(o, q) for q in gguf if library_tag(o, q).split(":", 1)[1] in tags}
        if bare in out:
            raise SystemExit(f"two catalog models pull {bare}")
        if found:
            out[bare] = found
    return out


def render(data: dict, commit: str) -> str:
    lines = [HEADER.rstrip("\n"),
             "source:",
             f"  repository: {REPOSITORY}",
             "  path: data/models.json",
             f"  commit: {commit}",
             f"  scraped: \"{data['lastUpdated']}\"",
             "published:"]
    for bare, quants in published(_catalog(), data["models"]).items():
        lines.append(f"  {json.dumps(bare)}:")
        lines += [f"    {q}: {json.dumps(tag)}" for q, tag in quants.items()]
    return "\n".join(lines) + "\n"


def templates(data: dict) -> int:
    from llmctl.model_refs import library_tag

    cat = _catalog()
    gguf = [q.id for q in cat.quantizations if q.is_gguf]
    for m in cat.models:
        o = m.ollama or {}
        entry = data["models"].get(str((o.get("names") or [""])[0]))
        if not entry:
            continue
        tags = entry["tags"]
        size = str((o.get("size_tags") or ["latest"])[0])
        digest = (tags.get(size) or {}).get("modelHash")
        twins = [t for t, v in tags.items() if digest and v.get("modelHash") == digest and t != size
                 and _QUANT_WORD.search(t)]

        def reach(spelling: dict) -> int:
            return sum(library_tag(spelling, q).split(":", 1)[1] in tags for q in gguf)

        now = reach(o)
        for twin in twins:
            prefix = twin[:_QUANT_WORD.search(twin).start()]  # type: ignore[union-attr]
            spelled = (prefix.replace(size, "{size}", 1) if prefix.startswith(size) else prefix)
            spelled = spelled + "-{quant}" if spelled else "{quant}"
            current = o.get("quant_tag") or "{size}-instruct-{quant}"
            if spelled != current:
                print(f"{m.id}: quant_tag {current!r} reaches {now}; {twin} (same digest as {size}) suggests "
                      f"{spelled!r}, reaching {reach(dict(o, quant_tag=spelled))}")
    return 0


def _catalog():
    from llmctl.catalog import Catalog

    return Catalog.load()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models_json", type=Path)
    ap.add_argument("--commit", help="the registry commit the file was read at (40 hex digits)")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--templates", action="store_true")
    args = ap.parse_args()
    data = json.loads(args.models_json.read_text(encoding="utf-8"))
    if args.templates:
        return templates(data)
    if not args.commit or not re.fullmatch(r"[0-9a-f]{40}", args.commit):
        ap.error("--commit: the registry commit, 40 hex digits")
    text = render(data, args.commit)
    if args.check:
        same = TARGET.exists() and TARGET.read_text(encoding="utf-8") == text
        print("profiles/ollama_library.yaml is " + ("up to date" if same else "out of date"))
        return 0 if same else 1
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
