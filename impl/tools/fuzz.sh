#!/usr/bin/env bash
# impl/tools/fuzz.sh — build and run the coverage-guided capsule fuzzer
# (impl/csrc/fuzz_capsule.c, libFuzzer + ASan + UBSan) for a bounded time.
#
# Usage: impl/tools/fuzz.sh [-t SECONDS] [--coverage] [--regen-corpus] [-- LIBFUZZER ARGS...]
#   -t SECONDS        total fuzzing time (default: $FUZZ_TIME, else 60)
#   --coverage        afterwards, replay the corpus through a source-coverage build and print
#                     llvm-cov's per-file line/branch coverage of impl/csrc (fuzz_* excluded)
#   --regen-corpus    rewrite the committed seeds impl/fuzz/corpus/ and regression inputs
#                     impl/fuzz/regressions/ from impl/fuzz/make_corpus.c and exit
#   --replay FILE...  run the fuzzer binary once on each FILE (a crash reproducer) and exit
#   --msan PATH...    replay files (or every file of directories) through a MemorySanitizer
#                     build of the harness: uninitialised reads, which ASan cannot see; stops
#                     at the first report and names the input
# Environment:
#   FUZZ_OUT   build and work directory (default: build/fuzz; tox -e fuzz: .tox/fuzz/work)
#   CC         a clang with libFuzzer (default: clang)
#
# The working corpus (FUZZ_OUT/corpus) grows across runs; the committed seeds are read, never
# written.  A crash, leak, timeout or property violation stops the run, leaves the input in
# FUZZ_OUT/artifacts/ and makes the script exit non-zero; replay it with --replay FILE.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${FUZZ_OUT:-$ROOT/build/fuzz}"
CC="${CC:-clang}"
TIME="${FUZZ_TIME:-60}"
COVERAGE=0
REGEN=0
REPLAY=0
EXTRA=()
die() { echo "fuzz.sh: $*" >&2; exit 2; }

while (($#)); do
    case "$1" in
        -t) TIME="$2"; shift 2 ;;
        --coverage) COVERAGE=1; shift ;;
        --regen-corpus) REGEN=1; shift ;;
        --replay) REPLAY=1; shift; break ;;
        --msan) REPLAY=2; shift; break ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument $1 (libFuzzer arguments go after --)" ;;
    esac
done

command -v "$CC" >/dev/null || die "$CC not found: install clang (Debian: apt-get install clang)"
mkdir -p "$OUT/corpus" "$OUT/artifacts" "$OUT/seeds"
CSRC="$ROOT/impl/csrc"
TARGET_SOURCES=()   # the target and the rig: what --coverage reports on
for f in "$CSRC"/*.c; do
    [[ "$(basename "$f")" == fuzz_* ]] || TARGET_SOURCES+=("$f")
done
# ... plus simverbs, the simulated RDMA provider the target's verbs calls run on
SOURCES=("${TARGET_SOURCES[@]}" "$ROOT"/impl/simverbs/*.c)
CFLAGS=(-std=gnu11 -g -O1 -Wall -Wextra -fno-strict-aliasing -fno-omit-frame-pointer -I"$CSRC")

# The seed generator (plain C, any compiler).
"$CC" "${CFLAGS[@]}" -Werror "$ROOT/impl/fuzz/make_corpus.c" -o "$OUT/make_corpus"
if ((REGEN)); then
    rm -f "$ROOT"/impl/fuzz/corpus/seed-*
    "$OUT/make_corpus" "$ROOT/impl/fuzz/corpus" "$ROOT/impl/fuzz/regressions"
    exit 0
fi
rm -f "$OUT"/seeds/*
"$OUT/make_corpus" "$OUT/seeds" >/dev/null

# libFuzzer + ASan + UBSan (every UB check fatal).  Warnings in the target are not fatal
# here: gcc's -Werror build (impl/_build.py) is the one that polices them.
echo "=== build: $CC -fsanitize=fuzzer,address,undefined -> $OUT/fuzz_capsule"
"$CC" --version | head -1
"$CC" "${CFLAGS[@]}" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    "${SOURCES[@]}" "$CSRC/fuzz_capsule.c" -o "$OUT/fuzz_capsule" ||
    die "build failed (libFuzzer needs clang's runtime: Debian package libclang-rt-dev)"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}"

if ((REPLAY == 1)); then
    (($#)) || die "--replay needs files"
    exec "$OUT/fuzz_capsule" "$@"
fi
if ((REPLAY == 2)); then
    (($#)) || die "--msan needs files or directories"
    "$CC" "${CFLAGS[@]}" -fsanitize=memory -fsanitize-memory-track-origins=2 \
        -DNRT_FUZZ_STANDALONE "${SOURCES[@]}" "$CSRC/fuzz_capsule.c" -o "$OUT/replay_msan"
    n=0
    for path in "$@"; do
        while IFS= read -r -d '' f; do
            n=$((n + 1))
            if ! "$OUT/replay_msan" "$f" >/dev/null; then
                echo "fuzz.sh: MemorySanitizer report on input $f (replay: FUZZ_TRACE=1 $OUT/replay_msan $f)" >&2
                exit 1
            fi
        done < <(find "$path" -type f -print0 | sort -z)
    done
    echo "msan: $n inputs, no report"
    exit 0
fi

LOG="$OUT/fuzz.log"
echo "=== fuzz for ${TIME} s (log: $LOG; corpus: $OUT/corpus + impl/fuzz/corpus + fresh seeds)"
rm -f "$OUT"/artifacts/*
set +e
"$OUT/fuzz_capsule" "$OUT/corpus" "$ROOT/impl/fuzz/corpus" "$OUT/seeds" \
    -max_total_time="$TIME" -timeout=10 -max_len=8192 -print_final_stats=1 \
    -artifact_prefix="$OUT/artifacts/" "${EXTRA[@]}" 2>&1 | tee "$LOG" |
    grep -v -E --line-buffered '^(#[0-9]+[[:space:]]+(NEW|REDUCE) |"|###### |[[:space:]]+NEW_FUNC)'
rc=${PIPESTATUS[0]}
set -e

shopt -s nullglob
artifacts=("$OUT"/artifacts/*)
echo "=== fuzz summary"
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$LOG" || true
grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE|INITED)' "$LOG" | tail -1 | sed 's/^/last status: /' || true
echo "corpus: $(find "$OUT/corpus" -type f | wc -l) inputs in $OUT/corpus"
echo "artifacts (crash/leak/timeout/oom inputs): ${#artifacts[@]}"
for a in "${artifacts[@]}"; do
    echo "  $a   (replay: impl/tools/fuzz.sh --replay $a)"
done

if ((COVERAGE)); then
    echo "=== source coverage of impl/csrc over the corpus"
    PROFDATA="$(command -v llvm-profdata || true)"
    COV="$(command -v llvm-cov || true)"
    [[ -n "$PROFDATA" && -n "$COV" ]] || die "--coverage needs llvm-profdata and llvm-cov (Debian: llvm)"
    "$CC" "${CFLAGS[@]}" -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping \
        "${SOURCES[@]}" "$CSRC/fuzz_capsule.c" -o "$OUT/fuzz_capsule_cov"
    rm -f "$OUT"/cov-*.profraw
    LLVM_PROFILE_FILE="$OUT/cov-%p.profraw" "$OUT/fuzz_capsule_cov" -runs=0 \
        "$OUT/corpus" "$ROOT/impl/fuzz/corpus" "$OUT/seeds" >/dev/null 2>&1 || true
    "$PROFDATA" merge -sparse "$OUT"/cov-*.profraw -o "$OUT/cov.profdata"
    "$COV" report "$OUT/fuzz_capsule_cov" -instr-profile="$OUT/cov.profdata" \
        "${TARGET_SOURCES[@]}" | tee "$OUT/coverage.txt"
fi

if ((${#artifacts[@]})) && ((rc == 0)); then
    rc=1
fi
exit "$rc"
