#ifndef SEQUENCES_TESTS_BENCH_API_SOAK_H_
#define SEQUENCES_TESTS_BENCH_API_SOAK_H_

#include "absl/status/statusor.h"
#include "tests/bench/figures.h"
#include "tests/bench/system_bench.h"

namespace sequences::bench {

// A real sequence-api process under `rounds` rounds of hostile calls (2 MiB ids, 100k holidays,
// 3.5 MiB merge data, identity outside the grammar, oversized batches; every one refused): its
// resident set after a warm-up of normal calls (the baseline) and after each round.
absl::StatusOr<Figures> ApiHostileSoak(const SystemOptions& options, int rounds,
                                       int calls_per_round);

}  // namespace sequences::bench

#endif  // SEQUENCES_TESTS_BENCH_API_SOAK_H_
