#include "services/step-executor/replay.h"

#include <memory>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "libs/domain/envelope.h"
#include "libs/domain/min_gap.h"
#include "libs/domain/send_limits.h"
#include "libs/kafka/consumer.h"
#include "libs/runtime/log.h"
#include "services/step-executor/processor.h"
#include "services/step-executor/state.h"

namespace sequences::executor {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(10);

std::string Quote(absl::string_view s) {
  return absl::StrCat("\"", absl::StrReplaceAll(s, {{"\\", "\\\\"}, {"\"", "\\\""}}), "\"");
}

// Reads every partition of `topic` from the beginning (or `from`) to its end, in partition order
// per partition; `visit` sees each record. `end` receives the end offsets.
absl::Status ReadTopic(const ReplayOptions& options, const std::string& topic,
                       const std::function<absl::Status(const kafka::Message&)>& visit,
                       std::map<int32_t, int64_t>* end) {
  kafka::ConsumerConfig c;
  c.client = options.client;
  c.read_committed = true;
  c.partition_eof = true;
  auto consumer = kafka::Consumer::Create(c);
  if (!consumer.ok()) return consumer.status();
  auto n = (*consumer)->PartitionCount(topic, kTimeout);
  if (!n.ok()) return n.status();
  std::vector<kafka::TopicPartition> tps;
  for (int p = 0; p < *n; ++p) tps.push_back({topic, p});
  std::vector<kafka::TopicPartitionOffset> assign;
  if (options.from.has_value()) {
    auto offsets = (*consumer)->OffsetsForTime(tps, *options.from, kTimeout);
    if (!offsets.ok()) return offsets.status();
    assign = *offsets;
  } else {
    for (const auto& tp : tps) assign.push_back({topic, tp.partition, kafka::kOffsetBeginning});
  }
  if (absl::Status s = (*consumer)->Assign(assign); !s.ok()) return s;
  std::set<int32_t> at_end;
  absl::Time last_progress = absl::Now();
  while (static_cast<int>(at_end.size()) < *n) {
    auto batch = (*consumer)->PollBatch(1000, absl::Milliseconds(200));
    if (!batch.ok()) return batch.status();
    if (!batch->empty()) last_progress = absl::Now();
    for (const kafka::Message& m : *batch) {
      if (at_end.count(m.partition) > 0) continue;
      if (m.eof) {
        at_end.insert(m.partition);
        (*end)[m.partition] = m.offset;
        continue;
      }
      if (absl::Status s = visit(m); !s.ok()) return s;
    }
    if (absl::Now() - last_progress > options.timeout) {
      return absl::DeadlineExceededError(absl::StrCat("replay: no progress reading ", topic));
    }
  }
  (*consumer)->Close();
  return absl::OkStatus();
}

// Replay skips a record it cannot decode (there is nothing to fold or check), never silently.
void LogUndecodable(const kafka::Message& m) {
  Log(LogLevel::kError, "replay", "record does not decode; skipped",
      {{"topic", m.topic}, {"partition", m.partition}, {"offset", m.offset}});
}

// "<enrollment_id>/<step_id>/due@<micros>" -> the due time.
std::optional<absl::Time> TimerDue(absl::string_view cause) {
  size_t at = cause.rfind("/due@");
  if (at == absl::string_view::npos) return std::nullopt;
  int64_t micros = 0;
  if (!absl::SimpleAtoi(cause.substr(at + 5), &micros)) return std::nullopt;
  return absl::FromUnixMicros(micros);
}

}  // namespace

std::string ReplayResult::ToJson() const {
  std::vector<std::string> diffs;
  for (const std::string& d : differences) diffs.push_back(Quote(d));
  auto offsets = [](const std::map<int32_t, int64_t>& m) {
    std::vector<std::string> parts;
    for (const auto& [p, o] : m) parts.push_back(absl::StrCat("\"", p, "\":", o));
    return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
  };
  return absl::StrCat(
      "{\"digest\":", Quote(digest), ",\"enrollments\":", enrollments, ",\"sequences\":", sequences,
      ",\"executor_events\":", executor_events, ",\"sequence_events\":", sequence_events,
      ",\"executor_events_undecodable\":", executor_events_undecodable,
      ",\"sequence_events_undecodable\":", sequence_events_undecodable,
      ",\"inputs_undecodable\":", inputs_undecodable, ",\"executor_end\":", offsets(executor_end),
      ",\"sequence_end\":", offsets(sequence_end), ",\"decisions_checked\":", decisions_checked,
      ",\"decisions_differing\":", decisions_differing,
      ",\"decisions_unchecked\":", decisions_unchecked, ",\"differences\":[",
      absl::StrJoin(diffs, ","), "]}");
}

absl::StatusOr<ReplayResult> Replay(const ReplayOptions& options) {
  if (absl::Status s = StateStore::Destroy(options.data_dir); !s.ok()) return s;
  auto store = StateStore::Open(options.data_dir);
  if (!store.ok()) return store.status();
  ReplayResult result;
  Processor processor(**store, options.topics);
  Overlay overlay(**store);
  const auto none = [](int32_t) { return false; };

  // Sequences, remembered with their record times for the dry run.
  struct TimedEvent {
    absl::Time at;
    v1::Envelope event;
  };
  std::map<std::string, std::vector<TimedEvent>> sequence_history;
  std::map<std::string, std::vector<TimedEvent>> company_history;  // sending settings
  std::map<std::string, v1::Envelope> inputs_by_id;
  absl::Status s = ReadTopic(
      options, options.topics.sequence_events,
      [&](const kafka::Message& m) {
        BatchOutput ignored;
        absl::Status st = processor.OnSequenceRecord(m, none, m.timestamp, overlay, ignored);
        if (!st.ok()) return st;
        if (ignored.dead_lettered > 0) {  // what the live executor dead-letters
          result.sequence_events_undecodable += ignored.dead_lettered;
          LogUndecodable(m);
        }
        overlay.SetOffset(StateStore::SeqOffsetKey(m.partition), m.offset + 1);
        ++result.sequence_events;
        if (options.dry_run) {
          v1::Envelope e;
          std::string id;
          if (!e.ParseFromString(m.value)) return absl::OkStatus();
          if (std::optional<std::string> company = domain::CompanySettingsEventCompany(e)) {
            company_history[*company].push_back({m.timestamp, e});
          } else if (domain::GetSequenceEventKey(e, &id, nullptr)) {
            inputs_by_id[e.event_id()] = e;
            sequence_history[id].push_back({m.timestamp, std::move(e)});
          }
        }
        return absl::OkStatus();
      },
      &result.sequence_end);
  if (!s.ok()) return s;
  for (const auto& [p, end] : result.sequence_end) {
    overlay.SetOffset(StateStore::SeqOffsetKey(p), end);
  }
  if (s = overlay.Flush(); !s.ok()) return s;

  if (options.dry_run) {
    std::map<int32_t, int64_t> ignored_end;
    s = ReadTopic(
        options, options.topics.enrollment_events,
        [&](const kafka::Message& m) {
          v1::Envelope e;
          if (e.ParseFromString(m.value) && !e.event_id().empty()) {
            inputs_by_id[e.event_id()] = e;
          } else {
            ++result.inputs_undecodable;
            LogUndecodable(m);
          }
          return absl::OkStatus();
        },
        &ignored_end);
    if (!s.ok()) return s;
  }
  auto settings_at = [&](const std::string& company, absl::Time t) {
    domain::CompanySendingState st;
    auto it = company_history.find(company);
    if (it != company_history.end()) {
      for (const TimedEvent& te : it->second) {
        if (te.at > t) break;
        st = domain::EvolveCompanySending(std::move(st), te.event);
      }
    }
    return st.settings;
  };
  auto limits_at = [&](const std::string& company, absl::Time t) {
    return domain::LimitsOf(settings_at(company, t));
  };
  auto sequence_at = [&](const std::string& id, absl::Time t) {
    domain::SequenceState st;
    auto it = sequence_history.find(id);
    if (it == sequence_history.end()) return st;
    for (const TimedEvent& te : it->second) {
      if (te.at > t) break;
      st = domain::EvolveSequence(std::move(st), te.event);
    }
    return st;
  };

  // Executor events: fold; in a dry run, check each recorded decision first.
  struct Group {
    std::string key;
    std::string cause;
    int32_t partition = -1;
    std::vector<v1::Envelope> events;
    std::vector<std::string> bytes;
  };
  Group group;
  auto check_and_apply = [&]() -> absl::Status {
    if (group.events.empty()) return absl::OkStatus();
    if (options.dry_run) {
      auto entry = overlay.Get(group.key);
      if (!entry.ok()) return entry.status();
      const domain::EnrollmentState& before = (*entry)->state;
      const absl::Time now = domain::FromProto(group.events.front().occurred_at());
      std::string sequence_id = before.sequence_id;
      std::optional<absl::StatusOr<domain::Decision>> again;
      auto input = inputs_by_id.find(group.cause);
      if (input != inputs_by_id.end()) {
        if (sequence_id.empty() && input->second.has_enroll_requested()) {
          sequence_id = input->second.enroll_requested().sequence_id();
        }
        again = domain::DecideEnrollment(before, input->second, sequence_at(sequence_id, now), now);
      } else if (std::optional<absl::Time> due = TimerDue(group.cause)) {
        again = domain::DecideStepDue(before, *due, sequence_at(sequence_id, now), now);
      }
      if (!again.has_value()) {
        ++result.decisions_unchecked;
      } else {
        ++result.decisions_checked;
        std::vector<std::string> recorded, decided;
        for (const v1::Envelope& e : group.events) recorded.push_back(SerializeDeterministic(e));
        if (again->ok()) {
          for (const v1::Envelope& e : (*again)->executor_events) {
            if (EnrollmentKeyOfEvent(e) == group.key) decided.push_back(SerializeDeterministic(e));
          }
        }
        if (recorded != decided) {
          ++result.decisions_differing;
          if (result.differences.size() < 10) {
            result.differences.push_back(absl::StrCat(
                group.key, " cause ", group.cause, ": recorded ", recorded.size(),
                " events, decided ", decided.size(),
                again->ok() ? "" : absl::StrCat(" (", again->status().ToString(), ")")));
          }
        }
      }
    }
    for (size_t i = 0; i < group.events.size(); ++i) {
      if (absl::Status st = overlay.Apply(group.events[i], group.bytes[i], group.partition);
          !st.ok()) {
        return st;
      }
    }
    group = Group();
    if (overlay.entries().size() >= 1000) return overlay.Flush();
    return absl::OkStatus();
  };
  s = ReadTopic(
      options, options.topics.executor_events,
      [&](const kafka::Message& m) -> absl::Status {
        v1::Envelope e;
        std::optional<std::string> key;
        if (e.ParseFromString(m.value)) key = EnrollmentKeyOfEvent(e);
        if (e.has_send_ledger_entry()) {  // a sender's ledger (docs/send-limits.md)
          ++result.executor_events;
          overlay.SetOffset(StateStore::ExecOffsetKey(m.partition), m.offset + 1);
          const v1::SendLedgerEntry& entry = e.send_ledger_entry();
          if (options.dry_run) {
            // The sender stage decided: release these, look again then. Decide it again from the
            // state before it, the requests it queued, the sequences as of then.
            auto sender = overlay.GetSender(entry.sender_key());
            if (!sender.ok()) return sender.status();
            const domain::SenderState& before = (*sender)->state;
            if (entry.seq() == before.seq + 1 && domain::IsPersonKey(entry.sender_key())) {
              // A person stage (docs/min-gap.md): forward this one, look again then.
              const absl::Time at = domain::FromProto(entry.at());
              std::map<std::string, const v1::SendRequested*> queue;
              for (const auto& [id, r] : before.queue) queue[id] = &r;
              for (const v1::SendRequested& r : entry.queued()) {
                queue[r.email().idempotency_key()] = &r;
              }
              for (const std::string& id : entry.cancelled()) queue.erase(id);
              const bool settles = !entry.settled().empty() && entry.settled() == before.in_flight;
              std::optional<absl::Time> last_sent = before.last_sent;
              if (settles && entry.has_last_sent_at()) {
                last_sent = domain::FromProto(entry.last_sent_at());
              }
              auto calendar = [&](const v1::SendRequested& r) {
                return domain::MakeCalendar(sequence_at(r.email().sequence_id(), at).settings,
                                            domain::LoadZoneOrUtc(r.time_zone()));
              };
              const absl::Duration gap =
                  domain::MinGapOf(settings_at(domain::CompanyOfStageKey(entry.sender_key()), at));
              const Processor::PersonPlan again = Processor::PlanPerson(
                  last_sent, !before.in_flight.empty() && !settles, queue, calendar, gap, at);
              const bool same_next = entry.has_next_release_at() == again.next.has_value() &&
                                     (!again.next.has_value() ||
                                      domain::FromProto(entry.next_release_at()) == *again.next);
              ++result.decisions_checked;
              if (again.plan.forward.value_or("") != entry.forwarded() || !same_next) {
                ++result.decisions_differing;
                if (result.differences.size() < 10) {
                  result.differences.push_back(
                      absl::StrCat(entry.sender_key(), " ledger ", entry.seq(), ": recorded '",
                                   entry.forwarded(), "' forwarded, decided '",
                                   again.plan.forward.value_or(""), "'"));
                }
              }
            } else if (entry.seq() == before.seq + 1) {
              const absl::Time at = domain::FromProto(entry.at());
              std::map<std::string, const v1::SendRequested*> queue;
              for (const auto& [id, r] : before.queue) queue[id] = &r;
              for (const v1::SendRequested& r : entry.queued()) {
                queue[r.email().idempotency_key()] = &r;
              }
              for (const std::string& id : entry.cancelled()) queue.erase(id);
              auto calendar = [&](const v1::SendRequested& r) {
                return domain::MakeCalendar(sequence_at(r.email().sequence_id(), at).settings,
                                            domain::LoadZoneOrUtc(r.time_zone()));
              };
              const std::string company =
                  entry.sender_key().substr(0, entry.sender_key().find("/sender/"));
              const Processor::SenderPlan again =
                  Processor::PlanSender(before, queue, calendar, limits_at(company, at), at);
              const std::vector<std::string> recorded(entry.released().begin(),
                                                      entry.released().end());
              const bool same_next = entry.has_next_release_at() == again.next.has_value() &&
                                     (!again.next.has_value() ||
                                      domain::FromProto(entry.next_release_at()) == *again.next);
              ++result.decisions_checked;
              if (again.plan.released != recorded || !same_next) {
                ++result.decisions_differing;
                if (result.differences.size() < 10) {
                  result.differences.push_back(absl::StrCat(
                      entry.sender_key(), " ledger ", entry.seq(), ": recorded ", recorded.size(),
                      " released, decided ", again.plan.released.size()));
                }
              }
            }
          }
          return overlay.ApplyLedger(entry, m.partition);
        }
        if (!key.has_value()) {
          ++result.executor_events_undecodable;
          LogUndecodable(m);
          return absl::OkStatus();
        }
        ++result.executor_events;
        if (*key != group.key || e.causation_id() != group.cause ||
            m.partition != group.partition) {
          if (absl::Status st = check_and_apply(); !st.ok()) return st;
          group.key = *key;
          group.cause = e.causation_id();
          group.partition = m.partition;
        }
        group.events.push_back(std::move(e));
        group.bytes.push_back(m.value);
        overlay.SetOffset(StateStore::ExecOffsetKey(m.partition), m.offset + 1);
        return absl::OkStatus();
      },
      &result.executor_end);
  if (!s.ok()) return s;
  if (s = check_and_apply(); !s.ok()) return s;
  for (const auto& [p, end] : result.executor_end) {
    overlay.SetOffset(StateStore::ExecOffsetKey(p), end);
  }
  if (s = overlay.Flush(); !s.ok()) return s;
  auto digest = (*store)->Digest(&result.enrollments, &result.sequences);
  if (!digest.ok()) return digest.status();
  result.digest = *digest;
  return result;
}

}  // namespace sequences::executor
