#include "libs/kafka/internal/errors.h"

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/kafka/internal/handles.h"
#include "libs/kafka/status.h"

namespace sequences::kafka {
namespace {

constexpr absl::string_view kPayloadUrl = "type.sequences.dev/kafka.Error";

absl::Status Make(absl::StatusCode code, absl::string_view name, bool retriable, bool fatal,
                  absl::string_view what, absl::string_view detail) {
  absl::Status status(code,
                      absl::StrCat(what, ": ", detail, " (", name, retriable ? ", retriable" : "",
                                   fatal ? ", fatal" : "", ")"));
  status.SetPayload(kPayloadUrl, absl::Cord(absl::StrCat(name, ";retriable=", retriable ? 1 : 0,
                                                         ";fatal=", fatal ? 1 : 0)));
  return status;
}

bool PayloadFlag(const absl::Status& status, absl::string_view flag, bool* found) {
  *found = false;
  auto payload = status.GetPayload(kPayloadUrl);
  if (!payload.has_value()) return false;
  *found = true;
  return absl::StrContains(std::string(*payload), absl::StrCat(";", flag, "=1"));
}

}  // namespace

bool IsRetriable(const absl::Status& status) {
  if (status.ok()) return false;
  bool found = false;
  bool flag = PayloadFlag(status, "retriable", &found);
  if (found) return flag;
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kResourceExhausted:
      return true;
    default:
      return false;
  }
}

bool IsFatal(const absl::Status& status) {
  bool found = false;
  return PayloadFlag(status, "fatal", &found);
}

std::string KafkaErrorName(const absl::Status& status) {
  auto payload = status.GetPayload(kPayloadUrl);
  if (!payload.has_value()) return "";
  std::string s(*payload);
  return std::string(s.substr(0, s.find(';')));
}

namespace internal {

absl::StatusCode CodeFor(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      return absl::StatusCode::kOk;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
      return absl::StatusCode::kDeadlineExceeded;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__OUTDATED:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
      return absl::StatusCode::kUnavailable;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
      return absl::StatusCode::kResourceExhausted;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
      return absl::StatusCode::kNotFound;
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
      return absl::StatusCode::kAlreadyExists;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_INVALID_REQUEST:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
      return absl::StatusCode::kInvalidArgument;
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
      return absl::StatusCode::kPermissionDenied;
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__STATE:
    case RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER:
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
      return absl::StatusCode::kFailedPrecondition;
    case RD_KAFKA_RESP_ERR__DESTROY:
      return absl::StatusCode::kCancelled;
    default:
      return absl::StatusCode::kUnknown;
  }
}

bool IsTransient(rd_kafka_resp_err_t err) {
  switch (CodeFor(err)) {
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
      return true;
    default:
      return false;
  }
}

absl::Status FromResponseError(rd_kafka_resp_err_t err, absl::string_view what) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
  bool fatal = err == RD_KAFKA_RESP_ERR__FATAL || err == RD_KAFKA_RESP_ERR__FENCED ||
               err == RD_KAFKA_RESP_ERR_PRODUCER_FENCED;
  return Make(CodeFor(err), rd_kafka_err2name(err), IsTransient(err), fatal, what,
              rd_kafka_err2str(err));
}

absl::Status ClientFatalError(rd_kafka_t* rk, absl::string_view what) {
  char reason[512];
  rd_kafka_resp_err_t err = rd_kafka_fatal_error(rk, reason, sizeof(reason));
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
  return Make(absl::StatusCode::kFailedPrecondition, rd_kafka_err2name(err), /*retriable=*/false,
              /*fatal=*/true, what, reason);
}

absl::Status FromError(rd_kafka_error_t* raw, absl::string_view what) {
  ErrorHandle error(raw);
  if (error == nullptr) return absl::OkStatus();
  rd_kafka_resp_err_t err = rd_kafka_error_code(error.get());
  bool fatal = rd_kafka_error_is_fatal(error.get()) != 0;
  bool abortable = rd_kafka_error_txn_requires_abort(error.get()) != 0;
  bool retriable = rd_kafka_error_is_retriable(error.get()) != 0;
  absl::StatusCode code = CodeFor(err);
  if (fatal) {
    code = absl::StatusCode::kFailedPrecondition;
  } else if (abortable) {
    code = absl::StatusCode::kAborted;  // abort the transaction, then retry the batch
  } else if (retriable && code != absl::StatusCode::kDeadlineExceeded) {
    code = absl::StatusCode::kUnavailable;
  }
  return Make(code, rd_kafka_error_name(error.get()), !fatal && (retriable || abortable), fatal,
              what, rd_kafka_error_string(error.get()));
}

}  // namespace internal
}  // namespace sequences::kafka
