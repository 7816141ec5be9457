"""One gate machine run with few examples, writing Allure results: what the reports' tests
look at."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MACHINE = "ContentionMachine"
DEFECT = "leak_remaining_wrs"


@dataclass(frozen=True)
class GateRun:
    results: Path
    returncode: int
    output: str


def run_gate(results: Path, defects: str = "", machine: str = MACHINE) -> GateRun:
    """``pytest conformance/test_gate.py -k machine`` with few examples into ``results``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)]),
           "NRT_PROFILE": "ci"}
    env.pop("NRT_DEFECTS", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-p", "nrt_few_examples", "-p", "no:xdist",
               "conformance/test_gate.py", "-k", machine,
               f"--alluredir={results}", "--clean-alluredir"]
    if defects:
        command += ["--nrt-defects", defects]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    return GateRun(results, done.returncode, done.stdout + done.stderr)
