"""Allure categories: what kind of failure a result is, from the property its message names.

The kinds are the catalogue's (:data:`reports.spec.KINDS`): a WR or buffer leak, a stall, a
protocol violation, corrupted data, a crash; plus **infrastructure**, a result that broke
without naming any property (the harness, the binding, the build).  Every failing check's
message carries its ID followed by a colon ("POOL-2: data-WR pool returned 184280 of
184320"); pytest prefixes the exception type and Hypothesis may wrap it, so each regex looks
for ``<ID>:`` anywhere in the message.

The regexes are written to behave the same under Allure 2 (Java, whole-message match) and
Allure 3 (JavaScript, search): ``[\\s\\S]*`` instead of ``.*`` so newlines need no DOTALL flag,
and no inline flags, which JavaScript lacks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from reports.spec import CATALOGUE, KINDS

#: What each kind is called in the report.
KIND_TITLES: dict[str, str] = {
    "WR leak": "WR or buffer leak",
    "stall": "Stall",
    "protocol": "Protocol violation",
    "data": "Data corruption",
    "crash": "Target crash",
}

INFRASTRUCTURE_CATEGORY = "Infrastructure (the run broke without naming a property)"
#: The former name of the infrastructure bucket, kept for callers that still use it.
CRASH_CATEGORY = INFRASTRUCTURE_CATEGORY

_ANY_ID = "(?:" + "|".join(re.escape(p.id) for p in CATALOGUE) + "):"


def ids_of(kind: str) -> list[str]:
    """The catalogue IDs whose violations are of ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    return [p.id for p in CATALOGUE if p.kind == kind]


def kind_regex(kind: str) -> str:
    """messageRegex matching a message that names a property of ``kind`` ("POOL-2: ...")."""
    ids = "|".join(re.escape(i) for i in ids_of(kind))
    return r"[\s\S]*\b(?:" + ids + r"):[\s\S]*"


def category_name(kind: str) -> str:
    return f"{KIND_TITLES[kind]} ({', '.join(ids_of(kind))})"


def categories() -> list[dict[str, Any]]:
    """The categories: one per kind of failure, then the infrastructure bucket."""
    result: list[dict[str, Any]] = [
        {
            "name": category_name(kind),
            "description": f"A check of {', '.join(ids_of(kind))} failed: {KIND_TITLES[kind]}.",
            # A check may raise a non-assertion exception, which Allure records as broken.
            "matchedStatuses": ["failed", "broken"],
            "messageRegex": kind_regex(kind),
        }
        for kind in KINDS
    ]
    result.append(
        {
            "name": INFRASTRUCTURE_CATEGORY,
            "description": "The test broke without naming a property: an error in the "
            "harness, the binding, the build or the tools, not a verdict on the target.",
            "matchedStatuses": ["broken"],
            "messageRegex": r"(?![\s\S]*\b" + _ANY_ID + r")[\s\S]*",
        }
    )
    return result


def classify(message: str, status: str = "failed") -> list[str]:
    """Names of the categories a result with ``message`` and ``status`` falls into.

    Uses Allure 2's rule (the regex must match the whole message) so the Python view agrees with
    the report.
    """
    return [
        cat["name"]
        for cat in categories()
        if status in cat["matchedStatuses"] and re.fullmatch(cat["messageRegex"], message)
    ]


def write_categories(results_dir: str | Path) -> Path:
    """Write categories.json into ``results_dir`` (created if missing); return its path."""
    directory = Path(results_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "categories.json"
    path.write_text(json.dumps(categories(), indent=2) + "\n", encoding="utf-8")
    return path
