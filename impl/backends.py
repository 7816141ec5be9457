"""Which target the facade drives: the built-in one or SPDK's rdma.c through its adapter.

Every target is a shared object exporting the same C contract (``impl/csrc/nrt.h``: the
transport calls, the target description and the rig):
the built-in target is the compiled ``impl._nrt`` module; the SPDK target is a library the
adapter's build (:mod:`impl.spdk.build`) compiles from a user's SPDK tree, its functions
looked up in it and typed by the same ``ffi`` (:class:`impl.isolation.SharedObjectLib`).
With isolation on, each transport runs in a forked child (:class:`impl.isolation.IsolatedLib`).

Selection, in order: an explicit :func:`load` call; ``NRT_TARGET`` (``builtin`` or
``spdk``) with ``NRT_SPDK_SRC`` naming the SPDK tree (the pytest options ``--nrt-target``
and ``--nrt-spdk-src`` set these).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from impl._nrt import ffi
from impl._nrt import lib as _builtin_lib

TARGETS = ("builtin", "spdk")


class BackendError(RuntimeError):
    """The target named cannot be loaded (unknown name, no SPDK tree, a failed build)."""


@dataclass(frozen=True)
class Backend:
    """A loaded target: ``lib`` has every ``nrt_*`` function of ``nrt.h``."""

    name: str
    lib: Any = field(repr=False, compare=False)
    ffi: Any = field(default=ffi, repr=False, compare=False)
    source: str | None = None          # the SPDK tree, for the SPDK target
    commit: str | None = None          # what code is under test
    library: str | None = None         # the shared object opened
    isolate: bool = False              # each transport in a forked child (CRASH-1)


_loaded: dict[tuple[str, str | None, bool], Backend] = {}


def builtin() -> Backend:
    return Backend("builtin", _builtin_lib, commit=_project_commit())


def load(target: str = "builtin", spdk_src: str | os.PathLike[str] | None = None,
         isolate: bool | None = None) -> Backend:
    """The target named, built if needed (the SPDK build is cached by the tree's content).

    ``isolate``: run each transport in a forked child, so that a crash, an assertion, a
    sanitizer report or a hang of the target is a finding (CRASH-1) instead of the end of
    the run.  Default: ``NRT_ISOLATE`` if set, else on for targets the suite did not write
    (SPDK's) and off for the built-in one."""
    if isolate is None:
        env = os.environ.get("NRT_ISOLATE", "")
        isolate = env not in ("", "0") if env else target != "builtin"
    if target not in TARGETS:
        raise BackendError(f"unknown target {target!r}: choose one of {', '.join(TARGETS)}")
    src = None
    if target == "spdk":
        if not spdk_src:
            raise BackendError("the spdk target needs an SPDK source tree: --nrt-spdk-src DIR "
                               "or NRT_SPDK_SRC=DIR")
        src = str(Path(spdk_src).resolve())
    key = (target, src, isolate)
    if key in _loaded:
        return _loaded[key]
    if target == "builtin":
        backend = builtin()
        if isolate:
            backend = Backend("builtin", backend.lib, commit=backend.commit, isolate=True)
    else:
        from impl.spdk import build

        assert src is not None
        try:
            so = build.build(src)
        except build.BuildError as exc:
            raise BackendError(str(exc)) from exc
        from impl.isolation import SharedObjectLib

        backend = Backend("spdk", SharedObjectLib(str(so)), source=src,
                          commit=build.tree_commit(src), library=str(so), isolate=isolate)
    _loaded[key] = backend
    return backend


def default() -> Backend:
    """The target the environment selects (``NRT_TARGET``, ``NRT_SPDK_SRC``)."""
    return load(os.environ.get("NRT_TARGET", "builtin") or "builtin",
                os.environ.get("NRT_SPDK_SRC") or None)


def _project_commit() -> str | None:
    head = Path(__file__).resolve().parent.parent / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (head.parent / ref[5:]).read_text().strip()
        return ref
    except OSError:
        return None
