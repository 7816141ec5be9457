"""Fixtures for the drop-in libibverbs tests: the built libraries, and a child process
started with ``impl.dropin.subprocess_env()`` running ``pyverbs_host.py``.

pyverbs is Debian's ``python3-pyverbs``.  In CI (``CI`` set, or ``NRT_REQUIRE_PYVERBS=1``
as ``.ci/run`` sets it) its absence fails the tests that need it; elsewhere they skip,
saying so.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dropin_child import HERE, need_pyverbs, run_child


@pytest.fixture(scope="module")
def dropin_dir() -> Path:
    from impl import dropin
    return dropin.lib_dir()


@pytest.fixture(scope="module")
def child_env(dropin_dir: Path) -> dict[str, str]:
    from impl import dropin
    return dropin.subprocess_env()


@pytest.fixture
def pyverbs_host(child_env: dict[str, str]):
    """``pyverbs_host(scenario, *args)``: the JSON the child host printed (fails with its
    stderr if it did not finish)."""
    need_pyverbs()

    def run(scenario: str, *args: str) -> dict:
        r = run_child(child_env, str(HERE / "pyverbs_host.py"), scenario, *args)
        assert r.returncode == 0, f"child host failed ({r.returncode}):\n{r.stderr[-4000:]}"
        return json.loads(r.stdout.strip().splitlines()[-1])

    return run
