"""What the gate says about SPDK's own rdma.c, before and after SPDK's fixes for the two
field incidents (DESIGN section 2) - through the judge command a release engineer runs,
with its generic properties only.  Nothing here reads SPDK's source or knows a tree's
defects: each test names a tree, a machine and the property the incident violates.

* issue 3290 (WR leak on abnormal completion of a part-posted multi-SGL write), fixed by
  7068328493: POOL-2 fails on its parent, with SPDK's own destroy-time message in the
  finding, and passes on the fix;
* issue 3328 (requests waiting for data WRs retried only when a completion is reaped),
  fixed by 8e8f04346e: LIVE-1 fails on 7068328493 under a configuration whose data-WR pool
  is small for its poll groups (the StarvationMachine), and passes on 8e8f04346e.

Each run is the real command line (``python -m conformance.judge``), its last line the
JSON verdict.  Figures (seconds to the first violation, reproducer length) are printed.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.spdk.conftest import ROOT, tree

#: Seconds the shrinker may spend per failure: enough for a short reproducer, bounded so
#: that CI stays fast.
SHRINK_SECONDS = "20"


def judge(name: str, machine: str) -> dict:
    cmd = [sys.executable, "-m", "conformance.judge", "--target", "spdk", "--spdk-src",
           str(tree(name)), "--machines", machine, "--jobs", "1",
           "--shrink-seconds", SHRINK_SECONDS]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500,
                         check=False)
    lines = run.stdout.strip().splitlines()
    assert lines, f"judge printed nothing; stderr:\n{run.stderr[-3000:]}"
    verdict = json.loads(lines[-1])
    assert run.returncode in (0, 1), f"judge exit {run.returncode}:\n{run.stderr[-3000:]}"
    assert (run.returncode == 1) == ("fail" in verdict["properties"].values())
    for f in verdict["findings"]:
        print(f"{name} {machine}: {f['property']} after {f['seconds_to_first']} s, "
              f"{f['reproducer_steps']} steps: {f['message'][:200]}")
    return verdict


def finding(verdict: dict, prop: str) -> dict:
    found = [f for f in verdict["findings"] if f["property"] == prop]
    assert found, f"no {prop} finding in {verdict['findings']}"
    return found[0]


#: The machines that look for the 3290 leak.  Two: on this tree the send-depth livelock
#: (docs/spdk-findings.md, item 1) can stop a machine at LIVE-1 before it reaches an
#: abnormal completion of a part-posted write, and which of the two defects a machine's
#: examples meet first is not something the test should hang on.
LEAK_MACHINES = "ContentionMachine,TransportMachine"


def test_the_gate_finds_the_issue_3290_wr_leak_on_the_commit_before_its_fix():
    verdict = judge("7068328493-parent", LEAK_MACHINES)
    assert verdict["target_commit"].startswith("e718d8ca5f")
    assert verdict["properties"]["POOL-2"] == "fail"
    leak = finding(verdict, "POOL-2")
    assert "transport wr pool count is" in leak["message"], leak   # SPDK's own words
    assert 1 <= leak["reproducer_steps"] <= 15, leak


def test_the_gate_finds_no_wr_leak_once_issue_3290_is_fixed():
    verdict = judge("7068328493", LEAK_MACHINES)
    assert verdict["properties"]["POOL-2"] == "pass", verdict["findings"]


def test_the_gate_finds_the_issue_3328_stall_when_the_pool_is_small_for_its_groups():
    verdict = judge("7068328493", "StarvationMachine")
    assert verdict["properties"]["LIVE-1"] == "fail"
    stall = finding(verdict, "LIVE-1")
    assert "stall" in stall["message"], stall
    assert 1 <= stall["reproducer_steps"] <= 15, stall


def test_the_gate_finds_no_stall_once_issue_3328_is_fixed():
    verdict = judge("8e8f04346e", "StarvationMachine")
    assert verdict["properties"]["LIVE-1"] == "pass", verdict["findings"]
