"""pytest hooks of the hardware tier (its options live in the root ``conftest.py``).

* marker ``remote``: a test of the hardware tier (``conformance/test_remote.py``).
* In the ``hardware`` profile only ``remote`` tests run (the rest of the gate drives the
  in-process target and says nothing about the remote one); a session in which no
  ``remote`` test passed or failed - everything skipped, or nothing collected - exits
  non-zero, so a nightly of skips never reads as a pass.
"""

from __future__ import annotations

import os

import pytest

MARKER = "remote"


class _Tally:
    """Counts the hardware tier's outcomes (on the xdist controller, from every worker)."""

    def __init__(self) -> None:
        self.ran = {"passed": 0, "failed": 0, "skipped": 0}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if MARKER not in report.keywords:
            return
        if report.when == "call" and report.passed:
            self.ran["passed"] += 1
        elif report.failed:
            self.ran["failed"] += 1
        elif report.skipped:
            self.ran["skipped"] += 1


_TALLY = pytest.StashKey[_Tally]()


def _hardware() -> bool:
    return os.environ.get("NRT_PROFILE") == "hardware"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: a test of the hardware tier (a remote "
                                       f"target driven through the verbs and CM APIs)")
    tally = config.stash[_TALLY] = _Tally()
    config.pluginmanager.register(tally, "nrt-remote-tally")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _hardware():
        return
    skip = pytest.mark.skip(reason="the hardware profile runs only the hardware tier "
                                   "(tests marked remote)")
    for item in items:
        if item.get_closest_marker(MARKER) is None:
            item.add_marker(skip)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _hardware() or hasattr(session.config, "workerinput"):
        return
    ran = session.config.stash[_TALLY].ran
    if ran["passed"] or ran["failed"]:
        return
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    msg = (f"hardware profile: no hardware-tier test ran ({ran['skipped']} skipped): "
           f"exiting non-zero so a run of skips does not read as a pass")
    if tr is not None:
        tr.write_line(msg, red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
