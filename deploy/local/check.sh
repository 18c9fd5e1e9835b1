#!/usr/bin/env bash
# Analysis builds with clang, each in its own build dir (build-<kind>), apart from the g++ build:
#
#   deploy/local/check.sh thread-safety   every target with -Wthread-safety -Werror=thread-safety
#                                         (checks the ABSL_GUARDED_BY / ABSL_*_LOCKS_* annotations)
#   deploy/local/check.sh asan [args]     the unit tier under AddressSanitizer + UBSan
#   deploy/local/check.sh tsan [args]     the unit tier under ThreadSanitizer
#
# CHECK_TIER=kafka runs the kafka tier instead of the unit tier (a broker at SEQUENCES_BOOTSTRAP,
# e.g. from deploy/local/kafka.sh start), e.g.
#   SEQUENCES_BOOTSTRAP=127.0.0.1:19092 CHECK_TIER=kafka deploy/local/check.sh asan
# TSan cannot run the kafka tier: Debian's librdkafka starts its threads with C11 thrd_create,
# which clang 14's TSan does not intercept, so the first malloc on such a thread crashes inside
# the TSan allocator (seen 2026-11-30: every kafka test SEGV in rdk:broker threads). The unit tier
# covers our own threads under TSan.
#
# Extra args go to ctest (e.g. `-R store_test`). CHECK_TARGETS=<ninja targets> builds only those
# (default: every target for thread-safety, the unit tier for the sanitizers), e.g.
#   CHECK_TARGETS=sequence_api_api_test deploy/local/check.sh tsan -R sequence_api_api_test
# Exits non-zero on a warning of the analysis, a sanitizer report or a failing test. Not part of
# deploy/local/test.sh (they take minutes each; the durations are in the README). Installs what is
# missing first (deploy/local/install-deps.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
kind=${1:-}
shift || true
case "$kind" in
  thread-safety | asan | tsan) ;;
  *)
    echo "usage: $0 thread-safety|asan|tsan [ctest args]" >&2
    exit 2
    ;;
esac
t0=$SECONDS
"$root/deploy/local/install-deps.sh" >/dev/null
build=${CHECK_BUILD_DIR:-$root/build-$kind}

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
configure() {
  if [ ! -f "$build/build.ninja" ]; then
    CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja "${launcher[@]}" "$@" >/dev/null
  fi
}

case "$kind" in
  thread-safety)
    # Unoptimized, no debug info: only the diagnostics matter.
    configure -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-Wthread-safety -Werror=thread-safety"
    ninja -C "$build" ${NINJA_FLAGS:-} ${CHECK_TARGETS:-}
    echo "check: thread-safety clean in $((SECONDS - t0))s"
    exit 0
    ;;
  asan)
    flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    ;;
  tsan)
    flags="-fsanitize=thread -fno-omit-frame-pointer"
    # tsan.supp: data guarded by Debian's uninstrumented absl::Mutex (see the file).
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$root/deploy/local/tsan.supp}
    ;;
esac
configure -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS="-O1 $flags" \
  -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags"
tier=${CHECK_TIER:-unit}
ninja -C "$build" ${NINJA_FLAGS:-} ${CHECK_TARGETS:-$tier-tests}
status=0
SEQUENCES_BUILD_DIR=$build ctest --test-dir "$build" --output-on-failure -j2 --timeout 600 \
  -L "^$tier\$" "$@" || status=$?
echo "check: $kind finished in $((SECONDS - t0))s with status $status"
exit $status
