"""The property catalogue (DESIGN section 6) as data.

Every test that proves a property carries ``@pytest.mark.spec("POOL-2", ...)``; every failing
check's message starts with the ID it violated ("POOL-2: data-WR pool returned 184280 of 184320").
Reports group by these IDs, so this table is the single source of truth for them: their
statements, the kind of failure each names (:data:`KINDS`, the report's categories), how
severe a failure is (Allure's severity levels) and the sections of the specifications each
rests on (:data:`DOCUMENTS`, linked from every result of the property).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

#: The specifications the properties cite: key -> (title, where the document is published).
DOCUMENTS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "base": ("NVM Express Base Specification 2.0",
             "https://nvmexpress.org/specification/nvm-express-base-specification/"),
    "fabrics": ("NVM Express over Fabrics Specification 1.1",
                "https://nvmexpress.org/specification/nvme-of-specification/"),
    "rdma": ("NVM Express RDMA Transport Specification 1.0",
             "https://nvmexpress.org/specification/rdma-transport-specification/"),
})

#: What kind of failure a property's violation is (the report's categories, besides
#: "infrastructure": a run that broke without naming a property).
KINDS: tuple[str, ...] = ("WR leak", "stall", "protocol", "data", "crash")

#: Allure's severity levels, most severe first.
SEVERITIES: tuple[str, ...] = ("blocker", "critical", "normal", "minor", "trivial")


@dataclass(frozen=True)
class Section:
    """A section of one of :data:`DOCUMENTS` that a property rests on (``section`` its
    number, empty where the clause is cited by its title alone)."""

    document: str
    section: str
    title: str

    @property
    def name(self) -> str:
        short = {"base": "NVMe Base 2.0", "fabrics": "NVMe-oF 1.1",
                 "rdma": "NVMe/RDMA 1.0"}[self.document]
        return f"{short} {self.section}: {self.title}" if self.section else \
            f"{short}: {self.title}"

    @property
    def url(self) -> str:
        return DOCUMENTS[self.document][1]


@dataclass(frozen=True)
class Property:
    """One requirement the suite must prove."""

    id: str
    family: str
    statement: str
    kind: str = "protocol"
    severity: str = "normal"
    sections: tuple[Section, ...] = ()


_S = Section

CATALOGUE: tuple[Property, ...] = (
    Property(
        "POOL-1",
        "POOL",
        "After every step the data-WR pool balances: ring free + all poll-group caches + WRs held "
        "by requests equals capacity, and no WR is held twice.",
        "WR leak",
        "critical",
        (_S("rdma", "", "RDMA transport: send and receive work requests per queue pair"),),
    ),
    Property(
        "POOL-2",
        "POOL",
        "At quiescence and after destroy the data-WR pool is back to exactly depth x multiplier, "
        "and the target's own destroy report says the same.",
        "WR leak",
        "critical",
        (_S("rdma", "", "RDMA transport: send and receive work requests per queue pair"), _S("fabrics", "", "Association and queue termination")),
    ),
    Property(
        "POOL-3",
        "POOL",
        "Data buffers, request slots and receive WRs obey the same conservation.",
        "WR leak",
        "critical",
        (_S("rdma", "", "RDMA transport: a posted receive per capsule"),),
    ),
    Property(
        "LIVE-1",
        "LIVE",
        "No stall: once faults stop and the harness delivers everything, every request on a live "
        "qpair completes within a bounded number of poll rounds; a full round without progress "
        "while work is outstanding is a stall.",
        "stall",
        "blocker",
        (_S("fabrics", "2.1", "Capsules: every command capsule is answered by a response capsule"),),
    ),
    Property(
        "LIVE-2",
        "LIVE",
        "Admin, fabrics and in-capsule-data commands complete while IO waits for buffers "
        "(no head-of-line starvation).",
        "stall",
        "critical",
        (_S("fabrics", "3.3", "Fabrics commands"), _S("base", "", "Keep Alive command")),
    ),
    Property(
        "CQE-1",
        "CQE",
        "Each capsule on a live qpair gets exactly one response carrying its CID, none arrives for "
        "an unknown CID, and after a qpair fails each gets at most one and everything is released.",
        "protocol",
        "critical",
        (_S("fabrics", "2.1", "Capsules: one response capsule per command"), _S("base", "4.6", "Completion Queue Entry: the command identifier")),
    ),
    Property(
        "DATA-1",
        "DATA",
        "Read-after-write returns the written bytes through any SGL layout, with SGE order kept.",
        "data",
        "blocker",
        (_S("base", "4.4", "Scatter Gather List (SGL)"), _S("rdma", "", "RDMA transport: keyed SGL data blocks moved by RDMA READ and WRITE")),
    ),
    Property(
        "SM-1",
        "SM",
        "Request states move only along the legal graph, and a request sits in at most one "
        "pending queue: the one its state implies.",
        "protocol",
        "normal",
        (_S("fabrics", "2.1", "Capsules and data transfer"),),
    ),
    Property(
        "DEPTH-1",
        "DEPTH",
        "Read depth, send depth and outstanding requests never exceed their limits.",
        "protocol",
        "critical",
        (_S("rdma", "3.3", "RDMA CM private data: IRD, ORD and the negotiated queue sizes"),),
    ),
    Property(
        "CFG-1",
        "CFG",
        "Accepted options are honoured exactly; refused options come with the reason.",
        "protocol",
        "normal",
        (_S("fabrics", "2.1", "Capsules: in-capsule data size and SGLs"),),
    ),
    Property(
        "ERR-1",
        "ERR",
        "Every malformed command gets its NVMe status and releases everything it held.",
        "protocol",
        "normal",
        (_S("base", "4.6.1.2", "Status field: generic and command specific status"), _S("base", "4.4", "Scatter Gather List (SGL)")),
    ),
    Property(
        "SHUT-1",
        "SHUT",
        "Abrupt shutdown of a qpair, a port or the transport, with IO in any state, releases "
        "everything.",
        "WR leak",
        "critical",
        (_S("fabrics", "", "Association and queue termination"),),
    ),
    Property(
        "CONN-1",
        "CONN",
        "An RDMA CM connect with valid NVMe/RDMA private data is accepted with the negotiated "
        "depth, invalid private data (length, RECFMT, QID, HRQSIZE, HSQSIZE, IRD) is rejected "
        "with the transport binding's status, and the Connect data (SUBNQN, CNTLID) is honoured.",
        "protocol",
        "normal",
        (_S("rdma", "3.3", "RDMA CM private data: request, accept and reject"), _S("fabrics", "3.3", "Connect command and its data")),
    ),
    Property(
        "STATS-1",
        "STATS",
        "The per-poll-group stats a target reports (polls, idle polls, completions, pending data "
        "buffer, qpairs) agree with what the fabric and the host saw.",
        "protocol",
        "minor",
        (_S("rdma", "", "RDMA transport: completions of the queue pairs polled"),),
    ),
    Property(
        "CRASH-1",
        "CRASH",
        "No input and no interleaving makes the target crash, abort, fail an assertion, trip a "
        "sanitizer or hang.",
        "crash",
        "blocker",
        (),
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


def kind(spec_id: str) -> str:
    """The kind of failure a violation of ``spec_id`` is (one of :data:`KINDS`)."""
    return get(spec_id).kind


def severity(spec_id: str) -> str:
    """Allure's severity of a failure of ``spec_id`` (one of :data:`SEVERITIES`)."""
    return get(spec_id).severity


def sections(spec_id: str) -> tuple[Section, ...]:
    """The specification sections ``spec_id`` rests on."""
    return get(spec_id).sections


def unknown(ids: Iterable[object]) -> list[object]:
    """The members of ``ids`` that are not catalogue IDs, in order."""
    return [i for i in ids if not isinstance(i, str) or i not in BY_ID]
