"""Where llmctl's data folders live, in a source checkout and in an installed package."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the folder `profiles`.

    An installed wheel carries them inside the package (llmctl/profiles); a source checkout
    (including `pip install -e .`) has them beside the package at the repository's top.
    """
    for candidate in (_PKG / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"llmctl data folder {name!r} not found beside {_PKG}")


def profiles_dir() -> Path:
    return data_dir("profiles")


def template_dirs() -> dict[str, Path]:
    """Each package's own templates, by the prefix templates are named with: `compose/compose.yaml.j2`
    is llmctl/targets/compose/templates/compose.yaml.j2; `traffic/…` the traffic layer's."""
    dirs = {p.parent.name: p for p in sorted((_PKG / "targets").glob("*/templates")) if p.is_dir()}
    dirs["traffic"] = _PKG / "traffic" / "templates"
    return dirs
