"""Where llmctl's data folders live, in a source checkout and in an installed package."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the folder `profiles` or `templates`.

    An installed wheel carries them inside the package (llmctl/profiles); a source checkout
    (including `pip install -e .`) has them beside the package at the repository's top.
    """
    for candidate in (_PKG / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"llmctl data folder {name!r} not found beside {_PKG}")


def profiles_dir() -> Path:
    return data_dir("profiles")


def templates_dir() -> Path:
    return data_dir("templates")
