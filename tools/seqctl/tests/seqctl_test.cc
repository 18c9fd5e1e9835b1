// seqctl's pure parts: names, topic resolution, record JSON, history membership, outcome records.
#include "tools/seqctl/seqctl.h"

#include <catch2/catch.hpp>

#include "absl/time/time.h"
#include "libs/domain/contract.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/envelope.h"

namespace sequences::seqctl {
namespace {

const service::Topics kTopics = service::Topics::WithPrefix("sequences.");
const absl::Time kNow = absl::FromUnixSeconds(1795000000);

kafka::Message MessageOf(const std::string& topic, const std::string& key, const v1::Envelope& e) {
  kafka::Message m;
  m.topic = topic;
  m.key = key;
  m.value = e.SerializeAsString();
  return m;
}

v1::Envelope Started(const std::string& item_key, const std::string& sequence_id) {
  v1::Envelope e = domain::MakeEnvelope("x1", "acme", kNow, "", "");
  v1::EnrollmentRef* ref = e.mutable_enrollment_started()->mutable_ref();
  ref->set_item_key(item_key);
  ref->set_sequence_id(sequence_id);
  ref->set_enrollment_id(item_key + "#" + sequence_id + "#1");
  return e;
}

TEST_CASE(
    "Given an enrollment's API name, a short name or an item, when parsed, then the item key "
    "and sequence are the ones the log uses") {
  auto full = ParseEnrollment("", "companies/acme/sequences/s1/enrollments/deal:42");
  REQUIRE(full.ok());
  CHECK(full->item_key == "acme/deal/42");
  CHECK(full->sequence_id == "s1");
  auto short_name = ParseEnrollment("acme", "sequences/s1/enrollments/lead:7");
  REQUIRE(short_name.ok());
  CHECK(short_name->item_key == "acme/lead/7");
  CHECK(short_name->sequence_id == "s1");
  auto item = ParseEnrollment("acme", "deal:42");
  REQUIRE(item.ok());
  CHECK(item->item_key == "acme/deal/42");
  CHECK(item->sequence_id.empty());
}

TEST_CASE(
    "Given a name of another company, no company, or a malformed item, when parsed, then it "
    "is refused") {
  CHECK(ParseEnrollment("globex", "companies/acme/sequences/s1/enrollments/deal:42")
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
  CHECK(!ParseEnrollment("", "deal:42").ok());
  CHECK(!ParseEnrollment("acme", "contact:42").ok());
  CHECK(!ParseEnrollment("acme", "deal42").ok());
  CHECK(!ParseEnrollment("acme", "sequences//enrollments/deal:42").ok());
}

TEST_CASE(
    "Given a short or full topic name, when resolved, then it is one of our topics, and an "
    "unknown one is refused") {
  CHECK(*ResolveTopic(kTopics, "task-events") == "sequences.task-events");
  CHECK(*ResolveTopic(kTopics, "sequences.dead-letter") == "sequences.dead-letter");
  CHECK(ResolveTopic(kTopics, "events").status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE(
    "Given an envelope record, when printed, then it is one JSON line with the decoded event "
    "under proto field names") {
  v1::Envelope e = domain::MakeEnvelope("ev-1", "acme", kNow, "", "corr");
  e.mutable_item_outcome()->set_item_key("acme/deal/42");
  e.mutable_item_outcome()->set_kind(v1::ITEM_OUTCOME_KIND_DEAL_WON);
  kafka::Message m = MessageOf("sequences.enrollment-events", "acme/deal/42", e);
  m.partition = 2;
  m.offset = 17;
  m.headers = {{"reason", "a \"quoted\"\nreason"}};
  const std::string json = RecordJson(m);
  CHECK(json.find('\n') == std::string::npos);
  CHECK(json.find("\"partition\":2,\"offset\":17,\"key\":\"acme/deal/42\"") != std::string::npos);
  CHECK(json.find("\"reason\":\"a \\\"quoted\\\"\\nreason\"") != std::string::npos);
  CHECK(json.find("\"item_outcome\":{\"item_key\":\"acme/deal/"
                  "42\",\"kind\":\"ITEM_OUTCOME_KIND_DEAL_WON\"}") != std::string::npos);
  CHECK(json.find("\"event_id\":\"ev-1\"") != std::string::npos);
}

TEST_CASE(
    "Given a value that is not an envelope, when printed, then its bytes are kept as base64") {
  kafka::Message m;
  m.topic = "sequences.dead-letter";
  m.value = std::string("\xff\xff\xff", 3);
  const std::string json = RecordJson(m);
  CHECK(json.find("\"value_base64\":\"////\"") != std::string::npos);
  CHECK(json.find("\"event\"") == std::string::npos);
}

TEST_CASE(
    "Given records of an item, when asked whether they belong to one enrollment, then its "
    "own executor events and the item-wide or same-sequence inputs do, others do not") {
  const EnrollmentRef ref{.item_key = "acme/deal/42", .sequence_id = "s1"};
  CHECK(BelongsTo(MessageOf("x", "acme/deal/42", Started("acme/deal/42", "s1")),
                  Started("acme/deal/42", "s1"), ref));
  CHECK_FALSE(BelongsTo(MessageOf("x", "acme/deal/42", Started("acme/deal/42", "s2")),
                        Started("acme/deal/42", "s2"), ref));
  v1::Envelope outcome;
  outcome.mutable_item_outcome()->set_item_key("acme/deal/42");
  CHECK(BelongsTo(MessageOf("x", "acme/deal/42", outcome), outcome, ref));
  v1::Envelope remove;
  remove.mutable_remove_requested()->mutable_target()->set_sequence_id("s2");
  CHECK_FALSE(BelongsTo(MessageOf("x", "acme/deal/42", remove), remove, ref));
  remove.mutable_remove_requested()->mutable_target()->set_sequence_id("s1");
  CHECK(BelongsTo(MessageOf("x", "acme/deal/42", remove), remove, ref));
  CHECK_FALSE(BelongsTo(MessageOf("x", "acme/deal/43", outcome), outcome, ref));
  CHECK(BelongsTo(MessageOf("x", "acme/deal/42", Started("acme/deal/42", "s2")),
                  Started("acme/deal/42", "s2"), {.item_key = "acme/deal/42"}));
}

TEST_CASE(
    "Given an outcome of a deal, when its record is built, then it is keyed by the item key "
    "on enrollment-events and honours the publisher contract") {
  auto record = OutcomeRecord(kTopics,
                              {.company_id = "acme",
                               .item = "deal:42",
                               .kind = v1::ITEM_OUTCOME_KIND_DEAL_WON,
                               .request_id = "crm-7"},
                              kNow);
  REQUIRE(record.ok());
  CHECK(record->topic == "sequences.enrollment-events");
  CHECK(record->key == "acme/deal/42");
  CHECK(record->partition < 0);  // by key, like every publisher
  v1::Envelope e;
  REQUIRE(e.ParseFromString(record->value));
  CHECK(domain::CheckEnrollmentInputContract(e, record->key).ok());
  CHECK(e.item_outcome().kind() == v1::ITEM_OUTCOME_KIND_DEAL_WON);
  CHECK(e.company_id() == "acme");
  CHECK(domain::FromProto(e.occurred_at()) == kNow);
  // The same request again: the same event id.
  auto again = OutcomeRecord(kTopics,
                             {.company_id = "acme",
                              .item = "deal:42",
                              .kind = v1::ITEM_OUTCOME_KIND_DEAL_WON,
                              .request_id = "crm-7"},
                             kNow + absl::Seconds(5));
  REQUIRE(again.ok());
  v1::Envelope e2;
  REQUIRE(e2.ParseFromString(again->value));
  CHECK(e2.event_id() == e.event_id());
}

TEST_CASE(
    "Given an outcome that does not fit its item, when its record is built, then it is "
    "refused before anything is written") {
  CHECK(OutcomeRecord(kTopics,
                      {.company_id = "acme",
                       .item = "lead:7",
                       .kind = v1::ITEM_OUTCOME_KIND_DEAL_WON,
                       .request_id = "r"},
                      kNow)
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
  CHECK(!OutcomeRecord(kTopics,
                       {.company_id = "acme",
                        .item = "deal:42",
                        .kind = v1::ITEM_OUTCOME_KIND_LEAD_CONVERTED,
                        .request_id = "r"},
                       kNow)
             .ok());
  CHECK(!OutcomeRecord(kTopics,
                       {.company_id = "acme",
                        .item = "deal:42",
                        .kind = v1::ITEM_OUTCOME_KIND_ITEM_DELETED,
                        .request_id = ""},
                       kNow)
             .ok());
  CHECK(!OutcomeRecord(kTopics,
                       {.company_id = "",
                        .item = "deal:42",
                        .kind = v1::ITEM_OUTCOME_KIND_ITEM_DELETED,
                        .request_id = "r"},
                       kNow)
             .ok());
}

TEST_CASE(
    "Given outcome names with or without the enum prefix, when parsed, then both work and "
    "unknown ones are refused") {
  CHECK(*ParseOutcomeKind("DEAL_LOST") == v1::ITEM_OUTCOME_KIND_DEAL_LOST);
  CHECK(*ParseOutcomeKind("ITEM_OUTCOME_KIND_ITEM_DELETED") == v1::ITEM_OUTCOME_KIND_ITEM_DELETED);
  CHECK(!ParseOutcomeKind("UNSPECIFIED").ok());
  CHECK(!ParseOutcomeKind("WON").ok());
}

}  // namespace
}  // namespace sequences::seqctl
