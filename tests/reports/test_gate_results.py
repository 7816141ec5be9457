"""What a gate run writes for Allure: one result per property per machine, the evidence of a
failure, and a reproducer that fails again when pasted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from gate_runs import DEFECT, MACHINE, REPO, GateRun

from reports import environment, summary
from reports.property_results import CARRIER_LABEL

RUNTIME = ("POOL-1", "POOL-2", "POOL-3", "LIVE-1", "LIVE-2", "CQE-1", "DATA-1", "SM-1",
           "DEPTH-1", "CFG-1", "SHUT-1", "STATS-1", "CRASH-1")


def _results(directory: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for path in directory.glob("*-result.json"):
        data = json.loads(path.read_text())
        out[data["name"]] = data
    return out


def _labels(result: dict[str, Any], name: str) -> list[str]:
    return [lab["value"] for lab in result["labels"] if lab["name"] == name]


def _attachment(directory: Path, result: dict[str, Any], name: str) -> str:
    att = next(a for a in result.get("attachments", []) if a["name"] == name)
    return (directory / att["source"]).read_text()


def test_a_pool_leak_fails_pool1_only(failing_run: GateRun) -> None:
    results = _results(failing_run.results)
    assert sorted(results) == sorted(f"{p} on {MACHINE}" for p in RUNTIME)
    status = {name.split(" ")[0]: r["status"] for name, r in results.items()}
    assert status.pop("POOL-1") == "failed"
    assert set(status.values()) == {"passed"}, status
    for r in results.values():
        assert CARRIER_LABEL not in {lab["name"] for lab in r["labels"]}


def test_labels_make_a_tree_and_right_breadcrumbs(failing_run: GateRun) -> None:
    pool1 = _results(failing_run.results)[f"POOL-1 on {MACHINE}"]
    assert _labels(pool1, "epic") == ["conformance gate"]
    assert (_labels(pool1, "feature"), _labels(pool1, "story")) == (["POOL"], ["POOL-1"])
    assert (_labels(pool1, "parentSuite"), _labels(pool1, "suite"),
            _labels(pool1, "subSuite")) == (["POOL"], ["POOL-1"], [MACHINE])
    assert _labels(pool1, "severity") == ["critical"]
    assert pool1["links"] and all(link["url"].startswith("https://nvmexpress.org/")
                                  for link in pool1["links"])
    params = {p["name"]: p["value"] for p in pool1["parameters"]}
    assert params["machine"] == MACHINE and params["defect switches"] == DEFECT


def test_the_failure_shows_the_violation_first_and_its_evidence(failing_run: GateRun) -> None:
    d = failing_run.results
    pool1 = _results(d)[f"POOL-1 on {MACHINE}"]
    message = pool1["statusDetails"]["message"]
    assert message.startswith("POOL-1: data-WR pool:") and "\n" not in message
    names = [a["name"] for a in pool1["attachments"]]
    assert names[:2] == ["reproducer", "pool-occupancy.svg"]
    svg = _attachment(d, pool1, "pool-occupancy.svg")
    assert svg.startswith("<svg") and 'class="capacity"' in svg
    assert ">teardown<" in svg and 'class="gap"' in svg   # the state the leak was found in
    assert "http" not in svg.replace("http://www.w3.org/2000/svg", "")
    timeline = _attachment(d, pool1, "pool-timeline.csv").splitlines()
    header = timeline[0].split(",")
    assert "wr_capacity" in header and "phase" in header
    last = dict(zip(header, timeline[-1].split(",")))
    assert last["phase"] == "teardown"
    assert int(last["wr_ring"]) + int(last["wr_cached"]) + int(last["wr_held"]) \
        < int(last["wr_capacity"])


def test_the_pasted_reproducer_fails_the_same_property(failing_run: GateRun) -> None:
    pool1 = _results(failing_run.results)[f"POOL-1 on {MACHINE}"]
    text = _attachment(failing_run.results, pool1, "reproducer")
    assert "Failing test case" not in text and "Explanation" not in text
    assert f"defects={DEFECT!r}" in text and "target='builtin'" in text
    env = {k: v for k, v in os.environ.items() if not k.startswith("NRT_")}
    done = subprocess.run([sys.executable, "-"], input=text, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode != 0
    assert "PropertyViolation_POOL_1: POOL-1: data-WR pool" in done.stderr, done.stderr[-2000:]
    # without the switch the same steps pass: the header is what makes it fail
    clean = text.replace(f"defects={DEFECT!r}", "defects=''")
    done = subprocess.run([sys.executable, "-"], input=clean, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


def test_environment_records_what_the_run_ran_on(failing_run: GateRun) -> None:
    env = environment.read_environment(failing_run.results)
    assert env["defects"] == DEFECT
    assert env["target.selected"] == "builtin" and env["target.commit"] != "unknown"
    assert env["suite.dirty"] in ("yes", "no")
    for key in ("suite.commit", "rdma-core", "kernel", "hypothesis", "profile", "seed"):
        assert env.get(key), key


def test_summary_fails_pool1_only_and_lists_the_finding(failing_run: GateRun) -> None:
    s = summary.summarise(summary.load_results(failing_run.results),
                          environment.read_environment(failing_run.results))
    assert s.verdicts["POOL-1"] == "FAIL"
    assert {p: v for p, v in s.verdicts.items() if p in RUNTIME and p != "POOL-1"} == \
        {p: "PASS" for p in RUNTIME if p != "POOL-1"}
    text = summary.render(s, failing_run.results)
    assert "## Findings and their reproducers" in text
    assert f"### POOL-1 on {MACHINE}" in text and "replay_on(" in text
    assert summary.main(["--results", str(failing_run.results), "--check"]) == 1


def test_a_clean_run_passes_every_property_and_the_gate(passing_run: GateRun) -> None:
    results = _results(passing_run.results)
    assert {r["status"] for r in results.values()} == {"passed"}
    assert len(results) == len(RUNTIME)
    assert summary.main(["--results", str(passing_run.results), "--check"]) == 0
