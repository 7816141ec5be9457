"""A call rdma-core exports but simverbs does not simulate fails the API's way with
EOPNOTSUPP: NULL for object-returning calls, EOPNOTSUPP returned by libibverbs'
errno-returning calls, -1 from librdmacm and rsockets - and errno EOPNOTSUPP for all."""

from __future__ import annotations

import errno
import json

from dropin_child import HERE, run_child


def test_unsimulated_calls_fail_with_eopnotsupp(child_env: dict[str, str]) -> None:
    r = run_child(child_env, str(HERE / "stub_probe.py"))
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["sv_fabric_current"], "the child's libibverbs.so.1 is not simverbs"
    assert out["ibv_import_device"] == {"return": None, "errno": errno.EOPNOTSUPP}
    assert out["ibv_create_ah"] == {"return": None, "errno": errno.EOPNOTSUPP}
    assert out["ibv_attach_mcast"] == {"return": errno.EOPNOTSUPP, "errno": errno.EOPNOTSUPP}
    assert out["rdma_join_multicast"] == {"return": -1, "errno": errno.EOPNOTSUPP}
    assert out["rsocket"] == {"return": -1, "errno": errno.EOPNOTSUPP}
