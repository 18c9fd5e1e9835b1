#!/usr/bin/env bash
# Runs every benchmark side by side against one private broker and writes
#   tests/bench/results/<UTC timestamp>/results.json   every figure, with its baseline and ratio
#   tests/bench/results/<UTC timestamp>/*.png          plots (lateness histogram, throughput)
# and prints a table. Sizes are flags (environment variables):
#   BENCH_SCALE=small|default|full   small: a minute; default: under 15 minutes; full: the issue's
#                                    sizes (1,000,000 and 10,000,000 enrollments; hours)
#   BENCH_KAFKA_PORT                 broker port (default 39092)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
scale=${BENCH_SCALE:-default}
case "$scale" in
  small) count=20000; burst=20000; rate_seconds=5 ;;
  default) count=200000; burst=200000; rate_seconds=10 ;;
  full) count=1000000; burst=1000000; rate_seconds=30 ;;
  *) echo "BENCH_SCALE must be small, default or full" >&2; exit 2 ;;
esac

deploy/local/install-deps.sh --bench
deploy/local/build.sh
build=${BUILD_DIR:-$root/build}
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

run() {
  echo "bench: $*" >&2
  "$bench" "$@" --bootstrap="$bootstrap" 2>>"$out/bench.log" | tee -a "$out/bench.log" |
    sed -n 's/^RESULT //p' >>"$raw"
}

# Baselines: what Kafka alone does for the same shape of work.
run kafka-passthrough --count="$count"
run kafka-produce-batch --batch=1000 --repeats=20
for rate in 500 1000 2000 4000; do
  run kafka-produce-rate --rate="$rate" --seconds="$rate_seconds"
done

# System figures are added by tests/bench/system.sh when the services exist.
if [ -x tests/bench/system.sh ]; then
  BENCH_OUT=$out BENCH_BOOTSTRAP=$bootstrap BENCH_COUNT=$count BENCH_BURST=$burst \
    BENCH_RATE_SECONDS=$rate_seconds SEQUENCES_BUILD_DIR=$build tests/bench/system.sh
fi

# Debian's python3 (with Debian's matplotlib), not whatever python3 is first on PATH.
/usr/bin/python3 tests/bench/report.py "$raw" "$out"
echo "bench: results in $out"
