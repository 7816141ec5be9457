"""The cffi binding's structure layouts are rdma-core's: every field offset declared in
``impl/host/cffi_verbs.py`` equals ``offsetof`` in a program compiled against
``<infiniband/verbs.h>`` and ``<rdma/rdma_cma.h>`` (and whole sizes where the binding
allocates the structure)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from impl.host.cffi_verbs import ffi

#: (struct, fields) whose offsets the binding relies on; sizes for the ones it allocates.
FIELDS = {
    "ibv_sge": ("addr", "length", "lkey"),
    "ibv_send_wr": ("wr_id", "next", "sg_list", "num_sge", "opcode", "send_flags", "wr",
                    "qp_type"),
    "ibv_recv_wr": ("wr_id", "next", "sg_list", "num_sge"),
    "ibv_wc": ("wr_id", "status", "opcode", "vendor_err", "byte_len", "qp_num", "src_qp",
               "wc_flags", "pkey_index", "slid", "sl", "dlid_path_bits"),
    "ibv_context": ("device", "ops"),
    "ibv_context_ops": ("poll_cq", "post_send", "post_recv"),
    "ibv_qp": ("context", "qp_num", "state"),
    "ibv_cq": ("context",),
    "ibv_mr": ("context", "pd", "addr", "length", "handle", "lkey", "rkey"),
    "ibv_qp_cap": ("max_send_wr", "max_recv_wr", "max_send_sge", "max_recv_sge",
                   "max_inline_data"),
    "ibv_qp_init_attr": ("qp_context", "send_cq", "recv_cq", "srq", "cap", "qp_type",
                         "sq_sig_all"),
    "rdma_event_channel": ("fd",),
    "rdma_cm_id": ("verbs", "channel", "context", "qp"),
    "rdma_conn_param": ("private_data", "private_data_len", "responder_resources",
                        "initiator_depth", "flow_control", "retry_count", "rnr_retry_count",
                        "srq", "qp_num"),
    "rdma_cm_event": ("id", "listen_id", "event", "status", "param"),
}
SIZED = ("ibv_sge", "ibv_send_wr", "ibv_recv_wr", "ibv_wc", "ibv_context_ops", "ibv_qp_cap",
         "ibv_qp_init_attr", "rdma_conn_param")


def _c_program() -> str:
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <infiniband/verbs.h>",
             "#include <rdma/rdma_cma.h>", "int main(void) {"]
    for s, fields in FIELDS.items():
        lines += [f'printf("{s}.{f} %zu\\n", offsetof(struct {s}, {f}));' for f in fields]
    lines += [f'printf("{s} %zu\\n", sizeof(struct {s}));' for s in SIZED]
    lines.append("return 0; }")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def c_layout(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not Path("/usr/include/infiniband/verbs.h").exists():
        pytest.fail("needs a C compiler and rdma-core's headers (libibverbs-dev, "
                    "librdmacm-dev; .ci/run installs them)")
    d = tmp_path_factory.mktemp("layout")
    (d / "layout.c").write_text(_c_program())
    subprocess.run([cc, "-o", str(d / "layout"), str(d / "layout.c")], check=True)
    out = subprocess.run([str(d / "layout")], check=True, capture_output=True, text=True)
    return {k: int(v) for k, v in (ln.split() for ln in out.stdout.splitlines())}


@pytest.mark.parametrize("struct", sorted(FIELDS))
def test_field_offsets_match_rdma_core(c_layout: dict[str, int], struct: str) -> None:
    for f in FIELDS[struct]:
        assert ffi.offsetof(f"struct {struct}", f) == c_layout[f"{struct}.{f}"], f"{struct}.{f}"


@pytest.mark.parametrize("struct", SIZED)
def test_sizes_of_allocated_structures_match(c_layout: dict[str, int], struct: str) -> None:
    assert ffi.sizeof(f"struct {struct}") == c_layout[struct]
