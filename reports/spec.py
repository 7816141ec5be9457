"""The property catalogue (DESIGN section 6) as data.

Every test that proves a property carries ``@pytest.mark.spec("POOL-2", ...)``; every failing
check's message starts with the ID it violated ("POOL-2: data-WR pool returned 184280 of 184320").
Reports group by these IDs, so this table is the single source of truth for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Property:
    """One requirement the suite must prove."""

    id: str
    family: str
    statement: str


CATALOGUE: tuple[Property, ...] = (
    Property(
        "POOL-1",
        "POOL",
        "After every step the data-WR pool balances: ring free + all poll-group caches + WRs held "
        "by requests equals capacity, and no WR is held twice.",
    ),
    Property(
        "POOL-2",
        "POOL",
        "At quiescence and after destroy the data-WR pool is back to exactly depth x multiplier, "
        "and the target's own destroy report says the same.",
    ),
    Property(
        "POOL-3",
        "POOL",
        "Data buffers, request slots and receive WRs obey the same conservation.",
    ),
    Property(
        "LIVE-1",
        "LIVE",
        "No stall: once faults stop and the harness delivers everything, every request on a live "
        "qpair completes within a bounded number of poll rounds; a full round without progress "
        "while work is outstanding is a stall.",
    ),
    Property(
        "LIVE-2",
        "LIVE",
        "Admin, fabrics and in-capsule-data commands complete while IO waits for buffers "
        "(no head-of-line starvation).",
    ),
    Property(
        "CQE-1",
        "CQE",
        "Each capsule on a live qpair gets exactly one response carrying its CID, none arrives for "
        "an unknown CID, and after a qpair fails each gets at most one and everything is released.",
    ),
    Property(
        "DATA-1",
        "DATA",
        "Read-after-write returns the written bytes through any SGL layout, with SGE order kept.",
    ),
    Property(
        "SM-1",
        "SM",
        "Request states move only along the legal graph, and a request sits in at most one "
        "pending queue: the one its state implies.",
    ),
    Property(
        "DEPTH-1",
        "DEPTH",
        "Read depth, send depth and outstanding requests never exceed their limits.",
    ),
    Property(
        "CFG-1",
        "CFG",
        "Accepted options are honoured exactly; refused options come with the reason.",
    ),
    Property(
        "ERR-1",
        "ERR",
        "Every malformed command gets its NVMe status and releases everything it held.",
    ),
    Property(
        "SHUT-1",
        "SHUT",
        "Abrupt shutdown of a qpair, a port or the transport, with IO in any state, releases "
        "everything.",
    ),
    Property(
        "CONN-1",
        "CONN",
        "An RDMA CM connect with valid NVMe/RDMA private data is accepted with the negotiated "
        "depth, invalid private data (length, RECFMT, QID, HRQSIZE, HSQSIZE, IRD) is rejected "
        "with the transport binding's status, and the Connect data (SUBNQN, CNTLID) is honoured.",
    ),
    Property(
        "STATS-1",
        "STATS",
        "The per-poll-group stats a target reports (polls, idle polls, completions, pending data "
        "buffer, qpairs) agree with what the fabric and the host saw.",
    ),
    Property(
        "CRASH-1",
        "CRASH",
        "No input and no interleaving makes the target crash, abort, fail an assertion, trip a "
        "sanitizer or hang.",
    ),
)

BY_ID: Mapping[str, Property] = MappingProxyType({p.id: p for p in CATALOGUE})

# Families in catalogue order, without duplicates.
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(p.family for p in CATALOGUE))


def get(spec_id: str) -> Property:
    """The catalogue entry for ``spec_id``; ValueError if the ID is not in the catalogue."""
    try:
        return BY_ID[spec_id]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown property ID {spec_id!r}; known IDs: {', '.join(BY_ID)}"
        ) from None


def family(spec_id: str) -> str:
    """The family of ``spec_id`` ("POOL-2" -> "POOL"); ValueError for an unknown ID."""
    return get(spec_id).family


def statement(spec_id: str) -> str:
    """The one-line statement of ``spec_id``; ValueError for an unknown ID."""
    return get(spec_id).statement


def unknown(ids: Iterable[object]) -> list[object]:
    """The members of ``ids`` that are not catalogue IDs, in order."""
    return [i for i in ids if not isinstance(i, str) or i not in BY_ID]
