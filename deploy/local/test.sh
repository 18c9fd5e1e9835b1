#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, starts a private Kafka broker, runs all ctest
# tiers (unit, kafka, e2e), stops the broker (also on failure), exits non-zero on any failure.
#
#   deploy/local/test.sh                 all tiers
#   deploy/local/test.sh -L unit         extra arguments go to ctest
#   deploy/local/test.sh -LE fuzz        all but the short fuzz run (tests/fuzz/README.md)
#
# The test broker listens on KAFKA_PORT (default 19092) with fresh storage, apart from the one
# deploy/local/run.sh starts on 9092.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
t0=$SECONDS

deploy/local/install-deps.sh
deploy/local/build.sh
build=${BUILD_DIR:-$root/build}
# The clang build of the fuzz targets, so the ctest test fuzz.short (label fuzz) only fuzzes.
tests/fuzz/run.sh build

export KAFKA_PORT=${KAFKA_PORT:-19092}
export KAFKA_DATA_DIR=${KAFKA_DATA_DIR:-/tmp/sequences-test-kafka-$KAFKA_PORT}
export KAFKA_FRESH=1
trap 'deploy/local/kafka.sh stop' EXIT
deploy/local/kafka.sh start
export SEQUENCES_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
# Services started by e2e tests find their binaries here.
export SEQUENCES_BUILD_DIR=$build

echo "test.sh: running ctest against the live broker at $SEQUENCES_BOOTSTRAP"
# The three-node cluster fault test (label "cluster", about 3 minutes) is opt-in:
# SEQUENCES_CLUSTER_TESTS=1 deploy/local/test.sh -L cluster
exclude=(-LE cluster)
[ "${SEQUENCES_CLUSTER_TESTS:-0}" = 1 ] && exclude=()
status=0
ctest --test-dir "$build" --output-on-failure -j2 --timeout 600 "${exclude[@]}" "$@" || status=$?
echo "test.sh: finished in $((SECONDS - t0))s with status $status"
exit $status
