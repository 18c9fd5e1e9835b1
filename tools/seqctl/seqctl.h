#ifndef SEQUENCES_TOOLS_SEQCTL_SEQCTL_H_
#define SEQUENCES_TOOLS_SEQCTL_SEQCTL_H_

// seqctl: the operator's view of the log (tools/seqctl/README.md). Decodes records of our topics
// to JSON, collects one enrollment's history, and builds outcome events keyed as the publisher
// contract requires. Reads are read_committed, from the beginning to the end each partition had
// when reading started; nothing here writes except through a producer the caller owns.

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/kafka/types.h"
#include "libs/runtime/clock.h"
#include "libs/service/topics.h"
#include "sequences/v1/events.pb.h"

namespace sequences::seqctl {

// `name` as one of `topics`: a full name ("sequences.task-events") or the part after the prefix
// ("task-events"). INVALID_ARGUMENT naming the known topics otherwise.
[[nodiscard]] absl::StatusOr<std::string> ResolveTopic(const service::Topics& topics,
                                                       absl::string_view name);

// One record as a one-line JSON object: topic, partition, offset, key, timestamp (RFC 3339),
// headers (object), and `event` (the value decoded as sequences.v1.Envelope, proto field names)
// or, for a value that is not an Envelope, `value_base64` and `error`.
std::string RecordJson(const kafka::Message& message);

struct ReadOptions {
  kafka::ClientConfig client;
  // Give up when no record and no partition end arrived for this long.
  absl::Duration stall_timeout = absl::Seconds(15);
};

// Reads every partition of each of `topics` from the beginning to its end (read_committed);
// `visit` sees every record, in log order within a partition. NOT_FOUND for a topic that does not
// exist; DEADLINE_EXCEEDED when reading stalls for `stall_timeout` (on `clock`).
[[nodiscard]] absl::Status ReadToEnd(const ReadOptions& options,
                                     const std::vector<std::string>& topics, Clock& clock,
                                     const std::function<void(const kafka::Message&)>& visit);

// An enrollment, or every enrollment of an item (empty sequence_id).
struct EnrollmentRef {
  std::string item_key;     // "company/deal|lead/item"
  std::string sequence_id;  // empty: the whole item
};

// The enrollment `name` names in `company`: the API's resource name
// "companies/{c}/sequences/{s}/enrollments/{deal|lead}:{item}" (its company must be `company`
// when `company` is not empty), "sequences/{s}/enrollments/{deal|lead}:{item}", or an item alone,
// "{deal|lead}:{item}" (every enrollment of the item). INVALID_ARGUMENT otherwise.
[[nodiscard]] absl::StatusOr<EnrollmentRef> ParseEnrollment(absl::string_view company,
                                                            absl::string_view name);

// Whether a record belongs to `ref`'s history: keyed by its item, and (for an enrollment) an
// executor event of that enrollment, or an input, effect or dead letter naming its sequence or
// no sequence at all (item-wide inputs such as ItemOutcome end every enrollment of the item).
bool BelongsTo(const kafka::Message& message, const v1::Envelope& event, const EnrollmentRef& ref);

// The records of `ref` in enrollment-events, executor-events, task-events, email-events and
// dead-letter, ordered by record time (log order among equal times, inputs before executor
// events before effects).
[[nodiscard]] absl::StatusOr<std::vector<kafka::Message>> History(const ReadOptions& options,
                                                                  const service::Topics& topics,
                                                                  const EnrollmentRef& ref,
                                                                  Clock& clock);

struct Outcome {
  std::string company_id;
  std::string item;  // "{deal|lead}:{item_id}"
  v1::ItemOutcomeKind kind = v1::ITEM_OUTCOME_KIND_UNSPECIFIED;
  // Makes the event id (seqctl/item_outcome/<item_key>/<request_id>): publishing the same
  // request twice writes two records the executor treats as one outcome.
  std::string request_id;
};

// The enrollment-events record of an item outcome: key = the item key (what the executor's
// partition ownership and the publisher contract require), value = an Envelope with
// `occurred_at` = now. Checked with domain::CheckEnrollmentInputContract before it is returned;
// INVALID_ARGUMENT for a malformed item, an outcome that does not fit the entity (DEAL_WON of a
// lead), an empty request id, or a broken contract.
[[nodiscard]] absl::StatusOr<kafka::Record> OutcomeRecord(const service::Topics& topics,
                                                          const Outcome& outcome, absl::Time now);

// "DEAL_WON" / "ITEM_OUTCOME_KIND_DEAL_WON" -> the enum; INVALID_ARGUMENT otherwise.
[[nodiscard]] absl::StatusOr<v1::ItemOutcomeKind> ParseOutcomeKind(absl::string_view name);

}  // namespace sequences::seqctl

#endif  // SEQUENCES_TOOLS_SEQCTL_SEQCTL_H_
