"""CRASH-1 containment: :class:`impl.isolation.IsolatedLib` runs a target in a forked child.

A real workload through the isolated lib must give exactly what it gives in-process; a
target that segfaults, aborts, fails an assertion, exits or hangs must cost the caller one
:class:`TargetCrashed` (with the signal, the call and the target's stderr) and nothing else.
The misbehaving targets are a small shared object compiled here, exporting ``nrt.h`` names.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from impl._nrt import ffi
from impl._nrt import lib as builtin_lib

from impl import Capsule, Opcode, Options, Status, Transport, connect_capsule, enable_capsule, keyed
from impl.backends import Backend
from impl.isolation import REPORT_TAIL, IsolatedLib, TargetCrashed, symbolized

ROOT = Path(__file__).resolve().parent.parent

HELPER_C = r"""
#include <assert.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct nrt_rig;

int nrt_rig_port_add(struct nrt_rig *r) { (void)r; fprintf(stderr, "boom\n"); abort(); }
int nrt_rig_port_down(struct nrt_rig *r, int port)
{
    (void)r;
    fprintf(stderr, "waiting for port %d forever\n", port);
    for (;;)
        sleep(1);
}
int nrt_rig_port_up(struct nrt_rig *r, int port) { (void)r; exit(port); }
static void where_am_i(int sig)
{
    static const char msg[] = "spinning in nrt_rig_host_disconnect\n";
    ssize_t w = write(2, msg, sizeof(msg) - 1);
    (void)w;
    signal(sig, SIG_DFL);
    raise(sig);
}
int nrt_rig_host_disconnect(struct nrt_rig *r, int conn)
{
    (void)r;
    (void)conn;
    signal(SIGABRT, where_am_i);
    for (;;)
        ;
}
int nrt_rig_device_remove(struct nrt_rig *r, int port)
{
    (void)r;
    assert(port == 0 && "only device 0 may go");
    return 0;
}
uint64_t nrt_rig_progress(struct nrt_rig *r) { return (uint64_t)(uintptr_t)r + 42; }
const char *nrt_rig_error(struct nrt_rig *r) { (void)r; return "helper says hi"; }
int nrt_rig_rnr(struct nrt_rig *r, int conn, uint32_t count)
{
    (void)r;
    fprintf(stderr, "before the report\n");
    fprintf(stderr, "==4242==ERROR: AddressSanitizer: heap-use-after-free on conn %d\n", conn);
    for (uint32_t i = 0; i < count; i++)
        fprintf(stderr, "    #%u 0x7f00 in some_frame stack.c:%u\n", i, i);
    fprintf(stderr, "==4242==ABORTING\n");
    abort();
}
int nrt_rig_poll(struct nrt_rig *r, int group)
{
    (void)r;
    for (int i = 0; i < 1000; i++)
        fprintf(stderr, "noise line %04d\n", i);
    fprintf(stderr, "LAST WORDS group=%d\n", group);
    *(volatile int *)(uintptr_t)group = 1;
    return 0;
}
"""


@pytest.fixture(scope="module")
def helper(tmp_path_factory: pytest.TempPathFactory) -> str:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the misbehaving helper target")
    d = tmp_path_factory.mktemp("crashlib")
    src = d / "helper.c"
    src.write_text(HELPER_C)
    so = d / "libhelper.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O0", "-o", str(so), str(src)], check=True)
    return str(so)


def _gone(pid: int) -> bool:
    """The process no longer runs (reaped, or a zombie no one has reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


# ---- the same results as in-process --------------------------------------------------


def _workload(backend: Backend) -> dict[str, object]:
    """Connect, enable, write and read back through every layer, recording what the facade
    returns along the way."""
    out: dict[str, object] = {}
    opts = Options(num_poll_groups=2, max_queue_depth=16, max_io_size=65536,
                   io_unit_size=4096, num_shared_buffers=256, buf_cache_size=8,
                   wr_cache_size=8)
    t = Transport(opts, backend=backend)
    port = t.add_port()
    sub = t.add_subsystem()
    ns = t.add_namespace(sub, 512, 2048)
    key = t.register_memory(1 << 20)
    admin = t.create_qpair(port, 0, 4)
    io = t.create_qpair(port, 1, 8, qid=1)
    out["conn_info"] = t.conn_info(admin)
    t.submit(admin, connect_capsule(1, sub, qid=0, sqsize=3))
    out["drain1"] = t.drain()
    rsp = t.reap(admin)
    assert rsp and rsp[0].status == Status.SUCCESS
    cntlid = rsp[0].result
    t.submit(admin, enable_capsule(2))
    t.drain()
    out["enable"] = t.reap(admin)
    t.submit(io, connect_capsule(3, sub, qid=1, cntlid=cntlid, sqsize=7))
    t.drain()
    out["io_connect"] = t.reap(io)
    data = bytes(range(256)) * 48   # 12 KiB: three io units
    t.write_memory(key, 4096, data)
    t.submit(io, Capsule.with_data(Opcode.WRITE, 10, [keyed(4096, len(data), key)], nsid=ns,
                                   slba=5, nlb=len(data) // 512 - 1))
    # drive the write by hand for a while, so the events path is compared too
    t.deliver_h2t(io)
    out["poll"] = [t.poll(1) for _ in range(3)]
    out["run"] = t.run([t.qpair_event(2, io)] * 4)   # NRT_EV_DELIVER_T2H
    out["mid_info"] = t.qpair_info(io)
    out["requests"] = t.requests(io)
    t.drain()
    out["write"] = t.reap(io)
    out["media"] = t.read_namespace(sub, ns, 5 * 512, len(data))
    t.submit(io, Capsule.with_data(Opcode.READ, 11, [keyed(200_000, len(data), key)], nsid=ns,
                                   slba=5, nlb=len(data) // 512 - 1))
    t.drain()
    out["read"] = t.reap(io)
    out["host"] = t.read_memory(key, 200_000, len(data))
    out["info"] = t.qpair_info(io)
    out["qpairs"] = t.qpairs()
    out["wr_pool"] = t.wr_pool()
    out["buf_pool"] = t.buf_pool()
    out["group_stats"] = [t.group_stats(g) for g in range(2)]
    out["fabric"] = t.fabric_stats()
    out["transitions"] = t.transitions()
    out["progress"] = t.progress
    out["effective"] = t.effective_options
    with pytest.raises(Exception) as refused:   # a refusal: message from nrt_rig_error
        t.port_down(99)
    out["refusal"] = str(refused.value)
    out["destroy"] = t.destroy()
    return out


def test_workload_matches_in_process() -> None:
    iso = IsolatedLib(None)
    try:
        isolated = _workload(Backend("builtin", iso))
        assert iso.alive
    finally:
        iso.close()
    in_process = _workload(Backend("builtin", builtin_lib))
    assert isolated["media"] == bytes(range(256)) * 48
    assert isolated["host"] == isolated["media"]
    for k in in_process:
        assert isolated[k] == in_process[k], k


def test_output_arguments_strings_and_null() -> None:
    with IsolatedLib(None) as iso:
        assert iso.NRT_EINVAL == builtin_lib.NRT_EINVAL
        opts = ffi.new("struct nrt_opts *")
        iso.nrt_opts_default(opts)              # an output struct is filled
        ref = ffi.new("struct nrt_opts *")
        builtin_lib.nrt_opts_default(ref)
        assert bytes(ffi.buffer(opts)) == bytes(ffi.buffer(ref))
        opts.max_queue_depth = 0
        err = ffi.new("char[]", 256)
        rig = iso.nrt_rig_create(opts, err, 256)
        assert rig == ffi.NULL                  # a NULL handle compares as in-process
        assert b"max_queue_depth" in ffi.string(err)   # the char[] came back
        iso.nrt_opts_default(opts)
        rig = iso.nrt_rig_create(opts, ffi.NULL, 0)  # ffi.NULL stays NULL
        assert rig != ffi.NULL and ffi.typeof(rig) is ffi.typeof("struct nrt_rig *")
        assert iso.nrt_rig_port_down(rig, 7) < 0
        msg = iso.nrt_rig_error(rig)            # a const char * result
        assert ffi.string(msg) and ffi.typeof(msg) is ffi.typeof("char[]")
        t = iso.nrt_rig_transport(rig)
        assert iso.nrt_subsystem_add(t, b"nqn.2026-12.io.test:x") == 0   # bytes for char *
        # a large transfer in both directions, in pieces larger than the pipe
        key = iso.nrt_rig_mr_register(rig, 4 << 20)
        blob = os.urandom(4 << 20)
        assert iso.nrt_rig_mr_write(rig, key, 0, blob, len(blob)) == 0
        back = ffi.new("uint8_t[]", len(blob))
        assert iso.nrt_rig_mr_read(rig, key, 0, back, len(blob)) == 0
        assert bytes(ffi.buffer(back)) == blob
        rep = ffi.new("struct nrt_destroy_report *")
        assert iso.nrt_rig_destroy(rig, rep) == 0
        assert rep.wr_expected > 0 and rep.wr_returned == rep.wr_expected


def test_argument_errors_are_the_callers_not_a_crash() -> None:
    """What in-process cffi refuses is refused the same way, and the child lives on."""
    with IsolatedLib(None) as iso:
        opts = ffi.new("struct nrt_opts *")
        iso.nrt_opts_default(opts)
        rig = iso.nrt_rig_create(opts, ffi.NULL, 0)
        t = iso.nrt_rig_transport(rig)
        with pytest.raises(TypeError):
            iso.nrt_rig_port_add(t)             # a transport where a rig is wanted
        with pytest.raises(TypeError):
            iso.nrt_rig_qpair_info(rig, 0, ffi.new("struct nrt_opts *"))
        with pytest.raises(TypeError):
            iso.nrt_rig_progress()
        with pytest.raises(OverflowError):
            iso.nrt_rig_mr_register(rig, -1)
        with pytest.raises(AttributeError):
            iso.nrt_no_such_function  # noqa: B018
        assert iso.alive and iso.nrt_rig_port_add(rig) == 0
        iso.nrt_rig_destroy(rig, ffi.NULL)


# ---- crashes are contained -------------------------------------------------------------


def test_segfault_is_contained_and_sticks() -> None:
    iso = IsolatedLib(None)
    pid = iso.pid
    bad = ffi.cast("struct nrt_rig *", 16)
    with pytest.raises(TargetCrashed) as exc:
        iso.nrt_rig_progress(bad)
    crash = exc.value
    assert crash.kind == "signal" and crash.signal == "SIGSEGV", crash
    assert crash.call.startswith("nrt_rig_progress(") and "0x10" in crash.call
    assert str(crash).startswith("target crashed: SIGSEGV in nrt_rig_progress(")
    assert _gone(pid)
    # every later call fails at once with the same crash, without a child to ask
    t0 = time.monotonic()
    for _ in range(100):
        with pytest.raises(TargetCrashed) as again:
            iso.nrt_rig_port_add(bad)
        assert again.value is crash
    assert time.monotonic() - t0 < 0.5
    assert not iso.alive and iso.crashed is crash
    # the parent and a fresh child carry on
    with IsolatedLib(None) as fresh:
        opts = ffi.new("struct nrt_opts *")
        fresh.nrt_opts_default(opts)
        rig = fresh.nrt_rig_create(opts, ffi.NULL, 0)
        assert fresh.nrt_rig_port_add(rig) == 0
    assert builtin_lib.nrt_opts_min_wr_pool(opts) > 0
    iso.close()


def test_abort_with_message(helper: str) -> None:
    iso = IsolatedLib(helper, watchdog_s=5)
    assert iso.nrt_rig_progress(ffi.cast("struct nrt_rig *", 8)) == 50   # a sane call first
    assert ffi.string(iso.nrt_rig_error(ffi.NULL)) == b"helper says hi"
    with pytest.raises(TargetCrashed) as exc:
        iso.nrt_rig_port_add(ffi.NULL)
    crash = exc.value
    assert (crash.kind, crash.signal, crash.exit_code) == ("signal", "SIGABRT", None)
    assert "boom" in crash.report
    assert str(crash).startswith("target crashed: SIGABRT in nrt_rig_port_add(")
    assert "boom" in str(crash)
    assert crash.library == helper
    with pytest.raises(TargetCrashed):
        iso.nrt_rig_progress(ffi.NULL)


def test_assertion_failure(helper: str) -> None:
    with IsolatedLib(helper) as iso:
        assert iso.nrt_rig_device_remove(ffi.NULL, 0) == 0
        with pytest.raises(TargetCrashed) as exc:
            iso.nrt_rig_device_remove(ffi.NULL, 3)
    assert exc.value.signal == "SIGABRT"
    assert "only device 0 may go" in exc.value.report
    assert "nrt_rig_device_remove(<cdata 'void *' NULL>, 3)" in exc.value.call


def test_exit(helper: str) -> None:
    with IsolatedLib(helper) as iso, pytest.raises(TargetCrashed) as exc:
        iso.nrt_rig_port_up(ffi.NULL, 3)
    assert (exc.value.kind, exc.value.exit_code, exc.value.signal) == ("exit", 3, None)
    assert str(exc.value).startswith("target crashed: exit status 3 in nrt_rig_port_up(")


def test_hang_is_killed(helper: str) -> None:
    iso = IsolatedLib(helper, watchdog_s=0.5)
    pid = iso.pid
    t0 = time.monotonic()
    with pytest.raises(TargetCrashed) as exc:
        iso.nrt_rig_port_down(ffi.NULL, 1)
    took = time.monotonic() - t0
    assert 0.4 < took < 3, took
    assert exc.value.kind == "hang" and "nrt_rig_port_down(" in exc.value.call
    assert "0.5 s" in str(exc.value)
    assert "waiting for port 1 forever" in exc.value.report   # what it said before it hung
    assert _gone(pid)
    with pytest.raises(TargetCrashed) as again:
        iso.nrt_rig_progress(ffi.NULL)
    assert again.value.kind == "hang"


def test_a_hung_child_is_asked_where_it_is_before_it_is_killed(helper: str) -> None:
    iso = IsolatedLib(helper, watchdog_s=0.5)
    pid = iso.pid
    with pytest.raises(TargetCrashed) as exc:
        iso.nrt_rig_host_disconnect(ffi.NULL, 1)
    assert exc.value.kind == "hang"
    # what its SIGABRT handler printed (a target's backtrace) is in the report
    assert "spinning in nrt_rig_host_disconnect" in exc.value.report
    assert _gone(pid)


def test_report_is_the_tail(helper: str) -> None:
    with IsolatedLib(helper) as iso, pytest.raises(TargetCrashed) as exc:
        iso.nrt_rig_poll(ffi.NULL, 0)
    rep = exc.value.report
    assert exc.value.signal == "SIGSEGV"
    assert len(rep.encode()) <= REPORT_TAIL
    assert rep.rstrip().endswith("LAST WORDS group=0")
    assert "noise line 0999" in rep and "noise line 0000" not in rep


def test_report_keeps_a_sanitizer_verdict(helper: str) -> None:
    """A sanitizer report longer than the tail keeps its first line (the verdict)."""
    with IsolatedLib(helper) as iso, pytest.raises(TargetCrashed) as exc:
        iso.nrt_rig_rnr(ffi.NULL, 5, 2000)
    rep = exc.value.report
    assert len(rep.encode()) <= REPORT_TAIL
    assert rep.startswith("==4242==ERROR: AddressSanitizer: heap-use-after-free on conn 5\n")
    assert rep.rstrip().endswith("==4242==ABORTING")
    assert "bytes ...]" in rep and "before the report" not in rep


def test_dlopen_failure_is_an_error_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        IsolatedLib(str(tmp_path / "no-such-target.so"))


def test_close_ends_the_child_and_sigint_is_ignored() -> None:
    iso = IsolatedLib(None)
    pid = iso.pid
    os.kill(pid, signal.SIGINT)          # Ctrl-C reaches the whole process group
    time.sleep(0.05)
    opts = ffi.new("struct nrt_opts *")
    iso.nrt_opts_default(opts)
    assert iso.alive and opts.max_queue_depth > 0
    iso.close()
    assert _gone(pid)
    with pytest.raises(RuntimeError, match="closed"):
        iso.nrt_opts_default(opts)
    iso.close()   # idempotent

    other = IsolatedLib(None)
    pid = other.pid
    del other      # garbage collection ends the child too
    assert _gone(pid)


def test_child_dies_with_its_parent(helper: str) -> None:
    """A parent that dies (even with a call in flight) takes the child with it."""
    script = textwrap.dedent(f"""
        import os, sys, threading, time
        sys.path.insert(0, {str(ROOT)!r})
        from impl._nrt import ffi
        from impl.isolation import IsolatedLib
        iso = IsolatedLib({helper!r}, watchdog_s=60)
        print(iso.pid, flush=True)
        threading.Thread(target=iso.nrt_rig_port_down, args=(ffi.NULL, 1), daemon=True).start()
        time.sleep(0.2)
        os._exit(0)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=30, check=True)
    pid = int(out.stdout.split()[0])
    end = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < end:
        time.sleep(0.02)
    assert _gone(pid)


def test_interrupt_mid_call_ends_the_child(helper: str) -> None:
    """An exception in the parent while a reply is outstanding (Ctrl-C) must not leave the
    channel out of step: the child is ended and later calls say so."""
    if signal.getitimer(signal.ITIMER_REAL) != (0.0, 0.0) or \
            signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, None):
        pytest.skip("SIGALRM is in use (pytest-timeout)")

    class Interrupt(Exception):
        pass

    def on_alarm(signum: int, frame: object) -> None:
        raise Interrupt

    iso = IsolatedLib(helper, watchdog_s=10)
    pid = iso.pid
    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Interrupt):
            iso.nrt_rig_port_down(ffi.NULL, 1)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert _gone(pid)
    with pytest.raises(TargetCrashed) as exc:
        iso.nrt_rig_progress(ffi.NULL)
    assert exc.value.kind == "interrupted"
    assert "waiting for port 1 forever" in exc.value.report


def test_a_forked_copy_cannot_use_the_parents_child() -> None:
    """A process forked from the owner (multiprocessing, say) shares the pipes: its copy
    must refuse calls and must not end the owner's child when it is collected."""
    with IsolatedLib(None) as iso:
        opts = ffi.new("struct nrt_opts *")
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                iso.nrt_opts_default(opts)
            except RuntimeError as exc:
                code = 0 if "belongs to process" in str(exc) else 2
            finally:
                iso.close()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        iso.nrt_opts_default(opts)
        assert iso.alive and opts.max_queue_depth > 0


def test_bench_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    from impl import isolation

    assert isolation.main(["--bench", "-n", "200"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    figures = json.loads(last)
    for key in ("fork_ms", "nrt_rig_progress_us_inproc", "nrt_rig_progress_us_isolated",
                "nrt_rig_run_32_us_isolated", "nrt_rig_qpair_info_us_isolated"):
        assert figures[key] > 0, key
    assert figures["nrt_rig_progress_us_isolated"] > figures["nrt_rig_progress_us_inproc"]


def test_a_crash_report_names_the_function_and_line_of_each_target_frame(
        tmp_path: Path) -> None:
    if shutil.which("gcc") is None or shutil.which("nm") is None:
        pytest.skip("gcc and nm (binutils) are needed to build and read the frame's library")
    src = tmp_path / "sym.c"
    src.write_text("int marker_function(int x)\n{\n    return x * 3;\n}\n")
    so = tmp_path / "libsym.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-g", "-O0", "-o", str(so), str(src)],
                   check=True)
    nm = subprocess.run(["nm", str(so)], capture_output=True, text=True, check=True).stdout
    addr = next(int(ln.split()[0], 16) for ln in nm.splitlines()
                if ln.endswith(" marker_function"))
    report = "\n".join([
        "fatal signal, backtrace:",
        f"{so}(+{addr + 4:#x})[0x7f0000001000]",
        "/usr/lib/libpython3.11.so.1.0(_PyObject_Call+0x54)[0x7f0000002000]",
        "/usr/lib/libpython3.11.so.1.0(+0x250a40)[0x7f0000003000]",
        "/usr/lib/python3/_cffi_backend.cpython-311-x86_64-linux-gnu.so(+0x29052)[0x7f00]",
        "after the frames",
    ])
    out = symbolized(report)
    lines = out.splitlines()
    assert lines[1].startswith(f"{so}(+") and "marker_function at " in lines[1]
    assert f"{src.name}:" in lines[1]
    assert lines[2] == "(3 frames of the Python interpreter)"
    assert lines[3] == "after the frames"
