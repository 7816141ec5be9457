"""How each property is judged for a target, from what the target declares about itself.

A target describes itself (:meth:`impl.Transport.describe`): the introspection it offers as
capabilities (``WR_POOL``, ``REQUESTS``, ...) and its request states.  A property is judged

* **white-box** when the checks read the target's own introspection (pool counts, request
  states, depths, stats) - each such part of a property needs the capabilities it reads;
* **black-box** when only what the host and the fabric saw is judged (responses, bytes,
  connections, liveness) - such parts need nothing from the target but the contract every
  target offers;
* **not judged** when the target declares none of what any part needs and no black-box
  part exists.

This module is the one place that says which part of which property needs what
(:data:`PARTS`).  The harness and the drivers ask :class:`Scope` whether a part may run:
a part whose capabilities the target lacks is not run, never faked with made-up counts.
Each time a driver starts judging a target it calls :func:`record`, which tells the
:data:`JUDGED_HOOKS` (the reports plugin, the judge command) how each property it covers is
judged and why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from impl.target import CAPABILITIES, TargetDescription

WHITE_BOX = "white-box"
BLACK_BOX = "black-box"
NOT_JUDGED = "not judged"
MODES = (WHITE_BOX, BLACK_BOX, NOT_JUDGED)


@dataclass(frozen=True)
class Part:
    """One separately judgeable part of a property: what it checks and the capabilities it
    reads (none: black-box)."""

    key: str
    what: str
    caps: frozenset[str] = frozenset()
    #: declared capabilities under which the part cannot be judged, and why
    unless: frozenset[str] = frozenset()
    unless_why: str = ""

    @property
    def black_box(self) -> bool:
        return not self.caps

    def allowed(self, caps: frozenset[str]) -> bool:
        """True if a target declaring ``caps`` can be judged on this part."""
        return self.caps <= caps and not self.unless & caps


#: Why the per-qpair receive parts are not judged for a target running shared receive
#: queues: what they count does not exist there.
SHARED_RECEIVES_WHY = ("with shared receive queues (SRQ) a qpair's receive WRs and request "
                       "slots are its poll group's, shared with the other qpairs there, so "
                       "no qpair has counts of its own to conserve")


def _p(key: str, what: str, *caps: str, per_qpair_receives: bool = False) -> Part:
    unknown = set(caps) - set(CAPABILITIES)
    if unknown:   # a typo here would silently make a part never (or always) run
        raise ValueError(f"unknown capabilities {sorted(unknown)} for part {key!r}")
    if per_qpair_receives:
        return Part(key, what, frozenset(caps), frozenset({"SHARED_RECEIVES"}),
                    SHARED_RECEIVES_WHY)
    return Part(key, what, frozenset(caps))


#: Every property (DESIGN section 6) and its parts.  Pool counts without the held count
#: (no ``WR_HELD``) still show whether everything came back when nothing is in flight, but
#: not conservation while requests hold objects.
PARTS: Mapping[str, tuple[Part, ...]] = MappingProxyType({
    "POOL-1": (
        _p("conservation", "ring free + poll-group caches + held by requests = capacity, "
                           "no WR held twice", "WR_POOL", "WR_HELD"),),
    "POOL-2": (
        _p("returned", "the data-WR pool is back to its configured size at quiescence and "
                       "after destroy", "WR_POOL"),
        _p("report", "the target's own destroy report agrees", "WR_POOL", "DESTROY_REPORT")),
    "POOL-3": (
        _p("buffers", "data buffers conserved at every step", "BUF_POOL", "WR_HELD"),
        _p("buffers_returned", "data buffers back at quiescence and after destroy",
           "BUF_POOL"),
        _p("buffers_report", "the destroy report's buffer counts agree", "BUF_POOL",
           "DESTROY_REPORT"),
        _p("slots", "request slots and receive WRs conserved per qpair", "RECEIVES",
           per_qpair_receives=True),
        _p("states", "the request states account for every slot", "RECEIVES", "REQUESTS",
           per_qpair_receives=True)),
    "LIVE-1": (
        _p("drain", "in liveness mode every capsule on a live qpair is answered within the "
                    "round bound"),),
    "LIVE-2": (
        _p("probe", "admin, fabrics and in-capsule probes are answered within a few "
                    "rounds"),
        _p("aimed", "probes are aimed at the poll groups where IO waits for buffers",
           "GROUP_STATS")),
    "CQE-1": (
        _p("responses", "one response per capsule with its CID, none for unknown CIDs, none "
                        "or one after a qpair fails"),),
    "DATA-1": (
        _p("bytes", "read-after-write and the namespaces return the written bytes"),),
    "SM-1": (
        _p("transitions", "every request state change is an edge of the declared graph",
           "TRANSITIONS"),
        _p("states", "every request is in a state the target declares", "REQUESTS"),
        _p("wr_order", "a request's WR counters are ordered (outstanding <= posted <= held)",
           "REQUESTS", "WR_HELD"),
        _p("queues", "a request sits only on the queue its state implies", "REQUESTS",
           "QUEUES")),
    "DEPTH-1": (
        _p("limits", "read depth, send depth and host capsules outstanding within their "
                     "limits", "DEPTHS"),
        _p("slots", "request slots in use within the queue depth", "DEPTHS", "RECEIVES"),
        _p("reads", "the read-depth counter equals the RDMA READs outstanding", "DEPTHS",
           "REQUESTS", "WR_HELD")),
    "CFG-1": (
        _p("accepted", "valid options are accepted and run as configured; refused ones say "
                       "why"),
        _p("wr_capacity", "the data-WR pool capacity is exactly the configured size",
           "WR_POOL", "WR_CAP_EXACT"),
        _p("buffers", "the shared buffer count is exactly the configured one", "BUF_POOL")),
    "ERR-1": (
        _p("answered", "each malformed command gets exactly one response with its status, "
                       "its qpair keeps its state and the target keeps serving"),
        _p("released", "its request slot and receive are released", "RECEIVES",
           per_qpair_receives=True),
        _p("states", "no request is left outside the free state", "REQUESTS")),
    "SHUT-1": (
        _p("released", "a failed connection is released: the target drops its qpair and "
                       "its QP is gone from the fabric"),
        _p("destroy_wrs", "an abrupt destroy returns every data WR", "WR_POOL"),
        _p("destroy_bufs", "an abrupt destroy returns every data buffer", "BUF_POOL")),
    "CONN-1": (
        _p("cm", "CM private data accepted or rejected as NVMe/RDMA says; Connect data "
                 "honoured"),),
    "STATS-1": (
        _p("counters", "polls, idle polls, completions and qpairs per group agree with what "
                       "the harness and the fabric saw", "GROUP_STATS"),
        _p("pending", "pending data buffer agrees with the requests waiting for buffers",
           "GROUP_STATS", "REQUESTS", "QUEUES")),
    "CRASH-1": (
        _p("survives", "no input or interleaving crashes, aborts or hangs the target (judged "
                       "by the runner)"),),
})

PROPERTIES: tuple[str, ...] = tuple(PARTS)

#: property -> every capability its white-box judging reads.
NEEDS: Mapping[str, frozenset[str]] = MappingProxyType({
    prop: frozenset().union(*(p.caps for p in parts)) for prop, parts in PARTS.items()})

#: property -> whether some part of it is judged from the host and the fabric alone.
JUDGEABLE_BLACK_BOX: Mapping[str, bool] = MappingProxyType({
    prop: any(p.black_box for p in parts) for prop, parts in PARTS.items()})


def _parts(prop: str) -> tuple[Part, ...]:
    try:
        return PARTS[prop]
    except KeyError:
        raise ValueError(f"unknown property {prop!r}; known: {', '.join(PROPERTIES)}") from None


def part(prop: str, key: str) -> Part:
    for p in _parts(prop):
        if p.key == key:
            return p
    raise ValueError(f"{prop} has no part {key!r}; its parts: "
                     f"{', '.join(p.key for p in _parts(prop))}")


def judged_parts(prop: str, desc: TargetDescription) -> tuple[Part, ...]:
    """The parts of ``prop`` the target's declared capabilities allow."""
    return tuple(p for p in _parts(prop) if p.allowed(desc.caps))


def _caps(caps: Iterable[str]) -> str:
    return ", ".join(sorted(caps))


def how_judged(prop: str, desc: TargetDescription) -> tuple[str, str]:
    """``(mode, why)``: how ``prop`` is judged for the target ``desc`` describes."""
    parts = _parts(prop)
    done = judged_parts(prop, desc)
    excluded = [p for p in parts if p.unless & desc.caps]
    left = [p for p in parts if p not in done and p not in excluded]
    lacking = frozenset().union(*(p.caps - desc.caps for p in left)) if left else frozenset()
    gaps = "; ".join(f"{p.what} (needs {_caps(p.caps - desc.caps)})" for p in left)
    white = [p for p in done if not p.black_box]
    if excluded:
        # parts the target's mode makes meaningless, whatever introspection it declares
        reasons = "; ".join(dict.fromkeys(p.unless_why for p in excluded))
        mode = WHITE_BOX if white else BLACK_BOX if done else NOT_JUDGED
        rest = how_judged_without(prop, desc, excluded)
        return mode, (f"{rest + '; ' if rest else ''}not judged in this mode "
                      f"({reasons}): {'; '.join(p.what for p in excluded)}")
    if not left:
        if white:
            return WHITE_BOX, f"the target declares {_caps(NEEDS[prop])}"
        return BLACK_BOX, ("needs no introspection: " + "; ".join(p.what for p in done))
    if white:
        return WHITE_BOX, (f"partly: the target declares no {_caps(lacking)}, so not judged: "
                           f"{gaps}")
    if done:
        return BLACK_BOX, (f"the target declares no {_caps(lacking)}: judged only from what "
                           f"the host and the fabric saw ({'; '.join(p.what for p in done)}); "
                           f"not judged: {gaps}")
    return NOT_JUDGED, (f"the target declares no {_caps(lacking)} and no black-box judgement "
                        f"of it exists ({gaps})")


def how_judged_without(prop: str, desc: TargetDescription, excluded: list[Part]) -> str:
    """How the parts of ``prop`` other than ``excluded`` are judged, and which of them are
    not for want of a capability ("" if there are none)."""
    done = list(judged_parts(prop, desc))
    left = [p for p in _parts(prop) if p not in done and p not in excluded]
    white = [p for p in done if not p.black_box]
    out = []
    if done:
        head = (f"the target declares {_caps(frozenset().union(*(p.caps for p in white)))}"
                if white else "judged only from what the host and the fabric saw")
        out.append(f"{head}: {'; '.join(p.what for p in done)}")
    if left:
        out.append("not judged: " + "; ".join(
            f"{p.what} (needs {_caps(p.caps - desc.caps)})" for p in left))
    return "; ".join(out)


class Scope:
    """What may be judged for one target: ``scope("SM-1", "queues")`` is True when the
    target declares what that part reads."""

    def __init__(self, desc: TargetDescription):
        self.desc = desc
        self._allowed = {(prop, p.key): p.allowed(desc.caps)
                         for prop, parts in PARTS.items() for p in parts}

    def __call__(self, prop: str, key: str) -> bool:
        try:
            return self._allowed[(prop, key)]
        except KeyError:
            part(prop, key)   # raises, naming the parts there are
            raise

    def any(self, prop: str) -> bool:
        """True if some part of ``prop`` is judged."""
        return any(self._allowed[(prop, p.key)] for p in _parts(prop))


# ------------------------------------------------------------------------ recording


@dataclass(frozen=True)
class Judgement:
    """How one property is judged for one target."""

    prop: str
    mode: str
    why: str
    target: str
    version: str

    def as_dict(self) -> dict[str, str]:
        return {"property": self.prop, "mode": self.mode, "why": self.why,
                "target": self.target, "version": self.version}


#: Called with every new judgement (a property, for a target, the first time it is judged
#: in this process, or when how it is judged changes).  The reports plugin and the judge
#: command's plugin listen here; conformance never imports them.
JUDGED_HOOKS: list[Callable[[Judgement], None]] = []

_recorded: dict[tuple[str, str, str, bool], Judgement] = {}


def record(props: Iterable[str], desc: TargetDescription) -> list[Judgement]:
    """Drivers call this when they start judging a target: how each property of ``props``
    is judged.  Returns the judgements (hooks hear only new or changed ones)."""
    out = []
    for prop in props:
        mode, why = how_judged(prop, desc)
        j = Judgement(prop, mode, why, desc.name, desc.version)
        # a target judged in two modes (shared receive queues or not) is recorded in each
        key = (prop, desc.name, desc.version, "SHARED_RECEIVES" in desc.caps)
        if _recorded.get(key) != j:
            _recorded[key] = j
            for hook in JUDGED_HOOKS:
                hook(j)
        out.append(j)
    return out


def recorded() -> list[Judgement]:
    """Every judgement recorded in this process, in order of first recording."""
    return list(_recorded.values())


def reset() -> None:
    """Forget what was recorded (hooks hear everything again)."""
    _recorded.clear()


# --------------------------------------------------------------------- starting to judge


class CannotJudge(RuntimeError):
    """The run asks for something the target does not offer (defect switches of a target
    without them): judging would prove nothing."""


def start(desc: TargetDescription, props: Iterable[str], defects: int = 0) -> Scope:
    """What a driver calls once it has built a target for ``props``: refuses defect
    switches the target cannot honour, records how each property is judged, and returns
    the :class:`Scope` the driver consults."""
    refusal = defects_refusal(desc, defects)
    if refusal:
        raise CannotJudge(refusal)
    record(props, desc)
    return Scope(desc)


def defects_refusal(desc: TargetDescription, defects: int) -> str | None:
    """Why defect switches cannot be asked of this target, or None if they can."""
    if defects and "DEFECTS" not in desc.caps:
        return (f"defect switches were asked for (--nrt-defects / NRT_DEFECTS) but the "
                f"target {desc.label!r} declares no DEFECTS capability: it would run "
                f"unchanged and the run would prove nothing about the switches")
    return None


_described: dict[Any, TargetDescription] = {}


def describe_target(backend: Any = None) -> TargetDescription:
    """The description of ``backend`` (default: the one the environment selects), read from
    a small transport built for the purpose and destroyed at once."""
    from impl import Options, OptionsRefused, Transport, backends

    b = backend if backend is not None else backends.default()
    key = (b.name, b.source)
    if key not in _described:
        small = Options(max_queue_depth=4, max_io_size=4096, io_unit_size=4096,
                        in_capsule_data_size=0, num_shared_buffers=64, buf_cache_size=0,
                        wr_pool_multiplier=16, wr_cache_size=0, num_poll_groups=1,
                        max_read_depth=1, max_qpairs=4, max_ports=1, max_subsystems=1,
                        max_namespaces=1, max_memory_regions=4)
        try:
            t = Transport(small, backend=b)
        except OptionsRefused:
            t = Transport(backend=b)   # a target with other minimums: its defaults
        try:
            _described[key] = t.describe()
        finally:
            t.destroy()
    return _described[key]


def load_target(target: str, spdk_src: str | None, defects: str | None) -> tuple[Any, Any]:
    """The backend of ``target`` (built if need be) and its description, for a command that
    judges it; ``defects`` (comma-separated switch names) must be ones the target can be
    built with.  ValueError, saying why, when any of that cannot be had."""
    import os

    from impl import backends
    from impl.target import TargetError

    try:
        backend = backends.load(target, spdk_src)
        desc = describe_target(backend)
    except (backends.BackendError, TargetError) as exc:
        raise ValueError(f"target {target!r} cannot be loaded: {exc}") from exc
    if defects:
        from conformance.profiles import defects_under_test

        os.environ["NRT_DEFECTS"] = defects
        try:
            refusal = defects_refusal(desc, defects_under_test())
        finally:
            os.environ.pop("NRT_DEFECTS", None)
        if refusal:
            raise ValueError(refusal)
    return backend, desc


def failure_leaves(exc: BaseException) -> list[BaseException]:
    """The failures in ``exc``: itself, or the members of an exception group (Hypothesis
    raises one when it found several distinct failures)."""
    inner = getattr(exc, "exceptions", None)
    if not inner:
        return [exc]
    return [leaf for e in inner for leaf in failure_leaves(e)]


def property_of(exc: BaseException) -> str | None:
    """The property a failure violated: a check's violation names it; a target crash that no
    driver turned into a CRASH-1 violation itself is CRASH-1; anything else, None."""
    from conformance import checks

    if isinstance(exc, checks.PropertyViolation):
        return exc.spec
    if type(exc).__name__ == "TargetCrashed" and getattr(exc, "kind", "") != "interrupted":
        return "CRASH-1"
    return None


# ---------------------------------------------------------------- a printed reproducer's pieces


def replay_hint(notes: Iterable[str]) -> str:
    """Hypothesis's ``@reproduce_failure(...)`` decorator, if it printed one (it replays
    the example inside pytest)."""
    for n in notes:
        start = n.find("@reproduce_failure(")
        if start >= 0:
            end = n.find(")", start)
            return n[start:end + 1] if end > 0 else ""
    return ""


def replay_call(target: str, commit: str | None = None, defects: str = "",
                profile: str = "ci", spdk_src: str | None = None) -> str:
    """The ``replay_on(...)`` line (:func:`conformance.reproduce.replay_on`) that selects
    what a failure ran on, for the head of its printed reproducer."""
    args = [f"target={target!r}"]
    if commit:
        args.append(f"commit={commit!r}")
    args += [f"defects={defects!r}", f"profile={profile!r}"]
    if spdk_src:
        args.append(f"spdk_src={spdk_src!r}")
    return f"replay_on({', '.join(args)})"
