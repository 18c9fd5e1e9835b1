#!/usr/bin/env bash
# libs/domain stays pure (ARCHITECTURE.md): Abseil and the generated protobuf messages only. Fails
# if any domain source (tests excluded) includes an IO, Kafka, RocksDB, gRPC, thread or file
# header, or reads the clock.
set -uo pipefail
domain=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sources=$(find "$domain" -maxdepth 1 \( -name '*.cc' -o -name '*.h' \))
status=0
report() { echo "libs/domain is not pure: $1"; echo "$2"; status=1; }

includes=$(grep -nE '^\s*#\s*include\s*[<"]' $sources |
  grep -vE '#\s*include\s*"(libs/domain/|absl/|sequences/v1/|google/rpc/|google/protobuf/[a-z_]+\.pb\.h)' |
  grep -vE '#\s*include\s*<(algorithm|array|cstddef|cstdint|functional|initializer_list|iterator|limits|map|memory|optional|set|string|string_view|tuple|type_traits|utility|vector|cmath|climits|numeric|variant|deque|unordered_map|unordered_set|compare|span)>')
[ -n "$includes" ] && report "includes outside Abseil, the proto messages and the standard containers" "$includes"

clock=$(grep -nE 'absl::Now\(\)|absl::GetCurrentTimeNanos|system_clock|steady_clock|high_resolution_clock|\btime\(NULL\)|\btime\(nullptr\)|gettimeofday|clock_gettime' $sources)
[ -n "$clock" ] && report "reads the clock (take 'now' as an argument)" "$clock"

threads=$(grep -nE 'std::thread|std::async|absl::Mutex|pthread_|fopen|std::ifstream|std::ofstream|getenv' $sources)
[ -n "$threads" ] && report "uses threads, locks, files or the environment" "$threads"

[ $status -eq 0 ] && echo "libs/domain: $(echo "$sources" | wc -l) files, pure"
exit $status
