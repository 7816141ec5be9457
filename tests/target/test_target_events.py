"""Micro-event batches (``Transport.run``) and determinism (DESIGN 4)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from impl import Event, Status, event

from .rig import Rig, build

CALLS = ("h2t", "t2h", "poll", "bdev", "tick")


def schedule(seed: int, rig: Rig, n: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        kind = rng.choices(CALLS, weights=[3, 4, 3, 2, 1])[0]
        if kind in ("h2t", "t2h"):
            out.append((kind, rng.choice([rig.io, rig.io, rig.admin])))
        elif kind == "poll":
            out.append((kind, rng.randrange(2)))
        elif kind == "bdev":
            out.append((kind, rng.randrange(5)))
        else:
            out.append((kind, rng.randrange(3)))
    return out


def as_events(rig: Rig, calls: list[tuple[str, int]]) -> list[int]:
    t = rig.t
    enc = {
        "h2t": lambda a: t.qpair_event(Event.DELIVER_H2T, a),
        "t2h": lambda a: t.qpair_event(Event.DELIVER_T2H, a),
        "poll": lambda a: event(Event.POLL, a),
        "bdev": lambda a: event(Event.BDEV, a),
        "tick": lambda a: event(Event.TICK, a),
    }
    return [enc[k](a) for k, a in calls]


def one_by_one(rig: Rig, calls: list[tuple[str, int]]) -> None:
    t = rig.t
    for kind, a in calls:
        if kind == "h2t":
            t.deliver_h2t(a)
        elif kind == "t2h":
            t.deliver_t2h(a)
        elif kind == "poll":
            t.poll(a)
        elif kind == "bdev":
            t.bdev_complete(a)
        else:
            t.advance_time(a)


def submit_batch(rig: Rig, i: int) -> None:
    """The same host-side submissions for every rig built alike (rig.rng is seeded)."""
    t = rig.t
    room = t.qpair_info(rig.io).depth - t.qpair_info(rig.io).host_outstanding
    for j in range(room):
        slba = (i * 8 + j) * 16
        if j % 2:
            t.submit(rig.io, rig.write_capsule(slba, rig.data(12 * 512), "list", ndesc=2 + j,
                                               host_base=j * 60_000))
        else:
            t.submit(rig.io, rig.read_capsule(slba, 4096, "list", ndesc=3,
                                              host_base=500_000 + j * 30_000))


def snapshot(rig: Rig, responses: list[Any]) -> dict[str, Any]:
    t = rig.t
    return {
        "transitions": t.transitions(),
        "wr": t.wr_pool(),
        "buf": t.buf_pool(),
        "groups": [t.group_stats(g) for g in range(2)],
        "io": t.qpair_info(rig.io),
        "admin": t.qpair_info(rig.admin),
        "requests": t.requests(rig.io),
        "responses": responses,
        "progress": t.progress,
        "bdev": t.bdev_pending(),
        "media": rig.media(0, 200 * 512),
        "host": t.read_memory(rig.key, 0, 1 << 20),
    }


def drive(rig: Rig, seed: int, batched: bool, rounds: int = 6) -> dict[str, Any]:
    rig.t.set_bdev_auto(False)
    responses = []
    for i in range(rounds):
        submit_batch(rig, i)
        calls = schedule(seed * 100 + i, rig, 60)
        if batched:
            before = rig.t.progress
            moved = rig.t.run(as_events(rig, calls))
            assert moved == rig.t.progress - before
        else:
            one_by_one(rig, calls)
        responses.extend(rig.t.reap(rig.io))
    return snapshot(rig, responses)


def fresh() -> Rig:
    return build(max_read_depth=2, keep_alive_ticks=0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batch_equals_individual_calls(seed: int) -> None:
    a, b = fresh(), fresh()
    try:
        sa = drive(a, seed, batched=False)
        sb = drive(b, seed, batched=True)
        assert sa["responses"], "the schedule should complete some IO"
        assert len(sa["transitions"]) > 8
        for key in sa:
            assert sa[key] == sb[key], key
    finally:
        a.t.destroy()
        b.t.destroy()


@pytest.mark.parametrize("batched", [False, True])
def test_same_calls_same_execution(batched: bool) -> None:
    a, b = fresh(), fresh()
    try:
        sa = drive(a, 9, batched)
        sb = drive(b, 9, batched)
        assert sa == sb
        # and a different schedule really does differ (the snapshot is sensitive)
        c = fresh()
        sc = drive(c, 10, batched)
        c.t.destroy()
        assert sc["transitions"] != sa["transitions"] or sc["progress"] != sa["progress"]
    finally:
        a.t.destroy()
        b.t.destroy()


def test_batched_events_drive_an_io_to_completion(rig: Rig) -> None:
    t = rig.t
    t.set_bdev_auto(False)
    data = rig.data(4096)
    cap = rig.write_capsule(0, data, "list", ndesc=4)
    t.submit(rig.io, cap)
    h2t = t.qpair_event(Event.DELIVER_H2T, rig.io)
    t2h = t.qpair_event(Event.DELIVER_T2H, rig.io)
    poll = event(Event.POLL, 1)
    assert t.run([h2t, poll]) > 0
    [req] = t.requests(rig.io)
    assert req.wrs_outstanding == 4
    moved = t.run([t2h] * 4 + [poll, event(Event.BDEV, 0), t2h, poll])
    assert moved > 0
    [rsp] = t.reap(rig.io)
    assert (rsp.cid, rsp.status) == (cap.cid, Status.SUCCESS)
    assert rig.media(0, 4096) == data
    assert t.run([h2t, t2h, poll, event(Event.BDEV, 3)]) == 0     # nothing left: no progress
    assert t.run([]) == 0


def test_events_for_unknown_qpairs_and_groups_are_ignored(rig: Rig) -> None:
    t = rig.t
    before = t.transitions()
    assert t.run([event(Event.DELIVER_H2T, 200), event(Event.POLL, 50),
                  event(Event.DELIVER_T2H, 4000)]) == 0
    assert t.transitions() == before
