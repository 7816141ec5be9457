"""Where the SPDK source trees are, and the SPDK target built from each (cached).

The trees are ``$NRT_SPDK_TREES``, else ``../shared/spdk`` beside the checkout, else the
machines' shared folder ``/work/shared/spdk``; a tree that is not there skips its tests
with the paths it looked in.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_CANDIDATES = ([Path(os.environ["NRT_SPDK_TREES"])] if os.environ.get("NRT_SPDK_TREES") else
               [ROOT.parent / "shared" / "spdk", Path("/work/shared/spdk")])
TREES_DIR = next((d for d in _CANDIDATES if d.is_dir()), _CANDIDATES[0])
TREES = ("7068328493-parent", "7068328493", "8e8f04346e", "v26.05")


def tree(name: str) -> Path:
    path = TREES_DIR / name
    if not (path / "lib" / "nvmf" / "rdma.c").is_file():
        pytest.skip(f"no SPDK tree {name} in {' or '.join(map(str, _CANDIDATES))} "
                    f"(set NRT_SPDK_TREES)")
    return path


@pytest.fixture(scope="session")
def spdk_backend():
    """``spdk_backend(name, isolate=False)``: the SPDK target built from tree ``name``."""
    from impl import backends

    def load(name: str, isolate: bool = False):
        return backends.load("spdk", tree(name), isolate=isolate)

    return load
