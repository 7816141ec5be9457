"""The nightly stress run under pytest: its budget, seed, shards and output.

``pytest stress [--nrt-minutes M] [--nrt-seed S] [--nrt-machines A,B] [--nrt-out DIR]
[-n N]`` (the options are registered in the root ``conftest.py``) runs the gate's machines
under the ``nightly`` profile at field scale until the budget is spent;
``python -m stress.nightly`` runs the same and merges the figures into one JSON line.

* The deadline is absolute (``NRT_NIGHTLY_DEADLINE``, seconds since the epoch): the
  controller sets it once, from ``--nrt-minutes`` (default 5) and its own start, before
  any pytest-xdist worker starts, so every worker stops at the same moment.
* The seed (``NRT_NIGHTLY_SEED``) likewise: ``--nrt-seed`` or a random one, printed.
* One test per xdist worker (``test_nightly[shard-i-of-n]``); each shard takes every n-th
  machine and gives each an equal share of what is left of the budget.

The test is collected only when ``stress`` is named on the command line or
``--nrt-minutes`` is given: ``pytest tests conformance`` and a bare ``pytest`` leave it.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from stress import nightly

HERE = Path(__file__).resolve().parent


def _asked_for(config: pytest.Config) -> bool:
    if config.getoption("--nrt-minutes") is not None:
        return True
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.name.startswith("test_nightly") and not _asked_for(config):
        return True
    return None


def pytest_configure(config: pytest.Config) -> None:
    if not _asked_for(config):
        return
    shrink = os.environ.get(nightly.SHRINK_ENV)
    if shrink:   # a finding's shrinking is bounded (Hypothesis's own bound is 300 s)
        from hypothesis.internal.conjecture import engine

        if hasattr(engine, "MAX_SHRINKING_SECONDS"):
            engine.MAX_SHRINKING_SECONDS = float(shrink)
    if hasattr(config, "workerinput"):
        return   # workers inherit the controller's environment
    minutes = config.getoption("--nrt-minutes")
    if not os.environ.get(nightly.DEADLINE_ENV):
        budget = nightly.DEFAULT_MINUTES if minutes is None else minutes
        if budget <= 0:
            raise pytest.UsageError(f"--nrt-minutes {budget}: a positive number of minutes")
        os.environ[nightly.DEADLINE_ENV] = repr(time.time() + budget * 60)
    seed = config.getoption("--nrt-seed")
    if seed is not None:
        os.environ[nightly.SEED_ENV] = str(seed)
    elif not os.environ.get(nightly.SEED_ENV):
        os.environ[nightly.SEED_ENV] = str(random.SystemRandom().randrange(1 << 32))
    os.environ.setdefault("NRT_SCALE", "field")
    if config.getoption("--nrt-profile") is None and os.environ.get("NRT_PROFILE") in (
            None, "", "ci"):
        os.environ["NRT_PROFILE"] = "nightly"
        from conformance import profiles

        profiles.load("nightly")
    machines = config.getoption("--nrt-machines")
    try:
        nightly.select_machines(machines)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc


def pytest_report_header(config: pytest.Config) -> list[str]:
    if not _asked_for(config) or not os.environ.get(nightly.DEADLINE_ENV):
        return []
    left = float(os.environ[nightly.DEADLINE_ENV]) - time.time()
    return [(f"nrt nightly: seed {os.environ.get(nightly.SEED_ENV)} (replay with --nrt-seed), "
             f"{left:.0f} s of budget left, scale {os.environ.get('NRT_SCALE')}")]


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __str__(self) -> str:
        return f"shard-{self.index}-of-{self.count}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "shard" in metafunc.fixturenames:
        workers = getattr(metafunc.config, "workerinput", {}).get("workercount", 1)
        machines = nightly.select_machines(metafunc.config.getoption("--nrt-machines"))
        count = max(1, min(int(workers), len(machines)))
        metafunc.parametrize("shard", [Shard(i, count) for i in range(count)], ids=str)


@pytest.fixture
def nightly_run(request: pytest.FixtureRequest) -> nightly.NightlyRun:
    """This run's deadline, seed, machines and output directory."""
    config = request.config
    raw_deadline = os.environ.get(nightly.DEADLINE_ENV)
    if not raw_deadline:
        raise pytest.UsageError(f"{nightly.DEADLINE_ENV} is not set: run `pytest stress` or "
                                f"`python -m stress.nightly`")
    return nightly.NightlyRun(
        deadline=float(raw_deadline), seed=int(os.environ[nightly.SEED_ENV]),
        machines=nightly.select_machines(config.getoption("--nrt-machines")),
        out=Path(config.getoption("--nrt-out") or nightly.DEFAULT_OUT).resolve())
