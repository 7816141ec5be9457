"""The strategies produce what they claim.

Coverage claims ("some pools sit exactly at the minimum") are checked on a deterministic
sample drawn by ``_sample``, so each test can fail if a strategy loses its bias.  Nothing
here imports ``impl``: the header is only read as text to check the copied constants.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections import Counter
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from strategies import nvme
from strategies import wire as sw
from strategies.commands import admin_commands, io_commands, max_transfer_blocks
from strategies.faults import FAULT_KINDS, fault_plans
from strategies.limits import (
    check_options,
    max_bufs_per_request,
    max_wrs_per_request,
    min_buffers,
    min_wr_pool,
    refusal_kind,
    refusals,
    wr_pool_capacity,
)
from strategies.malformed import (
    EXTRA_KINDS,
    KINDS,
    MALFORMED_KINDS,
    ErrContext,
    feasible_kinds,
    malformed_commands,
)
from strategies.options import DEFAULT_REFUSED_KINDS, accepted_options, refused_options
from strategies.schedules import SCHEDULE_KINDS, schedules
from strategies.sgl import SGL1_TYPE, descriptor_lengths, sgl_layouts
from strategies.topology import topologies
from strategies.types import (
    OPTION_FIELDS,
    Namespace,
    Schedule,
    SglLayout,
    TransportOptions,
)

T = TypeVar("T")
HEADER = Path(__file__).resolve().parent.parent / "impl" / "csrc" / "nrt.h"
FAST = settings(max_examples=40, derandomize=True, database=None, deadline=None)
CI = TransportOptions(max_queue_depth=8, max_io_size=16384, io_unit_size=2048,
                      in_capsule_data_size=4096, max_sgl_descriptors=16)


def _sample(strategy: SearchStrategy[T], n: int = 300) -> list[T]:
    """``n`` deterministic draws (generation phase only: no shrinking, no database)."""
    out: list[T] = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(x: T) -> None:
        out.append(x)

    collect()
    return out


def _simplest(strategy: SearchStrategy[T]) -> T:
    """The example made of the simplest choices - where shrinking ends up.  Hypothesis
    tries it first, so this costs one draw where ``find(..., lambda _: True)`` would pay
    for a full shrink."""
    return _sample(strategy, 1)[0]


# ------------------------------------------------------------------------- header


def _header_defines() -> dict[str, int]:
    text = HEADER.read_text()
    return {m[1]: int(m[2], 0) for m in
            re.finditer(r"#define\s+NRT_(\w+)\s+(-?(?:0x[0-9A-Fa-f]+|\d+))\b", text)}


@pytest.mark.skipif(not HEADER.exists(), reason="impl/csrc/nrt.h not present")
def test_copied_constants_match_header() -> None:
    defines = _header_defines()
    prefixes = ("OPC_", "FCTYPE_", "SGL_", "SC_", "EV_", "DEFECT_", "MAX_SGL_DESC",
                "MAX_POLL_GROUPS")
    wanted = {k: v for k, v in defines.items() if k.startswith(prefixes)}
    ours = {k: getattr(nvme, k) for k in wanted if hasattr(nvme, k)}
    # Defects may be added to the header before a strategy needs them; everything else
    # the header defines in these families must be copied, and copied right.
    missing = sorted(k for k in wanted if k not in ours and not k.startswith("DEFECT_"))
    assert not missing, f"strategies/nvme.py lacks {missing}"
    assert ours == {k: wanted[k] for k in ours}


@pytest.mark.skipif(not HEADER.exists(), reason="impl/csrc/nrt.h not present")
def test_options_fields_match_struct() -> None:
    body = re.search(r"struct nrt_opts\s*\{(.*?)\};", HEADER.read_text(), re.DOTALL)
    assert body
    fields = tuple(re.findall(r"uint32_t\s+(\w+);", body[1]))
    assert fields == OPTION_FIELDS


# ------------------------------------------------------------------------- limits


def test_defaults_are_accepted_and_formulas_match_hand_computation() -> None:
    d = TransportOptions()
    assert check_options(d) is None
    assert max_bufs_per_request(d) == 16  # 131072 / 8192
    assert max_wrs_per_request(d) == 16 + 15 // 16
    assert wr_pool_capacity(d) == 128 * 16
    assert min_wr_pool(d) == 4 * (32 + 16)
    assert min_buffers(d) == 4 * (32 + 16)
    o = d.replace(max_io_size=12288, io_unit_size=4096, max_sge=1, max_sgl_descriptors=2,
                  num_poll_groups=3, wr_cache_size=1, buf_cache_size=2, wr_pool_size=0,
                  wr_pool_multiplier=1, max_queue_depth=17)
    assert max_wrs_per_request(o) == 2 + 2  # 3 buffers, one SGE per WR
    assert min_wr_pool(o) == 3 * (1 + 4) == 15
    assert min_buffers(o) == 3 * (2 + 3) == 15
    assert check_options(o.replace(num_shared_buffers=15)) is None
    assert refusal_kind(o.replace(num_shared_buffers=14)) == "buffers_below_min"
    assert refusal_kind(o.replace(max_queue_depth=14)) == "wr_pool_below_min"
    msg = check_options(o.replace(wr_pool_size=14))
    assert msg and "minimum 15" in msg


def test_options_helpers() -> None:
    d = TransportOptions()
    assert tuple(d.as_dict()) == OPTION_FIELDS
    assert d.replace(max_sge=2).max_sge == 2
    with pytest.raises(TypeError):
        d.replace(no_such_field=1)


# ------------------------------------------------------------------------ options


@FAST
@given(accepted_options())
def test_accepted_options_are_accepted_and_in_ci_ranges(o: TransportOptions) -> None:
    assert check_options(o) is None, check_options(o)
    assert 2 <= o.max_queue_depth <= 32
    assert 512 <= o.io_unit_size <= 8192
    assert o.max_io_size <= 16 * o.io_unit_size
    assert 1 <= o.num_poll_groups <= 16 and 1 <= o.max_read_depth <= 16
    assert o.in_capsule_data_size <= 8192 and o.max_sgl_descriptors <= 16


def test_accepted_options_cover_contention() -> None:
    sample = _sample(accepted_options(), 150)
    assert all(check_options(o) is None for o in sample)
    n = len(sample)
    exact_pool = sum(wr_pool_capacity(o) == min_wr_pool(o) for o in sample)
    near_pool = sum(wr_pool_capacity(o) - min_wr_pool(o) <= 4 for o in sample)
    exact_bufs = sum(o.num_shared_buffers == min_buffers(o) for o in sample)
    assert exact_pool >= n // 10 and near_pool >= n // 3
    assert exact_bufs >= n // 5
    assert sum(o.num_poll_groups > 1 for o in sample) >= n // 2
    assert sum(o.num_poll_groups == 1 for o in sample) >= 1
    assert sum(o.max_read_depth == 1 for o in sample) >= 5
    assert sum(o.wr_pool_size == 0 for o in sample) >= n // 5  # depth x multiplier route
    assert sum(o.wr_pool_size > 0 for o in sample) >= n // 5  # explicit size route
    assert sum(o.max_io_size // o.io_unit_size > o.max_sge for o in sample) >= n // 10
    assert len({o.io_unit_size for o in sample}) == 5


def test_accepted_options_shrink_to_simplest() -> None:
    o = _simplest(accepted_options())
    # the smallest max_io_size is the 4 KiB floor (an Identify page fits one request)
    assert (o.max_queue_depth, o.num_poll_groups, o.max_io_size, o.io_unit_size) == (2, 1,
                                                                                      4096, 512)
    assert wr_pool_capacity(o) >= min_wr_pool(o) and o.num_shared_buffers == min_buffers(o)


def test_accepted_options_nightly_reaches_scale() -> None:
    sample = _sample(accepted_options("nightly"), 100)
    assert all(check_options(o) is None for o in sample)
    assert any(o.max_queue_depth == 128 for o in sample)
    assert any(o.num_poll_groups == 16 for o in sample)
    assert any(o.max_io_size == 1024 * 1024 for o in sample)
    assert all(o.max_io_size <= 1024 * 1024 for o in sample)


def test_accepted_options_pins() -> None:
    sample = _sample(accepted_options(num_poll_groups=st.just(2), max_read_depth=1), 50)
    assert all(o.num_poll_groups == 2 and o.max_read_depth == 1 for o in sample)
    pinned_io = _sample(accepted_options(max_io_size=65536), 50)
    assert all(o.max_io_size == 65536 and check_options(o) is None for o in pinned_io)
    with pytest.raises(TypeError):
        accepted_options(no_such_field=1)
    with pytest.raises(ValueError):
        accepted_options("weekly")  # type: ignore[arg-type]


@FAST
@given(refused_options())
def test_refused_options_are_refused_for_the_tagged_reason(r) -> None:
    assert check_options(r.opts) is not None
    assert refusal_kind(r.opts) == r.reason_kind
    kinds = {x.kind for x in refusals(r.opts)}
    if r.reason_kind == "wr_pool_multiplier_zero":
        assert kinds == {"wr_pool_multiplier_zero", "wr_pool_below_min"}
    else:
        assert kinds == {r.reason_kind}, refusals(r.opts)


def test_refused_options_cover_every_rule() -> None:
    sample = [r for kind in DEFAULT_REFUSED_KINDS
              for r in _sample(refused_options(kinds=(kind,)), 16)]
    assert {r.reason_kind for r in sample} == set(DEFAULT_REFUSED_KINDS)
    mixed = {r.reason_kind for r in _sample(refused_options(), 100)}
    assert len(mixed) >= len(DEFAULT_REFUSED_KINDS) - 3  # the default mixes kinds
    variants = {(r.reason_kind, r.variant) for r in sample}
    for kind in ("max_queue_depth_range", "max_read_depth_range", "max_sge_range",
                 "num_poll_groups_range", "max_sgl_descriptors_range"):
        assert {(kind, "zero"), (kind, "too_large")} <= variants
    assert {("wr_pool_below_min", "explicit"), ("wr_pool_below_min", "multiplier")} <= variants
    deficits = [min_wr_pool(r.opts) - wr_pool_capacity(r.opts) for r in sample
                if r.reason_kind == "wr_pool_below_min"]
    assert min(deficits) == 1  # right at the edge, not only far below it


def test_refused_not_uint32_on_request() -> None:
    for r in _sample(refused_options(kinds=("not_uint32",)), 30):
        assert refusal_kind(r.opts) == "not_uint32"


# ---------------------------------------------------------------------------- SGL


def _check_layout(layout: SglLayout, length: int, opts: TransportOptions, direction: str,
                  ) -> None:
    assert layout.length == length and all(n >= 1 for n in layout.lengths)
    assert len(layout.offsets) == layout.count and all(o >= 0 for o in layout.offsets)
    if layout.kind == "in_capsule":
        assert direction == "h2c" and layout.host_span <= opts.in_capsule_data_size
    elif layout.kind == "keyed":
        assert layout.count == 1
    else:
        assert 2 <= layout.count <= min(16, opts.max_sgl_descriptors)
        spans = sorted(zip(layout.offsets, layout.lengths, strict=True))
        assert all(a + n <= b for (a, n), (b, _) in itertools.pairwise(spans)), "overlap"


@FAST
@given(st.data(), accepted_options(), st.sampled_from(["h2c", "c2h"]))
def test_sgl_layouts_are_valid(data, opts: TransportOptions, direction: str) -> None:
    length = data.draw(st.integers(1, opts.max_io_size))
    layout = data.draw(sgl_layouts(length, opts, direction))  # type: ignore[arg-type]
    _check_layout(layout, length, opts, direction)


def test_sgl_layouts_mix_and_cross_unit_boundaries() -> None:
    strat = st.tuples(st.sampled_from([512, 4096, 6000, 16384]),
                      st.sampled_from(["h2c", "c2h"])).flatmap(
        lambda a: st.tuples(st.just(a), sgl_layouts(a[0], CI, a[1])))
    sample = _sample(strat, 150)
    for (length, direction), layout in sample:
        _check_layout(layout, length, CI, direction)
    kinds = Counter(layout.kind for _, layout in sample)
    assert set(kinds) == {"in_capsule", "keyed", "keyed_list"}
    lists = [layout for _, layout in sample if layout.kind == "keyed_list"]
    assert sum(layout.crosses_unit_boundary(CI.io_unit_size) for layout in lists) >= len(
        lists) // 3
    # the longest list the target takes is reachable (a search, not a share of one sample:
    # the derandomized sample moves with every constant in the project's source)
    longest = find(sgl_layouts(16384, CI, "h2c"),
                   lambda layout: layout.kind == "keyed_list" and layout.count == 16,
                   settings=settings(database=None, derandomize=True, max_examples=2000,
                                     suppress_health_check=list(HealthCheck)))
    _check_layout(longest, 16384, CI, "h2c")
    assert any(len(set(layout.lengths)) > 1 for layout in lists)
    assert any(list(layout.offsets) != sorted(layout.offsets) for layout in lists)
    assert not any(layout.kind == "in_capsule" and d == "c2h" for (_, d), layout in sample)
    assert not any(layout.kind == "in_capsule" for (n, _), layout in sample if n > 4096)


def test_sgl_layouts_respect_descriptor_limit_and_reject_bad_lengths() -> None:
    one = CI.replace(max_sgl_descriptors=1, in_capsule_data_size=0)
    assert {x.kind for x in _sample(sgl_layouts(4096, one), 50)} == {"keyed"}
    assert max(x.count for x in _sample(sgl_layouts(4096, CI.replace(max_sgl_descriptors=3)),
                                        100)) == 3
    with pytest.raises(ValueError):
        sgl_layouts(0, CI)
    with pytest.raises(ValueError):
        sgl_layouts(CI.max_io_size + 1, CI)


@FAST
@given(st.integers(1, 100000).flatmap(
    lambda t: st.tuples(st.just(t), st.integers(1, min(t, 16)),
                        st.sampled_from([512, 4096]))).flatmap(
    lambda a: st.tuples(st.just(a), descriptor_lengths(*a))))
def test_descriptor_lengths_split_exactly(case) -> None:
    (total, n, _), lengths = case
    assert len(lengths) == n and sum(lengths) == total and min(lengths) >= 1


def test_sgl_shrinks_to_one_keyed_descriptor() -> None:
    assert _simplest(sgl_layouts(8192, CI)) == SglLayout("keyed", (8192,), (0,))
    assert set(SGL1_TYPE) == {"in_capsule", "keyed", "keyed_list"}


# ----------------------------------------------------------------------- commands


@FAST
@given(st.data(), accepted_options(),
       st.builds(Namespace, st.sampled_from([512, 4096]), st.integers(8, 256)))
def test_io_commands_fit_max_io_size_and_namespace(data, opts, ns: Namespace) -> None:
    cmd = data.draw(io_commands(ns, opts, nsid=3))
    assert cmd.nsid == 3
    if cmd.op == "flush":
        assert cmd.layout is None
        return
    size = cmd.transfer_length(ns.block_size)
    assert size <= opts.max_io_size and cmd.slba + cmd.nlb + 1 <= ns.num_blocks
    assert cmd.layout is not None and cmd.layout.length == size
    if cmd.layout.kind == "in_capsule":
        assert cmd.op == "write"


def test_io_commands_reach_max_io_size_and_namespace_end() -> None:
    ns = Namespace(512, 64)
    sample = _sample(io_commands(ns, CI), 100)
    assert {c.op for c in sample} == {"read", "write", "flush"}
    data = [c for c in sample if c.op != "flush"]
    most = max_transfer_blocks(ns, CI)
    assert any(c.nlb + 1 == most for c in data)
    assert any(c.slba + c.nlb + 1 == ns.num_blocks for c in data)
    assert any(c.layout and c.layout.kind == "keyed_list" and c.op == "read" for c in data)
    # one 4096-byte block cannot move under a 2048-byte max_io_size: flush only
    tiny = CI.replace(max_io_size=2048)
    assert {c.op for c in _sample(io_commands(Namespace(4096, 8), tiny), 20)} == {"flush"}


def test_admin_commands_cover_kinds_with_valid_fields() -> None:
    sample = _sample(admin_commands(CI), 80)
    assert {c.kind for c in sample} == {"identify", "keep_alive", "abort", "property_get",
                                        "property_set"}
    for c in sample:
        if c.kind == "identify":
            assert c.cdw10 in (nvme.CNS_NAMESPACE, nvme.CNS_CONTROLLER)
            assert c.layout is not None and c.layout.length == nvme.IDENTIFY_DATA_BYTES
            assert c.layout.kind != "in_capsule"
        elif c.kind == "property_get":
            assert c.opcode == nvme.OPC_FABRICS and c.cdw10 in nvme.PROPERTY_OFFSETS
        elif c.kind == "property_set":
            assert (c.cdw10, c.value) == (nvme.PROP_CC, nvme.CC_ENABLE)
        elif c.kind == "abort":
            assert c.cdw10 >> 16 <= 4
    assert {c.cdw10 for c in sample if c.kind == "property_get"} == set(nvme.PROPERTY_OFFSETS)
    small = CI.replace(max_io_size=2048)
    assert "identify" not in {c.kind for c in _sample(admin_commands(small), 50)}


# ----------------------------------------------------------------------- topology


@FAST
@given(st.data(), accepted_options())
def test_topologies_respect_counts(data, opts: TransportOptions) -> None:
    topo = data.draw(topologies(opts, max_subsystems=6, max_io_qpairs=3))
    assert 1 <= len(topo.subsystems) <= 6 and 1 <= topo.num_ports <= opts.max_ports
    assert topo.num_qpairs <= opts.max_qpairs
    for sub in topo.subsystems:
        assert 1 <= len(sub.namespaces) <= min(2, opts.max_namespaces)
        assert all(ns.block_size in (512, 4096) and 8 <= ns.num_blocks <= 256
                   for ns in sub.namespaces)
        assert 1 <= len(sub.controllers) <= 2
        for c in sub.controllers:
            assert len(c.io) <= 3
            assert len({q.port for q in (c.admin, *c.io)}) == 1
    for q in topo.qpairs():
        assert 2 <= q.depth <= opts.max_queue_depth
        assert 0 <= q.group < opts.num_poll_groups and 0 <= q.port < topo.num_ports


def test_topologies_place_admin_apart_sometimes() -> None:
    opts = TransportOptions(num_poll_groups=4)
    sample = _sample(topologies(opts), 60)
    ctrlrs = [c for t in sample for s in t.subsystems for c in s.controllers]
    assert sum(c.admin_apart for c in ctrlrs) >= len(ctrlrs) // 10
    assert any(c.io and all(q.group == c.admin.group for q in c.io) for c in ctrlrs)
    assert any(len(t.subsystems) == 4 for t in sample)


def test_topologies_honour_qpair_budget_and_scale() -> None:
    tight = TransportOptions(max_qpairs=5, num_poll_groups=2)
    for t in _sample(topologies(tight, min_subsystems=3, max_subsystems=8), 30):
        assert t.num_qpairs <= 5 and len(t.subsystems) >= 3
    big = TransportOptions(max_qpairs=1024, num_poll_groups=16)
    for t in _sample(topologies(big, min_subsystems=24, max_subsystems=32), 3):
        assert 24 <= len(t.subsystems) <= 32 and t.num_qpairs <= 1024
    minimal = _simplest(topologies(TransportOptions()))
    assert len(minimal.subsystems) == 1 and minimal.num_qpairs == 1


# ---------------------------------------------------------------------- schedules


@FAST
@given(schedules(4, 64))
def test_schedules_within_bounds(s: Schedule) -> None:
    assert 4 <= len(s.steps) <= 64
    assert len(s.steps) <= len(s.events) <= 64 * 16
    for step in s.steps:
        assert step.kind in SCHEDULE_KINDS and 1 <= step.repeat <= 16
        assert (1 <= step.index <= 8) if step.kind == "tick" else (0 <= step.index <= 15)


def test_schedules_bias_bursts_and_shrinking() -> None:
    sample = _sample(schedules(4, 64), 60)
    kinds = Counter(step.kind for s in sample for step in s.steps)
    assert kinds["poll"] + kinds["h2t"] + kinds["t2h"] > 3 * (kinds["bdev"] + kinds["tick"])
    assert kinds["bdev"] > kinds["tick"] > 0
    bursts = sum(step.repeat > 1 for s in sample for step in s.steps)
    total = sum(len(s.steps) for s in sample)
    assert total // 10 <= bursts <= total // 2
    minimal = _simplest(schedules(4, 64))
    assert len(minimal.steps) == 4 and all(x.repeat == 1 for x in minimal.steps)


def test_schedule_encoding() -> None:
    s = Schedule((dataclasses.replace(_simplest(schedules(1, 1)).steps[0], kind="h2t",
                                      index=5, repeat=3),))
    assert s.events == (("h2t", 5),) * 3
    words = s.to_words(lambda kind, i: 100 + i)
    assert words == [(nvme.EV_DELIVER_H2T << 24) | 105] * 3
    assert s.to_words(lambda kind, i: None) == []


# ------------------------------------------------------------------------- faults


@FAST
@given(fault_plans(max_faults=4, max_step=50))
def test_fault_plans_are_small_sorted_and_end_at_destroy(plan) -> None:
    assert len(plan) <= 4
    steps = [s for s, _ in plan]
    assert steps == sorted(steps) and all(0 <= s <= 50 for s in steps)
    destroys = [i for i, (_, f) in enumerate(plan) if f.kind == "transport_destroy"]
    assert destroys in ([], [len(plan) - 1])
    for _, f in plan:
        assert f.kind in FAULT_KINDS
        if f.kind == "post_fail":
            assert 1 <= f.count <= 8
        if f.kind == "bdev_error":
            assert 1 <= f.count and f.status != nvme.SC_SUCCESS


def test_fault_plans_cover_kinds_and_shrink_to_none() -> None:
    sample = _sample(fault_plans(), 100)
    assert {f.kind for plan in sample for _, f in plan} == set(FAULT_KINDS)
    assert _simplest(fault_plans()) == ()


# ---------------------------------------------------------------------- malformed
# The wire kinds of strategies.wire are tested in tests/test_wire.py; here the catalogue as a
# whole and the kinds strategies.malformed adds.

W = sw.codec
NS = Namespace(512, 64)
CTX = ErrContext(sw.WireLimits(in_capsule_data_size=4096, max_io_size=16384,
                               max_sgl_descriptors=8, max_queue_depth=16, max_qid=16,
                               namespaces=(NS,),
                               regions=(sw.Region(0x55, 0x7F00_0000_0000, 65536),)),
                 cntlid=3, hostid=bytes(range(16)), live_qids=(1, 2), next_qid=3, max_qid=16,
                 max_namespaces=4)
KNOWN_STATUSES = set(nvme.STATUS_NAMES) | {0x0101}
PROPERTIES = (0x00, 0x08, 0x14, 0x1C)


def test_malformed_kinds_are_many_and_all_feasible_for_ordinary_limits() -> None:
    assert len(MALFORMED_KINDS) >= 45 and len(set(MALFORMED_KINDS)) == len(MALFORMED_KINDS)
    assert set(MALFORMED_KINDS) == set(sw.WIRE_KINDS) | set(EXTRA_KINDS)
    assert feasible_kinds(CTX) == MALFORMED_KINDS
    for kind in MALFORMED_KINDS:   # each kind draws on its own, and is what it says
        assert {m.kind for m in _sample(malformed_commands(CTX, kinds=(kind,)), 3)} == {kind}
    sample = _sample(malformed_commands(CTX), 300)
    assert len({m.kind for m in sample}) >= len(MALFORMED_KINDS) // 2   # a real mix


def _connect(m: sw.MalformedCapsule) -> tuple[object, object]:
    return W.ConnectSqe.from_sqe(m.capsule.sqe), W.ConnectData.decode(m.capsule.data)


@FAST
@given(malformed_commands(CTX, kinds=tuple(EXTRA_KINDS)))
def test_added_kinds_are_wrong_in_the_claimed_way(m: sw.MalformedCapsule) -> None:
    """Exactly the claimed thing is wrong (or, for the reserved-field kinds, set)."""
    k, sqe = m.kind, m.capsule.sqe
    assert m.expected_status == KINDS[k].status and m.citation == KINDS[k].citation
    assert {m.expected_status, *KINDS[k].alternatives} <= KNOWN_STATUSES
    raw = m.capsule.encode()
    assert W.Capsule.decode(raw).encode() == raw
    assert len(raw) - W.SQE_SIZE <= CTX.limits.in_capsule_data_size or k.startswith("connect")
    if sqe.data_direction in (1, 2) and not k.startswith(("connect", "sgl_reserved")):
        sqe.sgl1.check()   # the data, if any, is described right: only the claim is wrong
    if k == "fabrics_prohibited_admin_opcode":
        assert sqe.opc in (0x00, 0x01, 0x04, 0x05, 0x7C)
    elif k == "admin_opcode_on_io":
        assert sqe.opc in (0x06, 0x08, 0x09, 0x0A, 0x18) and sqe.nsid == 1
    elif k == "namespace_not_ready":
        sqe.check()
        assert sqe.opc in (W.OPC_FLUSH, W.OPC_WRITE, W.OPC_READ)
    elif k.startswith("connect_") and k != "connect_reserved_fields":
        sq, data = _connect(m)
        assert data.hostid == CTX.hostid and data.subnqn == CTX.limits.subnqn.encode()
        assert sq.qid == CTX.next_qid or k in ("connect_bad_qid", "connect_duplicate_qid")
        assert data.cntlid == CTX.cntlid or k == "connect_unknown_cntlid"
        ok_size = 1 <= sq.sqsize < CTX.limits.max_queue_depth
        assert ok_size == (k not in ("connect_io_sqsize_zero", "connect_io_sqsize_too_large"))
        if k == "connect_bad_qid":
            assert CTX.max_qid < sq.qid <= 0xFFFF
        elif k == "connect_duplicate_qid":
            assert sq.qid in CTX.live_qids
        elif k == "connect_unknown_cntlid":
            assert data.cntlid not in CTX.live_cntlids and data.cntlid <= 0xFFEF
        elif k == "connect_io_sqsize_zero":
            assert sq.sqsize == 0
    elif k in ("property_get_bad_offset", "property_set_bad_offset"):
        p = W.PropertySqe.from_sqe(sqe)
        assert p.ofst not in PROPERTIES and not 0x20 <= p.ofst < 0x40
        assert p.fctype == (W.FCTYPE_PROPERTY_GET if "get" in k else W.FCTYPE_PROPERTY_SET)
    elif k == "identify_bad_cns":
        assert sqe.opc == W.OPC_IDENTIFY and sqe.cdw10 >= 4 and sqe.sgl1.length == 4096
    elif k == "identify_nsid_unknown":
        assert sqe.cdw10 == 0 and (sqe.nsid == 0 or CTX.max_namespaces < sqe.nsid < 0xFFFFFFFF)
    elif k == "sqe_reserved_bits":
        assert sqe.rsvd and sqe.replace(rsvd=0).check() is None
    elif k == "flush_reserved_dwords":
        assert sqe.opc == W.OPC_FLUSH and any(
            getattr(sqe, f"cdw{i}") for i in range(10, 16))
    elif k == "sgl_reserved_bytes":
        s = sqe.sgl1
        assert not s.is_keyed and s.reserved != W.Z3
        assert sqe.replace(sgl1=s.replace(reserved=W.Z3)).check() is None
    elif k == "fabrics_reserved_bytes":
        p = W.PropertySqe.from_sqe(sqe)
        assert p.ofst in PROPERTIES and p.attrib & 7 == (1 if p.ofst == 0 else 0)
        clean = W.PropertySqe(p.fctype, p.cid, p.ofst, p.attrib & 7).sqe()
        assert sqe != clean and (raw[0:5], raw[40], raw[44:48]) == (
            clean.encode()[0:5], raw[40], clean.encode()[44:48])
    elif k == "connect_reserved_fields":
        sq, data = _connect(m)
        clean = W.connect_capsule(sq, W.ConnectData(data.hostid, data.cntlid, data.subnqn,
                                                    data.hostnqn))
        assert clean.encode() != raw and sq.qid == 0 and 1 <= sq.sqsize
        assert data.cntlid == W.CONNECT_CNTLID_DYNAMIC


def test_malformed_statuses_match_the_specs() -> None:
    expected = {
        "icd_length_too_large": 0x000F, "keyed_length_too_large": 0x000F,
        "sgl_length_mismatch": 0x000F, "list_too_many_descriptors": 0x000E,
        "lba_out_of_range": 0x0080, "invalid_namespace": 0x000B,
        "namespace_not_ready": 0x0082, "io_before_connect": 0x000C,
        "connect_bad_qid": 0x0182, "connect_unknown_cntlid": 0x0182,
        "connect_unknown_subnqn": 0x0182, "connect_sqsize_too_large": 0x0182,
        "connect_io_sqsize_zero": 0x0182, "connect_duplicate_qid": 0x0182,
        "property_get_bad_offset": 0x0002, "identify_bad_cns": 0x0002,
        "identify_nsid_unknown": 0x000B, "fabrics_prohibited_admin_opcode": 0x0001,
        "admin_opcode_on_io": 0x0001, "io_invalid_opcode": 0x0001,
        "sqe_reserved_bits": 0x0000, "connect_reserved_fields": 0x0000,
    }
    for kind, status in expected.items():
        for m in _sample(malformed_commands(CTX, kinds=(kind,)), 5):
            assert m.expected_status == status, kind
    assert KINDS["connect_duplicate_qid"].accepts(0x000C)
    assert KINDS["list_entry_not_keyed"].accepts(0x0011)
    assert KINDS["list_entry_not_keyed"].accepts(0x000D)


def test_malformed_skips_infeasible_kinds() -> None:
    # no identify page fits 2 KiB transfers; 8 descriptors of 16 bytes need 144 bytes of
    # in-capsule room for one too many
    tiny = dataclasses.replace(CTX, limits=dataclasses.replace(
        CTX.limits, max_io_size=2048, in_capsule_data_size=128))
    kinds = set(feasible_kinds(tiny))
    assert not kinds & {"identify_bad_cns", "identify_nsid_unknown", "list_too_many_descriptors"}
    assert {"io_invalid_opcode", "connect_bad_qid", "lba_out_of_range"} <= kinds
    for kind in sorted(kinds):
        assert {m.kind for m in _sample(malformed_commands(tiny, kinds=(kind,)), 2)} == {kind}
    with pytest.raises(ValueError):
        malformed_commands(tiny, kinds=("identify_bad_cns",))
    with pytest.raises(ValueError, match="unknown malformed kind"):
        malformed_commands(CTX, kinds=("nope",))
    full = dataclasses.replace(CTX, max_qid=0xFFFF)
    assert "connect_bad_qid" not in feasible_kinds(full)
