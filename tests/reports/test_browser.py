"""The HTML report as a person sees it, in headless Chromium: rendered with the Allure 3 CLI
from a failing gate run (one machine, a defect switch, few examples) and a passing one,
served from 127.0.0.1, every other host unresolvable, and Chromium's net log read back.

Needs Node.js with the Allure 3 CLI (``.ci/run`` installs the pinned one) and Debian's
``chromium``.  In CI (``CI`` set) a missing tool fails the test; elsewhere it is skipped
with the reason.  Screenshots are kept in ``reports/screenshots/`` (CI artifacts)."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from gate_runs import MACHINE, REPO, GateRun

from reports import html

SCREENSHOTS = REPO / "reports" / "screenshots"
LOCAL = "127.0.0.1"
#: Chromium's own background traffic (updates, sync, field trials) kept out of the net log,
#: so what is left is what the page asked for.
QUIET = ["--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--no-first-run", "--disable-client-side-phishing-detection",
         "--disable-domain-reliability", "--metrics-recording-only", "--no-pings",
         "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _need(what: str, found: object) -> None:
    if found:
        return
    message = f"{what} is needed to check the report in a browser"
    if _in_ci():
        pytest.fail(f"{message}, and CI must have it (.ci/run installs it)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    _need("chromium (Debian package `chromium`)", path)
    assert path is not None
    return path


@pytest.fixture(scope="module")
def allure_cli() -> None:
    try:
        html.allure_command()
    except html.MissingTool as exc:
        _need(f"the Allure 3 CLI ({exc})", None)


def _render(run: GateRun, out: Path, history: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "reports.html", "--results", str(run.results),
                           "--out", str(out), "--history", str(history)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode in (0, 4), done.stderr[-3000:]   # 4: the quality gate failed
    assert "googletagmanager" not in (out / "index.html").read_text()
    return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def _served(directory: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer((LOCAL, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOCAL}:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()


def _browse(chromium: str, url: str, netlog: Path, screenshot: Path | None = None) -> str:
    """The page's DOM once its scripts ran (and a screenshot); every host but 127.0.0.1
    fails to resolve, and the net log records what was asked for."""
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,2000",
            "--virtual-time-budget=10000", f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {LOCAL}",
            *QUIET]
    done = subprocess.run([*base, f"--log-net-log={netlog}", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([*base, f"--screenshot={screenshot}", url], capture_output=True,
                       timeout=120, check=False)
    return done.stdout


def _outside_requests(netlog: Path) -> list[str]:
    """URLs the page (not the browser itself) asked of any host but 127.0.0.1."""
    log = json.loads(netlog.read_text())
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    found = []
    for event in log["events"]:
        if names.get(event["type"]) != "URL_REQUEST_START_JOB":
            continue
        params = event.get("params", {})
        url, initiator = str(params.get("url", "")), str(params.get("initiator", ""))
        host = re.sub(r"^[a-z]+://([^/:]+).*$", r"\1", url)
        page_asked = initiator.startswith(f"http://{LOCAL}")
        if host != LOCAL and (page_asked or "googletagmanager" in url):
            found.append(url)
    return found


def _failed_result_id(report: Path) -> str:
    for path in (report / "data" / "test-results").glob("*.json"):
        data = json.loads(path.read_text())
        if data.get("status") == "failed":
            return str(data["id"])
    raise AssertionError("the report holds no failed result")


def _count(dom: str, testid: str) -> int:
    return dom.count(f'data-testid="{testid}"')


def test_the_report_shows_the_failing_property_only(
        chromium: str, allure_cli: None, failing_run: GateRun, passing_run: GateRun,
        tmp_path: Path) -> None:
    failing = _render(failing_run, tmp_path / "failing", tmp_path / "history")
    passing = _render(passing_run, tmp_path / "passing", tmp_path / "history")

    with _served(failing) as url:
        tree = _browse(chromium, url, tmp_path / "tree.json",
                       SCREENSHOTS / "failing-run-tree.png")
        rid = _failed_result_id(failing)
        page = _browse(chromium, f"{url}#{rid}", tmp_path / "result.json",
                       SCREENSHOTS / "failing-run-pool1.png")
    # the tree: the failing property's group open, one failed leaf, and it is POOL-1's
    assert _count(tree, "tree-leaf-status-failed") == 1
    leaf = re.search(r'data-testid="tree-leaf-title"[^>]*>([^<]+)<', tree)
    assert leaf is not None and leaf.group(1).strip() == f"POOL-1 on {MACHINE}"
    titles = re.findall(r'data-testid="tree-section-title"[^>]*>([^<]+)<', tree)
    assert {"conformance gate", "POOL", "POOL-1", "LIVE", "DATA"} <= {t.strip() for t in titles}
    failed_tab = re.search(r'data-testid="tab-failed".*?data-testid="counter"[^>]*>(\d+)<',
                           tree, re.DOTALL)
    assert failed_tab is not None and failed_tab.group(1) == "1"
    # the quality gate tab holds the gate's two rules, failed
    gate = re.search(r'data-testid="nav-tab-qualityGate".*?data-testid="counter"([^>]*)>(\d+)<',
                     tree, re.DOTALL)
    assert gate is not None and gate.group(2) == "2" and "status-failed" in gate.group(1)
    # the failing result: its violation, breadcrumbs POOL > POOL-1, the plot attached
    assert _count(page, "test-result-status-failed") == 1
    assert re.search(r'data-testid="test-result-error-message"[^>]*>\s*(?:<[^>]+>\s*)*POOL-1: '
                     r'data-WR pool', page)
    crumbs = re.findall(r'data-testid="test-result-breadcrumb-button"[^>]*>(?:<[^>]+>)*'
                        r'([^<]+)<', page)
    assert [c.strip() for c in crumbs][-2:] == ["POOL", "POOL-1"], crumbs
    assert "pool-occupancy.svg" in page and "image/svg+xml" in page
    assert "reproducer" in page

    with _served(passing) as url:
        clean = _browse(chromium, url, tmp_path / "clean.json",
                        SCREENSHOTS / "passing-run-tree.png")
    assert _count(clean, "tree-leaf-status-failed") == 0
    gate = re.search(r'data-testid="nav-tab-qualityGate".*?data-testid="counter"([^>]*)>(\d+)<',
                     clean, re.DOTALL)
    assert gate is not None and gate.group(2) == "2" and "status-failed" not in gate.group(1)
    assert _count(clean, "tree-section-title") >= 1   # the tree rendered at all

    for netlog in ("tree.json", "result.json", "clean.json"):
        assert _outside_requests(tmp_path / netlog) == [], netlog
