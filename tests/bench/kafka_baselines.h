#ifndef SEQUENCES_TESTS_BENCH_KAFKA_BASELINES_H_
#define SEQUENCES_TESTS_BENCH_KAFKA_BASELINES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/kafka/types.h"
#include "tests/bench/figures.h"

namespace sequences::bench {

// Produces `records` as fast as an idempotent acks=all producer can.
absl::StatusOr<Figures> Load(const std::string& bootstrap,
                             const std::vector<kafka::Record>& records);

// Consumes `count` records of `input` in a consumer group and, per poll batch (up to
// `batch_max`, waiting at most `flush`), writes one record per input to `output` and the input
// offsets in one transaction: the executor's Kafka work without any deciding or state.
absl::StatusOr<Figures> PassThrough(const std::string& bootstrap, const std::string& input,
                                    const std::string& output, int64_t count, int batch_max,
                                    absl::Duration flush);

// Reads `topic` from the beginning to the end (read_committed): the ceiling for replay.
absl::StatusOr<Figures> RawConsume(const std::string& bootstrap, const std::string& topic);

// Sends `records` at `rate` per second (open loop) with an idempotent acks=all producer;
// per-record latency from send to acknowledgement.
absl::StatusOr<Figures> ProduceAtRate(const std::string& bootstrap,
                                      const std::vector<kafka::Record>& records, double rate);

// Sends the same batch `repeats` times, waiting for every acknowledgement each time.
absl::StatusOr<Figures> ProduceBatch(const std::string& bootstrap,
                                     const std::vector<kafka::Record>& records, int repeats);

}  // namespace sequences::bench

#endif  // SEQUENCES_TESTS_BENCH_KAFKA_BASELINES_H_
