"""Options, markers and plugins for every test in the project, in one place.

* ``--nrt-profile {ci,nightly,hardware}``: the Hypothesis settings profile (default ``ci``,
  or ``NRT_PROFILE``).
* ``--nrt-target {builtin,spdk}`` and ``--nrt-spdk-src DIR``: the target under test (default
  ``builtin``, or ``NRT_TARGET`` / ``NRT_SPDK_SRC``); the SPDK target is built from DIR.
* ``--nrt-defects NAME[,NAME]``: build every target with these defect switches on (used by
  the self-check to prove the gate still catches each historical bug); refused for a target
  that does not declare the DEFECTS capability.
* ``--nrt-scale {ci,field}``: the scale the gate's strategies draw at (default ``ci``, or
  ``NRT_SCALE``; ``strategies/scale.py``).
* ``--nrt-nightly-db DIR``: the nightly example database (default ``.hypothesis/nightly``,
  or ``NRT_NIGHTLY_DB``): the nightly profile writes it, the ci profile replays it
  read-only (``conformance/profiles.py``).
* ``--nrt-minutes M``, ``--nrt-seed S``, ``--nrt-machines A,B``, ``--nrt-out DIR``: the
  nightly stress run (``pytest stress``, or ``python -m stress.nightly``): its time
  budget in minutes (fractions allowed; default 5), seed (default random, printed),
  machines (default all the gate's) and where its figures go (default
  ``reports/stress``).
* the hardware tier (``conformance/test_remote.py``, hooks in ``conformance/remote_plugin.py``):
  ``--nrt-remote ADDR[:PORT]`` (or ``inproc:builtin`` / ``inproc:spdk``: served in this process
  on the simverbs drop-in), ``--nrt-subnqn NQN``, ``--nrt-rpc SOCKET`` (the target's JSON-RPC
  socket: the ``nvmf_get_stats`` oracle), ``--nrt-target-log FILE`` (the target's log: the
  destroy-time leak scan), ``--nrt-host-binding {cffi,pyverbs}``; environment ``NRT_REMOTE``,
  ``NRT_SUBNQN``, ``NRT_RPC``, ``NRT_TARGET_LOG``, ``NRT_HOST_BINDING``.
* marker ``spec(*ids)``: the property IDs a test proves (registered by the reports plugin,
  which also labels tests for Allure and attaches reproducers).
* marker ``nightly``: the nightly stress run's tests (``stress/``); collected only when
  ``stress`` is named or ``--nrt-minutes`` is given, never by ``pytest tests conformance``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from impl.backends import TARGETS

pytest_plugins = ["reports.pytest_plugin", "conformance.remote_plugin"]

_DESCRIPTION = pytest.StashKey[object]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nrt", "nvmf-rdma-conformance")
    group.addoption("--nrt-profile", default=None, choices=("ci", "nightly", "hardware"),
                    help="Hypothesis profile: ci (default; derandomized), nightly, hardware")
    group.addoption("--nrt-target", default=None, choices=TARGETS,
                    help="the target under test: builtin (default, or NRT_TARGET) or spdk")
    group.addoption("--nrt-spdk-src", default=None, metavar="DIR",
                    help="the SPDK source tree the spdk target is built from (NRT_SPDK_SRC)")
    group.addoption("--nrt-defects", default=None, metavar="NAME[,NAME]",
                    help="defect switches to build targets with (self-check only)")
    group.addoption("--nrt-scale", default=None, choices=("ci", "field"),
                    help="the scale the gate's strategies draw at: ci (default) or field")
    group.addoption("--nrt-nightly-db", default=None, metavar="DIR",
                    help="the nightly example database (default .hypothesis/nightly)")
    group.addoption("--nrt-minutes", default=None, type=float, metavar="M",
                    help="nightly stress (stress/): wall-time budget in minutes (default 5)")
    group.addoption("--nrt-seed", default=None, type=int, metavar="S",
                    help="nightly stress: the run's seed (default random, printed)")
    group.addoption("--nrt-machines", default=None, metavar="A,B",
                    help="nightly stress: the gate machines to run (default all)")
    group.addoption("--nrt-out", default=None, metavar="DIR",
                    help="nightly stress: where figures go (default reports/stress)")
    group.addoption("--nrt-remote", default=None, metavar="ADDR[:PORT]|inproc:KIND",
                    help="hardware tier: the running NVMe-oF RDMA target to drive (port "
                         "default 4420), or inproc:builtin / inproc:spdk (NRT_REMOTE)")
    group.addoption("--nrt-subnqn", default=None, metavar="NQN",
                    help="hardware tier: the subsystem NQN to connect to (NRT_SUBNQN)")
    group.addoption("--nrt-rpc", default=None, metavar="SOCKET",
                    help="hardware tier: the target's JSON-RPC unix socket, for the "
                         "nvmf_get_stats oracle (NRT_RPC)")
    group.addoption("--nrt-target-log", default=None, metavar="FILE",
                    help="hardware tier: the target's log file, scanned after each "
                         "shutdown cycle (NRT_TARGET_LOG)")
    group.addoption("--nrt-host-binding", default=None, choices=("cffi", "pyverbs"),
                    help="hardware tier: the host's verbs binding (default cffi; "
                         "NRT_HOST_BINDING)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "nightly: the nightly stress run (stress/)")
    scale = config.getoption("--nrt-scale")
    if scale:
        os.environ["NRT_SCALE"] = scale
    db = config.getoption("--nrt-nightly-db")
    if db:
        os.environ["NRT_NIGHTLY_DB"] = str(Path(db).resolve())
    profile = config.getoption("--nrt-profile")
    if profile:
        os.environ["NRT_PROFILE"] = profile
    target = config.getoption("--nrt-target")
    if target:
        os.environ["NRT_TARGET"] = target
    src = config.getoption("--nrt-spdk-src")
    if src:
        os.environ["NRT_SPDK_SRC"] = str(Path(src).resolve())
    defects = config.getoption("--nrt-defects")
    if defects is not None:
        os.environ["NRT_DEFECTS"] = defects
    for opt, env in (("--nrt-remote", "NRT_REMOTE"), ("--nrt-subnqn", "NRT_SUBNQN"),
                     ("--nrt-rpc", "NRT_RPC"), ("--nrt-target-log", "NRT_TARGET_LOG"),
                     ("--nrt-host-binding", "NRT_HOST_BINDING")):
        value = config.getoption(opt)
        if value:
            os.environ[env] = str(value)
    from conformance import profiles

    profiles.load()
    switches = profiles.defects_under_test()   # unknown switch names fail here, before any test
    if switches or os.environ.get("NRT_TARGET") or os.environ.get("NRT_SPDK_SRC"):
        # a target asked for by name must load, and must honour the switches asked of it
        from conformance import judging

        desc = _describe(config)
        if isinstance(desc, str):
            raise pytest.UsageError(desc)
        refusal = judging.defects_refusal(desc, switches)  # type: ignore[arg-type]
        if refusal:
            raise pytest.UsageError(refusal)


def _describe(config: pytest.Config) -> object:
    """The selected target's description, or why it cannot be had (a string)."""
    if _DESCRIPTION not in config.stash:
        from conformance import judging
        from impl.backends import BackendError
        from impl.target import TargetError

        try:
            config.stash[_DESCRIPTION] = judging.describe_target()
        except (BackendError, TargetError) as exc:
            config.stash[_DESCRIPTION] = (
                f"target {os.environ.get('NRT_TARGET') or 'builtin'!r} cannot be loaded: {exc}")
    return config.stash[_DESCRIPTION]


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = [f"nrt profile: {os.environ.get('NRT_PROFILE', 'ci')}"]
    from impl import backends

    name = os.environ.get("NRT_TARGET") or "builtin"
    desc = _describe(config)
    where = f", SPDK tree {os.environ['NRT_SPDK_SRC']}" if name == "spdk" and os.environ.get(
        "NRT_SPDK_SRC") else ""
    if isinstance(desc, str):
        lines.append(f"nrt target: {name}{where} ({desc})")
    else:
        try:
            commit = backends.default().commit
        except backends.BackendError:
            commit = None
        label = desc.label  # type: ignore[attr-defined]
        lines.append(f"nrt target: {label}{where}"
                     + (f" (commit {commit[:12]})" if commit else ""))
    if os.environ.get("NRT_DEFECTS"):
        lines.append(f"nrt defect switches ON: {os.environ['NRT_DEFECTS']}")
    return lines
