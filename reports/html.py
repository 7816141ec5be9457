"""Render the HTML report with the Allure 3 CLI (npm package ``allure``, pinned 3.18.0).

    python -m reports.html --results reports/allure-results --out reports/allure-report
                           [--history reports/history] [--min-tests 13] [--no-quality-gate]

Runs, from the repository root:

    allure generate <results> --output <out> --config <generated allurerc.json>

then evaluates the quality gate on the results.  The CLI is, first found:
``NRT_ALLURE`` (a path to an Allure 3 binary), the copy ``.ci/run`` installs
(``build/node/node_modules/.bin/allure``), or ``npx --yes allure@3.18.0`` (needs Node.js with
npx: ``apt-get install nodejs npm``; the first run downloads the package from the npm
registry into npx's cache).

The config written for Allure 3:

* categories from :mod:`reports.categories` (Allure 3 takes them from its config, not from
  categories.json), and a tree grouped epic > feature > story (area > property family >
  property ID; the per-property results make that a tree, not a cross product);
* ``historyPath``: ``<history>/history.jsonl``, Allure 3's history of every run, read and
  appended at each generation, so the report shows trends and flaky and new-failure marks;
  keep the directory between runs (CI: cache or archive it);
* the quality gate as Allure 3 rules (``maxFailures`` 0, ``minTestsCount``), for ``allure run``
  (whose quality-gate evaluation needs Node.js 22 or later).  This command evaluates the
  suite's own gate (:func:`reports.summary.quality_gate`: no failed or broken result, at
  least ``--min-tests`` *passed* results, so a run of skips fails) and exits 4 when it
  fails, after writing the report.

Allure 3's report pages load an analytics script from an outside host when opened (its
templates turn it on unconditionally); this command removes it from every page written and
then checks that no page loads anything from outside the report (exit 5 if one still does),
so opening the report makes no outside request.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reports.categories import categories

REPORT_NAME = "nvmf-rdma-conformance"
ALLURE_VERSION = "3.18.0"
NPX_PACKAGE = f"allure@{ALLURE_VERSION}"
REPO = Path(__file__).resolve().parent.parent
#: Where ``.ci/run`` installs the pinned Allure 3 CLI.
LOCAL_ALLURE = REPO / "build" / "node" / "node_modules" / ".bin" / "allure"
DEFAULT_HISTORY = Path("reports/history")
HISTORY_FILE = "history.jsonl"
#: One gate machine's properties: fewer results than this is not a run worth signing.
DEFAULT_MIN_TESTS = 13
INSTALL_HINT = (
    "Node.js with npx is needed to render the Allure 3 report: install it (Debian/Ubuntu: "
    "`apt-get install nodejs npm`), or point NRT_ALLURE at an installed Allure 3 CLI "
    f"(`npm install {NPX_PACKAGE}`, then NRT_ALLURE=node_modules/.bin/allure)."
)


class MissingTool(Exception):
    """Neither NRT_ALLURE nor npx is available."""


def allure_command() -> list[str]:
    """The command prefix that runs the Allure 3 CLI."""
    override = os.environ.get("NRT_ALLURE")
    if override:
        return [override]
    if LOCAL_ALLURE.exists() and shutil.which("node") is not None:
        return [str(LOCAL_ALLURE)]
    npx = shutil.which("npx")
    if npx is None or shutil.which("node") is None:
        raise MissingTool(INSTALL_HINT)
    return [npx, "--yes", NPX_PACKAGE]


def allure_config(history: Path | None = None,
                  min_tests: int = DEFAULT_MIN_TESTS) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": REPORT_NAME,
        "categories": {"rules": categories()},
        "plugins": {"awesome": {"options": {"groupBy": ["epic", "feature", "story"],
                                            "reportName": REPORT_NAME}}},
        "qualityGate": {"rules": [{"maxFailures": 0, "minTestsCount": min_tests}]},
    }
    if history is not None:
        config["historyPath"] = str(history / HISTORY_FILE)
    return config


#: The analytics Allure 3's templates put in every page: a loader script from an outside
#: host and the inline script that configures it.
_ANALYTICS = re.compile(
    r"<script[^>]*\bsrc=\"https?://[^\"]*googletagmanager[^\"]*\"[^>]*>\s*</script>\s*"
    r"(?:<script>(?:(?!</script>)[\s\S])*?\bgtag\((?:(?!</script>)[\s\S])*</script>)?")
#: What makes a page load something: an element's src, a stylesheet or preload link, a CSS
#: url(), an import.  (Plain <a href> links are not requests until clicked.)
_LOADS = re.compile(
    r"""(?:\bsrc\s*=\s*["']|<link\b[^>]*\bhref\s*=\s*["']|url\(\s*["']?|@import\s+["'])"""
    r"""(https?:)?//([^/"'\s)]+)""", re.IGNORECASE)


def write_quality_gate_widget(report_dir: Path, gate: Sequence[tuple[str, bool, str]],
                              summary: Any) -> Path:
    """Put the suite's quality gate into the report's Quality Gates tab (Allure 3 fills it
    only under ``allure run``): one entry per rule, with the failed results it names."""
    failed = [r.name for r in summary.results if r.status in ("failed", "broken")]
    entries = [{"rule": rule, "success": ok, "actual": seen, "expected": rule,
                "message": f"{'passed' if ok else 'FAILED'}: {rule} ({seen})"
                           + (f": {', '.join(failed)}" if not ok and failed and i == 0 else ""),
                "environment": "default", "testResults": []}
               for i, (rule, ok, seen) in enumerate(gate)]
    path = report_dir / "widgets" / "quality-gate.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"default": entries}), encoding="utf-8")
    return path


def strip_analytics(report_dir: Path) -> int:
    """Remove the analytics scripts from every page of the report; how many were removed."""
    removed = 0
    for page in report_dir.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        cleaned, n = _ANALYTICS.subn("", text)
        if n:
            page.write_text(cleaned, encoding="utf-8")
            removed += n
    return removed


def outside_loads(report_dir: Path) -> list[tuple[str, str]]:
    """(page, host) for everything a page of the report would load from another host."""
    found = []
    for page in sorted(report_dir.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        for m in _LOADS.finditer(text):
            found.append((str(page.relative_to(report_dir)), m.group(2)))
    return found




def generate_command(prefix: Sequence[str], results: Path, out: Path, config: Path) -> list[str]:
    return [*prefix, "generate", str(results), "--output", str(out), "--config", str(config)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reports.html", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--results", type=Path, required=True, help="Allure results directory")
    parser.add_argument("--out", type=Path, required=True, help="directory for the HTML report")
    parser.add_argument("--history", type=Path, default=DEFAULT_HISTORY,
                        help="directory of Allure's history kept between runs "
                             f"(default {DEFAULT_HISTORY}; created if missing)")
    parser.add_argument("--no-history", action="store_true",
                        help="neither read nor append the history")
    parser.add_argument("--min-tests", type=int, default=DEFAULT_MIN_TESTS, metavar="N",
                        help="quality gate: at least N results (default "
                             f"{DEFAULT_MIN_TESTS}, one gate machine's properties)")
    parser.add_argument("--no-quality-gate", action="store_true",
                        help="write the report without evaluating the quality gate")
    args = parser.parse_args(argv)
    if args.min_tests < 0:
        parser.error("--min-tests must be 0 or more")

    results = args.results.resolve()
    if not results.is_dir() or not any(results.glob("*-result.json")):
        print(
            f"reports.html: error: no Allure results (*-result.json) in {results}", file=sys.stderr
        )
        return 2
    try:
        prefix = allure_command()
    except MissingTool as exc:
        print(f"reports.html: error: {exc}", file=sys.stderr)
        return 3
    history = None
    if not args.no_history:
        history = args.history.resolve()
        history.mkdir(parents=True, exist_ok=True)
    out = args.out.resolve()
    env = {**os.environ, "ALLURE_NO_ANALYTICS": "true"}

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nrt-allure-") as scratch:
        config = Path(scratch) / "allurerc.json"
        config.write_text(json.dumps(allure_config(history, args.min_tests), indent=2),
                          encoding="utf-8")
        command = generate_command(prefix, results, out, config)
        print("reports.html: " + " ".join(command), file=sys.stderr)
        try:
            done = subprocess.run(command, check=False, env=env)
        except OSError as exc:
            print(
                f"reports.html: error: cannot run {command[0]}: {exc}\n{INSTALL_HINT}",
                file=sys.stderr,
            )
            return 3
        if done.returncode != 0:
            print(f"reports.html: error: allure generate exited {done.returncode}",
                  file=sys.stderr)
            return done.returncode
    removed = strip_analytics(out)
    outside = outside_loads(out)
    print(f"reports.html: report written to {out / 'index.html'} in "
          f"{time.monotonic() - started:.1f} s (analytics scripts removed: {removed}"
          + (f"; history: {history / HISTORY_FILE}" if history else "") + ")",
          file=sys.stderr)
    if outside:
        print("reports.html: error: the report still loads from outside hosts: "
              + ", ".join(f"{page} -> {host}" for page, host in outside), file=sys.stderr)
        return 5
    if not args.no_quality_gate:
        from reports import summary

        s = summary.summarise(summary.load_results(results),
                              summary.read_environment(results))
        gate = summary.quality_gate(s, args.min_tests)
        write_quality_gate_widget(out, gate, s)
        lines = "".join(f"\n  {'ok' if ok else 'FAILED'}: {rule} ({seen})"
                        for rule, ok, seen in gate)
        if not all(ok for _, ok, _ in gate):
            print(f"reports.html: quality gate FAILED:{lines}", file=sys.stderr)
            return 4
        print(f"reports.html: quality gate passed:{lines}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
