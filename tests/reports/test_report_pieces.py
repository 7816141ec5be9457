"""The reports' pieces on hand-made input: the plot, the reproducer, the analytics filter, the
quality gate, and the per-property results of a test that breaks or judges nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gate_runs import REPO

from reports import html, summary
from reports.plot import pool_occupancy_svg
from reports.reproducer import RunOn, pasteable, steps

pytest_plugins = ["pytester"]


def _row(step: int, phase: str, ring: int, cached: int = 0, held: int = 0) -> dict[str, object]:
    return {"step": step, "phase": phase, "wr_capacity": 16, "wr_ring": ring,
            "wr_cached": cached, "wr_held": held, "in_flight": held}


def test_the_plot_marks_teardown_violation_and_the_gap_to_capacity() -> None:
    svg = pool_occupancy_svg([_row(1, "step", 12, 2, 2), _row(1, "teardown", 15),
                              _row(1, "violation", 15)], "POOL-1")
    assert svg.startswith("<svg") and svg.count('class="panel"') == 1   # no buffer counts
    assert ">teardown<" in svg and ">POOL-1 violation<" in svg
    assert svg.count('class="gap"') == 2 and "-1 vs capacity" in svg
    balanced = pool_occupancy_svg([_row(1, "step", 16)])
    assert 'class="gap"' not in balanced
    with pytest.raises(ValueError, match="no pool samples"):
        pool_occupancy_svg([{"step": 1, "phase": "step"}])


NOTES = ["Failing test case: <state machine>", "state = ContentionMachine()",
         "state.start(config=GateConfig(\n  options=TransportOptions()))",
         "state.teardown()", "Explanation:", "    These lines were always and only run",
         ("\nYou can reproduce this test case by temporarily adding "
         "@reproduce_failure('6.1', b'AX==') as a decorator on your test function")]


def test_the_reproducer_keeps_the_steps_and_names_what_it_ran_on() -> None:
    assert steps(NOTES) == NOTES[1:4]
    text = pasteable(NOTES, RunOn(commit="abc", defects="leak_remaining_wrs"), "POOL-1",
                     "ContentionMachine")
    code = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert code[:2] == ["from conformance.reproduce import *",
                        ("replay_on(target='builtin', commit='abc', defects="
                        "'leak_remaining_wrs', profile='ci')")]
    assert code[2:] == ["state = ContentionMachine()", "state.start(config=GateConfig(",
                        "  options=TransportOptions()))", "state.teardown()"]
    assert "# defect switches: leak_remaining_wrs" in text
    assert "@reproduce_failure('6.1', b'AX==')" in text
    compile(text, "reproducer", "exec")
    assert pasteable(["no steps here"], RunOn()) == ""


def test_analytics_are_removed_and_outside_loads_found(tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    page.write_text('<html><body><div id="app"></div>\n'
                    '<script async src="https://www.googletagmanager.com/gtag/js?id=G-1">'
                    '</script>\n<script>\n window.dataLayer = [];\n function gtag(){}\n'
                    " gtag('js', new Date());\n</script>\n"
                    '<script src="app.js"></script><a href="https://allurereport.org">x</a>'
                    "</body></html>")
    assert html.outside_loads(tmp_path) == [("index.html", "www.googletagmanager.com")]
    assert html.strip_analytics(tmp_path) == 1
    text = page.read_text()
    assert "gtag" not in text and '<script src="app.js">' in text
    assert html.outside_loads(tmp_path) == []   # a link is not a request
    page.write_text('<link rel="stylesheet" href="//fonts.example.org/a.css">')
    assert html.outside_loads(tmp_path) == [("index.html", "fonts.example.org")]


def test_allure_config_keeps_history_and_the_quality_gate(tmp_path: Path) -> None:
    config = html.allure_config(tmp_path / "history", 26)
    assert config["historyPath"] == str(tmp_path / "history" / "history.jsonl")
    assert config["qualityGate"] == {"rules": [{"maxFailures": 0, "minTestsCount": 26}]}
    assert "historyPath" not in html.allure_config(None)
    assert html.NPX_PACKAGE == f"allure@{html.ALLURE_VERSION}" and html.ALLURE_VERSION[0] == "3"


def _write(directory: Path, name: str, status: str, story: str, message: str = "") -> None:
    data = {"uuid": name, "historyId": name, "name": name, "status": status,
            "labels": [{"name": "story", "value": story}]}
    if message:
        data["statusDetails"] = {"message": message}
    (directory / f"{name}-result.json").write_text(json.dumps(data))


def test_a_run_of_skips_fails_the_quality_gate(tmp_path: Path) -> None:
    for i in range(20):
        _write(tmp_path, f"t{i}", "skipped", "POOL-1", "not proven: skipped")
    assert summary.main(["--results", str(tmp_path), "--check"]) == 1
    assert summary.main(["--results", str(tmp_path), "--check", "--min-tests", "0"]) == 0
    _write(tmp_path, "t0", "passed", "POOL-1")
    s = summary.summarise(summary.load_results(tmp_path))
    rules = summary.quality_gate(s, min_tests=1, all_properties=True)
    assert [ok for _, ok, _ in rules] == [True, True, False]   # CQE-1 ... not proven


def test_not_judged_skips_make_a_property_not_judged(tmp_path: Path) -> None:
    _write(tmp_path, "a", "skipped", "POOL-1", "not judged: the target declares no WR_HELD")
    _write(tmp_path, "b", "passed", "POOL-2")
    s = summary.summarise(summary.load_results(tmp_path))
    assert (s.verdicts["POOL-1"], s.verdicts["POOL-2"]) == ("NOT JUDGED", "PASS")


PER_PROPERTY_TESTS = '''
import weakref

import pytest

from conformance import checks, harness, judging
from impl.target import TargetDescription
from types import MappingProxyType

DESC = TargetDescription("sample", "v1", frozenset({"REQUESTS", "TRANSITIONS"}), 2, 0,
                         ("IDLE", "BUSY"), MappingProxyType({0: 0, 1: 0}),
                         frozenset({(0, 1), (1, 0)}))


class FakeHarness:
    steps, events, options = 3, 99, "opts"
    def __init__(self):
        self.timeline = [{"step": 1, "phase": "step", "wr_capacity": 4, "wr_ring": 4,
                          "wr_cached": 0, "wr_held": 0, "in_flight": 0}]
    def in_flight(self):
        return 1
    def sample(self, phase):
        self.timeline.append({**self.timeline[0], "phase": phase, "wr_ring": 3})


@pytest.mark.spec("SM-1", "POOL-1", "CQE-1")
@pytest.mark.per_property(subject="SampleMachine")
def test_sm1_fails():
    judging.record(("SM-1", "POOL-1", "CQE-1"), DESC)
    keep = FakeHarness()
    harness._latest = weakref.ref(keep)
    err = checks.violation("SM-1", "illegal request transition BUSY -> BUSY")
    err.add_note("state = SampleMachine()")
    err.add_note("state.teardown()")
    for hook in checks.VIOLATION_HOOKS:
        hook(err)
    raise err


@pytest.mark.spec("CQE-1")
@pytest.mark.per_property(subject="BrokenMachine")
def test_breaks():
    raise RuntimeError("the binding fell over")
'''


def test_per_property_results_of_a_failure_a_break_and_a_blind_target(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("allure_commons")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("NRT_PROFILE", "ci")
    pytester.mkdir("conformance")
    (pytester.path / "conformance" / "test_sample.py").write_text(PER_PROPERTY_TESTS)
    result = pytester.runpytest_subprocess("-p", "reports.pytest_plugin", "--alluredir=res")
    result.assert_outcomes(failed=2)
    res = pytester.path / "res"
    found = {}
    for path in res.glob("*-result.json"):
        data = json.loads(path.read_text())
        found[data["name"]] = data
    assert sorted(found) == ["BrokenMachine: the run broke", "CQE-1 on BrokenMachine",
                             "CQE-1 on SampleMachine", "POOL-1 on SampleMachine",
                             "SM-1 on SampleMachine"]   # no result for the tests themselves
    assert found["SM-1 on SampleMachine"]["status"] == "failed"
    assert found["SM-1 on SampleMachine"]["statusDetails"]["message"] == \
        "SM-1: illegal request transition BUSY -> BUSY"
    pool1 = found["POOL-1 on SampleMachine"]
    assert pool1["status"] == "skipped"
    assert pool1["statusDetails"]["message"].startswith("not judged: the target declares no")
    assert found["CQE-1 on SampleMachine"]["status"] == "passed"
    broken = found["BrokenMachine: the run broke"]
    assert broken["status"] == "broken"
    assert broken["statusDetails"]["message"] == "RuntimeError: the binding fell over"
    assert found["CQE-1 on BrokenMachine"]["statusDetails"]["message"].startswith("not proven")
    atts = {a["name"]: a for a in found["SM-1 on SampleMachine"]["attachments"]}
    svg = (res / atts["pool-occupancy.svg"]["source"]).read_text()
    assert ">SM-1 violation<" in svg and 'class="gap"' in svg   # sampled at the violation
    repro = (res / atts["reproducer"]["source"]).read_text()
    assert repro.rstrip().endswith("state = SampleMachine()\nstate.teardown()")
    s = summary.summarise(summary.load_results(res))
    assert (s.verdicts["SM-1"], s.verdicts["POOL-1"], s.verdicts["CQE-1"]) == \
        ("FAIL", "NOT JUDGED", "PASS")
