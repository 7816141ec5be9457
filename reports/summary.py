"""The one-page release sign-off summary, from an Allure results directory.

    python -m reports.summary --results reports/allure-results [--out reports/summary.md] [--check]

Reads every ``*-result.json`` (the latest per historyId, as Allure shows retries), groups tests by
their story labels (property IDs), and prints Markdown: a verdict per property, the overall
verdict, durations, the failing tests with the first line of their message, and the stress
figures found in attachments named ``stress-figures.json``.

Verdicts: a property PASSes only with at least one passed test and none failed or broken; FAIL
if any of its tests failed or broke; NOT JUDGED if the run's environment.properties says the
target declares nothing it could be judged by (``judged.<ID>``, written by the reports plugin);
NOT PROVEN otherwise (no tests, or all skipped). Overall: FAIL if any test failed or broke;
INCOMPLETE if some catalogue property is not PASS; else PASS.  The table says per property how
it was judged for the target (white-box, black-box, not judged, and why), and the page names
the target.

Exit status: 0 when the summary was written (with --check: only if the overall verdict is PASS),
1 for --check with another verdict, 2 when the results directory is missing or holds no results.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports.environment import JUDGED_PREFIX, read_environment
from reports.spec import BY_ID, CATALOGUE

STATUSES = ("passed", "failed", "broken", "skipped")
NO_PROPERTY = "(no property)"
FIGURES_NAME = "stress-figures.json"


class ResultsError(Exception):
    """The results directory cannot be summarised."""


@dataclass
class Result:
    name: str
    full_name: str
    status: str
    stories: list[str]
    message: str
    start: int | None
    stop: int | None
    attachments: list[dict[str, Any]] = field(default_factory=list)


def _attachments(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = [a for a in node.get("attachments") or [] if isinstance(a, dict)]
    for step in node.get("steps") or []:
        if isinstance(step, dict):
            found += _attachments(step)
    return found


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def load_results(results_dir: Path) -> list[Result]:
    """Parse the results; raise ResultsError when the directory is missing or has none."""
    if not results_dir.is_dir():
        raise ResultsError(
            f"results directory {results_dir} does not exist (run pytest with --alluredir)"
        )
    latest: dict[str, tuple[int, dict[str, Any]]] = {}
    for path in sorted(results_dir.glob("*-result.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ResultsError(f"{path}: not a readable Allure result ({exc})") from exc
        if not isinstance(data, dict):
            raise ResultsError(f"{path}: not an Allure result object")
        key = str(data.get("historyId") or data.get("uuid") or path.name)
        stop = _int(data.get("stop")) or 0
        if key not in latest or stop >= latest[key][0]:
            latest[key] = (stop, data)
    if not latest:
        raise ResultsError(f"results directory {results_dir} holds no *-result.json files")
    results = []
    for _, data in latest.values():
        labels = [lab for lab in data.get("labels") or [] if isinstance(lab, dict)]
        details = data.get("statusDetails") or {}
        results.append(
            Result(
                name=str(data.get("name", "?")),
                full_name=str(data.get("fullName") or data.get("name", "?")),
                status=str(data.get("status") or "unknown"),
                stories=list(
                    dict.fromkeys(
                        str(lab.get("value")) for lab in labels if lab.get("name") == "story"
                    )
                ),
                message=str(details.get("message") or "") if isinstance(details, dict) else "",
                start=_int(data.get("start")),
                stop=_int(data.get("stop")),
                attachments=_attachments(data),
            )
        )
    return results


def property_verdict(counts: Counter[str]) -> str:
    if counts["failed"] or counts["broken"] or counts["unknown"]:
        return "FAIL"
    return "PASS" if counts["passed"] else "NOT PROVEN"


@dataclass
class Summary:
    per_property: dict[str, Counter[str]]
    verdicts: dict[str, str]
    overall: str
    results: list[Result]
    judged: dict[str, str] = field(default_factory=dict)   # property -> "mode: why"
    target: str | None = None


def summarise(results: Sequence[Result], environment: dict[str, str] | None = None) -> Summary:
    """Verdicts from the results; ``environment`` (environment.properties) adds the target
    and how each property was judged."""
    env = environment or {}
    judged = {k[len(JUDGED_PREFIX):]: v for k, v in env.items() if k.startswith(JUDGED_PREFIX)}
    per_property: dict[str, Counter[str]] = {p.id: Counter() for p in CATALOGUE}
    for result in results:
        for story in result.stories or [NO_PROPERTY]:
            per_property.setdefault(story, Counter())[result.status] += 1
    verdicts = {pid: property_verdict(c) for pid, c in per_property.items()}
    for pid, how in judged.items():
        if how.startswith("not judged") and verdicts.get(pid) != "FAIL" and pid in verdicts:
            verdicts[pid] = "NOT JUDGED"   # passing tests prove nothing the target hid
    if NO_PROPERTY in verdicts and verdicts[NO_PROPERTY] == "NOT PROVEN":
        verdicts[NO_PROPERTY] = "-"  # unlabelled skips prove nothing and block nothing
    if any(v == "FAIL" for v in verdicts.values()):
        overall = "FAIL"
    elif any(verdicts[p.id] != "PASS" for p in CATALOGUE):
        overall = "INCOMPLETE"
    else:
        overall = "PASS"
    return Summary(per_property, verdicts, overall, list(results), judged,
                   env.get("target"))


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.1f} s"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _flatten(value: object, prefix: str = "") -> Iterable[tuple[str, object]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix or "value", value


def figures(results: Sequence[Result], results_dir: Path) -> list[tuple[str, str, object]]:
    """(test, figure, value) rows from every stress-figures.json attachment."""
    rows: list[tuple[str, str, object]] = []
    for result in results:
        for att in result.attachments:
            if att.get("name") != FIGURES_NAME or not att.get("source"):
                continue
            try:
                data = json.loads((results_dir / str(att["source"])).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                rows.append((result.name, "(unreadable attachment)", att["source"]))
                continue
            rows += [(result.name, key, val) for key, val in _flatten(data)]
    return rows


def render(summary: Summary, results_dir: Path) -> str:
    results = summary.results
    totals = Counter(r.status for r in results)
    starts = [r.start for r in results if r.start is not None]
    stops = [r.stop for r in results if r.stop is not None]
    wall = max(stops) - min(starts) if starts and stops else 0
    busy = sum(r.stop - r.start for r in results if r.start is not None and r.stop is not None)

    out = ["# nvmf-rdma-conformance — release sign-off summary", ""]
    out.append(f"**Overall verdict: {summary.overall}**")
    out.append("")
    out.append(
        f"{len(results)} tests: "
        + ", ".join(f"{totals[s]} {s}" for s in STATUSES)
        + (f", {totals['unknown']} unknown" if totals["unknown"] else "")
    )
    out.append(f"Duration: {_seconds(wall)} wall clock, {_seconds(busy)} summed over tests.")
    out.append(f"Results: `{results_dir}`")
    if summary.target:
        out.append(f"Target: {summary.target}")
    out += ["", "## Properties", ""]
    out.append("| property | statement | passed | failed | broken | skipped | verdict | judged |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: | --- | --- |")
    for pid, counts in summary.per_property.items():
        known = BY_ID.get(pid)
        statement = known.statement if known else "not in the catalogue"
        cells = [pid, statement, *(str(counts[s]) for s in STATUSES), summary.verdicts[pid],
                 summary.judged.get(pid, "-")]
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    others = {p: how for p, how in summary.judged.items() if p not in summary.per_property}
    if others:
        out += ["", "Judged outside the catalogue: "
                + "; ".join(f"{p}: {how}" for p, how in others.items())]

    failing = [r for r in results if r.status not in ("passed", "skipped")]
    out += ["", "## Failing tests", ""]
    if failing:
        for r in sorted(failing, key=lambda r: r.full_name):
            first = r.message.strip().splitlines()[0] if r.message.strip() else "(no message)"
            props = ", ".join(r.stories) or NO_PROPERTY
            out.append(f"- **{r.status}** `{r.full_name}` [{props}]: {first}")
    else:
        out.append("None.")

    rows = figures(results, results_dir)
    if rows:
        out += ["", "## Stress figures", "", "| test | figure | value |", "| --- | --- | ---: |"]
        out += [f"| {_cell(t)} | {_cell(k)} | {_cell(v)} |" for t, k, v in rows]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reports.summary", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--results", type=Path, required=True, help="Allure results directory")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 unless the overall verdict is PASS"
    )
    args = parser.parse_args(argv)
    try:
        results = load_results(args.results)
    except ResultsError as exc:
        print(f"reports.summary: error: {exc}", file=sys.stderr)
        return 2
    summary = summarise(results, read_environment(args.results))
    text = render(summary, args.results)
    sys.stdout.write(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    return 1 if args.check and summary.overall != "PASS" else 0


if __name__ == "__main__":
    raise SystemExit(main())
