"""Run the hardware tier in a child pytest, the way a nightly runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_tier(*args: str, env: dict[str, str] | None = None, timeout: float = 300
             ) -> subprocess.CompletedProcess[str]:
    """``pytest conformance/test_remote.py ARGS`` in a child; its own plugins, no xdist."""
    base = dict(os.environ if env is None else env)
    for k in ("NRT_REMOTE", "NRT_SUBNQN", "NRT_RPC", "NRT_TARGET_LOG", "NRT_HOST_BINDING",
              "NRT_PROFILE", "PYTEST_XDIST_WORKER", "PYTEST_CURRENT_TEST"):
        if env is None:
            base.pop(k, None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-p",
           "no:xdist", "conformance/test_remote.py", *args]
    return subprocess.run(cmd, cwd=ROOT, env=base, capture_output=True, text=True,
                          timeout=timeout, check=False)
