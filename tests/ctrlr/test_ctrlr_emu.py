"""The controller emulation (``impl/csrc/ctrlr.c``) on its own, through a C test program.

``ctrlr_test.c`` holds one function per case; this module compiles it with ``ctrlr.c`` once
(in a temporary directory) and runs ``ctrlr_test NAME`` for each case.  The case names are
read from the ``CASE(...)`` table of the C file, so collection needs no compiler; a test
checks that the table and ``ctrlr_test --list`` agree.

``ctrlr.c`` is also compiled the way the project builds it (``impl/_build.py``: C11, warnings
as errors) and on its own, to check it depends on no other source and exports only
``nvmf_emu_*``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CSRC = ROOT / "impl" / "csrc"
CTRLR_C = CSRC / "ctrlr.c"
TEST_C = HERE / "ctrlr_test.c"

CC = os.environ.get("CC", "gcc")
STRICT = ["-O2", "-Wall", "-Wextra", "-Werror", "-fno-strict-aliasing", "-fPIC"]
CASES = re.findall(r"^\s*CASE\((\w+)\),\s*$", TEST_C.read_text(encoding="utf-8"), re.MULTILINE)

pytestmark = pytest.mark.skipif(shutil.which(CC) is None, reason=f"no C compiler ({CC})")


def _cc(args: list[str], cwd: Path) -> None:
    proc = subprocess.run([CC, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{CC} {' '.join(args)}\n{proc.stdout}{proc.stderr}"


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ctrlr")


@pytest.fixture(scope="module")
def ctrlr_test(build_dir: Path) -> Path:
    exe = build_dir / "ctrlr_test"
    _cc(["-std=gnu11", *STRICT, f"-I{CSRC}", str(CTRLR_C), str(TEST_C), "-o", str(exe)],
        build_dir)
    return exe


@pytest.mark.parametrize("std", ["gnu11", "c11"])
def test_ctrlr_c_compiles_alone_and_exports_only_nvmf_emu(build_dir: Path, std: str) -> None:
    obj = build_dir / f"ctrlr_{std}.o"
    _cc([f"-std={std}", *STRICT, f"-I{CSRC}", "-c", str(CTRLR_C), "-o", str(obj)], build_dir)
    if shutil.which("nm") is None:
        pytest.skip("no nm")
    out = subprocess.run(["nm", "-g", "--defined-only", str(obj)], capture_output=True,
                         text=True, check=True).stdout
    exported = [line.split()[-1] for line in out.splitlines() if line.strip()]
    assert exported, "ctrlr.c exports nothing"
    assert all(name.startswith("nvmf_emu_") for name in exported), exported
    undefined = subprocess.run(["nm", "-u", str(obj)], capture_output=True, text=True,
                               check=True).stdout.split()
    assert not [u for u in undefined if u.startswith(("nrt_", "pool_", "nvmf_"))], undefined


def test_case_table_matches_list(ctrlr_test: Path) -> None:
    out = subprocess.run([str(ctrlr_test), "--list"], capture_output=True, text=True,
                         check=True, timeout=30).stdout.split()
    assert out == CASES
    assert len(set(CASES)) == len(CASES)


@pytest.mark.parametrize("case", CASES)
def test_ctrlr_case(ctrlr_test: Path, case: str) -> None:
    proc = subprocess.run([str(ctrlr_test), case], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"case {case} failed (rc {proc.returncode}):\n{proc.stderr}"
