"""Allure labels for a test, from where it lives and the properties it proves.

epic     by top-level directory: conformance/ -> "conformance gate", stress/ -> "stress",
         tests/, strategies/ and reports/ -> "suite self-checks", impl/ -> "target";
         anything else -> "nvmf-rdma-conformance"
feature  the family of each property ID ("POOL"), once per family
story    each property ID ("POOL-2"), one label per ID
tag      each property ID, so the report's tag filter finds them too
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath

from reports.spec import family

DEFAULT_EPIC = "nvmf-rdma-conformance"

EPIC_BY_DIRECTORY: dict[str, str] = {
    "conformance": "conformance gate",
    "stress": "stress",
    "tests": "suite self-checks",
    "strategies": "suite self-checks",
    "reports": "suite self-checks",
    "impl": "target",
}


def epic_for(relative_path: PurePath | str) -> str:
    """The epic of a test file given its path relative to the repository (pytest rootdir)."""
    parts = PurePath(relative_path).parts
    if len(parts) < 2:  # a test module at the root belongs to no area
        return DEFAULT_EPIC
    return EPIC_BY_DIRECTORY.get(parts[0], DEFAULT_EPIC)


def labels_for(relative_path: PurePath | str, spec_ids: Sequence[str]) -> list[tuple[str, str]]:
    """(label name, value) pairs for a test; ``spec_ids`` must be catalogue IDs."""
    result = [("epic", epic_for(relative_path))]
    result += [("feature", fam) for fam in dict.fromkeys(family(i) for i in spec_ids)]
    result += [("story", i) for i in dict.fromkeys(spec_ids)]
    result += [("tag", i) for i in dict.fromkeys(spec_ids)]
    return result
