"""The judge command's pytest plugin: what happened during the run, as JSON lines.

Loaded by :mod:`conformance.judge` with ``-p conformance.judge_plugin`` and active only when
``NRT_JUDGE_EVENTS`` names a file.  Every process of the run (the xdist controller and each
worker, or the one pytest process) appends one JSON object per line, flushed at once, so
what was seen before a crash survives it:

* ``{"event": "judged", "property", "mode", "why", "target", "version"}``: how a property
  is judged for the target (:data:`conformance.judging.JUDGED_HOOKS`);
* ``{"event": "violation", "property", "message", "seconds", "nodeid"}``: every property
  violation as it is raised (:data:`conformance.checks.VIOLATION_HOOKS`), ``seconds`` since
  ``NRT_JUDGE_START`` (the judge's run start, seconds since the epoch); written once the
  test it was raised in has not passed (a test that passes raised it on purpose: the
  checks' own tests feed them hand-made violations);
* ``{"event": "failed", "nodeid", "when", "property", "message", "notes", "specs"}``: a
  test that failed, with the exception's property (None for any other exception) and
  Hypothesis's notes (the shrunk reproducer);
* ``{"event": "crashed", "nodeid", "message"}``: a worker died while running a test;
* ``{"event": "finished", "exitstatus"}``: the session ended.

``NRT_JUDGE_SHRINK_SECONDS`` bounds Hypothesis's shrinking of a failure (its own bound is
300 s).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator
from typing import Any

import pytest

from conformance import checks, judging

_fd: int | None = None
_start = 0.0
_current = ""
#: Violations of the running test, held until it is known whether the test passed.
_held: list[dict[str, Any]] = []


def _emit(**event: Any) -> None:
    if _fd is not None:
        os.write(_fd, (json.dumps(event, default=str) + "\n").encode())


def _on_violation(v: checks.PropertyViolation) -> None:
    _held.append({"event": "violation", "property": v.spec, "message": str(v)[:2000],
                  "seconds": round(time.time() - _start, 3), "nodeid": _current})


def _release(passed: bool) -> None:
    if not passed:
        for e in _held:
            _emit(**e)
    _held.clear()


def _on_judged(j: judging.Judgement) -> None:
    _emit(event="judged", **j.as_dict())


@pytest.hookimpl(trylast=True)   # after the root conftest has loaded the profile
def pytest_configure(config: pytest.Config) -> None:
    global _fd, _start
    path = os.environ.get("NRT_JUDGE_EVENTS")
    if not path or _fd is not None:
        return
    # every distinct failure shrunk and reported (each property fails as its own type),
    # so each failed property gets its own reproducer
    from hypothesis import settings

    settings.register_profile("judge", settings.default, report_multiple_bugs=True)
    settings.load_profile("judge")
    _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    _start = float(os.environ.get("NRT_JUDGE_START") or time.time())
    checks.VIOLATION_HOOKS.append(_on_violation)
    judging.JUDGED_HOOKS.append(_on_judged)
    shrink = os.environ.get("NRT_JUDGE_SHRINK_SECONDS")
    if shrink:
        from hypothesis.internal.conjecture import engine

        if hasattr(engine, "MAX_SHRINKING_SECONDS"):
            engine.MAX_SHRINKING_SECONDS = float(shrink)


def pytest_unconfigure(config: pytest.Config) -> None:
    global _fd
    if _fd is None:
        return
    for hooks, fn in ((checks.VIOLATION_HOOKS, _on_violation),
                      (judging.JUDGED_HOOKS, _on_judged)):
        if fn in hooks:
            hooks.remove(fn)
    os.close(_fd)
    _fd = None


def pytest_runtest_setup(item: pytest.Item) -> None:
    global _current
    _current = item.nodeid
    _held.clear()


def _specs(item: pytest.Item) -> list[str]:
    return list(dict.fromkeys(str(a) for m in item.iter_markers("spec") for a in m.args))


_leaves = judging.failure_leaves
_property_of = judging.property_of


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    if _fd is not None and report.failed and call.excinfo is not None:
        group = call.excinfo.value
        for exc in _leaves(group):
            prop = _property_of(exc)
            if prop is not None and not isinstance(exc, checks.PropertyViolation):
                _on_violation(checks.violation(prop, str(exc)))   # late, but seen
            notes = getattr(exc, "__notes__", None) or getattr(group, "__notes__", [])
            message = str(exc) if prop is not None else f"{type(exc).__name__}: {exc}"
            _emit(event="failed", nodeid=item.nodeid, when=report.when, property=prop,
                  message=message[:2000], notes="\n".join(notes), specs=_specs(item))
    if report.failed or getattr(report, "wasxfail", None) is not None:
        _release(passed=False)   # a known failure (xfail) is a failure of the target too
    elif report.when == "teardown":
        _release(passed=True)
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # only the xdist controller sees a worker's death, as a failed report it makes up
    text = report.longreprtext if report.failed else ""
    if _fd is not None and "crashed while running" in text:
        _emit(event="crashed", nodeid=report.nodeid, message=text.strip()[-2000:])


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not hasattr(session.config, "workerinput"):
        _emit(event="finished", exitstatus=int(exitstatus))
