"""How big a gate example is: the ``ci`` scale of the gate, or ``field`` scale for the
nightly stress job.

The scale is a knob the strategies read each time they draw (``NRT_SCALE``, default
``ci``), not when they are built, so the very same machine classes run at either scale and
an example keeps the database key of its test: a find of the nightly replays in the gate
(at the scale it was found at, see ``conformance/test_nightly_replay.py``).

At ``ci`` scale every strategy draws exactly what it drew before the knob existed.  At
``field`` scale the gate's configurations reach what deployed targets run with
(:data:`FIELD`): up to 32 subsystems (at least 24 in a good share of examples), 16 poll
groups, queue depth 128, 1 MiB IO through 16 keyed descriptors, up to 4 controllers per
subsystem whose admin qpairs may sit on other poll groups than their IO qpairs.  A
field-scale topology is drawn from a fixed number of choices whatever its size
(``strategies.topology.field_topologies``), and an example restarts its transport at most
:attr:`FieldScale.restarts` times, with IO in flight (``conformance.machines``).

Host memory bounds what one example may hold at once: the harness gives every CID of every
qpair a window of ``max_io_size`` bytes, so the field topology spends a depth budget
(:func:`depth_budget`) instead of drawing 1 MiB x 128 x 200 qpairs; a few qpairs reach
depth 128 at 1 MiB, many more do at smaller IO sizes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, TypeVar

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

__all__ = ["FIELD", "SCALES", "FieldScale", "ScaleName", "active_scale", "at_scale",
           "by_scale", "depth_budget"]

ScaleName = Literal["ci", "field"]
SCALES: tuple[ScaleName, ...] = ("ci", "field")
ENV = "NRT_SCALE"
T = TypeVar("T")
MiB = 1024 * 1024


@dataclass(frozen=True)
class FieldScale:
    """What field scale reaches (upper ends of the ranges drawn)."""

    subsystems: int = 32           # most subsystems in a topology
    many_subsystems: int = 24      # the floor a "many subsystems" example starts from
    poll_groups: int = 16
    queue_depth: int = 128
    max_io_size: int = MiB
    descriptors: int = 16          # keyed descriptors in one command (NVMe-oF 1.1 2.x)
    device_sge: int = 16           # SGEs per WR simverbs' device offers (ibv_device_attr)
    controllers: int = 4           # per subsystem
    io_qpairs: int = 3             # per controller
    io_blocks: int = 2048          # blocks one IO shape may ask for (1 MiB of 512 B)
    namespace_bytes: int = 2 * MiB
    host_bytes: int = 768 * MiB    # host memory one example's qpairs may window
    restarts: int = 1              # abrupt transport restarts in one example


FIELD = FieldScale()


def active_scale() -> ScaleName:
    """``NRT_SCALE``: ``ci`` (default) or ``field``; anything else is refused by name."""
    name = os.environ.get(ENV, "").strip() or "ci"
    if name not in SCALES:
        raise ValueError(f"{ENV}={name!r}: choose one of {', '.join(SCALES)}")
    return name  # type: ignore[return-value]


@contextlib.contextmanager
def at_scale(name: ScaleName) -> Iterator[None]:
    """Draw at scale ``name`` inside the block (for one process: it sets ``NRT_SCALE``)."""
    if name not in SCALES:
        raise ValueError(f"scale {name!r}: choose one of {', '.join(SCALES)}")
    before = os.environ.get(ENV)
    os.environ[ENV] = name
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def by_scale(ci: SearchStrategy[T], field: SearchStrategy[T]) -> SearchStrategy[T]:
    """``ci`` at ci scale, ``field`` at field scale, chosen at each draw."""
    return _by_scale(ci, field)


@st.composite
def _by_scale(draw: DrawFn, ci: SearchStrategy[T], field: SearchStrategy[T]) -> T:
    return draw(field if active_scale() == "field" else ci)


def depth_budget(max_io_size: int, window_slack: int, reserved_depth: int) -> int:
    """Queue entries one field example may hold across all its qpairs: host memory
    (:attr:`FieldScale.host_bytes`) over a CID's window (``max_io_size`` plus
    ``window_slack``), less ``reserved_depth`` entries kept for controllers connected
    mid-run."""
    return max(2, FIELD.host_bytes // (max_io_size + window_slack) - reserved_depth)
