"""The hardware tier's code path without a device: a child pytest started with
``impl.dropin.subprocess_env()`` runs ``conformance/test_remote.py --nrt-remote inproc:KIND``,
which serves the target in-process on simverbs and drives it through the real bindings
(cffi over libibverbs.so.1 / librdmacm.so.1, and Debian's pyverbs), with the
nvmf_get_stats oracle and the target-log scan.  A target built with a defect switch must
be caught black-box."""

from __future__ import annotations

import re

import pytest

from tests.host.child import run_tier

dropin = pytest.importorskip("impl.dropin", reason="impl.dropin (the simverbs drop-in) is "
                             "not in this tree")


def _env(**more: str) -> dict[str, str]:
    env = dropin.subprocess_env()
    for k in ("NRT_REMOTE", "NRT_SUBNQN", "NRT_RPC", "NRT_TARGET_LOG", "NRT_HOST_BINDING",
              "NRT_PROFILE", "NRT_DEFECTS", "NRT_MAX_EXAMPLES", "PYTEST_XDIST_WORKER"):
        env.pop(k, None)
    env.update(more)
    return env


def _seen(out: str) -> dict[str, int]:
    m = re.search(r"hardware tier: (\d+) shutdown cycle\(s\) .*?, (\d+) nvmf_get_stats "
                  r"call\(s\), (\d+) target-log line\(s\)", out)
    assert m, out
    return {"cycles": int(m[1]), "rpc_calls": int(m[2]), "log_lines": int(m[3])}


@pytest.mark.parametrize("binding", ["cffi", "pyverbs"])
def test_tier_passes_against_the_builtin_target(binding: str) -> None:
    r = run_tier("-s", "--nrt-profile", "hardware", "--nrt-remote", "inproc:builtin",
                 "--nrt-host-binding", binding,
                 env=_env(NRT_MAX_EXAMPLES="8", NRT_REMOTE_TIMEOUT="5"))
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "1 passed" in out, out[-4000:]
    seen = _seen(out)
    assert seen["cycles"] >= 8 and seen["rpc_calls"] > seen["cycles"] and seen["log_lines"] > 0


@pytest.mark.parametrize(("defect", "finding"), [
    ("leak_remaining_wrs", "SHUT-1: the target logged a leak at destroy"),
    ("recv_not_released", "LIVE-1: read past the end"),
])
def test_tier_catches_a_defective_target_black_box(defect: str, finding: str) -> None:
    r = run_tier("--nrt-profile", "ci", "--nrt-remote", "inproc:builtin", "--nrt-defects",
                 defect, env=_env(NRT_MAX_EXAMPLES="40", NRT_NO_SHRINK="1",
                                  NRT_REMOTE_TIMEOUT="1"))
    out = r.stdout + r.stderr
    assert r.returncode == 1 and finding in out, out[-4000:]


def test_tier_against_spdk_served_in_process() -> None:
    """SPDK's rdma.c served in-process, judged by the tier without its CM-probe and
    malformed-capsule rules: docs/spdk-findings.md lists what those find in v26.05 (CM
    queue sizes not validated - an HRQSIZE of 0 takes the process down in-process -, ERR-1
    statuses), which would stop every example before the rest is judged."""
    from tests.spdk.conftest import tree  # where the SPDK tests find their trees

    r = run_tier("-s", "--nrt-profile", "hardware", "--nrt-remote", "inproc:spdk",
                 env=_env(NRT_MAX_EXAMPLES="6", NRT_REMOTE_TIMEOUT="5",
                          NRT_SPDK_SRC=str(tree("v26.05")),
                          NRT_REMOTE_SKIP_RULES="cm_connect,malformed"), timeout=900)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "1 passed" in out, out[-4000:]
    seen = _seen(out)
    assert seen["cycles"] >= 6 and seen["rpc_calls"] > seen["cycles"] and seen["log_lines"] > 0
