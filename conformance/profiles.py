"""Hypothesis settings profiles for the suite: ``ci``, ``nightly`` and ``hardware``.

Selected with ``--nrt-profile`` (see the root ``conftest.py``) or the ``NRT_PROFILE``
environment variable; ``ci`` is the default.

* ``ci``: derandomized (the same examples every run, on every machine), no example
  database, no deadline; sized so the whole gate stays well inside 10 minutes on 2 cores.
* ``nightly``: random, long, with the example database, many more and longer examples.
* ``hardware``: ``nightly`` pacing for a real device (fewer examples: a device is slower).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

PROFILES = ("ci", "nightly", "hardware")
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


def load(name: str | None = None) -> str:
    """Load a profile by name (default: ``NRT_PROFILE`` or ``ci``), capped by
    ``NRT_MAX_EXAMPLES``; returns its name."""
    name = name or active_profile()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    os.environ["NRT_PROFILE"] = name
    cap = example_cap()
    if cap is None:
        settings.load_profile(name)
    else:
        base = settings.get_profile(name)
        settings.register_profile(f"{name}-capped", base,
                                  max_examples=min(cap, base.max_examples))
        settings.load_profile(f"{name}-capped")
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
