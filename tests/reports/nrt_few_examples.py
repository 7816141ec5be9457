"""pytest plugin for the reports' own tests: the gate's machines with few examples and no
shrinking, so a run that fails (a defect switch on) takes seconds, not minutes.

Loaded by the tests with ``-p nrt_few_examples`` (this directory on ``PYTHONPATH``); the
number of examples is ``NRT_FEW_EXAMPLES`` (default 10)."""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(trylast=True)   # after the root conftest has loaded the profile
def pytest_configure(config: pytest.Config) -> None:
    from hypothesis import Phase, settings

    settings.register_profile(
        "few-examples", settings.default,
        max_examples=int(os.environ.get("NRT_FEW_EXAMPLES", "10")),
        phases=(Phase.explicit, Phase.reuse, Phase.generate))
    settings.load_profile("few-examples")
