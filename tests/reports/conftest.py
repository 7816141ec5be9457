"""Gate runs the reports' tests read: one machine, few examples, with and without a defect
switch, each writing Allure results (run once for this directory's tests)."""

from __future__ import annotations

import pytest
from gate_runs import DEFECT, GateRun, run_gate


@pytest.fixture(scope="package")
def failing_run(tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    run = run_gate(tmp_path_factory.mktemp("failing") / "allure-results", DEFECT)
    assert run.returncode == 1, run.output[-3000:]
    return run


@pytest.fixture(scope="package")
def passing_run(tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    run = run_gate(tmp_path_factory.mktemp("passing") / "allure-results")
    assert run.returncode == 0, run.output[-3000:]
    return run
