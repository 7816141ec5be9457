"""The C soak driver (``python -m stress.soak``): its JSON, its determinism, and that its
generic checks catch the target's defect switches from the counters alone, with a seed
and lifecycle that replay the violation exactly.  No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stress import build as soak_build
from stress import soak

#: Figures that depend on the clock, not on the seed.
TIMING = {"ios_per_s", "ios_per_cpu_s", "seconds", "cpu_seconds", "command"}

KEYS = {"seed", "ios", "ios_per_s", "ios_per_cpu_s", "violations", "violation_count",
        "lifecycles", "rounds", "reads", "writes", "flushes", "multi_descriptor",
        "in_capsule", "reads_verified", "io_errors", "lost_to_faults", "faults",
        "faults_total", "max_queue_depth_seen", "max_read_depth_seen", "max_send_depth_seen",
        "wr_pool_low_water", "buf_pool_low_water", "quiescence_rounds_max",
        "quiescence_rounds_mean", "pool_checks", "option_refusals", "reproducers"}

FAULT_KINDS = {"qpair_error", "port_down", "post_failure", "host_disconnect",
               "qpair_disconnect", "remote_access_error", "bdev_error", "abrupt_destroy"}

#: (defect switch, a seed whose first lifecycles reach it, the check that sees it).  Any
#: seed reaches each of them eventually; these keep the tests to a fraction of a second.
DEFECTS = [
    ("leak_remaining_wrs", 11, "POOL-1"),
    ("no_idle_pending_poll", 12, "LIVE-1"),
    ("fixed_pool_size", 1, "POOL-1"),
    ("pool_double_put", 1, "POOL-1"),
    ("stale_transfer_wr", 1, "POOL-1"),
    ("stale_read_queue_entry", 7, "POOL-3"),
    ("pending_send_only_on_cqe", 5, "LIVE-1"),
    ("post_fail_counter_leak", 3, "LIVE-1"),
    ("recv_not_released", 2, "POOL-3"),
    ("double_qpair_destroy", 7, "DATA-1"),
    ("wrong_expected_capacity", 1, "POOL-2"),
]


def run_soak(capfd: pytest.CaptureFixture[str], *args: str,
             tmp: Path | None = None) -> tuple[int, dict[str, Any], str]:
    extra = ["--reproducers", str(tmp)] if tmp else []
    status = soak.main(["--quiet", *args, *extra])
    out, err = capfd.readouterr()
    lines = out.strip().splitlines()
    assert lines, f"no stdout; stderr:\n{err}"
    return status, json.loads(lines[-1]), err


def without_timing(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in figures.items() if k not in TIMING}


def test_json_is_the_last_line_with_every_figure(capfd: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    out_file = tmp_path / "soak.json"
    status, figures, err = run_soak(capfd, "--lifecycles", "6", "--seed", "5", "--json",
                                    str(out_file))
    assert status == 0, figures["violations"]
    assert KEYS <= set(figures), KEYS - set(figures)
    assert figures["seed"] == 5 and figures["violations"] == []
    assert figures["lifecycles"] == 6 and figures["ios"] > 0 and figures["rounds"] > 0
    assert set(figures["faults"]) == FAULT_KINDS
    assert figures["faults_total"] == sum(figures["faults"].values())
    assert figures["reads"] + figures["writes"] + figures["flushes"] == figures["ios"]
    assert 0.0 <= figures["wr_pool_low_water"] <= 1.0
    assert 0.0 <= figures["buf_pool_low_water"] <= 1.0
    assert json.loads(out_file.read_text()) == figures
    assert "soak: seed 5" in err                         # the seed is printed first


def test_same_seed_same_figures(capfd: pytest.CaptureFixture[str]) -> None:
    _, first, _ = run_soak(capfd, "--lifecycles", "8", "--seed", "77")
    _, again, _ = run_soak(capfd, "--lifecycles", "8", "--seed", "77")
    _, other, _ = run_soak(capfd, "--lifecycles", "8", "--seed", "78")
    assert without_timing(first) == without_timing(again)
    assert without_timing(first) != without_timing(other)


def test_clean_target_short_run_with_faults_has_no_violation(
        capfd: pytest.CaptureFixture[str]) -> None:
    status, figures, err = run_soak(capfd, "--lifecycles", "40", "--seed", "1")
    assert status == 0 and figures["violations"] == [], err
    assert figures["faults_total"] > 0 and figures["lost_to_faults"] > 0
    assert figures["abrupt_teardowns"] > 0 and figures["graceful_teardowns"] > 0
    # every shape of IO ran, and reads were checked against what was written
    assert figures["multi_descriptor"] > 0 and figures["in_capsule"] > 0
    assert figures["flushes"] > 0 and figures["reads_verified"] > 0
    assert figures["pool_checks"] == figures["rounds"]
    assert figures["quiescence_rounds_max"] >= 1


def test_clean_target_without_faults_answers_every_io_successfully(
        capfd: pytest.CaptureFixture[str]) -> None:
    status, figures, _ = run_soak(capfd, "--lifecycles", "20", "--seed", "9", "--no-faults")
    assert status == 0 and figures["violations"] == []
    assert figures["faults_total"] == 0 and figures["io_errors"] == 0
    assert figures["lost_to_faults"] == 0 and figures["abrupt_teardowns"] == 0
    assert figures["reads_verified"] == figures["reads"]


@pytest.mark.parametrize(("defect", "seed", "check"), DEFECTS, ids=[d[0] for d in DEFECTS])
def test_soak_catches_the_defect_and_names_its_seed(
        capfd: pytest.CaptureFixture[str], tmp_path: Path, defect: str, seed: int,
        check: str) -> None:
    status, figures, err = run_soak(capfd, "--lifecycles", "150", "--seed", str(seed),
                                    "--defects", defect, tmp=tmp_path)
    assert status == 1, f"{defect} not caught in 150 lifecycles of seed {seed}"
    [v] = figures["violations"]
    assert v["check"] == check, v
    assert f"--seed {seed} --lifecycle {v['lifecycle']}" in err
    [repro] = figures["reproducers"]
    text = Path(repro).read_text()
    assert f"--seed {seed} --lifecycle {v['lifecycle']}" in text and defect in text


@pytest.mark.parametrize("defect", ["leak_remaining_wrs", "no_idle_pending_poll",
                                    "recv_not_released"])
def test_replaying_the_seed_and_lifecycle_reproduces_the_violation(
        capfd: pytest.CaptureFixture[str], tmp_path: Path, defect: str) -> None:
    seed = next(s for d, s, _ in DEFECTS if d == defect)
    _, found, _ = run_soak(capfd, "--lifecycles", "150", "--seed", str(seed), "--defects",
                           defect, tmp=tmp_path)
    [v] = found["violations"]
    status, replay, _ = run_soak(capfd, "--seed", str(seed), "--lifecycle",
                                 str(v["lifecycle"]), "--defects", defect, tmp=tmp_path)
    assert status == 1
    assert replay["violations"] == [v]
    assert replay["lifecycles"] == 1


def test_the_reproducer_script_replays_the_violation(capfd: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    _, found, _ = run_soak(capfd, "--lifecycles", "20", "--seed", "2", "--defects",
                           "pool_double_put", tmp=tmp_path)
    [v], [script] = found["violations"], found["reproducers"]
    res = subprocess.run(["sh", script], capture_output=True, text=True, check=False)
    assert res.returncode == 1, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1])["violations"] == [v]


@pytest.mark.parametrize(("args", "words"), [
    (["--io-size", "1000"], "--io-size"),
    (["--defects", "no_such_switch"], "unknown defect switch"),
    (["--seconds", "0"], "--seconds"),
    (["--target", "spdk"], "--spdk-src"),
])
def test_bad_input_is_refused_with_a_clear_message(
        capfd: pytest.CaptureFixture[str], args: list[str], words: str) -> None:
    with pytest.raises(SystemExit) as exc:
        soak.main(args)
    assert exc.value.code == 2
    assert words in capfd.readouterr().err


def test_the_driver_itself_refuses_unknown_arguments() -> None:
    exe = soak_build.build()
    res = subprocess.run([str(exe), "--bogus"], capture_output=True, text=True, check=False)
    assert res.returncode == 2 and "unknown argument --bogus" in res.stderr
    res = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=False)
    assert res.returncode == 0 and "--lifecycle K" in res.stdout


def test_the_build_is_cached_by_content() -> None:
    assert soak_build.build() == soak_build.build()
    assert soak_build.build().is_file()


def test_help_documents_the_options() -> None:
    res = subprocess.run([sys.executable, "-m", "stress.soak", "--help"], capture_output=True,
                         text=True, check=False, cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == 0
    for opt in ("--seconds", "--seed", "--io-size", "--json", "--lifecycle", "--defects"):
        assert opt in res.stdout


def test_the_driver_keeps_the_running_lifecycle_in_its_status_file(tmp_path: Path) -> None:
    exe, status = soak_build.build(), tmp_path / "status"
    res = subprocess.run([str(exe), "--lifecycles", "3", "--seed", "4", "--quiet", "--status",
                          str(status)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert soak.running_lifecycle(status) == 2


def test_the_watchdog_stops_a_driver_stuck_in_one_lifecycle(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("7\n")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], text=True)
    assert soak.watch(proc, status, hang_seconds=1.0) == 7
    assert proc.returncode is not None            # stopped, not left running


def test_the_watchdog_lets_a_driver_that_ends_alone_be(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"], text=True)
    assert soak.watch(proc, tmp_path / "missing", hang_seconds=30.0) is None
    assert proc.returncode == 0
