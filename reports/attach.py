"""Attachments a test registers while it runs; the pytest plugin files them with Allure.

Call these from checks, machines or fixtures; they never need Allure:

    from reports import attach
    attach.reproducer(minimal_example_source)     # text/plain, kept if the test fails
    attach.pool_timeline([{"step": 1, "ring_free": 2040, ...}, ...])   # text/csv, if it fails
    attach.stats({"polls": 1200, ...})             # application/json, if it fails
    attach.figures({"steps_per_s": 1900, ...})     # application/json, always (stress figures)

Only the text is stored here, per process (pytest-xdist workers each have their own). With the
plugin loaded (``reports.pytest_plugin``) the failure-only attachments are written when a test
phase fails, and the reproducer is also printed in pytest's failure report; ``figures`` is
attached whatever the outcome, under the name ``stress-figures.json`` that the sign-off summary
reads. Without Allure, or without the plugin, these calls only keep the text.

A repeated call with the same kind replaces the earlier text: Hypothesis replays the shrunk,
minimal failing example last, so the last reproducer is the one worth keeping.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

REPRODUCER = "reproducer"
POOL_TIMELINE = "pool-timeline.csv"
STATS = "stats.json"
FIGURES = "stress-figures.json"


@dataclass(frozen=True)
class Pending:
    """A registered attachment: Allure name, body, MIME type, and whether it needs a failure."""

    name: str
    body: str
    mime: str
    extension: str
    on_failure_only: bool


_pending: dict[str, Pending] = {}


def _keep(item: Pending) -> None:
    _pending[item.name] = item


def reproducer(text: str) -> None:
    """Register the minimal reproducer (source or a replay command) for the running test."""
    _keep(Pending(REPRODUCER, str(text), "text/plain", "txt", True))


def timeline_csv(rows: Iterable[Mapping[str, object]]) -> str:
    """Pool counters over time as CSV; columns are the union of keys, first seen first."""
    materialized = [dict(row) for row in rows]
    columns = list(dict.fromkeys(key for row in materialized for key in row))
    buffer = io.StringIO()
    if columns:
        writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(materialized)
    return buffer.getvalue()


def pool_timeline(rows: Iterable[Mapping[str, object]]) -> None:
    """Register pool counters over time as CSV (:func:`timeline_csv`)."""
    _keep(Pending(POOL_TIMELINE, timeline_csv(rows), "text/csv", "csv", True))


def stats(values: Mapping[str, object]) -> None:
    """Register target statistics (pool, buffer, poll-group counters) as JSON."""
    body = json.dumps(dict(values), indent=2, sort_keys=True, default=str)
    _keep(Pending(STATS, body, "application/json", "json", True))


def figures(values: Mapping[str, object]) -> None:
    """Register stress figures (throughput, sizes, time to detect); attached on pass and fail."""
    body = json.dumps(dict(values), indent=2, sort_keys=True, default=str)
    _keep(Pending(FIGURES, body, "application/json", "json", False))


def pending() -> list[Pending]:
    """What the running test has registered so far, in registration order."""
    return list(_pending.values())


def take(on_failure: bool) -> list[Pending]:
    """Remove and return what should be filed now: everything if a phase failed, else only
    the always-attached items."""
    taken = [p for p in _pending.values() if on_failure or not p.on_failure_only]
    for item in taken:
        del _pending[item.name]
    return taken


def clear() -> None:
    """Forget everything registered (the plugin calls this between tests)."""
    _pending.clear()
