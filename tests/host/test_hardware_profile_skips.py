"""Without the simverbs drop-in this machine has no RDMA device: the hardware tier skips
with rdma-core's reason, and in the hardware profile a run of skips exits non-zero."""

from __future__ import annotations

from tests.host.child import run_tier


def test_no_device_skips_with_the_reason_and_the_hardware_profile_exits_non_zero() -> None:
    r = run_tier("--nrt-profile", "hardware", "--nrt-remote", "192.0.2.10:4420")
    out = r.stdout + r.stderr
    assert "No IB devices found" in out, out
    assert "no hardware-tier test ran" in out, out
    assert r.returncode == 1, out


def test_no_address_skips_with_the_reason_and_exits_non_zero_in_hardware() -> None:
    r = run_tier("--nrt-profile", "hardware")
    out = r.stdout + r.stderr
    assert "no target address" in out, out
    assert r.returncode == 1, out


def test_outside_the_hardware_profile_a_skip_is_only_a_skip() -> None:
    r = run_tier("--nrt-remote", "192.0.2.10")
    out = r.stdout + r.stderr
    assert "1 skipped" in out and "No IB devices found" in out, out
    assert r.returncode == 0, out


def test_a_bad_address_is_a_clear_error() -> None:
    from conformance.remote_target import parse_address

    assert parse_address("192.0.2.10") == ("192.0.2.10", 4420)
    assert parse_address("192.0.2.10:4421") == ("192.0.2.10", 4421)
    for bad in ("nvme-target", "192.0.2.10:0", "192.0.2:4420"):
        try:
            parse_address(bad)
        except ValueError as exc:
            assert "--nrt-remote" in str(exc)
        else:
            raise AssertionError(f"{bad!r} accepted")
