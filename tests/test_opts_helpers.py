"""The option helpers of nrt.h must not crash on options the target would refuse (DESIGN 5.7).

``nrt_opts_max_wrs_per_request``, ``nrt_opts_min_wr_pool`` and ``nrt_opts_min_buffers`` are
public, and the facade exposes them as ``Options.max_wrs_per_request`` / ``.min_wr_pool`` /
``.min_buffers`` on options that were never validated.  Each case runs in a subprocess: a
crash kills the interpreter (SIGFPE), which no in-process assertion could report.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

CASES = [
    pytest.param("io_unit_size=0", "min_wr_pool"),
    pytest.param("io_unit_size=0", "min_buffers"),
    pytest.param("max_sge=0", "max_wrs_per_request"),
    pytest.param("max_queue_depth=0", "min_wr_pool"),
]


@pytest.mark.parametrize(("options", "helper"), CASES)
def test_helper_answers_or_refuses_without_crashing(options: str, helper: str) -> None:
    code = (
        "from impl import Options, OptionsRefused\n"
        f"o = Options({options})\n"
        "try:\n"
        f"    print(o.{helper})\n"
        "except (OptionsRefused, ValueError) as e:\n"
        "    print('refused:', e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
