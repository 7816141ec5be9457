"""Self-checks for reports/: catalogue, categories, summary, environment, HTML wrapper, plugin."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from reports import attach, categories, environment, html, spec, summary
from reports.labels import epic_for, labels_for

pytest_plugins = ["pytester"]

REPO_ROOT = Path(__file__).resolve().parents[1]

ALL_IDS = [
    "POOL-1",
    "POOL-2",
    "POOL-3",
    "LIVE-1",
    "LIVE-2",
    "CQE-1",
    "DATA-1",
    "SM-1",
    "DEPTH-1",
    "CFG-1",
    "ERR-1",
    "SHUT-1",
    "CONN-1",
    "STATS-1",
    "CRASH-1",
]


# --- spec catalogue ---------------------------------------------------------------------------


def test_catalogue_holds_exactly_the_fifteen_properties() -> None:
    assert [p.id for p in spec.CATALOGUE] == ALL_IDS
    assert all(p.statement.strip() and "\n" not in p.statement for p in spec.CATALOGUE)
    assert spec.FAMILIES == ("POOL", "LIVE", "CQE", "DATA", "SM", "DEPTH", "CFG", "ERR", "SHUT",
                             "CONN", "STATS", "CRASH")


@pytest.mark.parametrize("spec_id", ALL_IDS)
def test_family_is_the_id_prefix(spec_id: str) -> None:
    assert spec.family(spec_id) == spec_id.rsplit("-", 1)[0]


@pytest.mark.parametrize("bad", ["POOL-9", "pool-1", "", "LIVE"])
def test_unknown_id_is_a_clear_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(bad))) as info:
        spec.family(bad)
    assert "known IDs" in str(info.value)


# --- labels ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "epic"),
    [
        ("conformance/test_pool.py", "conformance gate"),
        ("tests/test_reports.py", "suite self-checks"),
        ("stress/test_soak.py", "stress"),
        ("impl/tests/test_build.py", "target"),
        ("test_root.py", "nvmf-rdma-conformance"),
    ],
)
def test_epic_follows_the_directory(path: str, epic: str) -> None:
    assert epic_for(path) == epic


def test_labels_have_one_story_per_id_and_one_feature_per_family() -> None:
    got = labels_for("conformance/test_x.py", ["POOL-1", "POOL-2", "SHUT-1"])
    assert [v for n, v in got if n == "story"] == ["POOL-1", "POOL-2", "SHUT-1"]
    assert [v for n, v in got if n == "feature"] == ["POOL", "SHUT"]
    assert [v for n, v in got if n == "tag"] == ["POOL-1", "POOL-2", "SHUT-1"]
    assert ("epic", "conformance gate") in got


# --- categories ------------------------------------------------------------------------------


LEAK = "WR or buffer leak (POOL-1, POOL-2, POOL-3, SHUT-1)"
STALL = "Stall (LIVE-1, LIVE-2)"
PROTOCOL = "Protocol violation (CQE-1, SM-1, DEPTH-1, CFG-1, ERR-1, CONN-1, STATS-1)"


@pytest.mark.parametrize(
    ("message", "status", "expected"),
    [
        ("AssertionError: POOL-2: data-WR pool returned 184280 of 184320", "failed", LEAK),
        ("POOL-3: receive WRs 63 of 64\nheld by slot 7", "failed", LEAK),
        ("SHUT-1: 40 WRs not released", "failed", LEAK),
        ("AssertionError: LIVE-1: stall: 3 requests outstanding after a full round", "failed",
         STALL),
        ("LIVE-2: keep-alive not answered in 4 rounds", "failed", STALL),
        ("CQE-1: two responses for CID 12", "failed", PROTOCOL),
        ("InvariantViolation: SM-1: request 4 went EXECUTING -> NEW", "broken", PROTOCOL),
        ("DEPTH-1: read depth 17 > 16", "failed", PROTOCOL),
        ("CFG-1: pool capacity 2048, configured 4096", "failed", PROTOCOL),
        ("ERR-1: no status for bad opcode", "failed", PROTOCOL),
        ("CONN-1: bad RECFMT accepted", "failed", PROTOCOL),
        ("STATS-1: polls 3, seen 4", "failed", PROTOCOL),
        ("DATA-1: byte 4096 differs", "failed", "Data corruption (DATA-1)"),
        ("CRASH-1: SIGSEGV during submit (step 3)", "failed", "Target crash (CRASH-1)"),
        ("Fatal Python error: Segmentation fault", "broken", categories.INFRASTRUCTURE_CATEGORY),
    ],
)
def test_categories_classify_by_the_kind_of_the_property_in_the_message(
    message: str, status: str, expected: str
) -> None:
    assert categories.classify(message, status) == [expected]


def test_a_message_of_another_kind_is_not_a_leak() -> None:
    leak = next(c for c in categories.categories() if c["name"] == LEAK)
    # Mentions the pool, but is a LIVE check: must not land in the leak category.
    assert not re.fullmatch(leak["messageRegex"], "LIVE-1: stall while the data-WR pool is empty")
    # Naming a POOL property in passing is not a POOL failure: the ID must lead a check message.
    assert categories.classify("LIVE-1: stall; POOL-1 counters were fine") == [STALL]
    assert re.fullmatch(leak["messageRegex"], "AssertionError: POOL-1: ring 3 + caches 0 != 4")


def test_a_broken_check_with_an_id_is_not_called_infrastructure() -> None:
    assert categories.INFRASTRUCTURE_CATEGORY not in categories.classify("KeyError: POOL-2: x",
                                                                         "broken")
    assert categories.classify("Segfault", "failed") == []


def test_every_property_has_one_kind_and_every_kind_a_category(tmp_path: Path) -> None:
    path = categories.write_categories(tmp_path / "res")
    written = json.loads(path.read_text())
    names = [c["name"] for c in written]
    assert len(names) == len(spec.KINDS) + 1
    assert names[-1] == categories.INFRASTRUCTURE_CATEGORY
    for p in spec.CATALOGUE:
        assert sum(p.id in name for name in names) == 1, p.id
        assert p.severity in spec.SEVERITIES


def test_each_property_links_its_specification_sections() -> None:
    for p in spec.CATALOGUE:
        for section in p.sections:
            assert section.url.startswith("https://nvmexpress.org/")
            assert section.name and section.title
    assert any(s.section == "3.3" and s.document == "rdma" for s in spec.sections("CONN-1"))


# --- environment / executor ------------------------------------------------------------------


def _properties(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line)
    return {k: v for k, v in pairs}


def test_environment_properties(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NRT_PROFILE", "nightly")
    props = _properties(environment.write_environment(tmp_path, {"seed": 42}, cwd=REPO_ROOT))
    assert props["profile"] == "nightly"
    assert props["target"] == "built-in nrt target"
    assert props["seed"] == "42"
    assert re.fullmatch(r"3\.\d+\.\d+", props["python"])
    assert props["hypothesis"] and props["platform"]


def test_environment_escapes_separators(tmp_path: Path) -> None:
    text = (environment.write_environment(tmp_path, {"a key": "x=1\ny"})).read_text()
    assert "a\\ key=x\\=1\\ny\n" in text


@pytest.mark.parametrize(
    ("env", "kind"),
    [({}, "local"), ({"CI": "true"}, "ci"), ({"CI": "true", "GITHUB_ACTIONS": "true"}, "github")],
)
def test_executor_type(
    env: dict[str, str], kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CI", "GITHUB_ACTIONS", "NRT_BUILD_NAME", "NRT_BUILD_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NRT_BUILD_NAME", "release 1.0")
    data = json.loads(environment.write_executor(tmp_path).read_text())
    assert data["name"] == "nvmf-rdma-conformance"
    assert data["type"] == kind
    assert data["buildName"] == "release 1.0"


# --- attach API without Allure ---------------------------------------------------------------


def test_attach_api_keeps_text_without_allure() -> None:
    attach.clear()
    try:
        attach.reproducer("first")
        attach.reproducer("minimal")  # the shrunk example replays last: it wins
        attach.pool_timeline([{"step": 1, "free": 4}, {"step": 2, "held": 1}])
        attach.stats({"polls": 3})
        attach.figures({"steps_per_s": 1900})
        by_name = {p.name: p for p in attach.pending()}
        assert by_name["reproducer"].body == "minimal"
        assert by_name["pool-timeline.csv"].body == "step,free,held\n1,4,\n2,,1\n"
        assert json.loads(by_name["stats.json"].body) == {"polls": 3}
        assert [p.name for p in attach.take(on_failure=False)] == ["stress-figures.json"]
        assert {p.name for p in attach.take(on_failure=True)} == {
            "reproducer",
            "pool-timeline.csv",
            "stats.json",
        }
        assert attach.pending() == []
    finally:
        attach.clear()


# --- summary ---------------------------------------------------------------------------------


def _result(
    directory: Path,
    name: str,
    status: str,
    stories: list[str],
    message: str = "",
    start: int = 1_000,
    stop: int = 2_000,
    attachments: list[dict[str, str]] | None = None,
) -> None:
    data: dict[str, Any] = {
        "uuid": name,
        "historyId": name,
        "name": name,
        "fullName": f"conformance.test#{name}",
        "status": status,
        "start": start,
        "stop": stop,
        "labels": [{"name": "story", "value": s} for s in stories]
        + [{"name": "feature", "value": spec.family(s)} for s in stories],
        "attachments": attachments or [],
    }
    if message:
        data["statusDetails"] = {"message": message, "trace": "tb"}
    (directory / f"{name}-result.json").write_text(json.dumps(data))


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    d = tmp_path / "allure-results"
    d.mkdir()
    _result(d, "test_pool_conserved", "passed", ["POOL-1"], start=1_000, stop=3_000)
    _result(d, "test_pool_returns", "passed", ["POOL-2", "SHUT-1"], start=1_500, stop=4_000)
    _result(
        d,
        "test_no_stall",
        "failed",
        ["LIVE-1"],
        "AssertionError: LIVE-1: stall on qpair 3\nsecond line not shown",
        2_000,
        9_000,
    )
    _result(d, "test_hol", "skipped", ["LIVE-2"], "Skipped: hardware only")
    _result(d, "test_data", "broken", ["DATA-1"], "RuntimeError: target crashed")
    (d / "figs-attachment.json").write_text(json.dumps({"steps_per_s": 1900, "wr": {"max": 7}}))
    _result(
        d,
        "test_soak",
        "passed",
        ["POOL-2"],
        attachments=[
            {
                "name": "stress-figures.json",
                "source": "figs-attachment.json",
                "type": "application/json",
            }
        ],
    )
    return d


def test_summary_verdicts_per_property_and_overall_fail(results_dir: Path) -> None:
    s = summary.summarise(summary.load_results(results_dir))
    assert s.verdicts["POOL-1"] == "PASS"
    assert s.verdicts["POOL-2"] == "PASS"
    assert s.per_property["POOL-2"]["passed"] == 2
    assert s.verdicts["SHUT-1"] == "PASS"
    assert s.verdicts["LIVE-1"] == "FAIL"
    assert s.verdicts["DATA-1"] == "FAIL"  # broken counts against the property
    assert s.verdicts["LIVE-2"] == "NOT PROVEN"  # only skipped
    assert s.verdicts["CQE-1"] == "NOT PROVEN"  # no test at all
    assert s.overall == "FAIL"


def test_summary_markdown_and_out_file(
    results_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "summary.md"
    assert summary.main(["--results", str(results_dir), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert out.read_text() == text
    assert "**Overall verdict: FAIL**" in text
    assert re.search(r"^\| LIVE-1 \|.*\| 0 \| 1 \| 0 \| 0 \| FAIL \| - \|$", text, re.MULTILINE)
    assert re.search(r"^\| POOL-2 \|.*\| 2 \| 0 \| 0 \| 0 \| PASS \| - \|$", text, re.MULTILINE)
    assert "AssertionError: LIVE-1: stall on qpair 3" in text
    assert "second line not shown" not in text
    assert "Duration: 8.0 s wall clock" in text
    assert "| test_soak | steps_per_s | 1900 |" in text
    assert "| test_soak | wr.max | 7 |" in text
    assert summary.main(["--results", str(results_dir), "--check"]) == 1


def test_summary_passes_when_every_property_passes(tmp_path: Path) -> None:
    for spec_id in ALL_IDS:
        _result(tmp_path, f"test_{spec_id}", "passed", [spec_id])
    s = summary.summarise(summary.load_results(tmp_path))
    assert set(s.verdicts.values()) == {"PASS"}
    assert s.overall == "PASS"
    assert summary.main(["--results", str(tmp_path), "--check"]) == 0


def test_summary_is_incomplete_without_a_failure_but_with_gaps(tmp_path: Path) -> None:
    _result(tmp_path, "test_one", "passed", ["POOL-1"])
    assert summary.summarise(summary.load_results(tmp_path)).overall == "INCOMPLETE"


def test_summary_uses_the_latest_retry(tmp_path: Path) -> None:
    _result(tmp_path, "test_flaky", "failed", ["POOL-1"], "POOL-1: x", start=1, stop=2)
    data = json.loads((tmp_path / "test_flaky-result.json").read_text())
    data.update(uuid="retry", status="passed", start=3, stop=4)
    (tmp_path / "retry-result.json").write_text(json.dumps(data))
    s = summary.summarise(summary.load_results(tmp_path))
    assert s.verdicts["POOL-1"] == "PASS"


def test_summary_errors_clearly_on_missing_or_empty_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert summary.main(["--results", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert summary.main(["--results", str(tmp_path)]) == 2
    assert "no *-result.json" in capsys.readouterr().err


# --- HTML wrapper ----------------------------------------------------------------------------


def test_html_without_node_says_how_to_install(
    results_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("NRT_ALLURE", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert html.main(["--results", str(results_dir), "--out", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert "npx" in err and "apt-get install nodejs npm" in err


def test_html_refuses_an_empty_results_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert html.main(["--results", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "no Allure results" in capsys.readouterr().err


def test_html_command_uses_allure3_generate_syntax(tmp_path: Path) -> None:
    cmd = html.generate_command(
        ["npx", "--yes", "allure@3"], tmp_path / "r", tmp_path / "o", tmp_path / "c.json"
    )
    assert cmd == [
        "npx",
        "--yes",
        "allure@3",
        "generate",
        str(tmp_path / "r"),
        "--output",
        str(tmp_path / "o"),
        "--config",
        str(tmp_path / "c.json"),
    ]
    config = html.allure_config()
    assert config["categories"]["rules"] == categories.categories()


# --- the pytest plugin, run inside pytester --------------------------------------------------

SAMPLE_TESTS = """
import pytest
from reports import attach

@pytest.mark.spec("POOL-2")
def test_pool_returns():
    attach.reproducer("not attached: this test passes")

@pytest.mark.spec("LIVE-1", "SHUT-1")
def test_stalls():
    attach.reproducer("machine.replay(seed=1234)")
    attach.stats({"idle_polls": 7})
    assert False, "LIVE-1: stall on qpair 3"

def test_unlabelled():
    pass
"""


def _load_results(directory: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in directory.glob("*-result.json"):
        data = json.loads(path.read_text())
        found[data["name"]] = data
    return found


def _labels(result: dict[str, Any], name: str) -> list[str]:
    return sorted(lab["value"] for lab in result["labels"] if lab["name"] == name)


@pytest.fixture
def plugin_env(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytest.importorskip("allure_commons")
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    monkeypatch.setenv("NRT_PROFILE", "ci")
    pytester.mkdir("conformance")
    (pytester.path / "conformance" / "test_sample.py").write_text(SAMPLE_TESTS)
    return pytester


def test_plugin_labels_and_attachments_with_alluredir(plugin_env: pytest.Pytester) -> None:
    # A subprocess keeps the inner allure-pytest away from any Allure run of this session.
    result = plugin_env.runpytest_subprocess("-p", "reports.pytest_plugin", "--alluredir=res")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*- reproducer -*", "machine.replay(seed=1234)"])

    res = plugin_env.path / "res"
    results = _load_results(res)
    ok = results["test_pool_returns"]
    assert _labels(ok, "story") == ["POOL-2"]
    assert _labels(ok, "feature") == ["POOL"]
    assert _labels(ok, "epic") == ["conformance gate"]
    assert _labels(ok, "tag") == ["POOL-2"]
    assert ok.get("attachments", []) == []  # passing: reproducer not filed

    bad = results["test_stalls"]
    assert _labels(bad, "story") == ["LIVE-1", "SHUT-1"]
    assert _labels(bad, "feature") == ["LIVE", "SHUT"]
    attachments = {a["name"]: a for a in bad["attachments"]}
    repro = attachments["reproducer"]
    assert repro["type"] == "text/plain"
    assert (res / repro["source"]).read_text() == "machine.replay(seed=1234)"
    assert json.loads((res / attachments["stats.json"]["source"]).read_text()) == {"idle_polls": 7}

    assert _labels(results["test_unlabelled"], "story") == []
    assert _labels(results["test_unlabelled"], "epic") == ["conformance gate"]

    props = _properties(res / "environment.properties")
    assert props["profile"] == "ci" and props["target"] == "built-in nrt target"
    assert json.loads((res / "executor.json").read_text())["name"] == "nvmf-rdma-conformance"
    assert json.loads((res / "categories.json").read_text()) == categories.categories()

    # The sign-off summary reads what the plugin wrote.
    s = summary.summarise(summary.load_results(res))
    assert (s.verdicts["POOL-2"], s.verdicts["LIVE-1"], s.overall) == ("PASS", "FAIL", "FAIL")


def test_plugin_under_xdist(plugin_env: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    result = plugin_env.runpytest_subprocess(
        "-p", "reports.pytest_plugin", "--alluredir=res", "-n", "2"
    )
    result.assert_outcomes(passed=2, failed=1)
    results = _load_results(plugin_env.path / "res")
    assert _labels(results["test_pool_returns"], "story") == ["POOL-2"]
    assert any(a["name"] == "reproducer" for a in results["test_stalls"]["attachments"])
    assert _properties(plugin_env.path / "res" / "environment.properties")["xdist.workers"] == "2"


def test_plugin_label_selection(plugin_env: pytest.Pytester) -> None:
    result = plugin_env.runpytest_subprocess(
        "-p", "reports.pytest_plugin", "--allure-features=POOL"
    )
    result.assert_outcomes(passed=1)


def test_plugin_without_alluredir_still_prints_the_reproducer(plugin_env: pytest.Pytester) -> None:
    result = plugin_env.runpytest_subprocess(
        "-p", "reports.pytest_plugin", "-p", "no:allure_pytest"
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*- reproducer -*", "machine.replay(seed=1234)"])
    assert not (plugin_env.path / "res").exists()


def test_unknown_spec_id_is_a_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.spec("POOL-9")
        def test_bad():
            pass
        """
    )
    result = pytester.runpytest("-p", "reports.pytest_plugin")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR collecting test_bad.py*", "*unknown property ID 'POOL-9'*"]
    )


def test_empty_spec_marker_is_a_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_empty="""
        import pytest

        @pytest.mark.spec()
        def test_empty():
            pass
        """
    )
    result = pytester.runpytest("-p", "reports.pytest_plugin")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*needs at least one property ID*"])


# --- how each property was judged, for which target -------------------------------------------

JUDGING_TESTS = """
from types import MappingProxyType

import pytest

from conformance import judging
from impl.target import TargetDescription

DESC = TargetDescription("sample", "v1.2", frozenset({"REQUESTS", "TRANSITIONS"}), 2, 0,
                         ("IDLE", "BUSY"), MappingProxyType({0: 0, 1: 0}),
                         frozenset({(0, 1), (1, 0)}))

@pytest.mark.spec("SM-1")
def test_judges_sm1():
    judging.record(("SM-1", "POOL-1", "CQE-1"), DESC)

@pytest.mark.spec("SM-1")
def test_judges_again():
    judging.record(("SM-1",), DESC)
"""


def test_judged_entries_name_the_target_and_every_property() -> None:
    j = {"SM-1": {"property": "SM-1", "mode": "white-box", "why": "declares it",
                  "target": "spdk", "version": "abc"}}
    env = environment.judged_entries(j, ("SM-1", "POOL-1"))
    assert env["target"] == "spdk abc" and env["target.version"] == "abc"
    assert env["judged.SM-1"] == "white-box: declares it"
    assert env["judged.POOL-1"].startswith("not judged: no test")


def test_environment_properties_read_back(tmp_path: Path) -> None:
    table = {"a key": "x=1\ny", "judged.SM-1": "white-box: a: b # c\\d", "t": " lead"}
    path = environment.write_environment(tmp_path, table)
    assert {k: environment.read_environment(tmp_path)[k] for k in table} == table
    assert environment.parse_properties(path.read_text())["a key"] == "x=1\ny"
    assert environment.read_environment(tmp_path / "missing") == {}


def test_summary_says_how_each_property_was_judged(results_dir: Path) -> None:
    env = {"target": "spdk abc", "judged.POOL-2": "not judged: no WR_POOL",
           "judged.LIVE-1": "black-box: host view", "judged.CRASH-1": "black-box: runner"}
    environment.write_environment(results_dir, env)
    s = summary.summarise(summary.load_results(results_dir),
                          environment.read_environment(results_dir))
    assert s.verdicts["POOL-2"] == "NOT JUDGED"   # its passing tests judged nothing
    assert s.verdicts["LIVE-1"] == "FAIL"         # a failure stays a failure
    text = summary.render(s, results_dir)
    assert "Target: spdk abc" in text
    assert re.search(r"^\| POOL-2 \|.*\| NOT JUDGED \| not judged: no WR_POOL \|$", text,
                     re.MULTILINE)
    assert re.search(r"^\| CRASH-1 \|.* \| black-box: runner \|$", text, re.MULTILINE)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_plugin_writes_how_each_property_was_judged(plugin_env: pytest.Pytester,
                                                    workers: list[str]) -> None:
    if workers:
        pytest.importorskip("xdist")
    (plugin_env.path / "conformance" / "test_judged.py").write_text(JUDGING_TESTS)
    result = plugin_env.runpytest_subprocess("-p", "reports.pytest_plugin", "--alluredir=res",
                                             "conformance/test_judged.py", *workers)
    result.assert_outcomes(passed=2)
    props = _properties(plugin_env.path / "res" / "environment.properties")
    assert props["target"] == "sample v1.2"
    assert props["judged.SM-1"].startswith("white-box\\: partly")
    assert props["judged.POOL-1"].startswith("not judged\\: the target declares no WR_HELD")
    assert props["judged.CQE-1"].startswith("black-box\\: needs no introspection")
    assert props["judged.DATA-1"] == "not judged\\: no test of this run judged it"
