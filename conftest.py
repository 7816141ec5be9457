"""Options, markers and plugins for every test in the project, in one place.

* ``--nrt-profile {ci,nightly,hardware}``: the Hypothesis settings profile (default ``ci``,
  or ``NRT_PROFILE``).
* ``--nrt-defects NAME[,NAME]``: build every target with these defect switches on (used by
  the self-check to prove the gate still catches each historical bug).
* marker ``spec(*ids)``: the property IDs a test proves (registered by the reports plugin,
  which also labels tests for Allure and attaches reproducers).
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["reports.pytest_plugin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nrt", "nvmf-rdma-conformance")
    group.addoption("--nrt-profile", default=None, choices=("ci", "nightly", "hardware"),
                    help="Hypothesis profile: ci (default; derandomized), nightly, hardware")
    group.addoption("--nrt-defects", default=None, metavar="NAME[,NAME]",
                    help="defect switches to build targets with (self-check only)")


def pytest_configure(config: pytest.Config) -> None:
    profile = config.getoption("--nrt-profile")
    if profile:
        os.environ["NRT_PROFILE"] = profile
    defects = config.getoption("--nrt-defects")
    if defects is not None:
        os.environ["NRT_DEFECTS"] = defects
    from conformance import profiles

    profiles.load()
    profiles.defects_under_test()   # unknown switch names fail here, before any test


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = [f"nrt profile: {os.environ.get('NRT_PROFILE', 'ci')}"]
    if os.environ.get("NRT_DEFECTS"):
        lines.append(f"nrt defect switches ON: {os.environ['NRT_DEFECTS']}")
    return lines
