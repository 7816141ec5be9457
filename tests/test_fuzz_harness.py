"""The capsule fuzzer's harness (impl/csrc/fuzz_capsule.c) still builds and passes its seeds.

libFuzzer needs clang (``tox -e fuzz``); this replays the seed corpus and the regression
inputs through the harness's standalone build (the harness, the target and its rig from
impl/csrc, and simverbs, the simulated RDMA provider the target's verbs calls run on) with
the C compiler the extension is built with, under ASan + UBSan where that compiler has them,
so an API change that breaks the harness, or a target change that breaks a seed's
properties, shows up in the ordinary test run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "impl" / "csrc"
SIMVERBS = ROOT / "impl" / "simverbs"
CORPUS = ROOT / "impl" / "fuzz" / "corpus"
REGRESSIONS = ROOT / "impl" / "fuzz" / "regressions"   # fixed findings, replayed forever
CC = os.environ.get("CC", "gcc")
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
BASE = ["-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-fno-strict-aliasing",
        f"-I{CSRC}"]

pytestmark = pytest.mark.skipif(shutil.which(CC) is None, reason=f"no C compiler ({CC})")


def _compile(tmp: Path, out: Path, sources: list[Path], extra: list[str]) -> None:
    cmd = [CC, *BASE, *extra, *map(str, sources), "-o", str(out)]
    done = subprocess.run(cmd, check=False, cwd=tmp, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stderr}"


def _sanitizers_work(tmp: Path) -> bool:
    probe = tmp / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    done = subprocess.run([CC, *SANITIZE, str(probe), "-o", str(tmp / "probe")],
                          check=False, capture_output=True)
    if done.returncode != 0:
        return False
    return subprocess.run([str(tmp / "probe")], check=False).returncode == 0


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("fuzz")
    extra = ["-DNRT_FUZZ_STANDALONE"] + (SANITIZE if _sanitizers_work(tmp) else [])
    target = sorted(p for p in CSRC.glob("*.c") if not p.name.startswith("fuzz_"))
    target += sorted(SIMVERBS.glob("*.c"))
    exe = tmp / "fuzz_replay"
    _compile(tmp, exe, [*target, CSRC / "fuzz_capsule.c"], extra)
    return exe


def _run(exe: Path, inputs: list[Path]) -> None:
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
           "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}
    env.pop("LD_PRELOAD", None)
    done = subprocess.run([str(exe), *map(str, inputs)], check=False, capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-6000:]
    assert done.stdout.count("\nok ") + done.stdout.startswith("ok ") == len(inputs)


def test_committed_seeds_pass(replay: Path) -> None:
    seeds = sorted(CORPUS.iterdir())
    assert len(seeds) >= 5, "impl/fuzz/corpus/ should hold the seed corpus"
    _run(replay, seeds)


def test_fixed_findings_still_pass(replay: Path) -> None:
    """Inputs that once showed a target bug (moved here from impl/fuzz/findings/ when
    fixed) keep passing."""
    found = sorted(REGRESSIONS.iterdir())
    assert found, "impl/fuzz/regressions/ should hold the fixed findings"
    _run(replay, found)


def test_generator_seeds_pass(replay: Path, tmp_path: Path) -> None:
    """Seeds and regression inputs made now from impl/fuzz/make_corpus.c (today's input
    format and struct nrt_opts layout)."""
    gen = tmp_path / "make_corpus"
    _compile(tmp_path, gen, [ROOT / "impl" / "fuzz" / "make_corpus.c"], [])
    out, regs = tmp_path / "seeds", tmp_path / "regressions"
    out.mkdir()
    regs.mkdir()
    subprocess.run([str(gen), str(out), str(regs)], check=True, capture_output=True)
    seeds = sorted(out.iterdir())
    found = sorted(regs.iterdir())
    assert {p.name for p in seeds} >= {p.name for p in CORPUS.iterdir()}
    assert {p.name for p in found} >= {p.name for p in REGRESSIONS.iterdir()}
    _run(replay, seeds + found)


def test_every_byte_string_is_a_program(replay: Path, tmp_path: Path) -> None:
    """Truncated and arbitrary inputs are valid programs (the harness reads zeros past the
    end), so the fuzzer never wastes runs on rejected inputs."""
    inputs = []
    for i, blob in enumerate([b"", b"\x00", b"\x07", bytes(range(256)) * 3,
                              b"\xff" * 700, bytes((i * 37 + 11) % 251 for i in range(4000))]):
        p = tmp_path / f"in{i}"
        p.write_bytes(blob)
        inputs.append(p)
    _run(replay, inputs)
