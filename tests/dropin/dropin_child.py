"""Running a child process on the drop-in libraries, for the tests of tests/dropin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PYVERBS = Path("/usr/lib/python3/dist-packages/pyverbs")
CHILD_TIMEOUT_S = 120


def need_pyverbs() -> None:
    if (PYVERBS / "__init__.py").is_file():
        return
    ci = os.environ.get("CI", "").strip().lower() not in ("", "false", "0", "no")
    if ci or os.environ.get("NRT_REQUIRE_PYVERBS") == "1":
        pytest.fail(f"python3-pyverbs is not installed ({PYVERBS} is missing): .ci/run "
                    f"installs it")
    pytest.skip(f"python3-pyverbs is not installed ({PYVERBS} is missing; "
                f"apt-get install python3-pyverbs)")


def run_child(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT_S, check=False, cwd=HERE.parents[1])
