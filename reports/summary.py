"""The one-page release sign-off summary, from an Allure results directory.

    python -m reports.summary --results reports/allure-results [--out reports/summary.md]
                              [--check [--min-tests N] [--all-properties]]

Reads every ``*-result.json`` (the latest per historyId, as Allure shows retries), groups tests by
their story labels (property IDs), and prints Markdown: a verdict per property, the overall
verdict, durations, the failing tests with the first line of their message, and the stress
figures found in attachments named ``stress-figures.json``.

Verdicts: a property PASSes only with at least one passed test and none failed or broken; FAIL
if any of its tests failed or broke; NOT JUDGED if the run's environment.properties says the
target declares nothing it could be judged by (``judged.<ID>``, written by the reports plugin)
or every result of it was skipped as "not judged: why"; NOT PROVEN otherwise (no tests, or all
skipped). Overall: FAIL if any test failed or broke; INCOMPLETE if some catalogue property is
not PASS; else PASS.  The table says per property how it was judged for the target
(white-box, black-box, not judged, and why), and the page names the target; with results of
several targets (the ``target`` parameter of the per-property results) a table per target
follows.  Findings list every failed result with its message and its pasteable reproducer.

The quality gate (``--check``): no failed or broken result, at least ``--min-tests`` passed
results (default 13, one gate machine's properties: a run of skips does not pass), and with
``--all-properties`` every catalogue property PASS or NOT JUDGED.

Exit status: 0 when the summary was written (with --check: only if the quality gate passes),
1 for --check when it fails, 2 when the results directory is missing or holds no results.
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
REPRODUCER_NAME = "reproducer"
DEFAULT_MIN_TESTS = 13


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
    target: str = ""


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
        params = {str(p.get("name")): str(p.get("value")) for p in data.get("parameters") or []
                  if isinstance(p, dict)}
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
                target=params.get("target", ""),
            )
        )
    return results


def global_attachments(results_dir: Path) -> list[dict[str, Any]]:
    """The run-level attachments (``*-globals.json``)."""
    found = []
    for path in sorted(results_dir.glob("*-globals.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict):
            found += [a for a in data.get("attachments") or [] if isinstance(a, dict)]
    return found


def _not_judged(results: Sequence[Result], prop: str) -> bool:
    mine = [r for r in results if prop in r.stories]
    return bool(mine) and all(r.status == "skipped" and r.message.startswith("not judged")
                              for r in mine)


def verdicts_of(results: Sequence[Result], judged: dict[str, str] | None = None
                ) -> dict[str, str]:
    """Property -> verdict for ``results`` (one target's, or all)."""
    counts: dict[str, Counter[str]] = {p.id: Counter() for p in CATALOGUE}
    for result in results:
        for story in result.stories or [NO_PROPERTY]:
            counts.setdefault(story, Counter())[result.status] += 1
    verdicts = {pid: property_verdict(c) for pid, c in counts.items()}
    for pid in list(verdicts):
        how = (judged or {}).get(pid, "")
        if verdicts[pid] != "FAIL" and (how.startswith("not judged")
                                        or _not_judged(results, pid)):
            verdicts[pid] = "NOT JUDGED"   # passing tests prove nothing the target hid
    return verdicts


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
    verdicts = verdicts_of(results, judged)
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


def quality_gate(summary: Summary, min_tests: int = DEFAULT_MIN_TESTS,
                 all_properties: bool = False) -> list[tuple[str, bool, str]]:
    """(rule, passed, what was seen) for each rule of the quality gate."""
    totals = Counter(r.status for r in summary.results)
    bad = totals["failed"] + totals["broken"] + totals["unknown"]
    rules = [("no failed or broken result", bad == 0, f"{bad} failed or broken"),
             (f"at least {min_tests} passed results", totals["passed"] >= min_tests,
              f"{totals['passed']} passed, {totals['skipped']} skipped")]
    if all_properties:
        open_ = [p.id for p in CATALOGUE if summary.verdicts[p.id] not in ("PASS", "NOT JUDGED")]
        rules.append(("every property PASS or NOT JUDGED", not open_,
                      ", ".join(f"{p} {summary.verdicts[p]}" for p in open_) or "all"))
    return rules


def _reproducer(result: Result, results_dir: Path) -> str:
    for att in result.attachments:
        if att.get("name") == REPRODUCER_NAME and att.get("source"):
            try:
                return (results_dir / str(att["source"])).read_text(encoding="utf-8")
            except OSError:
                return ""
    return ""


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
    """(test, figure, value) rows from every stress-figures.json attachment (of a result, or
    of the run: Allure's globals, named "(run)")."""
    rows: list[tuple[str, str, object]] = []
    run = Result("(run)", "(run)", "passed", [], "", None, None,
                 global_attachments(results_dir))
    for result in [*results, run]:
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

    targets = sorted({r.target for r in results if r.target})
    if len(targets) > 1:
        out += ["", "## Per target", "",
                "| property | " + " | ".join(_cell(t) for t in targets) + " |",
                "| --- |" + " --- |" * len(targets)]
        per_target = {t: verdicts_of([r for r in results if r.target == t]) for t in targets}
        for p in CATALOGUE:
            out.append(f"| {p.id} | " + " | ".join(per_target[t][p.id] for t in targets)
                       + " |")

    failing = [r for r in results if r.status not in ("passed", "skipped")]
    out += ["", "## Failing tests", ""]
    if failing:
        for r in sorted(failing, key=lambda r: r.full_name):
            first = r.message.strip().splitlines()[0] if r.message.strip() else "(no message)"
            props = ", ".join(r.stories) or NO_PROPERTY
            out.append(f"- **{r.status}** `{r.full_name}` [{props}]: {first}")
    else:
        out.append("None.")

    findings = [(r, _reproducer(r, results_dir)) for r in failing]
    findings = [(r, text) for r, text in findings if text]
    if findings:
        out += ["", "## Findings and their reproducers", ""]
        for r, text in sorted(findings, key=lambda f: f[0].full_name):
            first = r.message.strip().splitlines()[0] if r.message.strip() else r.name
            out += [f"### {r.name}" + (f" ({r.target})" if r.target else ""), "", first, "",
                    "```python", text.rstrip("\n"), "```", ""]

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
        "--check", action="store_true",
        help="exit 1 unless the quality gate passes: no failed or broken result, at least "
             "--min-tests passed results (and with --all-properties every property PASS or "
             "NOT JUDGED)"
    )
    parser.add_argument("--min-tests", type=int, default=DEFAULT_MIN_TESTS, metavar="N",
                        help=f"passed results the quality gate needs (default {DEFAULT_MIN_TESTS})")
    parser.add_argument("--all-properties", action="store_true",
                        help="the quality gate also needs every catalogue property PASS or "
                             "NOT JUDGED")
    args = parser.parse_args(argv)
    if args.min_tests < 0:
        parser.error("--min-tests must be 0 or more")
    try:
        results = load_results(args.results)
    except ResultsError as exc:
        print(f"reports.summary: error: {exc}", file=sys.stderr)
        return 2
    summary = summarise(results, read_environment(args.results))
    text = render(summary, args.results)
    gate = quality_gate(summary, args.min_tests, args.all_properties)
    passed = all(ok for _, ok, _ in gate)
    if args.check:
        text += "\n## Quality gate: " + ("PASSED" if passed else "FAILED") + "\n\n" + "".join(
            f"- {'ok' if ok else 'FAILED'}: {rule} ({seen})\n" for rule, ok, seen in gate)
    sys.stdout.write(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    raise SystemExit(main())
