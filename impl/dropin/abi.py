"""rdma-core's ABI as the drop-in libraries must present it: sonames, version nodes and the
versioned symbols of ``libibverbs.so.1`` and ``librdmacm.so.1``.

The list the build uses is ``rdma_core_abi.txt`` beside this file, generated from the
installed rdma-core libraries by ``python -m impl.dropin abi --write`` (``objdump -p`` for
the version definitions, ``objdump -T`` for the dynamic symbols).  It is checked in so a
build does not depend on which rdma-core is installed; the tests compare it (and the
built libraries) with the installed libraries.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ABI_FILE = HERE / "rdma_core_abi.txt"
SYSTEM_LIBDIR = Path("/usr/lib/x86_64-linux-gnu")
SONAMES = ("libibverbs.so.1", "librdmacm.so.1")


@dataclass(frozen=True)
class Symbol:
    name: str
    version: str
    default: bool            # name@@version (what a new link binds to) or a compat name@version
    kind: str                # "func" or "object"
    size: int = 0


@dataclass
class LibraryAbi:
    soname: str
    versions: list[tuple[str, str | None]] = field(default_factory=list)  # (node, parent)
    symbols: list[Symbol] = field(default_factory=list)

    def keys(self) -> set[tuple[str, str, bool]]:
        return {(s.name, s.version, s.default) for s in self.symbols}


def _objdump(args: list[str], path: Path) -> str:
    out = subprocess.run(["objdump", *args, str(path)], capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(f"objdump {' '.join(args)} {path}: {out.stderr.strip()}")
    return out.stdout


_SYM = re.compile(r"^[0-9a-f]+ (?P<flags>.{7}) (?P<section>\S+)\s+(?P<size>[0-9a-f]+)\s+"
                  r"(?P<version>\(?[A-Za-z0-9_.]+\)?)\s+(?P<name>\S+)$")


def read_library(path: Path) -> LibraryAbi:
    """The soname, version definitions and defined dynamic symbols of a shared object."""
    private = _objdump(["-p"], path)
    soname = re.search(r"^\s*SONAME\s+(\S+)", private, re.MULTILINE)
    abi = LibraryAbi(soname.group(1) if soname else path.name)
    defs = private.split("Version definitions:", 1)
    if len(defs) == 2:
        lines = defs[1].split("Version References:", 1)[0].strip().splitlines()
        i = 0
        while i < len(lines):
            parts = lines[i].split()
            i += 1
            if len(parts) != 4 or parts[1] == "0x01":   # the 0x01 (BASE) entry is the soname
                continue
            parent = None
            if i < len(lines) and len(lines[i].split()) == 1:
                parent = lines[i].strip()
                i += 1
            abi.versions.append((parts[3], parent))
    for line in _objdump(["-T"], path).splitlines():
        m = _SYM.match(line.strip())
        if not m or m["section"] in ("*UND*",) or m["section"] == "*ABS*":
            continue
        flags = m["flags"]
        if "g" not in flags and "u" not in flags:
            continue
        version = m["version"]
        default = not version.startswith("(")
        version = version.strip("()")
        kind = "func" if "F" in flags else "object"
        abi.symbols.append(Symbol(m["name"], version, default, kind, int(m["size"], 16)))
    abi.symbols.sort(key=lambda s: (s.name, s.version))
    return abi


def read_system(libdir: Path = SYSTEM_LIBDIR) -> dict[str, LibraryAbi]:
    return {so: read_library(libdir / so) for so in SONAMES}


def format_abi(libs: dict[str, LibraryAbi], origin: str) -> str:
    out = [f"# rdma-core's ABI for the drop-in libraries, from {origin}",
           "# (python -m impl.dropin abi --write).  lib SONAME / version NODE [PARENT] /",
           "# func|object VERSION NAME [compat] [SIZE]"]
    for so in SONAMES:
        lib = libs[so]
        out.append(f"lib {lib.soname}")
        out += [f"version {v}" + (f" {p}" if p else "") for v, p in lib.versions]
        for s in lib.symbols:
            extra = ("" if s.default else " compat") + (f" {s.size}" if s.kind == "object" else "")
            out.append(f"{s.kind} {s.version} {s.name}{extra}")
    return "\n".join(out) + "\n"


def load(path: Path = ABI_FILE) -> dict[str, LibraryAbi]:
    """The checked-in list, parsed."""
    libs: dict[str, LibraryAbi] = {}
    cur: LibraryAbi | None = None
    for n, line in enumerate(path.read_text().splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "lib":
            cur = libs.setdefault(words[1], LibraryAbi(words[1]))
            continue
        if cur is None:
            raise ValueError(f"{path}:{n}: an entry before any 'lib' line")
        if words[0] == "version":
            cur.versions.append((words[1], words[2] if len(words) > 2 else None))
        elif words[0] in ("func", "object"):
            compat = "compat" in words[3:]
            sizes = [w for w in words[3:] if w.isdigit()]
            cur.symbols.append(Symbol(words[2], words[1], not compat, words[0],
                                      int(sizes[0]) if sizes else 0))
        else:
            raise ValueError(f"{path}:{n}: unknown entry {words[0]!r}")
    missing = [so for so in SONAMES if so not in libs]
    if missing:
        raise ValueError(f"{path}: no entries for {', '.join(missing)}")
    return libs
