"""Where the SPDK source trees are, and the SPDK target built from each (cached).

The trees are ``$NRT_SPDK_TREES`` or ``../shared/spdk`` beside the project; a tree that is
not there skips its tests with the path it looked for.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TREES_DIR = Path(os.environ.get("NRT_SPDK_TREES") or ROOT.parent / "shared" / "spdk")
TREES = ("7068328493-parent", "7068328493", "8e8f04346e", "v26.05")


def tree(name: str) -> Path:
    path = TREES_DIR / name
    if not (path / "lib" / "nvmf" / "rdma.c").is_file():
        pytest.skip(f"no SPDK tree {name} at {path} (set NRT_SPDK_TREES)")
    return path


@pytest.fixture(scope="session")
def spdk_backend():
    """``spdk_backend(name, isolate=False)``: the SPDK target built from tree ``name``."""
    from impl import backends

    def load(name: str, isolate: bool = False):
        return backends.load("spdk", tree(name), isolate=isolate)

    return load
