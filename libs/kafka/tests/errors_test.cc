#include "libs/kafka/internal/errors.h"

#include <catch2/catch.hpp>

#include "libs/kafka/status.h"

namespace sequences::kafka::internal {
namespace {

TEST_CASE("broker unreachable and timeouts are retriable Unavailable/DeadlineExceeded") {
  absl::Status s = FromResponseError(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, "produce to t");
  CHECK(s.code() == absl::StatusCode::kUnavailable);
  CHECK(IsRetriable(s));
  CHECK_FALSE(IsFatal(s));
  CHECK(KafkaErrorName(s) == "_MSG_TIMED_OUT");
  CHECK(s.message().find("produce to t") == 0);

  s = FromResponseError(RD_KAFKA_RESP_ERR__TIMED_OUT, "metadata");
  CHECK(s.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(IsRetriable(s));

  s = FromResponseError(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "x");
  CHECK(s.code() == absl::StatusCode::kUnavailable);
  CHECK(IsRetriable(s));
}

TEST_CASE("fencing is fatal and not retriable") {
  absl::Status s = FromResponseError(RD_KAFKA_RESP_ERR__FENCED, "commit");
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(IsFatal(s));
  CHECK_FALSE(IsRetriable(s));
}

TEST_CASE("bad input is InvalidArgument and not retriable") {
  absl::Status s = FromResponseError(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, "produce");
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK_FALSE(IsRetriable(s));
}

TEST_CASE("unknown topic is NotFound, existing topic is AlreadyExists") {
  CHECK(FromResponseError(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, "x").code() ==
        absl::StatusCode::kNotFound);
  CHECK(FromResponseError(RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS, "x").code() ==
        absl::StatusCode::kAlreadyExists);
}

TEST_CASE("a transaction error that requires abort is Aborted and retriable") {
  rd_kafka_error_t* e = rd_kafka_error_new(RD_KAFKA_RESP_ERR__STATE, "state");
  // rd_kafka_error_new errors carry no flags: the code decides.
  absl::Status s = FromError(e, "commit transaction");
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_FALSE(IsRetriable(s));
  CHECK(FromError(nullptr, "nothing").ok());
}

TEST_CASE("no error is OK") { CHECK(FromResponseError(RD_KAFKA_RESP_ERR_NO_ERROR, "x").ok()); }

TEST_CASE("statuses from elsewhere fall back to their code") {
  CHECK(IsRetriable(absl::UnavailableError("x")));
  CHECK_FALSE(IsRetriable(absl::InvalidArgumentError("x")));
  CHECK_FALSE(IsRetriable(absl::OkStatus()));
  CHECK(KafkaErrorName(absl::UnavailableError("x")).empty());
}

}  // namespace
}  // namespace sequences::kafka::internal
