"""Hypothesis settings profiles for the suite: ``ci``, ``nightly`` and ``hardware``.

Selected with ``--nrt-profile`` (see the root ``conftest.py``) or the ``NRT_PROFILE``
environment variable; ``ci`` is the default.

* ``ci``: derandomized (the same examples every run, on every machine), no deadline;
  sized so the whole gate stays well inside 10 minutes on 2 cores.  It writes no example
  database, but replays the nightly's (below) read-only when that directory exists.
* ``nightly``: random, long, many more and longer examples, writing the nightly example
  database.
* ``hardware``: ``nightly`` pacing for a real device (fewer examples: a device is slower).

The nightly example database
----------------------------

The nightly stress job (``python -m stress.nightly``) keeps every failing example it finds
(and the intermediate ones of its shrinking) in a Hypothesis
``DirectoryBasedExampleDatabase`` at ``NRT_NIGHTLY_DB``, by default ``.hypothesis/nightly``
in the checkout (:data:`DEFAULT_NIGHTLY_DB`; ``--db`` of the nightly job).  An example is
stored under its test's key, which for a gate machine is the machine itself, so the ``ci``
profile replays it in the gate's reuse phase (``Phase.reuse``, which runs before
generation and works with ``derandomize=True``) through a ``ReadOnlyDatabase`` inside a
``MultiplexedDatabase``: a nightly find fails the gate as a regression until the target is
fixed, and the gate never deletes or adds an entry.  The gate's reuse phase replays with
the ci profile's step count and scale, so a find deeper than 12 steps or at field scale
replays exactly in ``conformance/test_nightly_replay.py`` (every stored example at each
scale, with the nightly's step count, nothing generated).

A CI system keeps the directory between runs as a cache (restore it before the gate, save
it after the nightly; key it by branch), or as an artifact of the nightly job that the
gate job downloads to the same path, or commits it (it holds small files named by hash,
one per example).
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    ExampleDatabase,
    MultiplexedDatabase,
    ReadOnlyDatabase,
)

PROFILES = ("ci", "nightly", "hardware")
#: Where the nightly's example database lives unless ``NRT_NIGHTLY_DB`` says otherwise.
DEFAULT_NIGHTLY_DB = Path(__file__).resolve().parent.parent / ".hypothesis" / "nightly"
_QUIET = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
          HealthCheck.large_base_example]

settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, max_examples=300,
    stateful_step_count=12, suppress_health_check=_QUIET, print_blob=True,
    report_multiple_bugs=False,
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink, Phase.explain),
)
settings.register_profile(
    "nightly", derandomize=False, deadline=None, max_examples=2000, stateful_step_count=50,
    suppress_health_check=_QUIET, print_blob=True,
)
settings.register_profile(
    "hardware", derandomize=False, deadline=None, max_examples=200, stateful_step_count=30,
    suppress_health_check=_QUIET, print_blob=True,
)


def active_profile() -> str:
    name = os.environ.get("NRT_PROFILE", "ci")
    if name not in PROFILES:
        raise ValueError(f"NRT_PROFILE={name!r}: choose one of {', '.join(PROFILES)}")
    return name


def example_cap() -> int | None:
    """``NRT_MAX_EXAMPLES``: at most this many examples per test, whatever the profile says
    (the judge command's ``--max-examples``, for a quick look); None when unset."""
    raw = os.environ.get("NRT_MAX_EXAMPLES", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"NRT_MAX_EXAMPLES={raw!r}: a positive number of examples")
    return int(raw)


def capped(examples: int) -> int:
    """``examples``, or fewer under :func:`example_cap`."""
    cap = example_cap()
    return examples if cap is None else min(examples, cap)


def nightly_database_path() -> Path:
    """The nightly example database's directory: ``NRT_NIGHTLY_DB`` or
    :data:`DEFAULT_NIGHTLY_DB`."""
    raw = os.environ.get("NRT_NIGHTLY_DB", "").strip()
    return Path(raw).resolve() if raw else DEFAULT_NIGHTLY_DB


def nightly_database() -> ExampleDatabase:
    """The nightly example database, writable (the nightly profile's)."""
    return DirectoryBasedExampleDatabase(nightly_database_path())


def replay_database() -> ExampleDatabase | None:
    """The nightly example database read-only, or None when its directory does not exist
    (the ci profile's)."""
    path = nightly_database_path()
    if not path.is_dir():
        return None
    return MultiplexedDatabase(ReadOnlyDatabase(DirectoryBasedExampleDatabase(path)))


def load(name: str | None = None) -> str:
    """Load a profile by name (default: ``NRT_PROFILE`` or ``ci``), with its example
    database (see above) and capped by ``NRT_MAX_EXAMPLES``; returns its name."""
    name = name or active_profile()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    os.environ["NRT_PROFILE"] = name
    base = settings.get_profile(name)
    changes: dict[str, object] = {}
    if name == "ci":
        replay = replay_database()
        if replay is not None:
            # derandomize=True only refuses a database passed beside it: a child profile
            # keeps the derandomized generation and replays the database first
            changes["database"] = replay
    elif name == "nightly":
        changes["database"] = nightly_database()
    cap = example_cap()
    if cap is not None:
        changes["max_examples"] = min(cap, base.max_examples)
    if not changes:
        settings.load_profile(name)
    else:
        settings.register_profile(f"{name}-run", base, **changes)  # type: ignore[arg-type]
        settings.load_profile(f"{name}-run")
    return name


def defects_under_test() -> int:
    """Defect switches to build targets with (``NRT_DEFECTS``: comma-separated names).

    Only the self-check sets this, to prove the gate still catches each historical bug;
    the value goes to the target and nowhere else."""
    from impl import Defect

    names = [n for n in os.environ.get("NRT_DEFECTS", "").split(",") if n.strip()]
    value = 0
    for n in names:
        value |= int(Defect.by_name(n.strip()))
    return value
