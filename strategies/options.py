"""Strategies for transport options: ones the target must accept, and ones it must refuse.

``accepted_options`` leans toward *contention*, because that is where the field incidents
lived (DESIGN section 2): small queue depths, small caches, and WR pools and buffer counts at
or just above the minimum the target demands, so poll groups really compete for them.  It
builds the pools *from* the minimum (``strategies.limits``) instead of filtering, so it never
produces refused options and never wastes draws.  Every draw shrinks toward the simplest
configuration: one poll group, depth 2, one io unit, no caches, pool at the minimum.

``refused_options`` starts from accepted options and breaks exactly one rule, tagging the
example with that rule's ``strategies.limits.REFUSAL_KINDS`` name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from strategies import limits
from strategies.limits import (
    check_options,
    fit_pools,
    max_wrs_per_request,
    min_buffers,
    min_wr_pool,
)
from strategies.types import OPTION_FIELDS, RefusedOptions, TransportOptions

__all__ = [
    "RefusedOptions",
    "Scale",
    "TransportOptions",
    "accepted_options",
    "refused_options",
]

Scale = Literal["ci", "nightly"]
Pin = int | SearchStrategy[int]

MiB = 1024 * 1024


def _powers_of_two(lo: int, hi: int) -> list[int]:
    return [1 << k for k in range(33) if lo <= 1 << k <= hi]


def _field_strategies(scale: Scale) -> dict[str, SearchStrategy[int]]:
    """Per-field draws (pool sizes and max_io_size are derived, see ``accepted_options``).

    Lower bounds come first in every ``one_of`` so shrinking heads for the small values."""
    icd = st.one_of(st.integers(0, 512).map(lambda k: 16 * k),
                    st.sampled_from([0, 512, 1024, 4096, 8192]))
    if scale == "ci":
        return {
            "max_queue_depth": st.integers(2, 32),
            "io_unit_size": st.sampled_from(_powers_of_two(512, 8192)),
            "in_capsule_data_size": icd,
            "buf_cache_size": st.integers(0, 8),
            "wr_pool_multiplier": st.integers(1, 4),
            "wr_cache_size": st.integers(0, 8),
            "num_poll_groups": st.integers(1, 16),
            "max_read_depth": st.integers(1, 16),
            "max_send_depth": st.one_of(st.just(0), st.integers(2, 16)),
            "max_sge": st.integers(1, 16),
            "max_sgl_descriptors": st.integers(1, 16),
            "keep_alive_ticks": st.just(0),
            "max_qpairs": st.just(256),
            "max_ports": st.integers(1, 4),
            "max_subsystems": st.just(64),
            "max_namespaces": st.just(4),
            "max_memory_regions": st.just(64),
            "defects": st.just(0),
        }
    if scale == "nightly":
        return {
            "max_queue_depth": st.one_of(st.integers(2, 32), st.just(128), st.integers(2, 128)),
            "io_unit_size": st.sampled_from(_powers_of_two(512, 131072)),
            "in_capsule_data_size": icd,
            "buf_cache_size": st.integers(0, 32),
            "wr_pool_multiplier": st.integers(1, 16),
            "wr_cache_size": st.integers(0, 32),
            "num_poll_groups": st.one_of(st.integers(1, 16), st.just(16)),
            "max_read_depth": st.one_of(st.integers(1, 16), st.integers(1, 128)),
            "max_send_depth": st.one_of(st.just(0), st.integers(2, 256)),
            "max_sge": st.one_of(st.integers(1, 16), st.integers(1, 32)),
            "max_sgl_descriptors": st.one_of(st.integers(1, 16), st.just(16)),
            "keep_alive_ticks": st.just(0),
            "max_qpairs": st.just(1024),
            "max_ports": st.integers(1, 4),
            "max_subsystems": st.just(64),
            "max_namespaces": st.just(4),
            "max_memory_regions": st.just(256),
            "defects": st.just(0),
        }
    raise ValueError(f"scale must be 'ci' or 'nightly', not {scale!r}")


def _units(scale: Scale, io_unit: int) -> SearchStrategy[int]:
    """How many io units make max_io_size: at least 4 KiB worth (``limits.MIN_IO_SIZE``),
    up to 16 units (ci, or 4 KiB if more) or up to 1 MiB worth (nightly)."""
    least = max(1, -(-limits.MIN_IO_SIZE // io_unit))
    if scale == "ci":
        return st.integers(least, max(least, 16))
    most = max(least, MiB // io_unit)
    return st.one_of(st.integers(least, max(least, min(16, most))), st.just(most),
                     st.integers(least, most))


def _as_strategy(value: Pin) -> SearchStrategy[int]:
    return value if isinstance(value, SearchStrategy) else st.just(value)


def accepted_options(scale: Scale = "ci", **pins: Pin) -> SearchStrategy[TransportOptions]:
    """Options the target must accept, biased toward resource contention.

    ``scale="ci"``: queue depth 2..32, io_unit_size 512..8192, max_io_size up to 16 io
    units, 1..16 poll groups, read depth 1..16, max_sge and descriptors 1..16, caches 0..8,
    in_capsule_data_size 0..8192.  ``scale="nightly"`` widens to qd 128, 16 poll groups,
    1 MiB max_io_size, bigger caches and max_qpairs 1024.

    The WR pool takes one of three routes: ``wr_pool_size == 0`` with the smallest
    multiplier that covers the minimum (or a drawn one, if larger); an explicit pool exactly
    at the minimum; or the minimum plus 1..4.  ``num_shared_buffers`` is the minimum plus
    0 or 1..4.

    Pin any field with a keyword: a plain int or a strategy, e.g.
    ``accepted_options(num_poll_groups=st.just(2), max_read_depth=1)``.  Derived fields
    (max_io_size, wr_pool_size, wr_pool_multiplier, num_shared_buffers) may be pinned too;
    pins that make the options unacceptable are rejected with ``assume``, so pin those only
    to values you know fit.
    """
    unknown = set(pins) - set(OPTION_FIELDS)
    if unknown:
        raise TypeError(f"accepted_options: unknown option field(s) {sorted(unknown)}")
    fields = _field_strategies(scale)  # validates scale eagerly
    pinned = {name: _as_strategy(value) for name, value in pins.items()}
    return _accepted(scale, fields, pinned)


@st.composite
def _accepted(draw: DrawFn, scale: Scale, fields: dict[str, SearchStrategy[int]],
              pinned: dict[str, SearchStrategy[int]]) -> TransportOptions:
    def get(name: str) -> int:
        return draw(pinned.get(name, fields.get(name)))  # type: ignore[arg-type]

    values = {name: get(name) for name in fields if name not in (
        "io_unit_size", "wr_pool_multiplier")}
    if "max_io_size" in pinned:
        max_io = draw(pinned["max_io_size"])
        choices = [u for u in _powers_of_two(limits.MIN_IO_UNIT_SIZE, limits.MAX_IO_UNIT_SIZE)
                   if u <= max_io and max_io % u == 0]
        io_unit = get("io_unit_size") if "io_unit_size" in pinned else (
            draw(st.sampled_from(choices)) if choices else 0)
    else:
        io_unit = get("io_unit_size")
        max_io = io_unit * draw(_units(scale, io_unit)) if io_unit > 0 else 0
    base = TransportOptions(**values, io_unit_size=io_unit, max_io_size=max_io,
                            wr_pool_multiplier=1, wr_pool_size=0)
    assume(limits.MIN_IO_UNIT_SIZE <= io_unit and base.max_sge >= 1)  # only bad pins fail

    if "wr_pool_size" in pinned:
        wr = {"wr_pool_size": draw(pinned["wr_pool_size"]),
              "wr_pool_multiplier": get("wr_pool_multiplier")}
    else:
        route = draw(st.sampled_from(["multiplier", "exact", "slack"]))
        need = min_wr_pool(base)
        if route == "multiplier":
            floor = max(1, -(-need // base.max_queue_depth))
            mult = (draw(pinned["wr_pool_multiplier"]) if "wr_pool_multiplier" in pinned
                    else max(floor, get("wr_pool_multiplier")))
            wr = {"wr_pool_size": 0, "wr_pool_multiplier": mult}
        else:
            slack = 0 if route == "exact" else draw(st.integers(1, 4))
            wr = {"wr_pool_size": max(1, need + slack),
                  "wr_pool_multiplier": get("wr_pool_multiplier")}
    if "num_shared_buffers" in pinned:
        bufs = draw(pinned["num_shared_buffers"])
    else:
        bufs = min_buffers(base) + draw(st.one_of(st.just(0), st.integers(1, 4)))
    opts = base.replace(num_shared_buffers=bufs, **wr)
    if opts.max_send_depth and "max_send_depth" not in pinned:
        # the send queue must hold a largest read's WRITEs plus its response SEND
        opts = opts.replace(max_send_depth=max(opts.max_send_depth,
                                               max_wrs_per_request(opts) + 1))
    assume(check_options(opts) is None)  # only reachable with pins that do not fit
    return opts


# --------------------------------------------------------------------------- refused

Breaker = Callable[[DrawFn, TransportOptions], tuple[TransportOptions, str]]


def _refit(draw: DrawFn, o: TransportOptions) -> TransportOptions:
    """Re-derive pools (and a non-default send depth) after a mutation that changed the
    per-request needs, so only the intended rule is broken."""
    if o.io_unit_size <= 0 or o.max_sge <= 0:
        return o
    o = fit_pools(o, draw(st.integers(0, 4)), draw(st.integers(0, 4)))
    if o.max_send_depth:
        o = o.replace(max_send_depth=max(o.max_send_depth, max_wrs_per_request(o) + 1))
    return o


def _zero_or(draw: DrawFn, big: SearchStrategy[int]) -> tuple[int, str]:
    """Zero, or a value above the rule's upper bound."""
    if draw(st.booleans()):
        return draw(big), "too_large"
    return 0, "zero"


def _queue_depth(draw: DrawFn, o: TransportOptions) -> tuple[TransportOptions, str]:
    qd, variant = _zero_or(draw, st.integers(4097, 65536))
    if variant == "zero" and draw(st.booleans()):
        qd, variant = 1, "one"   # below the 2-entry minimum of a queue
    return _refit(draw, o.replace(max_queue_depth=qd)), variant


def _io_unit_range(draw: DrawFn, o: TransportOptions) -> tuple[TransportOptions, str]:
    variant = draw(st.sampled_from(["too_small", "too_large", "zero"]))
    if variant == "zero":
        return o.replace(io_unit_size=0), variant
    unit = draw(st.sampled_from(_powers_of_two(1, 256) if variant == "too_small"
                                else _powers_of_two(262144, limits.MAX_IO_SIZE)))
    return _refit(draw, o.replace(io_unit_size=unit, max_io_size=unit * draw(_any_units(unit)))), \
        variant


def _any_units(unit: int) -> SearchStrategy[int]:
    """A count of ``unit``-sized pieces making a max_io_size inside its range (at least
    ``limits.MIN_IO_SIZE``, at most ``limits.MAX_IO_SIZE``), so only the rule under test
    breaks."""
    least = max(1, -(-limits.MIN_IO_SIZE // unit))
    return st.integers(least, max(least, min(least + 15, limits.MAX_IO_SIZE // unit)))


def _io_unit_pow2(draw: DrawFn, o: TransportOptions) -> tuple[TransportOptions, str]:
    unit = draw(st.integers(limits.MIN_IO_UNIT_SIZE + 1, limits.MAX_IO_UNIT_SIZE - 1))
    if unit & (unit - 1) == 0:
        unit += 1
    return _refit(draw, o.replace(io_unit_size=unit, max_io_size=unit * draw(_any_units(unit)))), ""


def _io_size_multiple(draw: DrawFn, o: TransportOptions) -> tuple[TransportOptions, str]:
    unit = o.io_unit_size
    least = max(1, -(-limits.MIN_IO_SIZE // unit))
    units = draw(st.integers(least, max(least, min(least + 15, limits.MAX_IO_SIZE // unit - 1))))
    size = unit * units + draw(st.integers(1, unit - 1))
    return _refit(draw, o.replace(max_io_size=size)), ""


def _io_size_range(draw: DrawFn, o: TransportOptions) -> tuple[TransportOptions, str]:
    unit = o.io_unit_size
    size, variant = _zero_or(draw, st.integers(1, 16).map(
        lambda j: (limits.MAX_IO_SIZE // unit + j) * unit))
    return _refit(draw, o.replace(max_io_size=size)), variant


def _icd_multiple(draw: DrawFn, o: TransportOptions) -> tuple[TransportOptions, str]:
    icd = 16 * draw(st.integers(0, limits.MAX_ICD_SIZE // 16 - 1)) + draw(st.integers(1, 15))
    return o.replace(in_capsule_data_size=icd), ""


def _icd_range(draw: DrawFn, o: TransportOptions) -> tuple[TransportOptions, str]:
    icd = limits.MAX_ICD_SIZE + 16 * draw(st.integers(1, 4096))
    return o.replace(in_capsule_data_size=icd), ""


def _multiplier_zero(draw: DrawFn, o: TransportOptions) -> tuple[TransportOptions, str]:
    # Capacity becomes 0, so wr_pool_below_min is necessarily broken as well.
    return o.replace(wr_pool_size=0, wr_pool_multiplier=0), ""


def _poll_groups(draw: DrawFn, o: TransportOptions) -> tuple[TransportOptions, str]:
    n, variant = _zero_or(draw, st.integers(65, 256))
    return _refit(draw, o.replace(num_poll_groups=n)), variant


def _read_depth(draw: DrawFn, o: TransportOptions) -> tuple[TransportOptions, str]:
    n, variant = _zero_or(draw, st.integers(129, 1024))
    return o.replace(max_read_depth=n), variant


def _send_depth(draw: DrawFn, o: TransportOptions) -> tuple[TransportOptions, str]:
    need = max_wrs_per_request(o) + 1 if o.io_unit_size > 0 and o.max_sge > 0 else 2
    return o.replace(max_send_depth=draw(st.integers(1, max(1, need - 1)))), ""


def _sge(draw: DrawFn, o: TransportOptions) -> tuple[TransportOptions, str]:
    n, variant = _zero_or(draw, st.integers(33, 64))
    return _refit(draw, o.replace(max_sge=n)), variant


def _descriptors(draw: DrawFn, o: TransportOptions) -> tuple[TransportOptions, str]:
    n, variant = _zero_or(draw, st.integers(17, 64))
    return _refit(draw, o.replace(max_sgl_descriptors=n)), variant


def _table_zero(draw: DrawFn, o: TransportOptions) -> tuple[TransportOptions, str]:
    name = draw(st.sampled_from(limits.TABLE_FIELDS))
    return o.replace(**{name: 0}), name


def _pool_below(draw: DrawFn, o: TransportOptions) -> tuple[TransportOptions, str]:
    if min_wr_pool(o) < 2:  # no positive explicit size is below a minimum of 1
        o = _refit(draw, o.replace(wr_cache_size=o.wr_cache_size + 1))
    need = min_wr_pool(o)
    deficit = min(draw(st.integers(1, 8)), need - 1)
    if draw(st.booleans()) and limits.MIN_QUEUE_DEPTH <= need - deficit <= limits.MAX_QUEUE_DEPTH:
        # depth x multiplier route: the historical hard-coded pool being too small
        cap = need - deficit
        mult = cap // o.max_queue_depth
        qd = o.max_queue_depth if mult >= 1 else cap
        return o.replace(wr_pool_size=0, max_queue_depth=qd, wr_pool_multiplier=max(mult, 1)), \
            "multiplier"
    return o.replace(wr_pool_size=need - deficit), "explicit"


def _buffers_below(draw: DrawFn, o: TransportOptions) -> tuple[TransportOptions, str]:
    need = min_buffers(o)
    deficit = min(draw(st.integers(1, 8)), need)
    return o.replace(num_shared_buffers=need - deficit), ""


def _not_uint32(draw: DrawFn, o: TransportOptions) -> tuple[TransportOptions, str]:
    name = draw(st.sampled_from(OPTION_FIELDS))
    value = draw(st.sampled_from([-1, limits.UINT32_MAX + 1]))
    return o.replace(**{name: value}), name


_BREAKERS: dict[str, Breaker] = {
    "not_uint32": _not_uint32,
    "max_queue_depth_range": _queue_depth,
    "io_unit_size_range": _io_unit_range,
    "io_unit_size_not_power_of_two": _io_unit_pow2,
    "max_io_size_not_multiple": _io_size_multiple,
    "max_io_size_range": _io_size_range,
    "icd_not_multiple_of_16": _icd_multiple,
    "icd_range": _icd_range,
    "wr_pool_multiplier_zero": _multiplier_zero,
    "num_poll_groups_range": _poll_groups,
    "max_read_depth_range": _read_depth,
    "max_sge_range": _sge,
    "max_sgl_descriptors_range": _descriptors,
    "table_size_zero": _table_zero,
    "wr_pool_below_min": _pool_below,
    "buffers_below_min": _buffers_below,
    "max_send_depth_below_min": _send_depth,
}
assert tuple(_BREAKERS) == limits.REFUSAL_KINDS

#: Kinds ``refused_options`` draws by default.  ``not_uint32`` is left out: such values
#: cannot even be stored in ``struct nrt_opts``, so they test the facade, not the target.
DEFAULT_REFUSED_KINDS: tuple[str, ...] = tuple(k for k in limits.REFUSAL_KINDS
                                               if k != "not_uint32")


def refused_options(scale: Scale = "ci", kinds: tuple[str, ...] = DEFAULT_REFUSED_KINDS,
                    ) -> SearchStrategy[RefusedOptions]:
    """Options the target must refuse, each breaking one rule of ``strategies.limits``.

    The result's ``reason_kind`` is that rule and is what ``limits.refusal_kind`` reports
    for its ``opts``.  Exactly one rule is broken, except ``wr_pool_multiplier_zero`` (a
    zero multiplier also makes the pool capacity 0, below any minimum)."""
    bad = set(kinds) - set(_BREAKERS)
    if bad:
        raise ValueError(f"refused_options: unknown kind(s) {sorted(bad)}")
    return st.one_of([_refused(scale, k) for k in kinds])


@st.composite
def _refused(draw: DrawFn, scale: Scale, kind: str) -> RefusedOptions:
    base = draw(accepted_options(scale))
    opts, variant = _BREAKERS[kind](draw, base)
    return RefusedOptions(opts, kind, variant)
