"""pytest plugin: the ``spec`` marker, Allure labels by property, failure attachments, and
Allure metadata at session end.

Load it from the root conftest (``pytest_plugins = ["reports.pytest_plugin"]``) or with
``-p reports.pytest_plugin``.

- ``@pytest.mark.spec("POOL-2", "SHUT-1")`` names the properties a test proves. IDs are checked
  against ``reports.spec`` at collection: an unknown ID is a collection error naming it.
- With allure-pytest loaded, each test gets epic/feature/story/tag labels (``reports.labels``)
  as ``allure_label`` markers during collection, so ``--allure-features POOL`` and
  ``--allure-stories POOL-2`` select by property and the results under ``--alluredir`` carry them.
- Text registered through ``reports.attach`` is filed as Allure attachments when the test fails
  (figures always); the reproducer is also shown in pytest's own failure report.
- How each property was judged for the target (``conformance.judging``: white-box,
  black-box or not judged, and why) travels with the test reports (xdist workers included)
  and goes into environment.properties (``target``, ``judged.<ID>``).
- A test marked ``@pytest.mark.per_property`` (a gate machine: one run judging many
  properties) is filed as one result per property it proves (:mod:`reports.property_results`):
  the violations raised while it runs (:data:`conformance.checks.VIOLATION_HOOKS`) carry
  their evidence (pool samples taken at that moment, the harness's counters), the judging
  hooks say how each property was judged; the result allure-pytest writes for the test itself
  is removed when the session ends.
- With ``--alluredir``, environment.properties, categories.json and executor.json are written
  into the results directory when the session ends (by the xdist controller only).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from conformance import checks, judging
from reports import attach, property_results, spec
from reports.categories import write_categories
from reports.environment import (
    git_commit,
    judged_entries,
    run_entries,
    write_environment,
    write_executor,
)
from reports.labels import labels_for
from reports.plot import pool_occupancy_svg
from reports.reproducer import RunOn, pasteable

MARKER = "spec"
PER_PROPERTY = "per_property"
#: The user property a test report carries the judgements recorded while it ran under.
JUDGED_PROPERTY = "nrt-judged"
_FAILED = pytest.StashKey[bool]()
_CALL = pytest.StashKey[dict[str, Any]]()

#: Judgements recorded in this process that no test report has carried yet.
_unreported: list[dict[str, str]] = []
#: Property -> how it was judged, from every report this process has seen (in the xdist
#: controller: the workers' reports too).
_seen: dict[str, dict[str, str]] = {}
#: Property -> how it is judged for the target this process judges now (every judgement
#: heard, whichever test it came with).
_judged_now: dict[str, dict[str, str]] = {}
#: Property -> the evidence of its last violation raised in the running per-property test.
_violations: dict[str, property_results.Evidence] = {}
_in_per_property_test = False


def _on_judged(j: judging.Judgement) -> None:
    _unreported.append(j.as_dict())
    _judged_now[j.prop] = j.as_dict()


def _on_violation(v: checks.PropertyViolation) -> None:
    """Evidence of a violation, taken as it is raised: the harness samples its pools at
    this moment (the state the check judged), and its counters are read."""
    ev = property_results.Evidence(v.spec, str(v))
    try:
        from conformance import harness

        h = harness.latest()
        if h is not None:
            h.sample("violation")
            ev.samples = [dict(r) for r in h.timeline]
            ev.counters = {"steps": h.steps, "micro_events": h.events,
                           "in_flight": h.in_flight(), "options": str(h.options)}
            # any test's failure report (kept only if the test fails)
            attach.pool_timeline(h.timeline)
            attach.stats(ev.counters)
    except Exception as exc:  # noqa: BLE001 - evidence is best effort: the violation counts
        ev.counters["evidence_error"] = f"{type(exc).__name__}: {exc}"
    if _in_per_property_test:
        _violations[v.spec] = ev


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*ids): the property IDs (reports.spec, e.g. POOL-2) this test proves",
    )
    config.addinivalue_line(
        "markers",
        f"{PER_PROPERTY}(subject=None): report one result per property of the spec marker "
        "(the subject, e.g. a gate machine, names them; default: the parametrize id)",
    )
    _seen.clear()
    if _on_judged not in judging.JUDGED_HOOKS:
        judging.JUDGED_HOOKS.append(_on_judged)
    if _on_violation not in checks.VIOLATION_HOOKS:
        checks.VIOLATION_HOOKS.append(_on_violation)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _on_judged in judging.JUDGED_HOOKS:
        judging.JUDGED_HOOKS.remove(_on_judged)
    if _on_violation in checks.VIOLATION_HOOKS:
        checks.VIOLATION_HOOKS.remove(_on_violation)


def judged() -> dict[str, dict[str, str]]:
    """Property -> how it was judged (a ``Judgement.as_dict()``), as reported so far."""
    return dict(_seen)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for name, value in getattr(report, "user_properties", ()):
        if name == JUDGED_PROPERTY:
            for j in json.loads(value):
                _seen[j["property"]] = j


def spec_ids(item: pytest.Item) -> list[object]:
    """Every argument of every ``spec`` marker on ``item`` (function, class, module), deduped."""
    found: list[object] = []
    for mark in item.iter_markers(name=MARKER):
        found.extend(mark.args)
    return list(dict.fromkeys(found))


def _marker_problem(item: pytest.Item) -> str | None:
    marks = list(item.iter_markers(name=MARKER))
    if not marks:
        return None
    if any(not mark.args for mark in marks):
        return f"{item.nodeid}: @pytest.mark.{MARKER}() needs at least one property ID"
    bad = spec.unknown(spec_ids(item))
    if bad:
        names = ", ".join(repr(b) for b in bad)
        return (
            f"{item.nodeid}: unknown property ID {names} in @pytest.mark.{MARKER}; "
            f"known IDs: {', '.join(spec.BY_ID)}"
        )
    return None


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    report = yield
    if not report.passed:
        return report
    problems = [
        p for p in (_marker_problem(i) for i in report.result if isinstance(i, pytest.Item)) if p
    ]
    if not problems:
        return report
    return pytest.CollectReport(report.nodeid, "failed", "\n".join(problems), [])


def _allure_loaded(config: pytest.Config) -> bool:
    return config.pluginmanager.hasplugin("allure_pytest")


def _allure_results_dir(config: pytest.Config) -> str | None:
    directory = getattr(config.option, "allure_report_dir", None)
    if not directory:
        return None
    try:
        import allure_commons  # noqa: F401
    except ImportError:
        return None
    return str(directory)


def _relative(item: pytest.Item) -> Path:
    try:
        return item.path.relative_to(item.config.rootpath)
    except ValueError:
        return Path(item.path.name)


def _has_epic(item: pytest.Item) -> bool:
    return any(m.kwargs.get("label_type") == "epic" for m in item.iter_markers("allure_label"))


@pytest.hookimpl(tryfirst=True)  # before allure-pytest selects by label
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _allure_loaded(config):
        return
    import allure

    for item in items:
        ids = [i for i in spec_ids(item) if isinstance(i, str) and i in spec.BY_ID]
        for name, value in labels_for(_relative(item), ids):
            if name == "epic" and _has_epic(item):
                continue  # an explicit @allure.epic wins
            item.add_marker(allure.label(name, value))  # type: ignore[no-untyped-call]
        if _per_property(item):
            item.add_marker(allure.label(  # type: ignore[no-untyped-call]
                property_results.CARRIER_LABEL, "replaced by per-property results"))


def _per_property(item: pytest.Item) -> bool:
    return item.get_closest_marker(PER_PROPERTY) is not None


def _subject(item: pytest.Item) -> str:
    mark = item.get_closest_marker(PER_PROPERTY)
    subject = (mark.kwargs.get("subject") or (mark.args[0] if mark.args else None)) if mark \
        else None
    if subject:
        return str(subject)
    callspec = getattr(item, "callspec", None)
    return str(callspec.id) if callspec is not None else item.name


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    global _in_per_property_test
    attach.clear()  # whatever was registered outside this test is not its evidence
    _violations.clear()
    _in_per_property_test = _per_property(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    if _unreported:
        report.user_properties.append((JUDGED_PROPERTY, json.dumps(_unreported)))
        _unreported.clear()
    if _per_property(item):
        _per_property_report(item, call, report)
        return report
    if report.failed:
        item.stash[_FAILED] = True
        repro = next((p for p in attach.pending() if p.name == attach.REPRODUCER), None)
        if repro is not None:
            report.sections.append(("reproducer", repro.body))
    if report.when == "teardown":
        taken = attach.take(on_failure=item.stash.get(_FAILED, False))
        attach.clear()
        if taken and _allure_results_dir(item.config):
            import allure

            for p in taken:
                allure.attach(p.body, name=p.name, attachment_type=p.mime, extension=p.extension)
    return report


# ------------------------------------------------------------ per-property results


_leaves = judging.failure_leaves
_property_of = judging.property_of


def _run_on(item: pytest.Item) -> RunOn:
    target = os.environ.get("NRT_TARGET") or "builtin"
    commit = None
    try:
        from impl import backends

        commit = backends.default().commit
    except Exception:   # noqa: BLE001 - a target that cannot load has no commit to name
        commit = None
    if target == "builtin" and not commit:
        commit = git_commit(item.config.rootpath)   # the built-in target is the suite's
    seen = next(iter(_judged_now.values()), None)
    label = f"{seen['target']} {seen['version']}".strip() if seen else target
    return RunOn(target=target, target_label=label, commit=commit,
                 defects=os.environ.get("NRT_DEFECTS", ""),
                 profile=os.environ.get("NRT_PROFILE", "ci"),
                 spdk_src=os.environ.get("NRT_SPDK_SRC") or None,
                 seed=_seed(item.config))


def _seed(config: pytest.Config) -> str:
    seed = getattr(config.option, "hypothesis_seed", None)
    if seed is not None:
        return str(seed)
    try:
        from hypothesis import settings

        return "derandomized" if settings.default.derandomize else \
            "random (replay with the @reproduce_failure line)"
    except ImportError:
        return ""


def _failure(prop: str, exc: BaseException, notes: list[str], run: RunOn, subject: str,
             trace: str) -> dict[str, Any]:
    ev = _violations.get(prop)
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if not message.startswith(prop):
        message = f"{prop}: {message}"
    atts: list[property_results.Attachment] = []
    text = pasteable(notes, run, prop, subject)
    if text:
        atts.append(property_results.Attachment(attach.REPRODUCER, text, "text/plain", "txt"))
    if ev is not None and ev.samples:
        try:
            atts.append(property_results.Attachment(
                "pool-occupancy.svg", pool_occupancy_svg(ev.samples, prop),
                "image/svg+xml", "svg"))
        except ValueError:
            pass   # the target declares no pool counts: nothing to plot
        atts.append(property_results.Attachment(
            attach.POOL_TIMELINE, attach.timeline_csv(ev.samples), "text/csv", "csv"))
    if ev is not None and ev.counters:
        atts.append(property_results.Attachment(
            attach.STATS, json.dumps(ev.counters, indent=2, sort_keys=True, default=str),
            "application/json", "json"))
    return {"message": message, "trace": trace, "attachments": atts, "reproducer": text}


def _per_property_report(item: pytest.Item, call: pytest.CallInfo[None],
                         report: pytest.TestReport) -> None:
    state = item.stash.setdefault(_CALL, {"failed": {}, "broken": "", "trace": "",
                                          "skipped": "", "start": None, "stop": None})
    if report.when == "call":
        state["start"], state["stop"] = int(call.start * 1000), int(call.stop * 1000)
    if state["start"] is None:
        state["start"] = int(call.start * 1000)
    state["stop"] = max(state["stop"] or 0, int(call.stop * 1000))
    if report.skipped and call.excinfo is not None:
        reason = call.excinfo.value
        state["skipped"] = str(getattr(reason, "msg", "") or reason)
    elif report.failed and call.excinfo is not None:
        run = _run_on(item)
        group = call.excinfo.value
        for leaf in _leaves(group):
            notes = list(getattr(leaf, "__notes__", None) or getattr(group, "__notes__", []))
            prop = _property_of(leaf)
            if prop is None:
                state["broken"] = state["broken"] or f"{type(leaf).__name__}: {leaf}"
                state["trace"] = report.longreprtext
                continue
            f = _failure(prop, leaf, notes, run, _subject(item), report.longreprtext)
            state["failed"].setdefault(prop, f)
            if f["reproducer"]:
                report.sections.append((f"reproducer ({prop})", f["reproducer"]))
    if report.when != "teardown":
        return
    taken = attach.take(on_failure=False)   # what every outcome keeps: stress figures
    attach.clear()
    directory = _allure_results_dir(item.config)
    if directory is None:
        return
    run = _run_on(item)
    props = [i for i in spec_ids(item) if isinstance(i, str) and i in spec.BY_ID]
    outcome = property_results.Outcome(
        subject=_subject(item), nodeid=item.nodeid,
        full_name=f"{_relative(item).with_suffix('').as_posix().replace('/', '.')}#"
                  f"{item.name}",
        path=_relative(item).as_posix(), props=props, start=state["start"],
        stop=state["stop"], failed=state["failed"], broken=state["broken"],
        broken_trace=state["trace"], skipped=state["skipped"], judged=dict(_judged_now),
        target=run.target, target_label=run.target_label, defects=run.defects)
    property_results.write(directory, outcome)
    for p in taken:
        property_results.write_global_attachment(
            directory, property_results.Attachment(p.name, p.body, p.mime, p.extension),
            state["stop"])


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    results_dir = _allure_results_dir(config)
    if results_dir is None:
        return
    # every process removes what allure-pytest wrote for per-property tests (each
    # worker's are written by the time it finishes)
    property_results.remove_carriers(results_dir)
    if hasattr(config, "workerinput"):
        return
    extra: dict[str, object] = {
        "pytest": pytest.__version__,
        "allure-pytest": _version("allure-pytest"),
        **judged_entries(_seen, judging.PROPERTIES),
        **run_entries(config.rootpath, _seed(config)),
    }
    workers = getattr(config.option, "numprocesses", None)
    if workers:
        extra["xdist.workers"] = workers
    write_environment(results_dir, extra, cwd=config.rootpath)
    write_categories(results_dir)
    write_executor(results_dir)
