#include "tools/seqctl/seqctl.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"
#include "libs/domain/contract.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/envelope.h"
#include "libs/domain/routing.h"
#include "libs/kafka/consumer.h"
#include "libs/runtime/text.h"

namespace sequences::seqctl {
namespace {

constexpr absl::Duration kMetadataTimeout = absl::Seconds(10);

// The first non-empty string field named "sequence_id" in `m` or its message fields (depth-first,
// a few levels deep: EnrollmentTarget.item_in_sequence.sequence_id).
std::string FindSequenceId(const google::protobuf::Message& m, int depth = 0) {
  if (depth > 3) return "";
  const google::protobuf::Reflection* r = m.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const google::protobuf::FieldDescriptor* f : fields) {
    if (f->is_repeated()) continue;
    if (f->name() == "sequence_id" && f->type() == google::protobuf::FieldDescriptor::TYPE_STRING) {
      std::string v = r->GetString(m, f);
      if (!v.empty()) return v;
    } else if (f->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE) {
      std::string v = FindSequenceId(r->GetMessage(m, f), depth + 1);
      if (!v.empty()) return v;
    }
  }
  return "";
}

// Rank of a topic in a history among records of the same time.
int TopicRank(const service::Topics& topics, const std::string& topic) {
  if (topic == topics.enrollment_events) return 0;
  if (topic == topics.executor_events) return 1;
  if (topic == topics.dead_letter) return 2;
  return 3;
}

}  // namespace

absl::StatusOr<std::string> ResolveTopic(const service::Topics& topics, absl::string_view name) {
  // The prefix is what precedes "sequence-events" in its full name.
  const absl::string_view prefix =
      absl::StripSuffix(topics.sequence_events, absl::string_view("sequence-events"));
  std::vector<std::string> known;
  for (const std::string& t : topics.All()) {
    if (name == t || absl::StrCat(prefix, name) == t) return t;
    known.push_back(t);
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown topic '", name,
                                                 "'; known: ", absl::StrJoin(known, ", "),
                                                 " (or the part after the prefix)"));
}

std::string RecordJson(const kafka::Message& m) {
  std::vector<std::string> headers;
  for (const kafka::Header& h : m.headers) {
    headers.push_back(absl::StrCat(JsonQuote(h.key), ":", JsonQuote(h.value)));
  }
  std::string out = absl::StrCat(
      "{\"topic\":", JsonQuote(m.topic), ",\"partition\":", m.partition, ",\"offset\":", m.offset,
      ",\"key\":", JsonQuote(m.key), ",\"timestamp\":",
      JsonQuote(absl::FormatTime(absl::RFC3339_full, m.timestamp, absl::UTCTimeZone())),
      ",\"headers\":{", absl::StrJoin(headers, ","), "}");
  v1::Envelope event;
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (event.ParseFromString(m.value) &&
      google::protobuf::util::MessageToJsonString(event, &json, options).ok()) {
    absl::StrAppend(&out, ",\"event\":", json, "}");
  } else {
    absl::StrAppend(&out, ",\"value_base64\":", JsonQuote(absl::Base64Escape(m.value)),
                    ",\"error\":\"not a sequences.v1.Envelope\"}");
  }
  return out;
}

absl::Status ReadToEnd(const ReadOptions& options, const std::vector<std::string>& topics,
                       Clock& clock, const std::function<void(const kafka::Message&)>& visit) {
  kafka::ConsumerConfig c;
  c.client = options.client;
  c.read_committed = true;
  c.partition_eof = true;
  absl::StatusOr<std::unique_ptr<kafka::Consumer>> consumer = kafka::Consumer::Create(c);
  if (!consumer.ok()) return consumer.status();
  std::vector<kafka::TopicPartitionOffset> assign;
  for (const std::string& topic : topics) {
    absl::StatusOr<int> n = (*consumer)->PartitionCount(topic, kMetadataTimeout);
    if (!n.ok()) return n.status();
    if (*n <= 0) return absl::NotFoundError(absl::StrCat("topic ", topic, " does not exist"));
    for (int p = 0; p < *n; ++p) assign.push_back({topic, p, kafka::kOffsetBeginning});
  }
  if (absl::Status s = (*consumer)->Assign(assign); !s.ok()) return s;
  std::set<std::pair<std::string, int32_t>> at_end;
  absl::Time last_progress = clock.Now();
  while (at_end.size() < assign.size()) {
    absl::StatusOr<std::vector<kafka::Message>> batch =
        (*consumer)->PollBatch(1000, absl::Milliseconds(200));
    if (!batch.ok()) return batch.status();
    if (!batch->empty()) last_progress = clock.Now();
    for (const kafka::Message& m : *batch) {
      if (at_end.count({m.topic, m.partition}) > 0) continue;
      if (m.eof) {
        at_end.insert({m.topic, m.partition});
        continue;
      }
      visit(m);
    }
    if (clock.Now() - last_progress > options.stall_timeout) {
      return absl::DeadlineExceededError(absl::StrCat("no record and no partition end for ",
                                                      absl::FormatDuration(options.stall_timeout)));
    }
  }
  (*consumer)->Close();
  return absl::OkStatus();
}

absl::StatusOr<EnrollmentRef> ParseEnrollment(absl::string_view company, absl::string_view name) {
  const auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("enrollment '", name, "': ", why,
                     " (want companies/{c}/sequences/{s}/enrollments/{deal|lead}:{item}, "
                     "sequences/{s}/enrollments/{deal|lead}:{item} or {deal|lead}:{item})"));
  };
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  std::string company_id(company);
  EnrollmentRef ref;
  absl::string_view item;
  if (parts.size() == 6 && parts[0] == "companies" && parts[2] == "sequences" &&
      parts[4] == "enrollments") {
    if (!company.empty() && parts[1] != company) return invalid("names another company");
    company_id = std::string(parts[1]);
    ref.sequence_id = std::string(parts[3]);
    item = parts[5];
  } else if (parts.size() == 4 && parts[0] == "sequences" && parts[2] == "enrollments") {
    ref.sequence_id = std::string(parts[1]);
    item = parts[3];
  } else if (parts.size() == 1) {
    item = parts[0];
  } else {
    return invalid("not an enrollment name");
  }
  if (company_id.empty()) return invalid("no company (--company)");
  if (ref.sequence_id.empty() && parts.size() != 1) return invalid("empty sequence id");
  std::vector<absl::string_view> entity_item = absl::StrSplit(item, absl::MaxSplits(':', 1));
  if (entity_item.size() != 2) return invalid("the item is not {deal|lead}:{item}");
  ref.item_key = absl::StrCat(company_id, "/", entity_item[0], "/", entity_item[1]);
  if (absl::StatusOr<domain::ItemKey> k = domain::ParseItemKey(ref.item_key); !k.ok()) {
    return invalid(k.status().message());
  }
  return ref;
}

bool BelongsTo(const kafka::Message& message, const v1::Envelope& event, const EnrollmentRef& ref) {
  if (message.key != ref.item_key) return false;
  if (ref.sequence_id.empty()) return true;
  if (std::optional<std::string> key = domain::ExecutorEventKey(event); key.has_value()) {
    return *key == domain::EnrollmentKey(ref.item_key, ref.sequence_id);
  }
  const std::string sequence_id = FindSequenceId(event);
  return sequence_id.empty() || sequence_id == ref.sequence_id;
}

absl::StatusOr<std::vector<kafka::Message>> History(const ReadOptions& options,
                                                    const service::Topics& topics,
                                                    const EnrollmentRef& ref, Clock& clock) {
  std::vector<kafka::Message> out;
  absl::Status s = ReadToEnd(options,
                             {topics.enrollment_events, topics.executor_events, topics.task_events,
                              topics.email_events, topics.dead_letter},
                             clock, [&](const kafka::Message& m) {
                               if (m.key != ref.item_key) return;
                               v1::Envelope event;
                               // A dead letter may not decode: it is the item's history all the
                               // same.
                               if (!event.ParseFromString(m.value) && m.topic != topics.dead_letter)
                                 return;
                               if (BelongsTo(m, event, ref)) out.push_back(m);
                             });
  if (!s.ok()) return s;
  // Records of one key share a partition per topic, so offsets order them within a topic.
  std::stable_sort(out.begin(), out.end(), [&](const kafka::Message& a, const kafka::Message& b) {
    if (a.timestamp != b.timestamp) return a.timestamp < b.timestamp;
    const int ra = TopicRank(topics, a.topic), rb = TopicRank(topics, b.topic);
    if (ra != rb) return ra < rb;
    return a.offset < b.offset;
  });
  return out;
}

absl::StatusOr<v1::ItemOutcomeKind> ParseOutcomeKind(absl::string_view name) {
  v1::ItemOutcomeKind kind;
  const std::string full = absl::StartsWith(name, "ITEM_OUTCOME_KIND_")
                               ? std::string(name)
                               : absl::StrCat("ITEM_OUTCOME_KIND_", name);
  if (!v1::ItemOutcomeKind_Parse(full, &kind) || kind == v1::ITEM_OUTCOME_KIND_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat(
        "outcome '", name, "': want DEAL_WON, DEAL_LOST, LEAD_CONVERTED or ITEM_DELETED"));
  }
  return kind;
}

absl::StatusOr<kafka::Record> OutcomeRecord(const service::Topics& topics, const Outcome& outcome,
                                            absl::Time now) {
  absl::StatusOr<EnrollmentRef> ref = ParseEnrollment(outcome.company_id, outcome.item);
  if (!ref.ok()) return ref.status();
  if (!ref->sequence_id.empty()) {
    return absl::InvalidArgumentError(
        "an outcome names an item ({deal|lead}:{item}), not an enrollment");
  }
  absl::StatusOr<domain::ItemKey> key = domain::ParseItemKey(ref->item_key);
  if (!key.ok()) return key.status();
  const v1::EntityKind entity = domain::EntityKindOf(*key);
  switch (outcome.kind) {
    case v1::ITEM_OUTCOME_KIND_DEAL_WON:
    case v1::ITEM_OUTCOME_KIND_DEAL_LOST:
      if (entity != v1::ENTITY_KIND_DEAL) {
        return absl::InvalidArgumentError("DEAL_WON and DEAL_LOST are outcomes of deals");
      }
      break;
    case v1::ITEM_OUTCOME_KIND_LEAD_CONVERTED:
      if (entity != v1::ENTITY_KIND_LEAD) {
        return absl::InvalidArgumentError("LEAD_CONVERTED is an outcome of leads");
      }
      break;
    case v1::ITEM_OUTCOME_KIND_ITEM_DELETED:
      break;
    default:
      return absl::InvalidArgumentError("no outcome");
  }
  if (outcome.request_id.empty()) return absl::InvalidArgumentError("empty request id");
  v1::Envelope e = domain::MakeEnvelope(
      absl::StrCat("seqctl/item_outcome/", ref->item_key, "/", outcome.request_id), key->company_id,
      now, "", outcome.request_id);
  e.mutable_item_outcome()->set_item_key(ref->item_key);
  e.mutable_item_outcome()->set_kind(outcome.kind);
  // The executor's own check: a record that fails it would only be dead-lettered.
  if (absl::Status s = domain::CheckEnrollmentInputContract(e, ref->item_key); !s.ok()) return s;
  return kafka::Record{
      .topic = topics.enrollment_events, .key = ref->item_key, .value = e.SerializeAsString()};
}

}  // namespace sequences::seqctl
