"""Allure environment.properties and executor.json: what ran, where, and for which build.

Environment variables read:
  NRT_PROFILE      test profile (ci, nightly, hardware); "unset" when absent
  CI               any non-empty value other than "false"/"0" marks a CI run
  GITHUB_ACTIONS   "true" on GitHub Actions (executor type "github", with a build URL)
  NRT_BUILD_NAME   build name shown by Allure; defaults to the GitHub workflow and run number
  NRT_BUILD_URL    link to the build; defaults to the GitHub run URL on GitHub Actions

The plugin adds what the run judged: ``target`` (the target description's name and version,
``target.name``, ``target.version``) and ``judged.<ID>`` per property: ``white-box: why``,
``black-box: why`` or ``not judged: why`` (:mod:`conformance.judging`); and what it ran on
(:func:`run_entries`): ``suite.commit`` and ``suite.dirty`` (uncommitted changes in the
checkout), ``target.selected`` (``NRT_TARGET``), ``target.commit`` (the SPDK tree's commit,
or the suite's for the built-in target), ``target.spdk_src``, ``defects`` (the defect
switches the targets were built with, ``none`` when off), ``rdma-core`` (the version of the
headers the target and simverbs compile against), ``kernel`` and ``seed``.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: What the environment names when no target description was seen in the run.
TARGET = "built-in nrt target"
EXECUTOR_NAME = "nvmf-rdma-conformance"
#: Prefix of the per-property keys saying how each property was judged.
JUDGED_PREFIX = "judged."


def git_commit(cwd: str | Path | None = None) -> str | None:
    """HEAD of the checkout at ``cwd`` (default: the current directory), or None."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def git_dirty(cwd: str | Path | None = None) -> str:
    """"yes" when the checkout at ``cwd`` has uncommitted changes to tracked files, "no"
    when it has none, "unknown" outside a git checkout."""
    try:
        done = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                              cwd=cwd, capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if done.returncode != 0:
        return "unknown"
    return "yes" if done.stdout.strip() else "no"


def rdma_core_version() -> str:
    """The rdma-core version whose headers are installed (Debian's libibverbs-dev), or what
    pkg-config says, or "not installed"."""
    for command in (["dpkg-query", "-W", "-f", "${Version}", "libibverbs-dev"],
                    ["pkg-config", "--modversion", "libibverbs"]):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=10,
                                  check=False)
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    return "not installed"


def run_entries(cwd: str | Path | None = None, seed: str = "") -> dict[str, str]:
    """What the run ran on, beyond the interpreter: the suite's commit and whether the
    checkout was dirty, the target selected and its commit, the defect switches, rdma-core,
    the kernel and the seed."""
    target = os.environ.get("NRT_TARGET") or "builtin"
    suite = git_commit(cwd)
    out = {"suite.commit": suite or "unknown", "suite.dirty": git_dirty(cwd),
           "target.selected": target}
    commit = None
    try:
        from impl import backends

        commit = backends.default().commit
    except Exception:  # noqa: BLE001 - a target that cannot load has no commit to name
        commit = None
    if target == "builtin" and not commit:
        commit = suite   # the built-in target is part of the suite
    out["target.commit"] = commit or "unknown"
    if os.environ.get("NRT_SPDK_SRC"):
        out["target.spdk_src"] = os.environ["NRT_SPDK_SRC"]
    out["defects"] = os.environ.get("NRT_DEFECTS") or "none"
    out["rdma-core"] = rdma_core_version()
    out["kernel"] = platform.release()
    if seed:
        out["seed"] = seed
    return out


def _hypothesis_version() -> str:
    try:
        import hypothesis
    except ImportError:
        return "not installed"
    return str(hypothesis.__version__)


def environment(
    extra: Mapping[str, object] | None = None, cwd: str | Path | None = None
) -> dict[str, str]:
    """The environment table; ``extra`` keys are added last and win over the defaults."""
    env: dict[str, str] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hypothesis": _hypothesis_version(),
        "profile": os.environ.get("NRT_PROFILE") or "unset",
        "target": TARGET,
    }
    commit = git_commit(cwd)
    if commit:
        env["git.commit"] = commit
    for key, value in (extra or {}).items():
        env[str(key)] = str(value)
    return env


def _escape(text: str, is_key: bool) -> str:
    """Java .properties escaping, so any key or value reads back unchanged."""
    out = []
    for i, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch in "=:#!" or (ch == " " and (is_key or i == 0)):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def render_properties(env: Mapping[str, str]) -> str:
    return "".join(f"{_escape(k, True)}={_escape(v, False)}\n" for k, v in env.items())


_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t"}


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _UNESCAPE.get(m.group(1), m.group(1)), text)


def parse_properties(text: str) -> dict[str, str]:
    """What :func:`render_properties` wrote, read back (one ``key=value`` per line)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith(("#", "!")):
            continue
        m = re.match(r"((?:[^\\=:]|\\.)*)[=:](.*)", line)
        if m:
            out[_unescape(m.group(1))] = _unescape(m.group(2))
    return out


def read_environment(results_dir: str | Path) -> dict[str, str]:
    """environment.properties of ``results_dir``; empty if there is none."""
    path = Path(results_dir) / "environment.properties"
    try:
        return parse_properties(path.read_text(encoding="utf-8"))
    except OSError:
        return {}


def judged_entries(judgements: Mapping[str, Mapping[str, str]],
                   properties: Iterable[str]) -> dict[str, str]:
    """The ``target`` and ``judged.<ID>`` entries for ``judgements`` (property -> a
    :meth:`conformance.judging.Judgement.as_dict`), every one of ``properties`` named: one
    no test judged says so."""
    out: dict[str, str] = {}
    seen = next(iter(judgements.values()), None)
    if seen is not None:
        out["target"] = f"{seen['target']} {seen['version']}".strip()
        out["target.name"] = seen["target"]
        out["target.version"] = seen["version"]
    for prop in properties:
        j = judgements.get(prop)
        out[JUDGED_PREFIX + prop] = (f"{j['mode']}: {j['why']}" if j else
                                     "not judged: no test of this run judged it")
    return out


def write_environment(
    results_dir: str | Path,
    extra: Mapping[str, object] | None = None,
    cwd: str | Path | None = None,
) -> Path:
    """Write environment.properties into ``results_dir`` (created if missing); return its path."""
    directory = Path(results_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "environment.properties"
    path.write_text(render_properties(environment(extra, cwd)), encoding="utf-8")
    return path


def _is_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "false", "0", "no")


def executor() -> dict[str, Any]:
    """The executor.json content for this run."""
    github = os.environ.get("GITHUB_ACTIONS") == "true"
    kind = "github" if github else "ci" if _is_ci() else "local"
    info: dict[str, Any] = {"name": EXECUTOR_NAME, "type": kind}

    build_name = os.environ.get("NRT_BUILD_NAME")
    build_url = os.environ.get("NRT_BUILD_URL")
    if github:
        run_id = os.environ.get("GITHUB_RUN_ID", "")
        number = os.environ.get("GITHUB_RUN_NUMBER", run_id)
        build_name = build_name or f"{os.environ.get('GITHUB_WORKFLOW', 'workflow')} #{number}"
        server = os.environ.get("GITHUB_SERVER_URL", "")
        repo = os.environ.get("GITHUB_REPOSITORY", "")
        if not build_url and server and repo and run_id:
            build_url = f"{server}/{repo}/actions/runs/{run_id}"
        if number.isdigit():
            info["buildOrder"] = int(number)
    info["buildName"] = build_name or f"{kind} run"
    if build_url:
        info["buildUrl"] = build_url
    info["reportName"] = "nvmf-rdma-conformance"
    return info


def write_executor(results_dir: str | Path) -> Path:
    """Write executor.json into ``results_dir`` (created if missing); return its path."""
    directory = Path(results_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "executor.json"
    path.write_text(json.dumps(executor(), indent=2) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":  # pragma: no cover - manual inspection aid
    sys.stdout.write(render_properties(environment()))
