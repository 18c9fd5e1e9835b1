#!/usr/bin/env bash
# Runs every benchmark side by side against one private broker and writes
#   tests/bench/results/<UTC timestamp>/results.json   every figure, with its baseline and ratio
#   tests/bench/results/<UTC timestamp>/*.png          plots (lateness histogram, throughput)
# and prints a table. Sizes are flags (environment variables):
#   BENCH_SCALE=small|default|full   small: a minute; default: under 15 minutes; full: the issue's
#                                    sizes (1,000,000 and 10,000,000 enrollments; hours)
#   BENCH_KAFKA_PORT                 broker port (default 39092)
#   BENCH_ONLY=peers                 only the pass-through baseline and the executor's and the
#                                    peers' figures (throughput, timer burst, lateness at 1000/s)
#   BENCH_ONLY=api                   only the API's ghz figures and their produce baselines
#   BENCH_API_BEFORE=<binary>        also measure that sequence-api binary (e.g. main's), alongside
#                                    and alternating with this build's (figures *-before)
#   BENCH_ONLY=limits                only send limits on against off (executor-limits: throughput
#                                    and steady lateness, automatic emails through the sender
#                                    stage vs. the same emails as drafts; ratios in the report)
#   BENCH_ONLY=replay                only the throughput run and its replay against the raw consume
#                                    (the cheapest run that yields the replay ratio)
#   BENCH_ONLY=memory                only executor-memory and executor-recovery: the throughput run
#                                    (no replay) holding each of BENCH_MEMORY_COUNTS enrollments
#                                    (default "1000000 3000000"; figures @<count>), with the parts
#                                    of the resident set at its peak (at_peak_*: heap, dirty pages,
#                                    RocksDB cache and memtables) and its CPU per enrollment
#   BENCH_MEMORY_BEFORE=<dir>        also with the step-executor of that build directory, before
#                                    this build's at each count (figures @<count>,before)
#   BENCH_MEMORY_ROUNDS              rounds of that alternation (default 1)
#   BENCH_ONLY=scaleout              only the throughput workload with 1, 2 and 3 executors in one
#                                    group (executor-scaleout@N; ratios against @1)
#   BENCH_ONLY=rebalance             only lateness with a join and a kill -9 (executor-lateness:
#                                    steady, a second instance joins, kill -9 and restart) at
#                                    BENCH_REBALANCE_RATES (default 5000) steps/s, the executor only
#   BENCH_REBALANCE_BEFORE=<dir>     also run it with the step-executor of that build directory
#                                    (<dir>/services/step-executor/step-executor, e.g. main's),
#                                    alternating with this build's (figures @before)
#   BENCH_REBALANCE_ROUNDS           rounds of that alternation (default 1)
#   BENCH_REPLAY_BASELINE            another step-executor binary (e.g. main's) whose replay is
#                                    timed too, alternating with this build's: before/after in one
#                                    run (executor-replay@baseline; and both on one thread:
#                                    @fold_threads=0, @baseline,fold_threads=0)
#   BENCH_REPLAY_REPEATS             replays per binary, median reported (default 1; 3 for replay)
#   BENCH_PEERS="kafka-streams temporal"  which peers run the same workloads (tests/bench/peers/);
#                                    default kafka-streams (built with Maven on first use); 0: none;
#                                    temporal is opt-in (it adds minutes; Go >= 1.26 for its SDK)
#   BENCH_TEMPORAL_COUNT             workflows for the Temporal peer (default by scale, below)
#   BENCH_LIMITS_BEFORE=<build dir>   with BENCH_ONLY=limits (or the full run): the limits figures
#                                    also with that build's step-executor, named ...@before
#   BENCH_EXECUTOR_FLAGS=--a=1,--b=2 more step-executor flags for the executor-limits figures, e.g.
#                                    --decide_stages_in_batch=false: the send stages' records
#                                    through enrollment-events as before (docs/send-limits.md)
#   BENCH_FIXED_BATCH=1              also run the executor's throughput, burst and lateness with
#                                    a fixed batch of 500 (--min_batch=500 --max_batch=500, its
#                                    behaviour before the adaptive batch): figures named @fixed500
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
scale=${BENCH_SCALE:-default}
case "$scale" in
  small) count=20000; burst=20000; rate_seconds=5; lateness_seconds=15; memory_counts="" ;;
  default) count=200000; burst=200000; rate_seconds=10; lateness_seconds=30; memory_counts="" ;;
  full) count=1000000; burst=1000000; rate_seconds=30; lateness_seconds=60
    memory_counts="10000000" ;;
  *) echo "BENCH_SCALE must be small, default or full" >&2; exit 2 ;;
esac

only=${BENCH_ONLY:-}
case "$only" in
  "" | peers | api | limits | replay | scaleout | rebalance | memory) ;;
  *) echo "BENCH_ONLY must be empty, peers, api, limits, replay, scaleout, rebalance or memory" >&2
    exit 2 ;;
esac
[ "$only" = limits ] && BENCH_PEERS=0
peers=${BENCH_PEERS-kafka-streams}
[ "$peers" = 0 ] && peers=
[ "$only" = replay ] || [ "$only" = scaleout ] || [ "$only" = rebalance ] || [ "$only" = memory ] &&
  peers=
replay_args=(--replay_repeats="${BENCH_REPLAY_REPEATS:-$([ "$only" = replay ] && echo 3 || echo 1)}")
[ -n "${BENCH_REPLAY_BASELINE:-}" ] && replay_args+=(--replay_baseline="$BENCH_REPLAY_BASELINE")
has_peer() { case " $peers " in *" $1 "*) return 0 ;; esac; return 1; }

deploy/local/install-deps.sh --bench
build=${BUILD_DIR:-$root/build}
if [ "$only" = api ] && [ -f "$build/build.ninja" ]; then
  ninja -C "$build" ${NINJA_FLAGS:-} sequences-bench sequence-api  # all that these figures need
elif [ -n "$only" ] && [ -f "$build/build.ninja" ]; then
  ninja -C "$build" ${NINJA_FLAGS:-} sequences-bench step-executor  # all that these figures need
else
  deploy/local/build.sh
fi
# The Kafka Streams peer (Maven; offline after the first build). A failed build skips the peer.
peer_args=()
[ "$only" = api ] && peers=
if has_peer kafka-streams; then
  if tests/bench/peers/kafka-streams/build.sh; then
    peer_args=(--system=kafka-streams --peers_dir="$root/tests/bench/peers")
  else
    echo "bench: the Kafka Streams peer did not build; its figures are skipped" >&2
  fi
fi
bench=$build/tests/bench/sequences-bench

export KAFKA_PORT=${BENCH_KAFKA_PORT:-39092}
export KAFKA_DATA_DIR=/tmp/sequences-bench-kafka-$KAFKA_PORT
export KAFKA_FRESH=1
trap 'deploy/local/kafka.sh stop' EXIT
deploy/local/kafka.sh start
bootstrap=127.0.0.1:$KAFKA_PORT

out=$root/tests/bench/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
raw=$out/raw.jsonl
: >"$raw"

run() {  # a failing benchmark is reported (ERROR in bench.log) and the others still run
  echo "bench: $*" >&2
  "$bench" "$@" --bootstrap="$bootstrap" 2>>"$out/bench.log" | tee -a "$out/bench.log" |
    sed -n 's/^RESULT //p' >>"$raw" || echo "bench: $1 failed, see $out/bench.log" >&2
}

if [ "$only" = replay ]; then
  # The throughput run writes the executor-events; its replay is timed against a raw consume.
  run executor-throughput --count="$count" --build_dir="$build" --work_dir="$out/work" \
    "${replay_args[@]}"
  /usr/bin/python3 tests/bench/report.py "$raw" "$out"
  echo "bench: results in $out"
  exit 0
fi

if [ "$only" = memory ]; then
  # Peak RSS holding N enrollments (each waits 30 days for its second step), this build against
  # another's binary in turn (the load drifts); BENCH_EXECUTOR_FLAGS apply to both.
  rm_state() { find "$out/work" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +; }  # logs stay
  mem_flags=()
  [ -n "${BENCH_EXECUTOR_FLAGS:-}" ] && mem_flags=(--executor_flags="$BENCH_EXECUTOR_FLAGS")
  for round in $(seq "${BENCH_MEMORY_ROUNDS:-1}"); do
    for n in ${BENCH_MEMORY_COUNTS:-1000000 3000000}; do
      if [ -n "${BENCH_MEMORY_BEFORE:-}" ]; then
        run executor-throughput --count="$n" --replay=false --name_suffix="@$n,before" \
          --build_dir="$BENCH_MEMORY_BEFORE" --work_dir="$out/work" ${mem_flags[@]+"${mem_flags[@]}"}
        rm_state  # the state of a run of millions: gigabytes
      fi
      run executor-throughput --count="$n" --replay=false --name_suffix="@$n" \
        --build_dir="$build" --work_dir="$out/work" ${mem_flags[@]+"${mem_flags[@]}"}
      rm_state
    done
  done
  /usr/bin/python3 tests/bench/report.py "$raw" "$out"
  echo "bench: results in $out"
  exit 0
fi

if [ "$only" = scaleout ]; then
  # Same workload, 1, 2 and 3 instances, in turn on the same broker (then 3, 2, 1 again with
  # BENCH_SCALEOUT_ROUNDS=2: the machine's load drifts).
  for round in $(seq "${BENCH_SCALEOUT_ROUNDS:-1}"); do
    order="1 2 3"
    [ $((round % 2)) = 0 ] && order="3 2 1"
    for n in $order; do
      run executor-scaleout --count="$count" --instances="$n" --build_dir="$build" \
        --work_dir="$out/work"
    done
  done
  /usr/bin/python3 tests/bench/report.py "$raw" "$out"
  echo "bench: results in $out"
  exit 0
fi

if [ "$only" = rebalance ]; then
  # The join and the restart, this build against another's binary in turn (the load drifts).
  for round in $(seq "${BENCH_REBALANCE_ROUNDS:-1}"); do
    for rate in ${BENCH_REBALANCE_RATES:-5000}; do
      if [ -n "${BENCH_REBALANCE_BEFORE:-}" ]; then
        run executor-lateness --rate="$rate" --seconds="$lateness_seconds" \
          --build_dir="$BENCH_REBALANCE_BEFORE" --work_dir="$out/work" --name_suffix=@before
      fi
      run executor-lateness --rate="$rate" --seconds="$lateness_seconds" --build_dir="$build" \
        --work_dir="$out/work"
    done
  done
  /usr/bin/python3 tests/bench/report.py "$raw" "$out"
  echo "bench: results in $out"
  exit 0
fi

# Warm-up, not reported: the fresh broker's JIT and transaction coordinator would otherwise slow
# the first figure (at small sizes the pass-through ran at half its rate).
"$bench" kafka-passthrough --count=20000 --batch_max=500 --bootstrap="$bootstrap" \
  >>"$out/bench.log" 2>&1 || true

api_bench() {  # the API, loaded by ghz (tests/bench/api.sh)
  BENCH_OUT=$out BENCH_BOOTSTRAP=$bootstrap SEQUENCES_BUILD_DIR=$build \
    BENCH_RATE_SECONDS=$rate_seconds BENCH_RATES="250 500 1000 2000 4000" tests/bench/api.sh \
    2>>"$out/bench.log" | tee -a "$out/bench.log" | sed -n 's/^RESULT //p' >>"$raw"
}
# Send limits on against off (the sender stage's cost), each side in this one run.
limits_flags=()
[ -n "${BENCH_EXECUTOR_FLAGS:-}" ] && limits_flags=(--executor_flags="$BENCH_EXECUTOR_FLAGS")
limits() {
  # BENCH_LIMITS_BEFORE=<build dir>: that build's step-executor too (@before), each figure before
  # then after (tests/bench/README.md, "Send limits on against off").
  if [ -n "${BENCH_LIMITS_BEFORE:-}" ]; then
    run executor-limits-reached --count="$count" --build_dir="$BENCH_LIMITS_BEFORE" \
      --work_dir="$out/work" --name_suffix=@before
  fi
  run executor-limits-reached --count="$count" "${sys[@]}"
  if [ -n "${BENCH_LIMITS_BEFORE:-}" ]; then
    run executor-limits --count="$count" --rate=1000 --seconds="$lateness_seconds" \
      --build_dir="$BENCH_LIMITS_BEFORE" --work_dir="$out/work" --name_suffix=@before \
      ${limits_flags[@]+"${limits_flags[@]}"}
  fi
  run executor-limits --count="$count" --rate=1000 --seconds="$lateness_seconds" "${sys[@]}" \
    ${limits_flags[@]+"${limits_flags[@]}"}
}
sys=(--build_dir="$build" --work_dir="$out/work")
if [ "$only" = limits ]; then
  limits
  /usr/bin/python3 tests/bench/report.py "$raw" "$out"
  echo "bench: results in $out"
  exit 0
fi

# Baselines: what Kafka alone does for the same shape of work.
[ "$only" = api ] || run kafka-passthrough --count="$count" --batch_max=500  # the executor's --min_batch
if [ -z "$only" ] || [ "$only" = api ]; then
  run kafka-produce-batch --batch=1000 --repeats=20
  for rate in 250 500 1000 2000 4000; do
    run kafka-produce-rate --rate="$rate" --seconds="$rate_seconds"
  done
fi
if [ "$only" = api ]; then
  api_bench
  /usr/bin/python3 tests/bench/report.py "$raw" "$out"
  echo "bench: results in $out"
  exit 0
fi

# The Temporal peer (BENCH_PEERS=temporal): the same workload on a Temporal dev server and a Go
# SDK worker, on the same broker (tests/bench/peers/temporal/README.md). It holds fewer
# enrollments than the executor: its figures carry their own `enrollments`.
peer_temporal() {
  local bin n
  case "$scale" in small) n=2000 ;; default) n=20000 ;; full) n=50000 ;; esac
  n=${BENCH_TEMPORAL_COUNT:-$n}
  bin=$(tests/bench/peers/temporal/install.sh 2>>"$out/bench.log") ||
    { echo "bench: the Temporal peer did not install, see $out/bench.log" >&2; return 0; }
  # The plain activity (what the issue asked for), then Temporal's tuning for short effects.
  # Lateness at 20 steps/s: the executor's 1,000 and 5,000/s are beyond the peer's throughput.
  for b in throughput burst "lateness --rate=20 --seconds=${lateness_seconds}s" \
    "throughput --local_activity --name_suffix=@local_activity"; do
    echo "bench: peer-temporal $b --count=$n" >&2
    # shellcheck disable=SC2086  # $b is a command and its flags
    "$bin/temporal-peer" $b --count="$n" --bootstrap="$bootstrap" --temporal="$bin/temporal" \
      --work_dir="$out/work" 2>>"$out/bench.log" | tee -a "$out/bench.log" |
      sed -n 's/^RESULT //p' >>"$raw" || echo "bench: peer-temporal $b failed, see $out/bench.log" >&2
  done
}
# The executor, as real processes against the same broker; each workload is then run by each
# peer right after it (the machine's load drifts: neighbours compare best).
peer_run() {  # the same benchmark on the peer (if it built)
  if [ ${#peer_args[@]} -gt 0 ]; then run "$@" "${peer_args[@]}"; fi
}
fixed=${BENCH_FIXED_BATCH:-0}
fixed_args=(--executor_flags=--min_batch=500,--max_batch=500 --name_suffix=@fixed500)
run executor-throughput --count="$count" "${sys[@]}" "${replay_args[@]}"
# The pass-through at the batch size the executor chose in that run (its mean batch), and at
# the executor's ceiling (--max_batch, 5,000).
chosen=$(/usr/bin/python3 -c 'import json,sys
b=[json.loads(l)["figures"].get("batch_mean",0) for l in open(sys.argv[1])
   if json.loads(l)["name"]=="executor-throughput"]
print(max(1,int(round(b[-1]))) if b and b[-1]>0 else 500)' "$raw")
run kafka-passthrough --count="$count" --batch_max="$chosen" --name_suffix=@chosen
run kafka-passthrough --count="$count" --batch_max=5000 --name_suffix=@5000
if [ "$fixed" = 1 ]; then
  run executor-throughput --count="$count" --replay=false "${fixed_args[@]}" "${sys[@]}"
fi
peer_run executor-throughput --count="$count" --replay=false "${sys[@]}"
if [ -z "$only" ]; then
  # What transactions cost: the same run without them (every figure of it named @at_least_once).
  run executor-throughput --count="$count" --processing_guarantee=at_least_once \
    --name_suffix=@at_least_once "${sys[@]}"
fi
run executor-timer-burst --count="$burst" "${sys[@]}"
if [ "$fixed" = 1 ]; then run executor-timer-burst --count="$burst" "${fixed_args[@]}" "${sys[@]}"; fi
peer_run executor-timer-burst --count="$burst" "${sys[@]}"
for rate in 1000 5000; do
  run executor-lateness --rate="$rate" --seconds="$lateness_seconds" "${sys[@]}"
  if [ "$fixed" = 1 ]; then
    run executor-lateness --rate="$rate" --seconds="$lateness_seconds" "${fixed_args[@]}" "${sys[@]}"
  fi
  # BENCH_ONLY=peers: the peer at 1,000/s only (the executor's batch is what 5,000/s checks).
  if [ -z "$only" ] || [ "$rate" = 1000 ]; then
    peer_run executor-lateness --rate="$rate" --seconds="$lateness_seconds" "${sys[@]}"
  fi
done
if [ -n "$only" ]; then
  if has_peer temporal; then peer_temporal; fi
  /usr/bin/python3 tests/bench/report.py "$raw" "$out"
  echo "bench: results in $out"
  exit 0
fi
limits
for n in $memory_counts; do  # memory and recovery holding 10,000,000 enrollments (full only)
  run executor-throughput --count="$n" --name_suffix="@$n" --replay=false "${sys[@]}"
done

if has_peer temporal; then peer_temporal; fi

# The API under rounds of hostile input: resident memory stays flat (no leak, no retention).
run api-hostile-soak --repeats=5 --batch=200 "${sys[@]}"

# The API, loaded by ghz.
api_bench

# Debian's python3 (with Debian's matplotlib), not whatever python3 is first on PATH.
/usr/bin/python3 tests/bench/report.py "$raw" "$out"
echo "bench: results in $out"
