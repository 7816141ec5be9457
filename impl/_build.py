"""cffi (API mode) builder for ``impl._nrt``, the compiled C target.

Used two ways:

* at install time, through ``setup(cffi_modules=["impl/_build.py:ffibuilder"])``:
  ``pip install -e .`` compiles the extension and leaves ``impl/_nrt*.so`` in the tree;
* by hand, ``python impl/_build.py``: rebuilds ``impl/_nrt*.so`` in place (verbose), e.g.
  after editing ``impl/csrc/*.c`` without reinstalling.

The cdef is the text between ``/* CDEF-BEGIN */`` and ``/* CDEF-END */`` of
``impl/csrc/nrt.h``, so the header stays the one contract. Every ``impl/csrc/*.c`` except
``fuzz_*.c`` (fuzzer entry points with their own ``main``-like harness) is compiled in.

Our C and cffi's generated wrapper (``impl/_nrt.c``) are compiled with the same flags,
``-std=gnu11 -O3 -flto=auto -Wall -Wextra -Werror -fno-strict-aliasing`` (GNU C because
rdma-core's headers use its extensions) and linked with ``-flto=auto`` at the last ``-O``
level of the compile flags (so an ``NRT_CFLAGS`` of ``-O1`` links at ``-O1`` too).  Link-time
optimization lets the IO path inline across the transport, the controller emulation and
simverbs, as one translation unit would; ``python -m impl.bench`` measures what it buys.
The wrapper builds clean with
them (checked with cffi 1.15.1 and 2.0.0, gcc 12). Should a future cffi or compiler make the
*generated* wrapper warn, silence it with ``#pragma GCC diagnostic ignored "-W..."`` lines in
``WRAPPER_PREAMBLE`` (after the include, so they reach the generated code only) rather than a
global ``-Wno-...`` that would also weaken the checks on our sources.

Environment (read when the builder runs):

* ``NRT_CFLAGS``  extra compiler flags, whitespace-separated (e.g. ``-fsanitize=address -g``);
* ``NRT_LDFLAGS`` extra linker flags, whitespace-separated.

This file is executed by cffi's setuptools hook with ``__name__ == "__cffi__"``, so it may
import only the standard library and cffi.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cffi

HERE = Path(__file__).resolve().parent  # .../impl
ROOT = HERE.parent  # project root
CSRC = HERE / "csrc"
SIMVERBS = HERE / "simverbs"
HEADER = CSRC / "nrt.h"

MODULE_NAME = "impl._nrt"
CDEF_BEGIN = "/* CDEF-BEGIN */"
CDEF_END = "/* CDEF-END */"

BASE_CFLAGS = ["-std=gnu11", "-O3", "-flto=auto", "-Wall", "-Wextra", "-Werror",
               "-fno-strict-aliasing"]


def link_flags(cflags: list[str], extra: list[str]) -> list[str]:
    """Link-time optimization at the compile flags' last ``-O`` level, then ``extra``."""
    levels = [f for f in cflags if f.startswith("-O")]
    return ["-flto=auto", *levels[-1:], *extra]

# Top of the generated wrapper; the cffi glue follows it in the same translation unit.
WRAPPER_PREAMBLE = '#include "nrt.h"\n'


def read_cdef(header: Path = HEADER) -> str:
    """Return the declarations between the CDEF markers of ``header``."""
    lines = header.read_text(encoding="utf-8").splitlines()
    stripped = [line.strip() for line in lines]
    try:
        begin = stripped.index(CDEF_BEGIN)
        end = stripped.index(CDEF_END, begin + 1)
    except ValueError:
        raise RuntimeError(
            f"{header}: expected a line {CDEF_BEGIN!r} followed by a line {CDEF_END!r}"
        ) from None
    return "\n".join(lines[begin + 1 : end]) + "\n"


def c_sources(csrc: Path = CSRC, simverbs: Path = SIMVERBS) -> list[str]:
    """Every ``csrc/*.c`` except ``fuzz_*.c``, then ``simverbs/*.c``, sorted, as paths
    relative to the cwd.

    Relative paths keep distutils' object files under its build_temp instead of a
    mirrored absolute path.
    """
    files = sorted(p for p in csrc.glob("*.c") if not p.name.startswith("fuzz_"))
    files += sorted(simverbs.glob("*.c"))
    if not files:
        raise RuntimeError(f"no C sources found in {csrc}")
    return [_rel(p) for p in files]


def c_headers(csrc: Path = CSRC, simverbs: Path = SIMVERBS) -> list[str]:
    """Every ``csrc/*.h`` and ``simverbs/*.h``: listed as ``depends`` so a header edit
    triggers a rebuild."""
    return [_rel(p) for p in sorted([*csrc.glob("*.h"), *simverbs.glob("*.h")])]


def _rel(path: Path) -> str:
    return os.path.relpath(path, os.getcwd())


def _env_flags(name: str) -> list[str]:
    return os.environ.get(name, "").split()


def make_builder() -> cffi.FFI:
    ffi = cffi.FFI()
    ffi.cdef(read_cdef())
    ffi.set_source(
        MODULE_NAME,
        WRAPPER_PREAMBLE,
        sources=c_sources(),
        depends=c_headers(),
        include_dirs=[_rel(CSRC)],
        extra_compile_args=BASE_CFLAGS + _env_flags("NRT_CFLAGS"),
        extra_link_args=link_flags(BASE_CFLAGS + _env_flags("NRT_CFLAGS"), _env_flags("NRT_LDFLAGS")),
        # cffi's setuptools hook already defaults to the stable ABI (impl/_nrt.abi3.so); say
        # so here too, so `python impl/_build.py` writes the same file instead of a
        # _nrt.cpython-311-*.so that Python would prefer over a later `pip install -e .`.
        py_limited_api=True,
    )
    return ffi


ffibuilder = make_builder()


def main() -> int:
    """Build ``impl/_nrt*.so`` in place, from the project root."""
    global ffibuilder
    os.chdir(ROOT)
    ffibuilder = make_builder()  # recompute relative paths from ROOT
    so_path = Path(ffibuilder.compile(tmpdir=".", verbose=True)).resolve()
    for other in HERE.glob("_nrt.*so"):
        if other.resolve() != so_path:  # an older build Python might import instead
            print(f"removing stale {other}")
            other.unlink()
    print(f"built {so_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
