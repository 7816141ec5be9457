"""pytest plugin: name the compiled target (``impl._nrt``) this session runs, and insist on it.

Loaded by ``impl/tools/sanitize.sh`` and ``impl/tools/memcheck.sh`` as ``-p pytest_nrt_build``
with this directory on ``PYTHONPATH``.  The session prints (even with ``-q``) a line such as::

    impl._nrt: /work/main/.tox/sanitize/lib/python3.11/site-packages/impl/_nrt.abi3.so (ASan+UBSan)

Environment (both optional):

* ``NRT_EXPECT_OUTSIDE=DIR``: stop the session if ``impl._nrt`` was imported from under
  ``DIR`` (the source tree's ``impl/``: its in-place ``_nrt*.so`` is the developer's normal
  build, not the one this run built);
* ``NRT_EXPECT_SANITIZED=1``: stop the session unless the extension carries both ASan and
  UBSan instrumentation.

Runs in xdist workers too (``-p`` plugins are passed on), so every process is checked.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def instrumentation(so: Path) -> str:
    """``"ASan+UBSan"``, ``"ASan"``, ``"UBSan"`` or ``"not instrumented"``, from the symbols
    the shared object refers to."""
    blob = so.read_bytes()
    parts = [name for name, marker in (("ASan", b"__asan_init"), ("UBSan", b"__ubsan_handle_"))
             if marker in blob]
    return "+".join(parts) or "not instrumented"


def loaded_extension() -> Path:
    import impl._nrt as ext

    return Path(ext.__file__).resolve()


def pytest_configure(config: pytest.Config) -> None:
    so = loaded_extension()
    kind = instrumentation(so)
    config.stash[_KEY] = f"impl._nrt: {so} ({kind})"
    outside = os.environ.get("NRT_EXPECT_OUTSIDE")
    if outside and so.is_relative_to(Path(outside).resolve()):
        raise pytest.UsageError(
            f"impl._nrt was imported from {so}, under {outside}, not from the installed "
            "build under test: run pytest from another directory with "
            "--import-mode=importlib")
    if os.environ.get("NRT_EXPECT_SANITIZED") == "1" and kind != "ASan+UBSan":
        raise pytest.UsageError(f"{so} is {kind}; expected an ASan+UBSan build")


def pytest_sessionstart(session: pytest.Session) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:   # None in xdist workers, which print nothing themselves
        reporter.write_line(session.config.stash.get(_KEY, "impl._nrt: not imported"))


_KEY = pytest.StashKey[str]()
