"""A nightly find becomes a CI regression without anyone copying a seed: an example the
nightly profile stored (with a defect switch on, so there is something to find) fails
the ci profile's run on its replay, at the scale it was found at, and only there.

Under the ci profile (``derandomize=True``) the database is replayed read-only in
``Phase.reuse`` (``conformance/profiles.py``), in ``conformance/test_nightly_replay.py``
at each scale with the nightly's step count.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import Phase, seed, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.stateful import run_state_machine_as_test

from conformance.checks import PropertyViolation
from conformance.machines import TransportMachine
from strategies.scale import at_scale

ROOT = Path(__file__).resolve().parents[2]


def _replay(scale: str) -> str:
    return ("conformance/test_nightly_replay.py::"
            f"test_machine_replays_nightly_finds[{scale}-TransportMachine]")


def _store_a_find(db: Path, defect: str, scale: str, monkeypatch: pytest.MonkeyPatch,
                  phases: tuple[Phase, ...]) -> str:
    """Run TransportMachine under the nightly profile with ``defect`` on until it fails,
    storing the failure in ``db``; the failing example's ``state.start(...)`` line."""
    monkeypatch.setenv("NRT_DEFECTS", defect)
    nightly = settings(settings.get_profile("nightly"), max_examples=60, phases=phases,
                       database=DirectoryBasedExampleDatabase(db))
    seed(1)(TransportMachine)
    try:
        with at_scale(scale), pytest.raises(PropertyViolation) as found:  # type: ignore[arg-type]
            run_state_machine_as_test(TransportMachine, settings=nightly)
    finally:
        TransportMachine._hypothesis_internal_use_seed = None  # type: ignore[attr-defined]
        monkeypatch.delenv("NRT_DEFECTS")
    assert any(p.is_file() for p in db.rglob("*")), "the find was not stored"
    notes = getattr(found.value, "__notes__", [])
    return next(line for line in notes if line.startswith("state.start("))


def _ci_run(db: Path, test: str, *extra: str, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "NRT_NIGHTLY_DB": str(db), **(env or {})}
    for name in ("NRT_PROFILE", "NRT_SCALE", "NRT_DEFECTS", "NRT_MAX_EXAMPLES"):
        if env is None or name not in env:
            full_env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "--nrt-profile", "ci", *extra, test], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=600, check=False)


def test_a_field_scale_find_fails_the_ci_run_on_its_exact_replay(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "nightly-db"
    start = _store_a_find(db, "fixed_pool_size", "field", monkeypatch,
                          (Phase.generate, Phase.shrink))
    with_defect = _ci_run(db, _replay("field"), "--nrt-defects", "fixed_pool_size")
    out = with_defect.stdout + with_defect.stderr
    assert with_defect.returncode == 1, out[-3000:]
    assert "CFG-1" in out
    assert start in out, "the replay drew another example than the one stored"
    clean = _ci_run(db, _replay("field"))   # the same example on the target without the defect
    assert clean.returncode == 0, (clean.stdout + clean.stderr)[-3000:]
    assert "1 passed" in clean.stdout


def test_a_ci_scale_find_fails_the_ci_run_on_its_replay(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A find dozens of steps into an example replays whole (the nightly's step count),
    and fails only with the defect it was found with."""
    db = tmp_path / "nightly-db"
    start = _store_a_find(db, "pool_double_put", "ci", monkeypatch, (Phase.generate,))
    with_defect = _ci_run(db, _replay("ci"), "--nrt-defects", "pool_double_put")
    out = with_defect.stdout + with_defect.stderr
    assert with_defect.returncode == 1, out[-3000:]
    assert "POOL-1" in out and start in out
    clean = _ci_run(db, _replay("ci"))
    assert clean.returncode == 0, (clean.stdout + clean.stderr)[-3000:]
