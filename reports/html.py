"""Render the HTML report with the Allure 3 CLI (npm package ``allure``, 3.x).

    python -m reports.html --results reports/allure-results --out reports/allure-report

Runs, from the repository root:

    npx --yes allure@3 generate <results> --output <out> --config <generated allurerc.json>

(Allure 3's syntax: results directories are positional, ``--output``/``-o`` names the report
directory; verified with allure 3.18.0.) Needs Node.js with npx (``apt-get install nodejs npm``
on Debian); the first run downloads the ``allure`` package from the npm registry into npx's
cache. Set ``NRT_ALLURE=/path/to/allure`` to use an installed Allure 3 binary instead of npx.

Allure 3's default (Awesome) report reads environment.properties and executor.json from the
results, but takes categories from its config file, not from categories.json (which only the
Allure 2 style reports read). So this command writes a config holding ``reports.categories`` and
grouping the test tree by epic > feature > story (area > property family > property ID).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reports.categories import categories

REPORT_NAME = "nvmf-rdma-conformance"
NPX_PACKAGE = "allure@3"
INSTALL_HINT = (
    "Node.js with npx is needed to render the Allure 3 report: install it (Debian/Ubuntu: "
    "`apt-get install nodejs npm`), or point NRT_ALLURE at an installed Allure 3 CLI "
    "(`npm install allure@3`, then NRT_ALLURE=node_modules/.bin/allure)."
)


class MissingTool(Exception):
    """Neither NRT_ALLURE nor npx is available."""


def allure_command() -> list[str]:
    """The command prefix that runs the Allure 3 CLI."""
    override = os.environ.get("NRT_ALLURE")
    if override:
        return [override]
    npx = shutil.which("npx")
    if npx is None or shutil.which("node") is None:
        raise MissingTool(INSTALL_HINT)
    return [npx, "--yes", NPX_PACKAGE]


def allure_config() -> dict[str, Any]:
    return {
        "name": REPORT_NAME,
        "categories": {"rules": categories()},
        "plugins": {"awesome": {"options": {"groupBy": ["epic", "feature", "story"]}}},
    }


def generate_command(prefix: Sequence[str], results: Path, out: Path, config: Path) -> list[str]:
    return [*prefix, "generate", str(results), "--output", str(out), "--config", str(config)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reports.html", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--results", type=Path, required=True, help="Allure results directory")
    parser.add_argument("--out", type=Path, required=True, help="directory for the HTML report")
    args = parser.parse_args(argv)

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

    with tempfile.TemporaryDirectory(prefix="nrt-allure-") as scratch:
        config = Path(scratch) / "allurerc.json"
        config.write_text(json.dumps(allure_config(), indent=2), encoding="utf-8")
        command = generate_command(prefix, results, args.out.resolve(), config)
        print("reports.html: " + " ".join(command), file=sys.stderr)
        try:
            done = subprocess.run(command, check=False)
        except OSError as exc:
            print(
                f"reports.html: error: cannot run {command[0]}: {exc}\n{INSTALL_HINT}",
                file=sys.stderr,
            )
            return 3
    if done.returncode != 0:
        print(f"reports.html: error: allure generate exited {done.returncode}", file=sys.stderr)
        return done.returncode
    print(f"reports.html: report written to {args.out.resolve() / 'index.html'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
