"""Fixtures for the inventory and doctor tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def catalog():
    """The real GPU catalog from profiles/gpus.yaml."""
    from llmctl.catalog import Catalog

    try:
        return Catalog.load()
    except FileNotFoundError:
        # models.yaml / quantizations.yaml not present yet: the GPU part of the catalog is all we need
        from llmctl import catalog as cat
        from llmctl.paths import profiles_dir

        doc = cat._load_yaml(profiles_dir() / "gpus.yaml")
        return Catalog([cat._gpu(g) for g in doc["gpus"]], [], [], [], doc.get("apple_gpu_memory_fraction") or {})
