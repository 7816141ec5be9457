"""``python -m stress.nightly``: the JSON line a short run ends with, its artifacts, its
progress and seed on stderr, its time budget, and its refusals of bad options."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"seed", "minutes", "target", "scale", "jobs", "elapsed_s", "budget_s", "overrun_s",
        "longest_example_s", "examples", "steps", "ios", "io_per_s", "io_bytes", "faults",
        "findings", "figures", "machines"}
FIGURES = {"examples", "restarts", "steps", "ios", "io_bytes", "ios_submitted", "faults",
           "max_outstanding", "max_queue_depth_configured", "max_read_depth",
           "max_send_depth", "wr_low_water", "wr_low_water_fraction", "buf_low_water",
           "buf_low_water_fraction", "drains", "drains_stalled", "drain_rounds_max",
           "drain_rounds_total", "max_subsystems", "max_qpairs"}


def _nightly(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NRT_PROFILE", "NRT_SCALE", "NRT_DEFECTS", "NRT_MAX_EXAMPLES")}
    return subprocess.run([sys.executable, "-m", "stress.nightly", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600, check=False)


def test_a_short_run_ends_with_one_json_line_within_its_budget(tmp_path: Path) -> None:
    out, db = tmp_path / "out", tmp_path / "db"
    run = _nightly("--minutes", "0.25", "--jobs", "1", "--machines", "StarvationMachine",
                   "--seed", "11", "--out", str(out), "--db", str(db))
    assert run.returncode == 0, run.stderr[-3000:]
    line = json.loads(run.stdout.strip().splitlines()[-1])
    assert KEYS <= set(line) and FIGURES <= set(line["figures"])
    assert (line["seed"], line["minutes"], line["scale"], line["findings"]) == (
        11, 0.25, "field", [])
    assert set(line["machines"]) == {"StarvationMachine"}
    assert line["examples"] == line["figures"]["examples"] == sum(
        m["examples"] for m in line["machines"].values())
    # the budget: the run ends about one example after it (plus pytest's own exit)
    assert line["elapsed_s"] <= line["budget_s"] + line["longest_example_s"] + 10, line
    assert "seed 11 (replay with --seed 11)" in run.stderr
    assert " left | " in run.stderr   # progress while it ran
    assert json.loads((out / "figures.json").read_text()) == line
    for artifact in ("pytest.log", "parts"):
        assert (out / artifact).exists(), artifact
    assert "StarvationMachine round 0 (seed " in (out / "hypothesis-statistics.txt").read_text()
    assert list((out / "hypothesis" / "observed").glob("*.jsonl")), "no observability output"


@pytest.mark.parametrize(("args", "says"), [
    (("--minutes", "0"), "a positive number of minutes"),
    (("--machines", "NoSuchMachine"), "unknown machine(s) NoSuchMachine"),
    (("--jobs", "many"), "a number of workers or 'auto'"),
    (("--target", "spdk"), "--target spdk needs --spdk-src DIR"),
])
def test_bad_options_are_refused_by_name(args: tuple[str, ...], says: str) -> None:
    run = _nightly(*args)
    assert run.returncode == 2
    assert says in run.stderr
