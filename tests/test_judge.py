"""How a target is judged from what it declares (``conformance.judging``), and the judge
command (``python -m conformance.judge``) end to end on the built-in target."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from conformance import judge, judging
from conformance.judge import Run, reproducer_lines, verdicts
from impl import Transport, backends
from impl.target import CAPABILITIES, MODE_CAPABILITIES, TargetDescription

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["pytester"]


def desc(*caps: str, name: str = "fewer") -> TargetDescription:
    """A target declaring only ``caps``, with a two-state lifecycle of its own."""
    return TargetDescription(name, "v0", frozenset(caps), 2, 1, ("BUSY", "IDLE"),
                             MappingProxyType({0: 0, 1: 0}), frozenset({(0, 1), (1, 0)}))


EVERYTHING = desc(*(set(CAPABILITIES) - MODE_CAPABILITIES))
NOTHING = desc()


# ------------------------------------------------------------------------------ judging


def test_every_property_has_parts_and_known_capabilities() -> None:
    assert judging.PROPERTIES == ("POOL-1", "POOL-2", "POOL-3", "LIVE-1", "LIVE-2", "CQE-1",
                                  "DATA-1", "SM-1", "DEPTH-1", "CFG-1", "ERR-1", "SHUT-1",
                                  "CONN-1", "STATS-1", "CRASH-1")
    for prop, parts in judging.PARTS.items():
        assert parts, prop
        assert len({p.key for p in parts}) == len(parts), prop
        assert judging.NEEDS[prop] <= set(CAPABILITIES)


@pytest.mark.parametrize("prop,needs", [
    ("POOL-1", {"WR_POOL", "WR_HELD"}),
    ("POOL-2", {"WR_POOL", "DESTROY_REPORT"}),
    ("DEPTH-1", {"DEPTHS", "RECEIVES", "REQUESTS", "WR_HELD"}),
    ("SM-1", {"REQUESTS", "TRANSITIONS", "QUEUES", "WR_HELD"}),
    ("STATS-1", {"GROUP_STATS", "REQUESTS", "QUEUES"}),
    ("CFG-1", {"WR_POOL", "WR_CAP_EXACT", "BUF_POOL"}),
    ("LIVE-1", set()), ("CQE-1", set()), ("DATA-1", set()), ("CONN-1", set()),
    ("CRASH-1", set()),
])
def test_what_white_box_judging_needs(prop: str, needs: set[str]) -> None:
    assert judging.NEEDS[prop] == needs


def test_how_judged_with_everything_declared() -> None:
    for prop in judging.PROPERTIES:
        mode, why = judging.how_judged(prop, EVERYTHING)
        assert mode == (judging.WHITE_BOX if judging.NEEDS[prop] else judging.BLACK_BOX), prop
        assert why


def test_how_judged_with_nothing_declared() -> None:
    modes = {p: judging.how_judged(p, NOTHING)[0] for p in judging.PROPERTIES}
    assert {p for p, m in modes.items() if m == judging.NOT_JUDGED} == {
        "POOL-1", "POOL-2", "POOL-3", "SM-1", "DEPTH-1", "STATS-1"}
    # a black-box part is still judged: the rest of these properties is not
    for prop in ("LIVE-2", "CFG-1", "ERR-1", "SHUT-1"):
        assert modes[prop] == judging.BLACK_BOX, prop
    _, why = judging.how_judged("POOL-1", NOTHING)
    assert "declares no WR_HELD, WR_POOL" in why and "no black-box judgement" in why
    _, why = judging.how_judged("SHUT-1", NOTHING)
    assert "not judged: an abrupt destroy returns every data WR (needs WR_POOL)" in why


def test_how_judged_partly_white_box() -> None:
    """An SPDK-like target: its pool's free count and size, no held count, no queues."""
    spdk = desc("WR_POOL", "REQUESTS", "TRANSITIONS", "DESTROY_REPORT")
    assert judging.how_judged("POOL-1", spdk)[0] == judging.NOT_JUDGED
    assert judging.how_judged("POOL-2", spdk) == (
        judging.WHITE_BOX, "the target declares DESTROY_REPORT, WR_POOL")
    mode, why = judging.how_judged("SM-1", spdk)
    assert mode == judging.WHITE_BOX and why.startswith("partly") and "QUEUES" in why
    can = judging.Scope(spdk)
    assert can("SM-1", "transitions") and can("SM-1", "states")
    assert not can("SM-1", "queues") and not can("SM-1", "wr_order")
    with pytest.raises(ValueError, match="no part 'nope'"):
        can("SM-1", "nope")
    with pytest.raises(ValueError, match="unknown property"):
        judging.how_judged("NOPE-1", spdk)


def test_record_tells_the_hooks_once_per_judgement() -> None:
    heard: list[judging.Judgement] = []
    judging.reset()
    judging.JUDGED_HOOKS.append(heard.append)
    try:
        judging.record(("SM-1", "LIVE-1"), NOTHING)
        judging.record(("SM-1",), NOTHING)
        assert [(j.prop, j.mode) for j in heard] == [("SM-1", judging.NOT_JUDGED),
                                                      ("LIVE-1", judging.BLACK_BOX)]
        judging.record(("SM-1",), EVERYTHING)   # another target: heard again
        assert heard[-1].mode == judging.WHITE_BOX and heard[-1].target == "fewer"
    finally:
        judging.JUDGED_HOOKS.remove(heard.append)
        judging.reset()


def test_defect_switches_need_a_target_that_declares_them() -> None:
    assert judging.defects_refusal(NOTHING, 0) is None
    assert judging.defects_refusal(EVERYTHING, 1) is None
    refusal = judging.defects_refusal(NOTHING, 1)
    assert refusal and "declares no DEFECTS" in refusal
    with pytest.raises(judging.CannotJudge, match="DEFECTS"):
        judging.start(NOTHING, ("POOL-1",), defects=1)


def test_builtin_target_describes_itself() -> None:
    d = judging.describe_target(backends.builtin())
    assert d.name == "builtin" and d.caps == set(CAPABILITIES) - MODE_CAPABILITIES
    assert d.state_names[d.free_state] == "FREE"
    assert all(judging.how_judged(p, d)[0] != judging.NOT_JUDGED for p in judging.PROPERTIES)


# ---------------------------------------------- the harness leaves out what is undeclared


@pytest.fixture
def blind_target(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The built-in target, described with none of its introspection: every facade call
    that reads undeclared introspection is counted (it must never be made)."""
    calls: dict[str, int] = {}
    real = Transport.describe

    def describe(self: Transport) -> TargetDescription:
        return dataclasses.replace(real(self), name="blind", caps=frozenset())

    monkeypatch.setattr(Transport, "describe", describe)
    for name in ("wr_pool", "buf_pool", "requests", "transitions", "group_stats"):
        def reading(self: Transport, *a: object, _name: str = name) -> None:
            calls[_name] = calls.get(_name, 0) + 1
            raise AssertionError(f"{_name} read from a target that does not declare it")

        monkeypatch.setattr(Transport, name, reading)
    return calls


def test_gate_machine_judges_a_blind_target_black_box_only(blind_target: dict[str, int]
                                                           ) -> None:
    from conformance.machines import ContentionMachine

    heard: list[judging.Judgement] = []
    judging.reset()
    judging.JUDGED_HOOKS.append(heard.append)
    try:
        run_state_machine_as_test(ContentionMachine, settings=settings(
            max_examples=15, stateful_step_count=6, derandomize=True, database=None,
            deadline=None))
    finally:
        judging.JUDGED_HOOKS.remove(heard.append)
        judging.reset()
    assert blind_target == {}
    modes = {j.prop: j.mode for j in heard if j.target == "blind"}
    assert modes["POOL-1"] == modes["SM-1"] == modes["STATS-1"] == judging.NOT_JUDGED
    assert modes["LIVE-1"] == modes["CQE-1"] == modes["DATA-1"] == judging.BLACK_BOX
    assert modes["SHUT-1"] == judging.BLACK_BOX


# ------------------------------------------------------------------- verdicts of a run


def _run(*events: dict[str, object]) -> Run:
    run = Run()
    for e in events:
        kind = e["event"]
        if kind == "judged":
            run.judged[str(e["property"])] = e
        elif kind == "violation":
            run.violations.setdefault(str(e["property"]), []).append(e)
        elif kind == "failed":
            run.failed.append(e)
        elif kind == "finished":
            run.finished = int(e["exitstatus"])  # type: ignore[call-overload]
    return run


def _judged(prop: str, mode: str = judging.WHITE_BOX) -> dict[str, object]:
    return {"event": "judged", "property": prop, "mode": mode, "why": "w", "target": "t",
            "version": "v"}


def test_verdicts_from_events() -> None:
    notes = "Falsifying\nstate = M()\nstate.start(x=1)\nstate.step_invariants()\n" \
            "state.submit(a=2)\nstate.teardown()\ntrailing"
    run = _run(_judged("POOL-1"), _judged("POOL-2"), _judged("SM-1", judging.NOT_JUDGED),
               _judged("CRASH-1", judging.BLACK_BOX),
               {"event": "violation", "property": "POOL-2", "message": "POOL-2: late",
                "seconds": 9.0, "nodeid": "n"},
               {"event": "violation", "property": "POOL-2", "message": "POOL-2: early",
                "seconds": 2.5, "nodeid": "n"},
               {"event": "failed", "property": "POOL-2", "message": "POOL-2: shrunk",
                "notes": notes, "nodeid": "n", "when": "call", "specs": ["POOL-2"]},
               {"event": "finished", "exitstatus": 1})
    v = verdicts(run, 1, None, ["ContentionMachine"])
    assert v["POOL-1"].status == "pass" and v["SM-1"].status == "not judged"
    assert v["CRASH-1"].status == "pass"
    assert v["ERR-1"].status == "not judged" and "ContentionMachine" in v["ERR-1"].why
    assert v["POOL-2"].finding == {"property": "POOL-2", "message": "POOL-2: shrunk",
                                   "reproducer_steps": 2, "seconds_to_first": 2.5}
    assert v["POOL-2"].reproducer.splitlines()[0] == "state = M()"
    assert v["POOL-2"].reproducer.splitlines()[-1] == "state.teardown()"


def test_the_printed_reproducer_is_python_a_person_can_paste() -> None:
    notes = ("Falsifying\nstate = M()\nstate.start(x=1)\nstate.teardown()\n"
             "You can reproduce this test case by temporarily adding "
             "@reproduce_failure('6.1', b'AXic') as a decorator on your test function")
    text = reproducer_lines(notes)
    compile(text, "<reproducer>", "exec")   # a SyntaxError fails the test
    assert "@reproduce_failure('6.1', b'AXic')" in text


def test_verdicts_of_a_crashed_or_broken_run() -> None:
    run = _run(_judged("POOL-1"), _judged("CRASH-1", judging.BLACK_BOX))
    v = verdicts(run, -11, None, ["ContentionMachine"])
    assert v["CRASH-1"].status == "fail" and "SIGSEGV" in v["CRASH-1"].why
    assert v["POOL-1"].status == "not judged"          # the run never finished
    v = verdicts(run, 0, 30.0, ["ContentionMachine"])
    assert v["CRASH-1"].status == "fail" and "exceeded 30 s" in v["CRASH-1"].why
    broken = _run(_judged("POOL-1"), _judged("CRASH-1", judging.BLACK_BOX),
                  {"event": "failed", "property": None, "message": "TargetError: boom",
                   "notes": "", "nodeid": "t", "when": "call", "specs": ["POOL-1"]},
                  {"event": "finished", "exitstatus": 1})
    v = verdicts(broken, 1, None, ["ContentionMachine"])
    assert v["POOL-1"].status == "not judged" and "TargetError: boom" in v["POOL-1"].why
    assert v["CRASH-1"].status == "pass"


# ---------------------------------------------------------------------- the command


def _judge(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, dict]:
    import os

    done = subprocess.run([sys.executable, "-m", "conformance.judge", *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, **(env or {})}, check=False)
    lines = done.stdout.strip().splitlines()
    last = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    return done.returncode, done.stdout, last


QUICK = ("--target", "builtin", "--machines", "ContentionMachine", "--jobs", "1",
         "--shrink-seconds", "5")


def test_judge_builtin_clean() -> None:
    rc, out, last = _judge(*QUICK, "--max-examples", "10")
    assert rc == 0, out
    assert set(last) == {"target", "target_commit", "properties", "findings"}
    assert last["target"] == "builtin"
    assert last["target_commit"] == backends.builtin().commit
    assert list(last["properties"]) == list(judging.PROPERTIES)
    assert {p for p, s in last["properties"].items() if s != "pass"} == {"ERR-1", "CONN-1"}
    assert last["properties"]["ERR-1"] == "not judged"
    assert last["findings"] == []
    lines = out.splitlines()
    for prop in judging.PROPERTIES:
        assert any(ln.startswith(f"{prop} ") for ln in lines), prop
    assert any(ln.startswith("ERR-1") and "NOT JUDGED" in ln and "not run" in ln
               for ln in lines)


def test_judge_finds_a_defect_switch_through_its_property() -> None:
    """The destroy report's expected count is wrong (wrong_expected_capacity, selected
    through NRT_DEFECTS): POOL-2 fails and nothing else does, with a shrunk reproducer."""
    rc, out, last = _judge(*QUICK, "--max-examples", "50",
                           env={"NRT_DEFECTS": "wrong_expected_capacity"})
    assert rc == 1, out
    assert {p for p, s in last["properties"].items() if s == "fail"} == {"POOL-2"}
    (finding,) = last["findings"]
    assert set(finding) == {"property", "message", "reproducer_steps", "seconds_to_first"}
    assert finding["property"] == "POOL-2" and finding["message"].startswith("POOL-2: ")
    assert 1 <= finding["reproducer_steps"] <= 15
    assert 0 < finding["seconds_to_first"] < 60
    assert "state = ContentionMachine()" in out and "state.teardown()" in out


def test_judge_finds_the_wr_leak_with_nrt_defects() -> None:
    """WRs leaked on abnormal completion (leak_remaining_wrs, through --defects, which the
    judge passes as --nrt-defects): the built-in target's pool audit sees them nowhere at
    the next step (POOL-1), before any destroy could (POOL-2, SHUT-1)."""
    rc, out, last = _judge(*QUICK, "--max-examples", "50", "--defects", "leak_remaining_wrs")
    assert rc == 1, out
    failed = {p for p, s in last["properties"].items() if s == "fail"}
    assert "POOL-1" in failed and failed <= {"POOL-1", "POOL-2", "SHUT-1"}
    assert "nowhere" in next(f["message"] for f in last["findings"]
                             if f["property"] == "POOL-1")


@pytest.mark.parametrize("args,words", [
    (("--machines", "NoSuchMachine"), "unknown machine"),
    (("--target", "spdk"), "--spdk-src"),
    (("--target", "spdk", "--spdk-src", "/nonexistent/spdk"), "cannot be loaded"),
    (("--defects", "no_such_switch"), "unknown defect switch"),
])
def test_judge_usage_errors_exit_2(args: tuple[str, ...], words: str) -> None:
    done = subprocess.run([sys.executable, "-m", "conformance.judge", *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert done.returncode == 2, done.stderr
    assert words in done.stderr


def test_machine_names_are_the_gates() -> None:
    from conformance.gate import GATE_MACHINES

    assert {m.__name__ for m in GATE_MACHINES} | {"ERR", "CONN"} == set(judge.MACHINES)




@pytest.fixture(scope="module")
def spdk_tree() -> Path:
    """An SPDK tree whose target builds (it declares no DEFECTS); a build failure fails."""
    from tests.spdk.conftest import tree

    path = tree("7068328493-parent")
    backends.load("spdk", path)
    return path


def test_defect_switches_of_a_target_without_them_are_refused(spdk_tree: Path) -> None:
    """--nrt-defects against a target that does not declare DEFECTS stops the session with
    the reason, as does the judge's --defects."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--nrt-target", "spdk", "--nrt-spdk-src", str(spdk_tree),
                           "--nrt-defects", "leak_remaining_wrs", "--co",
                           "tests/test_opts_helpers.py"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT, check=False)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "declares no DEFECTS capability" in done.stderr
    done = subprocess.run([sys.executable, "-m", "conformance.judge", "--target", "spdk",
                           "--spdk-src", str(spdk_tree), "--defects", "leak_remaining_wrs"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT, check=False)
    assert done.returncode == 2 and "declares no DEFECTS capability" in done.stderr


PLUGIN_TESTS = """
import pytest
from conformance import checks

def test_catches_its_own_violation():
    with pytest.raises(checks.PropertyViolation):
        checks.fail("POOL-1", "hand-made, on purpose")

@pytest.mark.spec("SHUT-1")
def test_fails():
    checks.fail("SHUT-1", "qpair 3 still exists")

def test_breaks():
    raise RuntimeError("harness bug")
"""


def test_plugin_writes_violations_of_tests_that_did_not_pass(pytester: pytest.Pytester,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    events = pytester.path / "events.jsonl"
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("NRT_JUDGE_EVENTS", str(events))
    pytester.makepyfile(test_sample=PLUGIN_TESTS)
    result = pytester.runpytest_subprocess("-p", "conformance.judge_plugin", "-p",
                                           "reports.pytest_plugin")
    result.assert_outcomes(passed=1, failed=2)
    run = Run.read(events)
    assert set(run.violations) == {"SHUT-1"}   # the caught one was raised on purpose
    assert run.violations["SHUT-1"][0]["nodeid"].endswith("test_fails")
    failed = {f["nodeid"].split("::")[-1]: f for f in run.failed}
    assert failed["test_fails"]["property"] == "SHUT-1"
    assert failed["test_fails"]["specs"] == ["SHUT-1"]
    assert failed["test_breaks"]["property"] is None
    assert failed["test_breaks"]["message"] == "RuntimeError: harness bug"
    assert run.finished == 1
