"""The SPDK adapter itself: it builds from every tree, caches, carries IO, refuses with
SPDK's words, reports SPDK's own destroy message, and contains a crash.

These are tests of the adapter and the build, not verdicts on SPDK: the gate's findings
against the trees are in ``test_findings.py``.
"""

from __future__ import annotations

import time

import pytest

from impl import Options, OptionsRefused, Transport
from impl.spdk import build
from tests.spdk.conftest import TREES, tree
from tests.target.rig import build as build_rig


@pytest.mark.parametrize("name", TREES)
def test_every_tree_builds_and_a_second_build_is_cached(name):
    src = tree(name)
    first = build.build(src)
    started = time.monotonic()
    again = build.build(src)
    assert again == first
    assert time.monotonic() - started < 5, "a cached build must not compile"
    probes = dict(line.split("=") for line in (first.parent / "probes.txt").read_text().split())
    assert set(probes) == {p.name for p in build.PROBES}


def test_the_probes_tell_the_releases_apart():
    old = build.run_probes(build.inspect_tree(tree("7068328493-parent")), _gen())
    new = build.run_probes(build.inspect_tree(tree("v26.05")), _gen())
    assert not old["HAVE_QPAIR_ENABLED"] and new["HAVE_QPAIR_ENABLED"]
    assert old["HAVE_QPAIR_DISCONNECT_CB"] and not new["HAVE_QPAIR_DISCONNECT_CB"]
    assert not old["HAVE_DATA_WR_POOL_SIZE"] and new["HAVE_DATA_WR_POOL_SIZE"]
    assert not old["HAVE_REQ_COMPLETE_VOID"] and new["HAVE_REQ_COMPLETE_VOID"]


def _gen():
    import tempfile
    from pathlib import Path

    d = Path(tempfile.mkdtemp(prefix="nrt-probes-"))
    (d / "spdk").mkdir()
    (d / "CUnit").mkdir()
    (d / "spdk" / "config.h").write_text(build.CONFIG_H)
    (d / "CUnit" / "Basic.h").write_text(build.CUNIT_H)
    return d


def test_a_directory_that_is_no_spdk_tree_is_refused_by_name(tmp_path):
    with pytest.raises(build.BuildError, match="not an SPDK source tree"):
        build.build(tmp_path)


@pytest.mark.parametrize("name", TREES)
@pytest.mark.parametrize("layout", ("in_capsule", "keyed", "list"))
def test_data_written_through_spdk_reads_back(name, layout, spdk_backend, monkeypatch):
    backend = spdk_backend(name)
    monkeypatch.setattr("impl.backends.default", lambda: backend)
    rig = build_rig()
    try:
        assert rig.t.describe().name == "spdk"
        data = rig.data(4096 if layout == "in_capsule" else 16384)
        assert rig.write(16, data, layout=layout).status == 0
        rsp, got = rig.read(16, len(data), layout="list" if layout == "in_capsule" else layout)
        assert rsp.status == 0
        assert got == data
        assert rig.media(16, len(data)) == data
    finally:
        rep = rig.t.destroy()
    assert rep.wr_returned == rep.wr_expected, rep
    assert rep.message == ""


def test_options_spdk_refuses_are_refused_with_spdks_reason(spdk_backend):
    backend = spdk_backend("v26.05")
    with pytest.raises(OptionsRefused, match="max_io_size 4096 must be a power of 2"):
        Transport(Options(max_io_size=4096, io_unit_size=4096), backend=backend)


def test_fitted_options_are_kept_as_given(spdk_backend):
    backend = spdk_backend("v26.05")
    opts = Options(max_io_size=4096, io_unit_size=512, in_capsule_data_size=0,
                   num_shared_buffers=8, num_poll_groups=2, buf_cache_size=0).fitted(backend)
    assert opts.max_io_size == 8192 and opts.io_unit_size >= 4096
    assert opts.in_capsule_data_size >= 256 and opts.num_shared_buffers >= 32
    with Transport(opts, backend=backend) as t:
        assert t.effective_options == opts
        assert t.wr_pool().capacity == opts.wr_pool_capacity


def test_a_crash_in_an_isolated_spdk_target_is_contained(spdk_backend):
    from impl.isolation import TargetCrashed

    backend = spdk_backend("v26.05", isolate=True)
    t = Transport(Options(num_poll_groups=1).fitted(backend), backend=backend)
    with pytest.raises(TargetCrashed) as err:
        t._lib.nrt_rig_progress(t._ffi.cast("struct nrt_rig *", 16))   # a wild pointer
    assert err.value.signal == "SIGSEGV"
    with Transport(Options(num_poll_groups=1).fitted(backend), backend=backend) as t2:
        assert t2.describe().name == "spdk"
