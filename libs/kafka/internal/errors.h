#ifndef SEQUENCES_LIBS_KAFKA_INTERNAL_ERRORS_H_
#define SEQUENCES_LIBS_KAFKA_INTERNAL_ERRORS_H_

// librdkafka errors -> absl::Status. Internal to libs/kafka (and its tests).
#include <librdkafka/rdkafka.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace sequences::kafka::internal {

// `what` says what was being done ("produce to topic x"). The status carries a payload with the
// error name and the retriable/fatal flags read by IsRetriable/IsFatal.
absl::Status FromResponseError(rd_kafka_resp_err_t err, absl::string_view what);
// For the rich rd_kafka_error_t (transactions): uses its retriable/abortable/fatal flags.
// Takes ownership of `error` (may be null: returns OK).
absl::Status FromError(rd_kafka_error_t* error, absl::string_view what);

// OK, or the client's fatal error (rd_kafka_fatal_error) as a status flagged fatal.
absl::Status ClientFatalError(rd_kafka_t* rk, absl::string_view what);

// The canonical code for a librdkafka error code (without flags of an rd_kafka_error_t).
absl::StatusCode CodeFor(rd_kafka_resp_err_t err);
// Whether librdkafka's error code is transient by nature.
bool IsTransient(rd_kafka_resp_err_t err);

}  // namespace sequences::kafka::internal

#endif  // SEQUENCES_LIBS_KAFKA_INTERNAL_ERRORS_H_
