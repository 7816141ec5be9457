"""The hardware tier: :class:`conformance.remote.RemoteMachine` against the target
``--nrt-remote`` names (a running target on a NIC, or ``inproc:builtin`` /
``inproc:spdk`` served in this process on the simverbs drop-in).

``NRT_REMOTE_TIMEOUT`` (seconds, default 10) bounds each command (LIVE-1);
``NRT_REMOTE_SKIP_RULES=a,b`` leaves rules out (names: ``conformance.remote.RULES``), for a
target whose known findings would hide the rest; ``NRT_NO_SHRINK=1`` reports the first failing example as found, unshrunk (a shrink of a
hung command waits out the bound on every attempt).

Skipped, with the reason, where there is no target address, no RDMA device or no port up;
in the ``hardware`` profile a run in which this skipped exits non-zero
(``conformance/remote_plugin.py``)."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from conformance import remote
from conformance.remote_target import Settings, Unavailable, command_timeout, open_target

pytestmark = pytest.mark.remote


def skipped_rules() -> frozenset[str]:
    names = frozenset(n.strip() for n in os.environ.get("NRT_REMOTE_SKIP_RULES", "").split(",")
                      if n.strip())
    unknown = names - set(remote.RULES)
    if unknown:
        raise pytest.UsageError(f"NRT_REMOTE_SKIP_RULES: unknown rule(s) {sorted(unknown)}; "
                                f"rules: {', '.join(remote.RULES)}")
    return names


@pytest.fixture
def target():
    s = Settings.from_env()
    try:
        t = open_target(s)
    except Unavailable as exc:
        pytest.skip(str(exc))
    yield t
    t.stop()


@pytest.mark.spec(*remote.PROPERTIES)
def test_remote_target(target, record_property) -> None:
    props = remote.RPC_PROPERTIES if target.rpc or target.kind.startswith("inproc") \
        else remote.PROPERTIES
    record_property("nrt_remote_properties", ",".join(props))
    record_property("nrt_remote_target", f"{target.kind} {target.address}:{target.port}")
    remote.RemoteMachine.target = target
    remote.RemoteMachine.timeout = command_timeout()
    remote.RemoteMachine.skipped = skipped_rules()
    chosen = settings()
    if os.environ.get("NRT_NO_SHRINK", "").strip() not in ("", "0"):
        chosen = settings(chosen, phases=[p for p in chosen.phases
                                          if p not in (Phase.shrink, Phase.explain)])
    try:
        run_state_machine_as_test(remote.RemoteMachine, settings=chosen)
    finally:
        seen = remote.RemoteMachine.seen
        record_property("nrt_remote_seen", json.dumps(seen))
        print(f"hardware tier: {seen['cycles']} shutdown cycle(s) against {target.kind}, "
              f"{seen['rpc_calls']} nvmf_get_stats call(s), {seen['log_lines']} target-log "
              f"line(s) scanned; judged {', '.join(props)}"
              + (f"; rules left out: {', '.join(sorted(remote.RemoteMachine.skipped))}"
                 if remote.RemoteMachine.skipped else ""))
