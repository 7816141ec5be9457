"""One Allure result per property per subject (a gate machine), instead of one result for a
test that judges many properties.

A gate test runs a state machine that judges thirteen properties at once; filed as one
result labelled with all of them, a single POOL-1 failure would read as a failure of every
one, and a tree grouped by property would repeat it under each.  For a test marked
``@pytest.mark.per_property`` the reports plugin writes instead, per property the test
proves (its ``spec`` marker):

* **failed** for each property whose violation ended the run (the violation message first,
  then the evidence: a pasteable reproducer, the pool-occupancy plot, the pool samples and
  the harness's counters at the violation);
* **skipped**, "not judged: why", for a property the target declares nothing to judge by
  (:mod:`conformance.judging`), or "not proven" when the run ended before judging it;
* **passed** otherwise, with how it was judged (white-box, black-box, partly) and why.

A run that broke without naming a property gets one **broken** result of its own (the
infrastructure category).  Each result is labelled epic > feature > story = area >
property family > property ID, with parentSuite > suite > subSuite = family > ID >
subject (the breadcrumbs), the property's severity and links to its specification
sections; its history ID is stable across runs for the same subject, property, target and
defect switches, so Allure's history shows trends and flaky marks.
"""

from __future__ import annotations

import hashlib
import json
import platform
import socket
import uuid as uuidlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports import spec
from reports.labels import epic_for

#: The label that marks the result allure-pytest writes for a per-property test itself,
#: which the plugin removes once the per-property results stand in for it.
CARRIER_LABEL = "nrt.per-property-carrier"
INFRASTRUCTURE = "infrastructure"


@dataclass
class Evidence:
    """What was seen when a property's violation was raised."""

    prop: str
    message: str
    samples: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """How one run of a per-property test ended."""

    subject: str
    nodeid: str
    full_name: str
    path: str                                  # the test file, relative to the rootdir
    props: Sequence[str]
    start: int
    stop: int
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)  # prop -> failure
    broken: str = ""                           # a failure naming no property
    broken_trace: str = ""
    skipped: str = ""                          # the test itself was skipped: why
    judged: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    target: str = "builtin"
    target_label: str = ""
    defects: str = ""


@dataclass(frozen=True)
class Attachment:
    name: str
    body: str
    mime: str
    extension: str


def history_id(outcome: Outcome, prop: str) -> str:
    key = f"{outcome.full_name}|{prop}|{outcome.target}|{outcome.defects}"
    return hashlib.md5(key.encode()).hexdigest()


def _labels(outcome: Outcome, prop: str | None) -> list[dict[str, str]]:
    epic = epic_for(outcome.path)
    if prop is None:
        pairs = [("epic", epic), ("feature", INFRASTRUCTURE), ("story", outcome.subject),
                 ("parentSuite", INFRASTRUCTURE), ("suite", outcome.subject),
                 ("severity", "critical")]
    else:
        fam = spec.family(prop)
        pairs = [("epic", epic), ("feature", fam), ("story", prop), ("tag", prop),
                 ("parentSuite", fam), ("suite", prop), ("subSuite", outcome.subject),
                 ("severity", spec.severity(prop))]
    pairs += [("tag", outcome.subject), ("target", outcome.target_label or outcome.target),
              ("host", socket.gethostname()), ("framework", "pytest"),
              ("language", f"cpython{platform.python_version()}")]
    if outcome.defects:
        pairs.append(("tag", "defect switches: " + outcome.defects))
    return [{"name": n, "value": v} for n, v in pairs]


def _links(prop: str | None) -> list[dict[str, str]]:
    if prop is None:
        return []
    return [{"type": "link", "name": s.name, "url": s.url} for s in spec.sections(prop)]


def _parameters(outcome: Outcome) -> list[dict[str, str]]:
    params = [{"name": "machine", "value": outcome.subject},
              {"name": "target", "value": outcome.target_label or outcome.target}]
    if outcome.defects:
        params.append({"name": "defect switches", "value": outcome.defects})
    return params


def _description(outcome: Outcome, prop: str, verdict: str) -> str:
    p = spec.get(prop)
    j = outcome.judged.get(prop)
    how = f"{j['mode']}: {j['why']}" if j else "not recorded (no example reached the target)"
    lines = [f"**{prop}** ({p.kind}, {p.severity}): {p.statement}", "",
             f"**Verdict on {outcome.subject}:** {verdict}", "",
             f"**Judged:** {how}", ""]
    if p.sections:
        lines.append("**Specification:** " + "; ".join(
            f"[{s.name}]({s.url})" for s in p.sections))
    else:
        lines.append("**Specification:** none: the suite's own robustness property")
    if outcome.defects:
        lines += ["", (f"**Defect switches on:** {outcome.defects} (the target was built "
                      "with these historical bugs re-created; a failure is expected)")]
    return "\n".join(lines)


def results_for(outcome: Outcome) -> list[tuple[dict[str, Any], list[Attachment]]]:
    """The results (Allure result dicts without ``attachments``) and what each attaches."""
    out: list[tuple[dict[str, Any], list[Attachment]]] = []
    first_failed = next(iter(outcome.failed), "")
    for prop in outcome.props:
        j = outcome.judged.get(prop)
        attachments: list[Attachment] = []
        details: dict[str, str] | None = None
        if prop in outcome.failed:
            f = outcome.failed[prop]
            status, verdict = "failed", "FAIL"
            details = {"message": f["message"], "trace": f.get("trace", "")}
            attachments = list(f.get("attachments", ()))
        elif outcome.skipped:
            status, verdict = "skipped", "NOT PROVEN"
            details = {"message": f"not proven: the test was skipped: {outcome.skipped}"}
        elif j is not None and j["mode"] == "not judged":
            status, verdict = "skipped", "NOT JUDGED"
            details = {"message": f"not judged: {j['why']}"}
        elif outcome.broken:
            status, verdict = "skipped", "NOT PROVEN"
            details = {"message": "not proven: the run broke before it finished: "
                                  + outcome.broken.splitlines()[0]}
        elif j is None and not outcome.failed:
            status, verdict = "skipped", "NOT PROVEN"
            details = {"message": "not proven: no example reached the target"}
        else:
            status, verdict = "passed", "PASS"
            if first_failed:
                details = {"message": f"no {prop} violation in any example run; the run "
                                      f"ended at the {', '.join(outcome.failed)} failure"}
        result = {
            "name": f"{prop} on {outcome.subject}",
            "fullName": f"{outcome.full_name}::{prop}",
            "historyId": history_id(outcome, prop),
            "testCaseId": hashlib.md5(f"{outcome.full_name}::{prop}".encode()).hexdigest(),
            "status": status,
            "stage": "finished",
            "description": _description(outcome, prop, verdict),
            "labels": _labels(outcome, prop),
            "links": _links(prop),
            "parameters": _parameters(outcome),
            "start": outcome.start,
            "stop": outcome.stop,
        }
        if details:
            result["statusDetails"] = details
        out.append((result, attachments))
    if outcome.broken:
        result = {
            "name": f"{outcome.subject}: the run broke",
            "fullName": f"{outcome.full_name}::{INFRASTRUCTURE}",
            "historyId": history_id(outcome, INFRASTRUCTURE),
            "status": "broken",
            "stage": "finished",
            "description": "The run ended with an error that names no property: the "
                           "harness, the binding, the build or a tool failed, not a "
                           "check.  No property of this run is proven.",
            "statusDetails": {"message": outcome.broken, "trace": outcome.broken_trace},
            "labels": _labels(outcome, None),
            "parameters": _parameters(outcome),
            "start": outcome.start,
            "stop": outcome.stop,
        }
        out.append((result, []))
    return out


def write(results_dir: str | Path, outcome: Outcome) -> list[Path]:
    """Write the results of ``outcome`` (and their attachments) into ``results_dir``."""
    directory = Path(results_dir)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for result, attachments in results_for(outcome):
        files = []
        for a in attachments:
            source = f"{uuidlib.uuid4()}-attachment.{a.extension}"
            (directory / source).write_text(a.body, encoding="utf-8")
            files.append({"name": a.name, "source": source, "type": a.mime})
        result = {"uuid": str(uuidlib.uuid4()), **result}
        if files:
            result["attachments"] = files
        path = directory / f"{result['uuid']}-result.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1), encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written


def write_global_attachment(results_dir: str | Path, att: Attachment, timestamp: int) -> Path:
    """A run-level attachment (Allure's globals): what a per-property test registered for
    every outcome (its stress figures), which belongs to no one property."""
    directory = Path(results_dir)
    directory.mkdir(parents=True, exist_ok=True)
    source = f"{uuidlib.uuid4()}-attachment.{att.extension}"
    (directory / source).write_text(att.body, encoding="utf-8")
    path = directory / f"{uuidlib.uuid4()}-globals.json"
    path.write_text(json.dumps({"attachments": [
        {"name": att.name, "source": source, "type": att.mime, "timestamp": timestamp}]}),
        encoding="utf-8")
    return path


def _sources(node: Mapping[str, Any]) -> list[str]:
    found = [str(a.get("source")) for a in node.get("attachments") or []
             if isinstance(a, dict) and a.get("source")]
    for step in node.get("steps") or []:
        if isinstance(step, dict):
            found += _sources(step)
    return found


def remove_carriers(results_dir: str | Path) -> int:
    """Delete the results allure-pytest wrote for per-property tests themselves (labelled
    :data:`CARRIER_LABEL`) and their attachments; returns how many were removed."""
    directory = Path(results_dir)
    removed = 0
    for path in directory.glob("*-result.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        labels = data.get("labels") or [] if isinstance(data, dict) else []
        if not any(isinstance(lab, dict) and lab.get("name") == CARRIER_LABEL
                   for lab in labels):
            continue
        for source in _sources(data):
            (directory / source).unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        removed += 1
    return removed
