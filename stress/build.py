"""Build the C soak driver (``stress/csrc``) into ``build/soak/<key>/soak``.

``python -m stress.build [--target builtin|spdk] [--spdk-src DIR] [--force]`` (or
:func:`build`) compiles, with ``gcc -O2``:

* ``builtin`` (default): the driver together with the built-in target's sources
  (``impl/csrc/*.c`` except the fuzzers) and simverbs (``impl/simverbs/*.c``) into one
  static program, the same C and flags the cffi module is built from;
* ``spdk``: the driver alone, linked against the SPDK adapter's shared object that
  :func:`impl.spdk.build.build` makes from the tree ``--spdk-src DIR`` (a cache hit when
  that tree was built before), found at run time through an rpath.  The driver then drives
  SPDK's ``lib/nvmf/rdma.c`` through the same ``nrt.h`` calls.

The key is a hash of every input file's content, the flags and the compiler's version
(for ``spdk`` also the shared object's path and content), so a rebuild happens exactly
when something changed.  ``NRT_SOAK_CFLAGS`` adds compiler flags (e.g. ``-g
-fno-omit-frame-pointer`` for profiling, ``-fsanitize=address,undefined``) and is part of
the key.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent            # stress/
ROOT = HERE.parent
CSRC = HERE / "csrc"
TARGET_CSRC = ROOT / "impl" / "csrc"
SIMVERBS = ROOT / "impl" / "simverbs"
BUILD_ROOT = ROOT / "build" / "soak"
TARGETS = ("builtin", "spdk")

CFLAGS = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-fno-strict-aliasing"]


class BuildError(RuntimeError):
    """The driver could not be built; the message says why (with the compiler's output)."""


def driver_sources() -> list[Path]:
    return sorted(CSRC.glob("*.c"))


def target_sources() -> list[Path]:
    """The built-in target and simverbs, as ``impl/_build.py`` compiles them."""
    files = sorted(p for p in TARGET_CSRC.glob("*.c") if not p.name.startswith("fuzz_"))
    return files + sorted(SIMVERBS.glob("*.c"))


def _headers() -> list[Path]:
    return sorted([*CSRC.glob("*.h"), *TARGET_CSRC.glob("*.h"), *SIMVERBS.glob("*.h")])


def _extra_flags() -> list[str]:
    return os.environ.get("NRT_SOAK_CFLAGS", "").split()


def _compiler_version(cc: str) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BuildError(f"cannot run the C compiler {cc!r}: {exc}") from exc
    return out.stdout.splitlines()[0] if out.stdout else cc


def cache_key(inputs: list[Path], flags: list[str], cc: str) -> str:
    h = hashlib.sha256()
    h.update(_compiler_version(cc).encode())
    h.update("\0".join(flags).encode())
    for p in inputs:
        h.update(str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:20]


def _spdk_library(spdk_src: str | os.PathLike[str] | None, verbose: bool) -> Path:
    if not spdk_src:
        raise BuildError("--target spdk needs the SPDK source tree: --spdk-src DIR")
    from impl.spdk import build as spdk_build

    try:
        return spdk_build.build(spdk_src, verbose=verbose)
    except spdk_build.BuildError as exc:
        raise BuildError(f"the SPDK adapter did not build: {exc}") from exc


def build(target: str = "builtin", spdk_src: str | os.PathLike[str] | None = None, *,
          force: bool = False, verbose: bool = False, cc: str = "gcc") -> Path:
    """The soak driver's executable for ``target``, built unless the cache has it."""
    if target not in TARGETS:
        raise BuildError(f"unknown target {target!r}: choose one of {', '.join(TARGETS)}")
    flags = [*CFLAGS, f"-I{CSRC}", f"-I{TARGET_CSRC}", *_extra_flags()]
    if target == "builtin":
        sources = driver_sources() + target_sources()
        key_inputs = [*sources, *_headers()]
        link: list[str] = []
    else:
        so = _spdk_library(spdk_src, verbose)
        sources = driver_sources()
        key_inputs = [*sources, *_headers(), so]
        link = [str(so), f"-Wl,-rpath,{so.parent}"]
    key = cache_key(key_inputs, [target, *flags, *link], cc)
    out_dir = BUILD_ROOT / f"{target}-{key}"
    exe = out_dir / "soak"
    if exe.is_file() and not force:
        if verbose:
            print(f"soak build: cached {exe}", file=sys.stderr)
        return exe
    BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{target}-{key}.", dir=BUILD_ROOT))
    try:
        cmd = [cc, *flags, "-o", str(work / "soak"), *map(str, sources), *link]
        if verbose:
            print("soak build: " + " ".join(cmd), file=sys.stderr)
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise BuildError(f"cannot run the C compiler {cc!r}: {exc}") from exc
        if res.returncode != 0:
            raise BuildError(f"compiling the soak driver failed ({cc} exit "
                             f"{res.returncode}):\n{res.stderr.strip()}")
        if out_dir.exists() and not exe.is_file():
            shutil.rmtree(out_dir)   # a broken earlier build
        try:
            work.rename(out_dir)   # atomic: a concurrent build sees all of it or nothing
        except OSError:
            if not exe.is_file():   # not just a concurrent build that finished first
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return exe


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stress.build",
                                description=__doc__.split("\n")[0])
    p.add_argument("--target", choices=TARGETS, default="builtin",
                   help="the target linked in (default: builtin)")
    p.add_argument("--spdk-src", metavar="DIR", help="the SPDK tree, for --target spdk")
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    a = p.parse_args(argv)
    try:
        exe = build(a.target, a.spdk_src, force=a.force, verbose=True)
    except BuildError as exc:
        print(f"soak build: {exc}", file=sys.stderr)
        return 1
    print(exe)
    return 0


if __name__ == "__main__":
    sys.exit(main())
