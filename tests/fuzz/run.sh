#!/usr/bin/env bash
# Builds the libFuzzer targets with clang into build-fuzz/ and runs each for a bounded time.
#
#   tests/fuzz/run.sh                     every target, FUZZ_SECONDS each (default 25)
#   tests/fuzz/run.sh short               the test command's smoke run (ctest fuzz.short): every
#                                         target FUZZ_SECONDS each (default 3)
#   FUZZ_SECONDS=3600 tests/fuzz/run.sh   a long run
#   tests/fuzz/run.sh tokens render       some targets only
#   tests/fuzz/run.sh build               build only
#   tests/fuzz/run.sh seeds               rewrite the committed seed corpora (tests/fuzz/corpus/)
#
# Each target starts from its committed seeds (tests/fuzz/corpus/<target>/) plus what earlier runs
# found (build-fuzz/corpus/<target>/, kept between runs, never committed). A crash, a sanitizer
# report or a broken property stops that target; its input is kept in
# build-fuzz/artifacts/<target>/ and the script exits non-zero after running the others.
# Reproduce one: build-fuzz/tests/fuzz/fuzz_<target> <file>.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-25}
if [ "${1:-}" = short ]; then
  seconds=${FUZZ_SECONDS:-3}
  shift
fi
all_targets=(request envelope tokens render)

"$root/deploy/local/install-deps.sh" >/dev/null

if [ ! -f "$build/build.ninja" ]; then
  launcher=()
  if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DSEQUENCES_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS=-O1 "${launcher[@]}" >/dev/null
fi
if ! ninja -C "$build" ${NINJA_FLAGS:-} >"$build/ninja.log" 2>&1; then
  cat "$build/ninja.log"
  echo "fuzz: the build of $build failed"
  exit 1
fi

case "${1:-}" in
  build) exit 0 ;;
  seeds)
    rm -rf "$root/tests/fuzz/corpus"
    "$build/tests/fuzz/fuzz_make_seeds" "$root/tests/fuzz/corpus"
    echo "fuzz: seeds written to tests/fuzz/corpus/"
    exit 0
    ;;
esac

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=("${all_targets[@]}"); fi

# Leaks count as failures; UBSan stops at the first report (the build also sets no-recover).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
for t in "${targets[@]}"; do
  corpus=$build/corpus/$t
  artifacts=$build/artifacts/$t
  log=$build/logs/$t.log
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  t0=$SECONDS
  status=0
  # -timeout: one input running longer than 10 s is a hang (reported like a crash).
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "$corpus" "$root/tests/fuzz/corpus/$t" >"$log" 2>&1 || status=$?
  stats=$(grep -aE '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
  if [ $status -eq 0 ]; then
    echo "fuzz: $t ok: ${stats:-?} inputs in $((SECONDS - t0))s"
  else
    failed+=("$t")
    echo "fuzz: $t FAILED (exit $status) after $((SECONDS - t0))s; input kept in $artifacts/:"
    grep -aE 'FUZZ_CHECK|ERROR:|runtime error|SUMMARY|Test unit written' "$log" | head -20 || true
    echo "fuzz: full log $log"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets passed (${seconds}s each)"
