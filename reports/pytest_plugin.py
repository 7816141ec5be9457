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
- With ``--alluredir``, environment.properties, categories.json and executor.json are written
  into the results directory when the session ends (by the xdist controller only).
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from conformance import judging
from reports import attach, spec
from reports.categories import write_categories
from reports.environment import judged_entries, write_environment, write_executor
from reports.labels import labels_for

MARKER = "spec"
#: The user property a test report carries the judgements recorded while it ran under.
JUDGED_PROPERTY = "nrt-judged"
_FAILED = pytest.StashKey[bool]()

#: Judgements recorded in this process that no test report has carried yet.
_unreported: list[dict[str, str]] = []
#: Property -> how it was judged, from every report this process has seen (in the xdist
#: controller: the workers' reports too).
_seen: dict[str, dict[str, str]] = {}


def _on_judged(j: judging.Judgement) -> None:
    _unreported.append(j.as_dict())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*ids): the property IDs (reports.spec, e.g. POOL-2) this test proves",
    )
    _seen.clear()
    if _on_judged not in judging.JUDGED_HOOKS:
        judging.JUDGED_HOOKS.append(_on_judged)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _on_judged in judging.JUDGED_HOOKS:
        judging.JUDGED_HOOKS.remove(_on_judged)


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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    attach.clear()  # whatever was registered outside this test is not its evidence


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    if _unreported:
        report.user_properties.append((JUDGED_PROPERTY, json.dumps(_unreported)))
        _unreported.clear()
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


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    results_dir = _allure_results_dir(config)
    if results_dir is None or hasattr(config, "workerinput"):
        return
    extra: dict[str, object] = {
        "pytest": pytest.__version__,
        "allure-pytest": _version("allure-pytest"),
        **judged_entries(_seen, judging.PROPERTIES),
    }
    workers = getattr(config.option, "numprocesses", None)
    if workers:
        extra["xdist.workers"] = workers
    write_environment(results_dir, extra, cwd=config.rootpath)
    write_categories(results_dir)
    write_executor(results_dir)
