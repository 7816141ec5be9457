"""The packaging contract: the cffi build of the C target (impl/_build.py)."""

from __future__ import annotations

import re
from pathlib import Path

from impl import _build


def test_extension_imports_and_exports_every_cdef_function() -> None:
    from impl._nrt import ffi, lib

    declared = set(re.findall(r"\b(nrt_\w+)\s*\(", _build.read_cdef()))
    assert declared, "no functions found in the CDEF block of nrt.h"
    missing = sorted(name for name in declared if not hasattr(lib, name))
    assert not missing
    assert ffi.sizeof("struct nrt_response") > 0


def test_error_codes_are_negative() -> None:
    from impl._nrt import lib

    codes = [name for name in dir(lib) if re.fullmatch(r"NRT_E[A-Z]+", name)]  # not NRT_EV_*
    assert codes
    assert all(getattr(lib, name) < 0 for name in codes)


def test_cdef_is_the_marked_block_only(tmp_path: Path) -> None:
    header = tmp_path / "h.h"
    header.write_text("int outside;\n/* CDEF-BEGIN */\nint inside(void);\n/* CDEF-END */\n#endif\n")
    assert _build.read_cdef(header) == "int inside(void);\n"


def test_fuzz_sources_are_left_out(tmp_path: Path) -> None:
    for name in ("b.c", "a.c", "fuzz_capsule.c", "nrt.h"):
        (tmp_path / name).write_text("")
    assert [Path(p).name for p in _build.c_sources(tmp_path, tmp_path / "no-simverbs")] == [
        "a.c", "b.c"]


def test_simverbs_is_compiled_in() -> None:
    names = [Path(p).name for p in _build.c_sources()]
    assert any(Path(p).parent.name == "simverbs" for p in _build.c_sources()), names


def test_the_link_optimizes_at_the_last_compile_level_and_keeps_extra_flags_last():
    assert _build.link_flags(["-O3", "-g", "-O1"], ["-fsanitize=address"]) == [
        "-flto=auto", "-O1", "-fsanitize=address"]
    assert _build.link_flags(["-Wall"], []) == ["-flto=auto"]
