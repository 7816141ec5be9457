"""simverbs: the C provider tests (sv_test.c), the verbs-only example, the benchmark.

The C sources are compiled once per session with gcc into a temporary directory; every C
test then runs as its own process (``sv_test NAME``), one pytest test each.  The test
names are read from sv_test.c's table so collection needs no compiler; a separate test
checks that the binary's ``--list`` agrees.

A second build with ``-fsanitize=address,undefined`` runs the same tests when
SIMVERBS_SANITIZE=1 (it costs about seven more seconds of compiling, more than the
default run should spend).
"""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SV = ROOT / "impl" / "simverbs"
SOURCES = sorted(str(p) for p in SV.glob("*.c"))
CFLAGS = ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-fno-strict-aliasing", "-fPIC", f"-I{SV}"]
BUILDS = {
    "plain": ["-O2"],
    "asan": ["-O0", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"],
}
VARIANTS = ["plain"] + (["asan"] if os.environ.get("SIMVERBS_SANITIZE") == "1" else [])

TEST_NAMES = re.findall(r'^\s*\{"(\w+)", t_\w+\},$', (HERE / "sv_test.c").read_text(), re.MULTILINE)

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is needed")


def _gcc(out: pathlib.Path, sources: list[str], flags: list[str], libs: list[str] = ()) -> None:
    cmd = ["gcc", *CFLAGS, *flags, *sources, "-o", str(out), *libs]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"compile failed: {' '.join(cmd)}\n{res.stdout}{res.stderr}")


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("simverbs")


@pytest.fixture(scope="module")
def binaries(build_dir):
    """Builds on demand, once per module: {variant: path to sv_test}."""
    made: dict[str, pathlib.Path] = {}

    def get(variant: str) -> pathlib.Path:
        if variant not in made:
            out = build_dir / f"sv_test_{variant}"
            _gcc(out, [str(HERE / "sv_test.c"), *SOURCES], BUILDS[variant])
            made[variant] = out
        return made[variant]

    return get


def _run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0", UBSAN_OPTIONS="print_stacktrace=1")
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)


def test_list_matches_table(binaries):
    res = _run([str(binaries("plain")), "--list"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == TEST_NAMES
    assert len(TEST_NAMES) >= 30


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", TEST_NAMES)
def test_c(binaries, variant, name):
    res = _run([str(binaries(variant)), name])
    assert res.returncode == 0, f"sv_test {name} ({variant}) failed:\n{res.stdout}{res.stderr}"
    assert f"PASS {name}" in res.stdout


def test_determinism_across_processes(binaries):
    """The scenario digest is the same in separate processes (other heap layouts)."""
    digests = set()
    for _ in range(2):
        res = _run([str(binaries("plain")), "determinism"])
        assert res.returncode == 0, res.stdout + res.stderr
        digests.add(re.search(r"digest ([0-9a-f]{16})", res.stdout).group(1))
    if "asan" in VARIANTS:
        res = _run([str(binaries("asan")), "determinism"])
        digests.add(re.search(r"digest ([0-9a-f]{16})", res.stdout).group(1))
    assert len(digests) == 1, digests


EXAMPLE = SV / "examples" / "rdma_pingpong.c"


def test_pingpong_on_simverbs(build_dir):
    out = build_dir / "rdma_pingpong_sim"
    _gcc(out, [str(EXAMPLE), *SOURCES], ["-O2"])
    res = _run([str(out)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("rdma_pingpong: OK 10.0.0.1:7471"), res.stdout
    # another port and an address that is no device's
    res = _run([str(out), "10.0.0.1", "4420"])
    assert res.returncode == 0 and "OK 10.0.0.1:4420" in res.stdout, res.stdout
    res = _run([str(out), "10.0.0.7"])
    assert res.returncode == 1 and "FAIL" in res.stdout, res.stdout


def test_pingpong_uses_only_verbs_and_cm():
    includes = re.findall(r"^#include\s+[<\"]([^>\"]+)[>\"]", EXAMPLE.read_text(), re.MULTILINE)
    assert "infiniband/verbs.h" in includes and "rdma/rdma_cma.h" in includes
    assert not any("simverbs" in i or "sv_" in i for i in includes), includes
    assert "sv_" not in re.sub(r"/\*.*?\*/", "", EXAMPLE.read_text(), flags=re.DOTALL)


def _have_real_rdma() -> bool:
    libdirs = ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/lib/aarch64-linux-gnu"]
    return any(os.path.exists(os.path.join(d, "libibverbs.so")) for d in libdirs) and any(
        os.path.exists(os.path.join(d, "librdmacm.so")) for d in libdirs)


@pytest.mark.skipif(not _have_real_rdma(), reason="rdma-core development libraries not installed")
def test_pingpong_links_against_rdma_core(build_dir):
    """Link only: there is no RDMA device here to run it on."""
    out = build_dir / "rdma_pingpong_real"
    _gcc(out, [str(EXAMPLE)], ["-O2"], ["-libverbs", "-lrdmacm"])
    assert out.exists()


def test_bench_smoke(build_dir):
    out = build_dir / "sv_bench"
    _gcc(out, [str(HERE / "sv_bench.c"), *SOURCES], ["-O2"])
    res = _run([str(out), "20000"])
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"rdma_read_4k post\+execute\+poll: [\d.]+ ns/op", res.stdout), res.stdout
