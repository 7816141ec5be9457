"""Well-formed NVM and admin commands.

``io_commands`` draws reads, writes and flushes against one namespace: every transfer fits
``max_io_size`` and the namespace, and maximum-size transfers are drawn on purpose (they
hold the most buffers and WRs, which is what exhausts pools).  ``admin_commands`` draws
the admin-queue traffic that must never starve behind IO (LIVE-2): identify, keep-alive,
abort, property get/set.  Fabrics CONNECT is not here: connecting is the harness's job
when it builds a ``strategies.topology.Topology``.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from strategies import nvme
from strategies.sgl import sgl_layouts
from strategies.types import AdminCommand, AdminKind, IoCommand, IoOp, Namespace, TransportOptions

__all__ = ["ADMIN_KINDS", "admin_commands", "io_commands", "max_transfer_blocks"]

ADMIN_KINDS: tuple[AdminKind, ...] = ("keep_alive", "property_get", "identify", "abort",
                                      "property_set")


def max_transfer_blocks(namespace: Namespace, opts: TransportOptions) -> int:
    """Largest block count one read/write may move: bounded by max_io_size and the
    namespace (0 when one block is already bigger than max_io_size)."""
    return min(opts.max_io_size // namespace.block_size, namespace.num_blocks)


def io_commands(namespace: Namespace, opts: TransportOptions, *, nsid: int = 1,
                ops: tuple[IoOp, ...] = ("write", "read", "flush"),
                ) -> SearchStrategy[IoCommand]:
    """Valid NVM commands on ``namespace`` (addressed as ``nsid``).

    Reads and writes move ``(nlb + 1) * block_size <= max_io_size`` bytes inside the
    namespace, through any layout of ``strategies.sgl.sgl_layouts``; the maximum size and
    the last LBAs are drawn often.  Shrinks toward a one-block write at LBA 0."""
    most = max_transfer_blocks(namespace, opts)
    branches: list[SearchStrategy[IoCommand]] = []
    for op in ops:
        if op == "flush":
            branches.append(st.just(IoCommand("flush", nsid, 0, 0, None)))
        elif most >= 1:
            branches.append(_data_command(op, namespace, opts, nsid, most))
    if not branches:
        raise ValueError(f"no command in {ops} fits: one {namespace.block_size}-byte block "
                         f"exceeds max_io_size={opts.max_io_size}")
    return st.one_of(branches)


@st.composite
def _data_command(draw: DrawFn, op: IoOp, ns: Namespace, opts: TransportOptions, nsid: int,
                  most: int) -> IoCommand:
    nlb = draw(st.one_of(st.integers(0, most - 1), st.just(most - 1)))
    last = ns.num_blocks - (nlb + 1)
    slba = draw(st.one_of(st.integers(0, last), st.just(last)))
    direction = "h2c" if op == "write" else "c2h"
    layout = draw(sgl_layouts((nlb + 1) * ns.block_size, opts, direction))
    return IoCommand(op, nsid, slba, nlb, layout)


def admin_commands(opts: TransportOptions | None = None, *, nsid: int = 1,
                   kinds: tuple[AdminKind, ...] = ADMIN_KINDS,
                   max_abort_sqid: int = 4) -> SearchStrategy[AdminCommand]:
    """Valid admin-queue commands.

    * ``identify``: CNS 1 (controller) or CNS 0 (namespace ``nsid``), 4096 bytes of
      controller-to-host data through a keyed layout.  Left out when ``max_io_size`` is
      below 4096, since the target then rejects the transfer as too long.
    * ``keep_alive``: no data.
    * ``abort``: ``cdw10 = sqid << 16 | cid`` with ``sqid <= max_abort_sqid``; the CID may
      or may not be outstanding, both are legal.
    * ``property_get``: offset CAP, VS, CC or CSTS.
    * ``property_set``: CC <- ``CC_ENABLE`` (the value a host writes after connecting; other
      values would reset or shut the controller down under the harness).
    """
    opts = opts or TransportOptions()
    branches: list[SearchStrategy[AdminCommand]] = []
    for kind in kinds:
        if kind == "keep_alive":
            branches.append(st.just(AdminCommand("keep_alive", nvme.OPC_KEEP_ALIVE)))
        elif kind == "property_get":
            branches.append(st.builds(
                lambda off: AdminCommand("property_get", nvme.OPC_FABRICS,
                                         fctype=nvme.FCTYPE_PROPERTY_GET, cdw10=off),
                st.sampled_from(nvme.PROPERTY_OFFSETS)))
        elif kind == "property_set":
            branches.append(st.just(AdminCommand(
                "property_set", nvme.OPC_FABRICS, fctype=nvme.FCTYPE_PROPERTY_SET,
                cdw10=nvme.PROP_CC, value=nvme.CC_ENABLE)))
        elif kind == "abort":
            branches.append(st.builds(
                lambda sqid, cid: AdminCommand("abort", nvme.OPC_ABORT,
                                               cdw10=(sqid << 16) | cid),
                st.integers(0, max_abort_sqid), st.integers(0, 0xFFFF)))
        elif kind == "identify" and opts.max_io_size >= nvme.IDENTIFY_DATA_BYTES:
            branches.append(st.builds(
                lambda cns, layout: AdminCommand(
                    "identify", nvme.OPC_IDENTIFY,
                    nsid=nsid if cns == nvme.CNS_NAMESPACE else 0, cdw10=cns, layout=layout),
                st.sampled_from([nvme.CNS_CONTROLLER, nvme.CNS_NAMESPACE]),
                sgl_layouts(nvme.IDENTIFY_DATA_BYTES, opts, "c2h",
                            kinds=("keyed", "keyed_list"))))
    if not branches:
        raise ValueError(f"no admin command in {kinds} fits these options")
    return st.one_of(branches)
