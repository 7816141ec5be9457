#!/usr/bin/env bash
# impl/tools/memcheck.sh — valgrind memcheck over the C target, in two phases:
#
#   1. python: the target's tests (tests/target) in CPython under valgrind, against the
#      installed impl._nrt (tox -e valgrind builds it -O1 -g into .tox/valgrind; the source
#      tree's in-place .so is neither used nor touched).  PYTHONMALLOC=malloc; CPython/cffi
#      noise is filtered by impl/tools/valgrind-python.supp (each entry explained there).
#   2. c: the fuzz harness (impl/csrc/fuzz_capsule.c with the target, the rig and simverbs,
#      standalone replay build, gcc -O1 -g) over the seed corpus impl/fuzz/corpus/ (+ any
#      MEMCHECK_CORPUS dirs), pure C, with no suppressions at all and every leak kind counted.
#
# Usage: impl/tools/memcheck.sh [pytest args for phase 1]
#   PYTHON=...            the python whose site-packages hold impl._nrt (default: python)
#   MEMCHECK_PHASES=...   "python c" (default), or just one of them
#   MEMCHECK_CORPUS=...   extra corpus directories for phase 2 (space-separated), e.g. the
#                         fuzzer's working corpus .tox/fuzz/work/corpus
#   MEMCHECK_TRACK_ORIGINS=0  skip --track-origins (faster, less telling)
# Exit status: 0 only if every phase reports 0 errors (valgrind --error-exitcode=1).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PYTHON:-python}"
PHASES="${MEMCHECK_PHASES:-python c}"
die() { echo "memcheck.sh: $*" >&2; exit 2; }
command -v valgrind >/dev/null || die "valgrind not found (Debian: apt-get install valgrind)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/nrt-memcheck.XXXXXX")"
START_DIR="$PWD"
cd "$WORK"   # not the source tree, so the installed impl package is the one imported
echo "work directory: $WORK"

VALGRIND=(valgrind --tool=memcheck --error-exitcode=1 --leak-check=full --num-callers=30)
# Where an uninitialised value came from; roughly doubles the time.  MEMCHECK_TRACK_ORIGINS=0
# to go faster when you only want the count.
[[ "${MEMCHECK_TRACK_ORIGINS:-1}" == 0 ]] || VALGRIND+=(--track-origins=yes)
status=0
summary=()

errors_in() {   # errors_in LOG...: the sum of the ERROR SUMMARY counts
    awk '/ERROR SUMMARY:/ { n += $4 } END { print n + 0 }' "$@"
}

if [[ " $PHASES " == *" python "* ]]; then
    echo "=== phase python: valgrind $PY -m pytest $ROOT/tests/target"
    SO="$("$PY" -c 'import impl._nrt as m; print(m.__file__)')" || die "impl._nrt not importable"
    case "$(realpath "$SO")" in
        "$ROOT"/impl/*) die "$SO is the source tree's in-place build; install the package (tox -e valgrind)" ;;
    esac
    echo "impl._nrt under test: $SO"
    start=$SECONDS
    rc=0
    PYTHONMALLOC=malloc PYTHONPATH="$ROOT/impl/tools" NRT_EXPECT_OUTSIDE="$ROOT/impl" \
        "${VALGRIND[@]}" --errors-for-leak-kinds=definite --show-leak-kinds=definite \
        --suppressions="$ROOT/impl/tools/valgrind-python.supp" \
        --log-file="$WORK/python.%p.log" \
        "$PY" -m pytest --import-mode=importlib -p no:cacheprovider -p pytest_nrt_build -q \
        "$ROOT/tests/target" "$@" </dev/null || rc=$?
    n="$(errors_in "$WORK"/python.*.log)"
    if ((rc || n)); then
        status=1
        for log in "$WORK"/python.*.log; do echo "----- $log"; cat "$log"; done
    fi
    grep -h -E "definitely lost:|suppressed:|ERROR SUMMARY:" "$WORK"/python.*.log |
        sed 's/^==[0-9]*== */valgrind: /' || true
    summary+=("python phase: $n valgrind errors, pytest exit $rc, $((SECONDS - start)) s")
fi

if [[ " $PHASES " == *" c "* ]]; then
    echo "=== phase c: valgrind fuzz_capsule (standalone replay) over the seed corpus"
    command -v gcc >/dev/null || die "gcc not found"
    sources=("$ROOT"/impl/simverbs/*.c)
    for f in "$ROOT"/impl/csrc/*.c; do
        [[ "$(basename "$f")" == fuzz_* ]] || sources+=("$f")
    done
    gcc -std=gnu11 -O1 -g -Wall -Wextra -Werror -fno-strict-aliasing -DNRT_FUZZ_STANDALONE \
        -I"$ROOT/impl/csrc" "${sources[@]}" "$ROOT/impl/csrc/fuzz_capsule.c" -o "$WORK/fuzz_replay"
    inputs=("$ROOT"/impl/fuzz/corpus/*)
    for d in ${MEMCHECK_CORPUS:-}; do   # absolute, or relative to the cwd or the tree
        [[ "$d" == /* ]] || { [[ -d "$START_DIR/$d" ]] && d="$START_DIR/$d"; } || d="$ROOT/$d"
        [[ -d "$d" ]] || die "MEMCHECK_CORPUS: no directory $d"
        inputs+=("$d"/*)
    done
    start=$SECONDS
    rc=0
    "${VALGRIND[@]}" --errors-for-leak-kinds=all --show-leak-kinds=definite,indirect,possible \
        --log-file="$WORK/c.log" "$WORK/fuzz_replay" "${inputs[@]}" >/dev/null || rc=$?
    n="$(errors_in "$WORK/c.log")"
    if ((rc || n)); then
        status=1
        cat "$WORK/c.log"
    fi
    grep -h -E "definitely lost:|ERROR SUMMARY:|All heap blocks were freed" "$WORK/c.log" |
        sed 's/^==[0-9]*== */valgrind: /' || true
    summary+=("c phase: $n valgrind errors over ${#inputs[@]} inputs, exit $rc, $((SECONDS - start)) s")
fi

echo "=== memcheck summary"
printf '%s\n' "${summary[@]}"
exit "$status"
