"""Allure categories: classify failures by the property ID their message names.

Every failing check's message carries its ID followed by a colon ("POOL-2: data-WR pool returned
184280 of 184320"). pytest prefixes the exception type ("AssertionError: POOL-2: ...") and
Hypothesis may wrap it, so each regex looks for ``<FAMILY>-<n>:`` anywhere in the message.

The regexes are written to behave the same under Allure 2 (Java, whole-message match) and
Allure 3 (JavaScript, search): ``[\\s\\S]*`` instead of ``.*`` so newlines need no DOTALL flag,
and no inline flags, which JavaScript lacks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from reports.spec import FAMILIES

# What a failing check in each family means to the person reading the report.
FAMILY_TITLES: dict[str, str] = {
    "POOL": "WR/buffer pool leak",
    "LIVE": "Stall / liveness",
    "CQE": "Missing or duplicate completion",
    "DATA": "Data corruption",
    "SM": "Illegal request state",
    "DEPTH": "Queue depth exceeded",
    "CFG": "Configuration not honoured",
    "ERR": "Malformed command mishandled",
    "SHUT": "Shutdown did not release",
    "CONN": "Connection setup mishandled",
    "STATS": "Stats disagree with what was seen",
    "CRASH": "Target crashed, aborted or hung",
}

CRASH_CATEGORY = "Target crash or harness error"

_ANY_ID = "(?:" + "|".join(FAMILIES) + r")-\d+:"


def family_regex(family: str) -> str:
    """messageRegex matching a message that names a property of ``family`` ("POOL-2: ...")."""
    return r"[\s\S]*\b" + re.escape(family) + r"-\d+:[\s\S]*"


def category_name(family: str) -> str:
    return f"{FAMILY_TITLES[family]} ({family})"


def categories() -> list[dict[str, Any]]:
    """The categories.json content: one category per family, then the crash/harness bucket."""
    result: list[dict[str, Any]] = [
        {
            "name": category_name(fam),
            "description": f"A check of a {fam}-* property failed.",
            # A check may raise a non-assertion exception, which Allure records as broken.
            "matchedStatuses": ["failed", "broken"],
            "messageRegex": family_regex(fam),
        }
        for fam in FAMILIES
    ]
    result.append(
        {
            "name": CRASH_CATEGORY,
            "description": "The test broke without naming a property: a crash in the target, "
            "the binding or the harness itself.",
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
