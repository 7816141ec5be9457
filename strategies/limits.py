"""The target's option-acceptance rule as pure functions (the CFG-1 contract).

The C target implements the same rule in ``nrt_transport_create``; these functions exist so
a test can predict its verdict without asking it.  If the two disagree, that is a CFG-1
finding.  The formulas (DESIGN 5.2: "pool or buffers smaller than what one maximum request
per poll group needs, counting caches" is refused)::

    max_bufs_per_request = ceil(max_io_size / io_unit_size)
    max_wrs_per_request  = min(max_sgl_descriptors, max_io_size)
                           + (max_bufs_per_request - 1) // max_sge
    wr_pool_capacity     = wr_pool_size if wr_pool_size else max_queue_depth * wr_pool_multiplier
    min_wr_pool          = num_poll_groups * (wr_cache_size + max_wrs_per_request)
    min_buffers          = num_poll_groups * (buf_cache_size + max_bufs_per_request)

Options are accepted iff every field is in range (table below) and
``wr_pool_capacity >= min_wr_pool`` and ``num_shared_buffers >= min_buffers``.

================================  ===================================================
rule (``Refusal.kind``)           accepted when
================================  ===================================================
not_uint32                        every field fits ``uint32_t`` (the C struct's type)
max_queue_depth_range             2 <= max_queue_depth <= 4096 (a queue holds at least 2
                                  entries: NVMe base 2.0, 4.1.3)
io_unit_size_range                512 <= io_unit_size <= 131072
io_unit_size_not_power_of_two     io_unit_size is a power of two
max_io_size_not_multiple          max_io_size % io_unit_size == 0
max_io_size_range                 max(io_unit_size, 4096) <= max_io_size <= 4 MiB (4096:
                                  an Identify data structure must fit one request)
icd_not_multiple_of_16            in_capsule_data_size % 16 == 0
icd_range                         in_capsule_data_size <= 65536
wr_pool_multiplier_zero           wr_pool_multiplier >= 1 (only when wr_pool_size == 0)
num_poll_groups_range             1 <= num_poll_groups <= 64
max_read_depth_range              1 <= max_read_depth <= 128
max_sge_range                     1 <= max_sge <= 32
max_sgl_descriptors_range         1 <= max_sgl_descriptors <= 16
table_size_zero                   max_qpairs, max_ports, max_subsystems, max_namespaces,
                                  max_memory_regions >= 1
wr_pool_below_min                 wr_pool_capacity >= min_wr_pool
buffers_below_min                 num_shared_buffers >= min_buffers
max_send_depth_below_min          max_send_depth == 0 (means 2 * qd + max_wrs_per_request)
                                  or >= max_wrs_per_request + 1 (a largest read's WRITEs
                                  plus its response SEND must fit the send queue)
================================  ===================================================

``refusals`` lists every broken rule in that order (the last three only when their formulas
are defined, i.e. ``io_unit_size > 0`` and ``max_sge > 0``); ``check_options`` returns the
first one's message.  The C target (``nrt_opts_validate``) stops at its first failure and
checks in a slightly different order, so compare verdicts and the named field, not the
first rule, when several are broken.
"""

from __future__ import annotations

from strategies.types import OPTION_FIELDS, Refusal, TransportOptions

UINT32_MAX = 0xFFFF_FFFF
MIN_QUEUE_DEPTH = 2
MAX_QUEUE_DEPTH = 4096
MIN_IO_UNIT_SIZE = 512
MAX_IO_UNIT_SIZE = 131072
MAX_IO_SIZE = 4 * 1024 * 1024
MIN_IO_SIZE = 4096   # NVMe base 5.17: Identify returns a 4 KiB data structure
MAX_ICD_SIZE = 65536
ICD_ALIGN = 16
MAX_NUM_POLL_GROUPS = 64
MAX_READ_DEPTH = 128
MAX_SGE = 32
MAX_SGL_DESCRIPTORS = 16
TABLE_FIELDS = ("max_qpairs", "max_ports", "max_subsystems", "max_namespaces",
                "max_memory_regions")

#: Every rule name ``refusals`` can report, in reporting order.
REFUSAL_KINDS: tuple[str, ...] = (
    "not_uint32",
    "max_queue_depth_range",
    "io_unit_size_range",
    "io_unit_size_not_power_of_two",
    "max_io_size_not_multiple",
    "max_io_size_range",
    "icd_not_multiple_of_16",
    "icd_range",
    "wr_pool_multiplier_zero",
    "num_poll_groups_range",
    "max_read_depth_range",
    "max_sge_range",
    "max_sgl_descriptors_range",
    "table_size_zero",
    "wr_pool_below_min",
    "buffers_below_min",
    "max_send_depth_below_min",
)


def max_bufs_per_request(opts: TransportOptions) -> int:
    """Data buffers one maximum-size request holds: ``ceil(max_io_size / io_unit_size)``."""
    return -(-opts.max_io_size // opts.io_unit_size)


def max_wrs_per_request(opts: TransportOptions) -> int:
    """Data WRs one maximum request needs: one per SGL descriptor, plus one more for every
    ``max_sge`` buffers beyond the first (a WR carries at most ``max_sge`` SGEs)."""
    return (min(opts.max_sgl_descriptors, opts.max_io_size)
            + (max_bufs_per_request(opts) - 1) // opts.max_sge)


def wr_pool_capacity(opts: TransportOptions) -> int:
    """Data-WR pool capacity: the explicit size, else depth x multiplier."""
    if opts.wr_pool_size:
        return opts.wr_pool_size
    return opts.max_queue_depth * opts.wr_pool_multiplier


def min_wr_pool(opts: TransportOptions) -> int:
    """Smallest pool with which every poll group can fill its cache and still run one
    maximum request (anything smaller can deadlock, so the target refuses it)."""
    return opts.num_poll_groups * (opts.wr_cache_size + max_wrs_per_request(opts))


def min_buffers(opts: TransportOptions) -> int:
    """Smallest shared-buffer count with the same guarantee as ``min_wr_pool``."""
    return opts.num_poll_groups * (opts.buf_cache_size + max_bufs_per_request(opts))


def fit_pools(opts: TransportOptions, wr_slack: int = 0, buf_slack: int = 0,
              *, explicit_pool: bool = True) -> TransportOptions:
    """``opts`` with the WR pool and buffer count at their minimum plus some slack.

    With ``explicit_pool`` the pool is set through ``wr_pool_size``; otherwise
    ``wr_pool_size`` is 0 and the multiplier is the smallest that reaches the target
    capacity (so capacity lands within ``max_queue_depth - 1`` of it)."""
    want = min_wr_pool(opts) + wr_slack
    if explicit_pool:
        changes = {"wr_pool_size": max(want, 1)}
    else:
        changes = {"wr_pool_size": 0,
                   "wr_pool_multiplier": max(1, -(-want // opts.max_queue_depth))}
    return opts.replace(num_shared_buffers=min_buffers(opts) + buf_slack, **changes)


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _range_refusals(o: TransportOptions) -> list[Refusal]:
    out: list[Refusal] = []

    def bad(kind: str, field: str, why: str) -> None:
        out.append(Refusal(kind, field, f"{field}={getattr(o, field)}: {why}"))

    for name in OPTION_FIELDS:
        v = getattr(o, name)
        if not isinstance(v, int) or not 0 <= v <= UINT32_MAX:
            bad("not_uint32", name, "must be an integer in 0..4294967295")
    if out:  # nothing below is meaningful for values the struct cannot hold
        return out
    if not MIN_QUEUE_DEPTH <= o.max_queue_depth <= MAX_QUEUE_DEPTH:
        bad("max_queue_depth_range", "max_queue_depth",
            f"must be in {MIN_QUEUE_DEPTH}..{MAX_QUEUE_DEPTH}")
    if not MIN_IO_UNIT_SIZE <= o.io_unit_size <= MAX_IO_UNIT_SIZE:
        bad("io_unit_size_range", "io_unit_size",
            f"must be in {MIN_IO_UNIT_SIZE}..{MAX_IO_UNIT_SIZE}")
    if o.io_unit_size and not _is_power_of_two(o.io_unit_size):
        bad("io_unit_size_not_power_of_two", "io_unit_size", "must be a power of two")
    if o.io_unit_size and o.max_io_size % o.io_unit_size:
        bad("max_io_size_not_multiple", "max_io_size",
            f"must be a multiple of io_unit_size={o.io_unit_size}")
    if not max(o.io_unit_size, MIN_IO_SIZE) <= o.max_io_size <= MAX_IO_SIZE:
        bad("max_io_size_range", "max_io_size",
            f"must be in max(io_unit_size={o.io_unit_size}, {MIN_IO_SIZE})..{MAX_IO_SIZE}")
    if o.in_capsule_data_size % ICD_ALIGN:
        bad("icd_not_multiple_of_16", "in_capsule_data_size", "must be a multiple of 16")
    if o.in_capsule_data_size > MAX_ICD_SIZE:
        bad("icd_range", "in_capsule_data_size", f"must be at most {MAX_ICD_SIZE}")
    if o.wr_pool_size == 0 and o.wr_pool_multiplier < 1:
        bad("wr_pool_multiplier_zero", "wr_pool_multiplier",
            "must be >= 1 when wr_pool_size is 0")
    if not 1 <= o.num_poll_groups <= MAX_NUM_POLL_GROUPS:
        bad("num_poll_groups_range", "num_poll_groups", f"must be in 1..{MAX_NUM_POLL_GROUPS}")
    if not 1 <= o.max_read_depth <= MAX_READ_DEPTH:
        bad("max_read_depth_range", "max_read_depth", f"must be in 1..{MAX_READ_DEPTH}")
    if not 1 <= o.max_sge <= MAX_SGE:
        bad("max_sge_range", "max_sge", f"must be in 1..{MAX_SGE}")
    if not 1 <= o.max_sgl_descriptors <= MAX_SGL_DESCRIPTORS:
        bad("max_sgl_descriptors_range", "max_sgl_descriptors",
            f"must be in 1..{MAX_SGL_DESCRIPTORS}")
    for name in TABLE_FIELDS:
        if getattr(o, name) < 1:
            bad("table_size_zero", name, "must be >= 1")
    return out


def _pool_refusals(o: TransportOptions) -> list[Refusal]:
    if o.io_unit_size <= 0 or o.max_sge <= 0:  # formulas undefined (division by zero)
        return []
    out: list[Refusal] = []
    cap, need = wr_pool_capacity(o), min_wr_pool(o)
    if cap < need:
        how = (f"wr_pool_size={o.wr_pool_size}" if o.wr_pool_size else
               f"max_queue_depth={o.max_queue_depth} * wr_pool_multiplier="
               f"{o.wr_pool_multiplier}")
        out.append(Refusal(
            "wr_pool_below_min", "wr_pool_size" if o.wr_pool_size else "wr_pool_multiplier",
            f"data-WR pool capacity {cap} ({how}) is below the minimum {need} = "
            f"num_poll_groups={o.num_poll_groups} * (wr_cache_size={o.wr_cache_size} + "
            f"max_wrs_per_request={max_wrs_per_request(o)})"))
    have, need = o.num_shared_buffers, min_buffers(o)
    if have < need:
        out.append(Refusal(
            "buffers_below_min", "num_shared_buffers",
            f"num_shared_buffers={have} is below the minimum {need} = "
            f"num_poll_groups={o.num_poll_groups} * (buf_cache_size={o.buf_cache_size} + "
            f"max_bufs_per_request={max_bufs_per_request(o)})"))
    send_min = max_wrs_per_request(o) + 1
    if o.max_send_depth and o.max_send_depth < send_min:
        out.append(Refusal(
            "max_send_depth_below_min", "max_send_depth",
            f"max_send_depth={o.max_send_depth} is below the minimum {send_min} = "
            f"max_wrs_per_request={max_wrs_per_request(o)} + 1 response SEND"))
    return out


def refusals(opts: TransportOptions) -> list[Refusal]:
    """Every rule ``opts`` breaks, in ``REFUSAL_KINDS`` order (empty list = accepted)."""
    out = _range_refusals(opts)
    if out and out[0].kind == "not_uint32":
        return out
    return out + _pool_refusals(opts)


def check_options(opts: TransportOptions) -> str | None:
    """Why the target must refuse ``opts`` (the first broken rule), or None if accepted."""
    found = refusals(opts)
    return found[0].message if found else None


def refusal_kind(opts: TransportOptions) -> str | None:
    """The first broken rule's name (a ``REFUSAL_KINDS`` entry), or None if accepted."""
    found = refusals(opts)
    return found[0].kind if found else None
