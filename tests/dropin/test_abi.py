"""The drop-in libraries present rdma-core's ABI: its sonames, version nodes (with their
parents) and every versioned symbol the installed libibverbs.so.1 / librdmacm.so.1
export, default and compat alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from impl.dropin import abi


def _installed(soname: str) -> Path:
    path = abi.SYSTEM_LIBDIR / soname
    if not path.is_file():
        pytest.skip(f"rdma-core's {soname} is not installed in {abi.SYSTEM_LIBDIR}")
    return path


@pytest.mark.parametrize("soname", abi.SONAMES)
def test_soname_versions_and_symbols_match_rdma_core(dropin_dir: Path, soname: str) -> None:
    real = abi.read_library(_installed(soname))
    ours = abi.read_library(dropin_dir / soname)
    assert ours.soname == real.soname == soname
    assert [v for v in ours.versions if v[0] != "SIMVERBS_1.0"] == real.versions
    missing = sorted(real.keys() - ours.keys())
    assert not missing, f"{soname} lacks {len(missing)} of rdma-core's symbols: {missing[:12]}"
    foreign = sorted(k for k in ours.keys() - real.keys() if k[1] != "SIMVERBS_1.0")
    assert not foreign, f"{soname} exports names rdma-core does not: {foreign[:12]}"


def test_checked_in_list_is_current_for_its_rdma_core() -> None:
    """The fallback list matches the installed rdma-core it was generated from (another
    rdma-core version is told apart by its library file names, and is built from
    directly)."""
    listed = abi.load()
    origin = abi.ABI_FILE.read_text().splitlines()[0]
    libs = abi.installed()
    if not libs or not all(p.name in origin for p in libs):
        pytest.skip(f"the installed rdma-core ({' '.join(p.name for p in libs) or 'none'}) "
                    f"is not the one rdma_core_abi.txt was read from ({origin})")
    for soname in abi.SONAMES:
        real = abi.read_library(_installed(soname))
        assert listed[soname].versions == real.versions, soname
        assert listed[soname].keys() == real.keys(), (
            f"{soname}: rdma_core_abi.txt differs from the installed library; regenerate "
            f"it with python -m impl.dropin abi --write")


def test_harness_api_is_exported_beside_the_verbs(dropin_dir: Path) -> None:
    ours = abi.read_library(dropin_dir / "libibverbs.so.1")
    harness = {s.name for s in ours.symbols if s.version == "SIMVERBS_1.0"}
    assert {"sv_fabric_create", "sv_fabric_add_progress_hook", "sv_host_connect",
            "sv_dropin_rdma_connect"} <= harness
    assert not any(n.startswith("sv__") for n in harness)
