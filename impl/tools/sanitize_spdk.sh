#!/usr/bin/env bash
# impl/tools/sanitize_spdk.sh — the gate's machines against SPDK's rdma.c and the SPDK
# adapter built with AddressSanitizer + UndefinedBehaviorSanitizer; any sanitizer report
# fails the run.
#
#   impl/tools/sanitize_spdk.sh [SPDK_TREE]        (default: ../shared/spdk/v26.05)
#
# Environment: PYTHON (default .venv/bin/python), SANITIZE_SPDK_MACHINES (default
# StarvationMachine,ContentionMachine), SANITIZE_SPDK_EXAMPLES (examples per machine,
# default 25).  `tox -e sanitize` runs it as its "spdk" suite; `.ci/run` runs a short pass.
#
# What is judged here is the sanitizers' verdict, not the gate's: the judge's findings
# against SPDK (property failures that are SPDK's or ours to triage) are printed, while
# the exit status says whether any memory error or undefined behaviour was reported.  The
# SPDK library is built into its own cache (the flags are part of the key), the ASan
# runtime is preloaded into python (nothing else is instrumented), and each transport runs
# in a forked child (the SPDK target's default), so a report ends that child: ASan's goes
# to log_path, UBSan's (gcc's libubsan ignores log_path) reaches the judge as a CRASH-1
# finding with the report in its message.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
TREE="${1:-$ROOT/../shared/spdk/v26.05}"
MACHINES="${SANITIZE_SPDK_MACHINES:-StarvationMachine,ContentionMachine}"
EXAMPLES="${SANITIZE_SPDK_EXAMPLES:-25}"
die() { echo "sanitize_spdk.sh: $*" >&2; exit 2; }

[[ -f "$TREE/lib/nvmf/rdma.c" ]] || die "no SPDK tree at $TREE"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/nrt-sanitize-spdk.XXXXXX")"
mkdir -p "$WORK/reports"

export NRT_SPDK_CACHE="$ROOT/build/spdk-sanitize"
export NRT_SPDK_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
cd "$ROOT"
echo "=== building SPDK's rdma.c from $TREE with ASan + UBSan"
"$PY" -m impl.spdk.build "$TREE" >&2
LIBASAN="$(gcc -print-file-name=libasan.so)"
[[ -f "$LIBASAN" ]] || die "gcc has no libasan.so"

echo "=== judge: $MACHINES, $EXAMPLES examples each, under the sanitizers"
set +e
env LD_PRELOAD="$LIBASAN" \
    ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:log_path=$WORK/reports/asan" \
    UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1" \
    NRT_TARGET=spdk NRT_SPDK_SRC="$TREE" \
    "$PY" -m conformance.judge --target spdk --spdk-src "$TREE" --machines "$MACHINES" \
        --max-examples "$EXAMPLES" --shrink-seconds 10 --jobs 1 --json "$WORK/verdict.json" \
        </dev/null >"$WORK/judge.out" 2>"$WORK/judge.err"
judge_rc=$?
set -e
tail -n 40 "$WORK/judge.out"
((judge_rc <= 1)) || { tail -n 60 "$WORK/judge.err"; die "the judge failed to run (exit $judge_rc)"; }

shopt -s nullglob
reports=("$WORK"/reports/*)
for r in "${reports[@]}"; do
    echo "----- ASan report: $r"
    cat "$r"
done
ubsan="$("$PY" - "$WORK/verdict.json" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))
hits = [f for f in v["findings"] if f["property"] == "CRASH-1"
        and ("runtime error:" in f["message"] or "Sanitizer" in f["message"])]
for f in hits:
    print(f["message"], file=sys.stderr)
print(len(hits))
EOF
)"
echo "=== sanitizer reports: $((${#reports[@]} + ubsan)) (ASan: ${#reports[@]}, in crash findings: $ubsan)"
((${#reports[@]} + ubsan == 0))
