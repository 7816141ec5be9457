#!/usr/bin/env bash
# impl/tools/sanitize.sh — the target's tests and the ci conformance gate against an
# AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer) build of impl._nrt.
#
# Normally run as `tox -e sanitize`, which builds the instrumented extension from an sdist
# into .tox/sanitize's site-packages (the source tree's in-place impl/_nrt*.so is never
# touched) and then runs this script with that venv's python.  By hand:
#   PYTHON=/path/to/venv/bin/python impl/tools/sanitize.sh [pytest args for both runs]
# SANITIZE_SUITES="target gate spdk" (default) picks the suites: "target" alone takes
# seconds; "spdk" is impl/tools/sanitize_spdk.sh (SPDK's rdma.c and the adapter built with
# the sanitizers, from SANITIZE_SPDK_SRC, default ../shared/spdk/v26.05).
#
# Python itself is not instrumented, so the ASan runtime the extension links against is
# LD_PRELOADed into python (and only python: never into bash, whose own leaks LSan would
# report).  Leak detection is ON: PYTHONMALLOC=malloc makes every Python object a malloc
# block LSan can scan, and impl/tools/lsan-python.supp silences the three allocation sites
# in CPython/cffi that are deliberately never freed (see that file).
#
# Every ASan/LSan report goes to a file under the run's work directory (log_path), from
# every process (pytest, xdist workers).  gcc's separate libubsan ignores log_path, so UBSan
# reports are counted from stderr instead: pytest runs with --capture=sys (C-level writes to
# fd 2 are not swallowed by pytest's capture, even when the process aborts) and stderr is
# copied to a log.  The script prints every report and fails if there is any, whatever
# pytest said.  Each report also aborts the process that hit it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PYTHON:-python}"
die() { echo "sanitize.sh: $*" >&2; exit 2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/nrt-sanitize.XXXXXX")"
REPORTS="$WORK/reports"
ERRLOG="$WORK/stderr.log"
mkdir -p "$REPORTS"
: > "$ERRLOG"
# Not the source tree: `python -m pytest` puts the cwd first on sys.path, and the tree's
# impl/ would then shadow the installed, instrumented package.
cd "$WORK"

# Find the installed extension without importing it (importing needs the preload).
SO="$("$PY" - <<'EOF'
import importlib.util, pathlib
spec = importlib.util.find_spec("impl")
if spec is None or not spec.submodule_search_locations:
    raise SystemExit("package impl is not installed in this python")
sos = sorted(pathlib.Path(next(iter(spec.submodule_search_locations))).glob("_nrt*.so"))
if len(sos) != 1:
    raise SystemExit(f"expected one impl/_nrt*.so, found {[str(s) for s in sos]}")
print(sos[0].resolve())
EOF
)" || die "cannot locate impl._nrt"
case "$SO" in
    "$ROOT"/impl/*) die "$SO is the source tree's in-place build; install the package (tox -e sanitize)" ;;
esac
LIBASAN="$(ldd "$SO" | awk '$1 ~ /^libasan/ { print $3 }')"
[[ -f "$LIBASAN" ]] || die "$SO does not link libasan: not an ASan build (NRT_CFLAGS/NRT_LDFLAGS?)"
grep -q __ubsan_handle_ "$SO" || die "$SO has no UBSan instrumentation"
echo "impl._nrt under test: $SO"
echo "ASan runtime preloaded: $LIBASAN"

sanitized() {
    env LD_PRELOAD="$LIBASAN" \
        PYTHONMALLOC=malloc \
        ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=1:log_path=$REPORTS/asan" \
        LSAN_OPTIONS="suppressions=$ROOT/impl/tools/lsan-python.supp:print_suppressions=0" \
        UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1" \
        PYTHONPATH="$ROOT/impl/tools" \
        NRT_EXPECT_OUTSIDE="$ROOT/impl" NRT_EXPECT_SANITIZED=1 \
        "$PY" "$@"
}

status=0
run() {   # run ARGS...: sanitized python ARGS, stderr also copied to $ERRLOG
    local rc
    set +e
    { sanitized "$@" </dev/null 2>&1 1>&3 3>&- | tee -a "$ERRLOG" >&2; rc=${PIPESTATUS[0]}; } 3>&1
    set -e
    ((rc == 0)) || status=$rc
}

run -c 'import impl._nrt as m; print("imported:", m.__file__)'

PYTEST=(-m pytest --import-mode=importlib --capture=sys -p no:cacheprovider -p pytest_nrt_build -q)
SUITES=" ${SANITIZE_SUITES:-target gate spdk} "
if [[ "$SUITES" == *" target "* ]]; then
    echo "=== target tests: $ROOT/tests/target"
    run "${PYTEST[@]}" "$ROOT/tests/target" "$@"
fi
if [[ "$SUITES" == *" gate "* ]]; then
    echo "=== ci conformance gate: $ROOT/conformance (profile ci)"
    run "${PYTEST[@]}" -n 2 --nrt-profile ci "$ROOT/conformance" "$@"
fi

if [[ "$SUITES" == *" spdk "* ]]; then
    echo "=== SPDK's rdma.c under the sanitizers: impl/tools/sanitize_spdk.sh"
    set +e
    PYTHON="$PY" bash "$ROOT/impl/tools/sanitize_spdk.sh" ${SANITIZE_SPDK_SRC:+"$SANITIZE_SPDK_SRC"}
    rc=$?
    set -e
    ((rc == 0)) || status=$rc
fi

shopt -s nullglob
reports=("$REPORTS"/*)
for r in "${reports[@]}"; do
    echo "----- ASan/LSan report: $r"
    cat "$r"
done
ubsan="$(grep -c 'runtime error:' "$ERRLOG" || true)"
if ((ubsan)); then
    echo "----- UBSan reports (from $ERRLOG)"
    grep -A12 'runtime error:' "$ERRLOG"
fi
echo "=== sanitizer reports: $((${#reports[@]} + ubsan)) (ASan/LSan: ${#reports[@]}, UBSan: $ubsan)"
if ((${#reports[@]} + ubsan)); then
    exit 1
fi
exit "$status"
