"""Fixtures for the target's own tests; the helpers live in :mod:`.rig`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .rig import Rig, build


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = build()
    yield r
    if r.t.alive:
        r.t.destroy()


@pytest.fixture
def target(rig: Rig) -> Rig:
    """Alias: the brief calls it ``target``."""
    return rig
