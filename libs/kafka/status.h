#ifndef SEQUENCES_LIBS_KAFKA_STATUS_H_
#define SEQUENCES_LIBS_KAFKA_STATUS_H_

#include <string>

#include "absl/status/status.h"

// Errors of the Kafka adapter are absl::Status values whose message says what failed
// ("produce to sequences.enrollment-events: Local: Message timed out"), with a payload that names
// librdkafka's error and says whether retrying the same operation can succeed.
namespace sequences::kafka {

// True if retrying the failed operation (with the same client) can succeed: broker unreachable,
// leader moving, timeouts, a transaction that must be aborted and retried. False for bad input,
// fencing and other fatal producer errors (the client must be recreated).
bool IsRetriable(const absl::Status& status);

// True if the client that returned this status is unusable (fenced producer, fatal idempotence
// error) and must be destroyed and recreated.
bool IsFatal(const absl::Status& status);

// librdkafka's error name, e.g. "_MSG_TIMED_OUT" or "PRODUCER_FENCED"; empty if not a Kafka error.
std::string KafkaErrorName(const absl::Status& status);

}  // namespace sequences::kafka

#endif  // SEQUENCES_LIBS_KAFKA_STATUS_H_
