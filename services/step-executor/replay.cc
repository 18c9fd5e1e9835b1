#include "services/step-executor/replay.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
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
// per partition; `visit` sees each record (and may take it). `end` receives the end offsets.
absl::Status ReadTopic(const ReplayOptions& options, const std::string& topic,
                       const std::function<absl::Status(kafka::Message&)>& visit,
                       std::map<int32_t, int64_t>* end) {
  kafka::ConsumerConfig c;
  c.client = options.client;
  // A bulk read (unless the operator set these): 8 MiB per partition and fetch instead of 1 MiB,
  // so each partition comes in longer runs. An enrollment's events are close together within
  // its partition; with short runs of six partitions interleaved they were six times further
  // apart in the folders' order, and more of them had been written and were read back.
  c.client.overrides.try_emplace("max.partition.fetch.bytes", "8388608");
  c.client.overrides.try_emplace("fetch.max.bytes", "67108864");
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
    for (kafka::Message& m : *batch) {
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

// ReplayOptions::staged_keys: when a folder holds its share of staged keys, it writes the least
// recently used quarter of them in one WriteBatch and forgets them. A key whose events
// come close together in the log (a decision's events, an enrollment's first steps) is written
// once and never looked up again; each key it writes again later costs a lookup, a decode and
// a fold of its stored events, and a second record, due entry and index keys.

// Events the reader hands a folder thread at once, and how many may wait for it.
constexpr size_t kFolderBatch = 512;
constexpr size_t kMaxQueuedEvents = 64 * kFolderBatch;

struct TimedEvent {
  absl::Time at;
  v1::Envelope event;
};

// The settings version a ledger entry was decided under, or nullopt for an entry written before
// entries recorded it.
std::optional<int64_t> SettingsVersion(const v1::SendLedgerEntry& entry) {
  return entry.has_settings_version() ? std::optional<int64_t>(entry.settings_version())
                                      : std::nullopt;
}

// What a dry run decides recorded decisions again from (read-only while executor events fold).
struct DryRunContext {
  const std::map<std::string, v1::Envelope>* inputs_by_id;
  std::function<domain::SequenceState(const std::string&, absl::Time)> sequence_at;
  // A company's sending settings of `version`, or (nullopt: a ledger entry older than its
  // settings_version field) as in the log at the time.
  std::function<v1::CompanySendingSettings(const std::string&, absl::Time,
                                           std::optional<int64_t> version)>
      settings_at;
};

// Folds executor events into the store, in the order given: into its own overlay, of which it
// writes the least recently used keys when it holds its share. Folders share the store but never
// a key (the reader routes by key). With a dry-run context, each recorded decision (consecutive
// events of one key with one causation id) and each ledger entry is decided again from the state
// before it first. Thread-compatible.
class Folder {
 public:
  // `routed_by_record_key`: this folder is one of several, given the records whose Kafka key
  // hashes to it. That keeps each enrollment (sender) on one folder only because the executor
  // keys its events by the enrollment's item key (the sender key); a record keyed otherwise
  // fails the replay (a sequential replay, --fold_threads=0, folds it).
  // `staged_keys`: its share of ReplayOptions::staged_keys.
  Folder(StateStore& store, const DryRunContext* dry_run, bool routed_by_record_key,
         size_t staged_keys)
      : overlay_(store),
        dry_run_(dry_run),
        routed_by_record_key_(routed_by_record_key),
        staged_keys_(std::max<size_t>(staged_keys, 4)) {}

  // Folds one executor-events record (skipped, counted and logged if it does not decode).
  [[nodiscard]] absl::Status Fold(kafka::Message m);
  // Folds the last decision and writes what is staged.
  [[nodiscard]] absl::Status Finish();
  void AddCountsTo(ReplayResult& result) const;

 private:
  struct Item {
    v1::Envelope event;
    std::string bytes;  // as read
    std::string key;    // enrollment key
    int32_t partition = -1;
  };
  absl::Status FoldEvent(Item item);
  struct Group {
    std::string key;
    std::string cause;
    int32_t partition = -1;
    std::vector<v1::Envelope> events;
    std::vector<std::string> bytes;
  };
  absl::Status CheckAndApply();
  // Writes the least recently used quarter of the staged keys (and every staged sender).
  absl::Status Evict();
  absl::Status CheckDecision();
  absl::Status CheckLedger(const v1::SendLedgerEntry& entry);
  void Differs(std::string what);

  Overlay overlay_;
  const DryRunContext* dry_run_;
  const bool routed_by_record_key_;
  const size_t staged_keys_;
  Group group_;
  uint64_t uses_ = 0;  // stamps Overlay::Entry::last_used
  // Fingerprints of the enrollment keys this folder wrote to the store (8 bytes and the table's
  // slack a key: about 20 MiB for a million enrollments).
  absl::flat_hash_set<size_t> written_;
  int64_t events_ = 0;
  int64_t undecodable_ = 0;
  int64_t checked_ = 0;
  int64_t differing_ = 0;
  int64_t unchecked_ = 0;
  std::vector<std::string> differences_;
};

absl::Status Folder::Fold(kafka::Message m) {
  Item item;
  std::optional<std::string> key;
  if (item.event.ParseFromString(m.value)) key = EnrollmentKeyOfEvent(item.event);
  const bool ledger = item.event.has_send_ledger_entry();  // a sender's (docs/send-limits.md)
  if (!ledger && !key.has_value()) {
    ++undecodable_;
    LogUndecodable(m);
    return absl::OkStatus();
  }
  ++events_;
  if (routed_by_record_key_) {
    const absl::string_view owner =
        ledger ? absl::string_view(item.event.send_ledger_entry().sender_key())
               : absl::string_view(*key).substr(0, key->rfind('#'));
    if (owner != m.key) {
      return absl::FailedPreconditionError(
          absl::StrCat("replay: executor-events record ", m.partition, "/", m.offset, " is keyed '",
                       m.key, "', not by its event's item or sender '", owner,
                       "'; a replay with --fold_threads=0 folds it on one thread"));
    }
  }
  if (ledger) {
    const v1::SendLedgerEntry& entry = item.event.send_ledger_entry();
    if (dry_run_ != nullptr) {
      if (absl::Status s = CheckLedger(entry); !s.ok()) return s;
    }
    return overlay_.ApplyLedger(entry, m.partition);
  }
  item.key = std::move(*key);
  item.bytes = std::move(m.value);
  item.partition = m.partition;
  return FoldEvent(std::move(item));
}

absl::Status Folder::FoldEvent(Item item) {
  if (item.key != group_.key || item.event.causation_id() != group_.cause ||
      item.partition != group_.partition) {
    if (absl::Status s = CheckAndApply(); !s.ok()) return s;
    group_.key = std::move(item.key);
    group_.cause = item.event.causation_id();
    group_.partition = item.partition;
  }
  group_.events.push_back(std::move(item.event));
  group_.bytes.push_back(std::move(item.bytes));
  return absl::OkStatus();
}

absl::Status Folder::Finish() {
  if (absl::Status s = CheckAndApply(); !s.ok()) return s;
  return overlay_.Flush();
}

void Folder::AddCountsTo(ReplayResult& result) const {
  result.executor_events += events_;
  result.executor_events_undecodable += undecodable_;
  result.decisions_checked += checked_;
  result.decisions_differing += differing_;
  result.decisions_unchecked += unchecked_;
  for (const std::string& d : differences_) {
    if (result.differences.size() < 10) result.differences.push_back(d);
  }
}

void Folder::Differs(std::string what) {
  ++differing_;
  if (differences_.size() < 10) differences_.push_back(std::move(what));
}

absl::Status Folder::CheckAndApply() {
  if (group_.events.empty()) return absl::OkStatus();
  // A key this folder never wrote is not in the store (it started empty; no other folder
  // folds this key): staged as new without a lookup. A fingerprint this folder wrote (or one
  // that collides with it) costs the lookup.
  if (!written_.contains(absl::HashOf(group_.key))) overlay_.GetNew(group_.key);
  if (dry_run_ != nullptr) {
    if (absl::Status s = CheckDecision(); !s.ok()) return s;
  }
  ++uses_;
  for (size_t i = 0; i < group_.events.size(); ++i) {
    auto entry = overlay_.ApplyToKey(group_.key, group_.events[i], std::move(group_.bytes[i]),
                                     group_.partition);
    if (!entry.ok()) return entry.status();
    (*entry)->last_used = uses_;
  }
  group_.events.clear();
  group_.bytes.clear();
  if (overlay_.entries().size() + overlay_.senders().size() >= staged_keys_) return Evict();
  return absl::OkStatus();
}

absl::Status Folder::Evict() {
  std::vector<uint64_t> used;
  used.reserve(overlay_.entries().size());
  for (const auto& [key, e] : overlay_.entries()) used.push_back(e.last_used);
  const size_t evict = staged_keys_ / 4;
  uint64_t last = 0;  // keys used at or before this one are written
  if (used.size() > evict) {
    std::nth_element(used.begin(), used.begin() + evict, used.end());
    last = used[evict];
  } else if (!used.empty()) {
    last = *std::max_element(used.begin(), used.end());
  }
  return overlay_.FlushSome([&](const std::string& key, const Overlay::Entry& e) {
    if (e.last_used > last) return false;
    written_.insert(absl::HashOf(key));
    return true;
  });
}

absl::Status Folder::CheckDecision() {
  auto entry = overlay_.Get(group_.key);
  if (!entry.ok()) return entry.status();
  const domain::EnrollmentState& before = (*entry)->state;
  const absl::Time now = domain::FromProto(group_.events.front().occurred_at());
  std::string sequence_id = before.sequence_id;
  std::optional<absl::StatusOr<domain::Decision>> again;
  auto input = dry_run_->inputs_by_id->find(group_.cause);
  if (input != dry_run_->inputs_by_id->end()) {
    if (sequence_id.empty() && input->second.has_enroll_requested()) {
      sequence_id = input->second.enroll_requested().sequence_id();
    }
    again = domain::DecideEnrollment(before, input->second, dry_run_->sequence_at(sequence_id, now),
                                     now);
  } else if (std::optional<absl::Time> due = TimerDue(group_.cause)) {
    again = domain::DecideStepDue(before, *due, dry_run_->sequence_at(sequence_id, now), now);
  }
  if (!again.has_value()) {
    ++unchecked_;
    return absl::OkStatus();
  }
  ++checked_;
  std::vector<std::string> recorded, decided;
  for (const v1::Envelope& e : group_.events) recorded.push_back(SerializeDeterministic(e));
  if (again->ok()) {
    for (const v1::Envelope& e : (*again)->executor_events) {
      if (EnrollmentKeyOfEvent(e) == group_.key) decided.push_back(SerializeDeterministic(e));
    }
  }
  if (recorded != decided) {
    Differs(absl::StrCat(group_.key, " cause ", group_.cause, ": recorded ", recorded.size(),
                         " events, decided ", decided.size(),
                         again->ok() ? "" : absl::StrCat(" (", again->status().ToString(), ")")));
  }
  return absl::OkStatus();
}

// The sender stage decided: release these, look again then. Decide it again from the state
// before it, the requests it queued, the sequences as of then.
absl::Status Folder::CheckLedger(const v1::SendLedgerEntry& entry) {
  auto sender = overlay_.GetSender(entry.sender_key());
  if (!sender.ok()) return sender.status();
  const domain::SenderState& before = (*sender)->state;
  if (entry.seq() != before.seq + 1) return absl::OkStatus();
  const absl::Time at = domain::FromProto(entry.at());
  const auto same_next = [&](const std::optional<absl::Time>& next) {
    return entry.has_next_release_at() == next.has_value() &&
           (!next.has_value() || domain::FromProto(entry.next_release_at()) == *next);
  };
  if (domain::IsPersonKey(entry.sender_key())) {
    // A person stage (docs/min-gap.md): forward this one, look again then. Its state holds its
    // whole queue (one person's emails).
    std::map<std::string, const v1::SendRequested*> queue;
    for (const auto& [id, r] : before.queue) queue[id] = &r;
    for (const v1::SendRequested& r : entry.queued()) queue[r.email().idempotency_key()] = &r;
    for (const std::string& id : entry.cancelled()) queue.erase(id);
    auto calendar = [&](const v1::SendRequested& r) {
      return domain::MakeCalendar(dry_run_->sequence_at(r.email().sequence_id(), at).settings,
                                  domain::LoadZoneOrUtc(r.time_zone()));
    };
    const bool settles = !entry.settled().empty() && entry.settled() == before.in_flight;
    std::optional<absl::Time> last_sent = before.last_sent;
    if (settles && entry.has_last_sent_at()) last_sent = domain::FromProto(entry.last_sent_at());
    const absl::Duration gap = domain::MinGapOf(dry_run_->settings_at(
        domain::CompanyOfStageKey(entry.sender_key()), at, SettingsVersion(entry)));
    const Processor::PersonPlan again = Processor::PlanPerson(
        last_sent, !before.in_flight.empty() && !settles, queue, calendar, gap, at);
    ++checked_;
    const std::vector<std::string> passed(entry.passed().begin(), entry.passed().end());
    if (again.plan.forward.value_or("") != entry.forwarded() || again.plan.passed != passed ||
        !same_next(again.next)) {
      Differs(absl::StrCat(entry.sender_key(), " ledger ", entry.seq(), ": recorded '",
                           entry.forwarded(), "' forwarded, decided '",
                           again.plan.forward.value_or(""), "'"));
    }
    return absl::OkStatus();
  }
  // A sender's queue stays in the store: the plan reads the runs as far as it decides, plus the
  // entry's new requests (those not queued already), less its cancels.
  std::vector<std::string> named;
  for (const v1::SendRequested& r : entry.queued()) named.push_back(r.email().idempotency_key());
  named.insert(named.end(), entry.cancelled().begin(), entry.cancelled().end());
  if (absl::Status s = overlay_.LoadQueued(entry.sender_key(), **sender, named); !s.ok()) return s;
  std::map<std::string, const v1::SendRequested*> arrived;
  for (const v1::SendRequested& r : entry.queued()) {
    if (before.queue.count(r.email().idempotency_key()) == 0) {
      arrived[r.email().idempotency_key()] = &r;
    }
  }
  const std::set<std::string> cancelled(entry.cancelled().begin(), entry.cancelled().end());
  for (const std::string& id : cancelled) arrived.erase(id);
  const std::string company = domain::CompanyOfStageKey(entry.sender_key());
  absl::Status read;
  const Processor::SenderPlan again = Processor::PlanSender(
      before,
      overlay_.SenderRuns(
          entry.sender_key(), **sender, arrived, cancelled,
          [&](const std::string& sequence_id, const std::string& time_zone) {
            return domain::MakeCalendar(dry_run_->sequence_at(sequence_id, at).settings,
                                        domain::LoadZoneOrUtc(time_zone));
          },
          &read),
      domain::LimitsOf(dry_run_->settings_at(company, at, SettingsVersion(entry))), at);
  if (!read.ok()) return read;
  const std::vector<std::string> recorded(entry.released().begin(), entry.released().end());
  ++checked_;
  if (again.plan.released != recorded || !same_next(again.next)) {
    Differs(absl::StrCat(entry.sender_key(), " ledger ", entry.seq(), ": recorded ",
                         recorded.size(), " released, decided ", again.plan.released.size()));
  }
  return absl::OkStatus();
}

// A Folder (without dry run) on its own thread, fed batches of events by the reader.
// Thread-safe: Push and Close are called by the reader thread.
class FolderThread {
 public:
  FolderThread(StateStore& store, size_t staged_keys)
      : folder_(store, nullptr, /*routed_by_record_key=*/true, staged_keys),
        thread_([this] { Run(); }) {}
  ~FolderThread() { Close().IgnoreError(); }
  FolderThread(const FolderThread&) = delete;
  FolderThread& operator=(const FolderThread&) = delete;

  // Queues a batch, waiting while the folder is kMaxQueuedEvents behind. False if the folder
  // failed (Close returns why).
  bool Push(std::vector<kafka::Message> batch) {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](FolderThread* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t->mu_) {
          return t->queued_ < kMaxQueuedEvents || t->done_;
        },
        this));
    if (done_) return false;
    queued_ += batch.size();
    queue_.push_back(std::move(batch));
    return true;
  }

  // No more batches: folds what is queued, writes it, stops the thread. Its status.
  absl::Status Close() {
    {
      absl::MutexLock lock(&mu_);
      closed_ = true;
    }
    if (thread_.joinable()) thread_.join();
    absl::MutexLock lock(&mu_);
    return status_;
  }
  // After Close.
  void AddCountsTo(ReplayResult& result) const { folder_.AddCountsTo(result); }

 private:
  void Run() {
    absl::Status s;
    for (;;) {
      std::vector<kafka::Message> batch;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](FolderThread* t)
                 ABSL_EXCLUSIVE_LOCKS_REQUIRED(t->mu_) { return !t->queue_.empty() || t->closed_; },
            this));
        if (queue_.empty()) break;
        batch = std::move(queue_.front());
        queue_.pop_front();
        queued_ -= batch.size();
      }
      for (kafka::Message& m : batch) {
        if (s = folder_.Fold(std::move(m)); !s.ok()) break;
      }
      if (!s.ok()) break;
    }
    if (s.ok()) s = folder_.Finish();
    absl::MutexLock lock(&mu_);
    status_ = s;
    done_ = true;
    queue_.clear();
  }

  absl::Mutex mu_;
  std::deque<std::vector<kafka::Message>> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  Folder folder_;       // used by the thread only
  std::thread thread_;  // last: starts once the rest is built
};

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
  auto store = StateStore::OpenForRebuild(options.data_dir);
  if (!store.ok()) return store.status();
  ReplayResult result;
  Processor processor(**store, options.topics);
  Overlay overlay(**store);
  const auto none = [](int32_t) { return false; };

  // Sequences, remembered with their record times for the dry run.
  std::map<std::string, std::vector<TimedEvent>> sequence_history;
  std::map<std::string, std::vector<TimedEvent>> company_history;  // sending settings
  std::map<std::string, v1::Envelope> inputs_by_id;
  absl::Status s = ReadTopic(
      options, options.topics.sequence_events,
      [&](kafka::Message& m) {
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
        [&](kafka::Message& m) {
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
  auto settings_at = [&](const std::string& company, absl::Time t,
                         std::optional<int64_t> version) -> v1::CompanySendingSettings {
    domain::CompanySendingState st;
    auto it = company_history.find(company);
    if (it != company_history.end()) {
      for (const TimedEvent& te : it->second) {
        if (version.has_value() ? te.event.company_sending_settings_changed().version() > *version
                                : te.at > t) {
          continue;
        }
        st = domain::EvolveCompanySending(std::move(st), te.event);
      }
    }
    return st.settings;
  };
  auto sequence_at = [&](const std::string& id, absl::Time t) -> domain::SequenceState {
    domain::SequenceState st;
    auto it = sequence_history.find(id);
    if (it == sequence_history.end()) return st;
    for (const TimedEvent& te : it->second) {
      if (te.at > t) break;
      st = domain::EvolveSequence(std::move(st), te.event);
    }
    return st;
  };

  // Executor events: the reader routes each to a folder by its enrollment (or sender) key, so
  // one key's events stay in log order in one folder and folders never share a key. A dry run
  // folds on the reader's thread (each decision is checked against the state before it, in log
  // order); otherwise `fold_threads` folders fold in parallel, each writing its own chunks.
  const DryRunContext dry_run_context{&inputs_by_id, sequence_at, settings_at};
  const DryRunContext* dry = options.dry_run ? &dry_run_context : nullptr;
  const size_t staged_keys = static_cast<size_t>(std::max(options.staged_keys, 0));
  Folder inline_folder(**store, dry, /*routed_by_record_key=*/false, staged_keys);
  std::vector<std::unique_ptr<FolderThread>> threads;
  if (!options.dry_run && options.fold_threads > 0) {
    for (int i = 0; i < options.fold_threads; ++i) {
      threads.push_back(
          std::make_unique<FolderThread>(**store, staged_keys / options.fold_threads));
    }
  }
  std::vector<std::vector<kafka::Message>> pending(threads.size());
  auto push = [&](size_t w) -> absl::Status {
    if (pending[w].empty()) return absl::OkStatus();
    if (!threads[w]->Push(std::move(pending[w]))) return threads[w]->Close();
    pending[w] = {};
    pending[w].reserve(kFolderBatch);
    return absl::OkStatus();
  };
  s = ReadTopic(
      options, options.topics.executor_events,
      [&](kafka::Message& m) -> absl::Status {
        if (threads.empty()) return inline_folder.Fold(std::move(m));
        const size_t w = std::hash<std::string_view>{}(m.key) % threads.size();
        pending[w].push_back(std::move(m));
        return pending[w].size() >= kFolderBatch ? push(w) : absl::OkStatus();
      },
      &result.executor_end);
  for (size_t w = 0; w < threads.size() && s.ok(); ++w) s = push(w);
  // Every folder finishes (its threads joined) before anything else happens, even on an error.
  absl::Status folded = threads.empty() && s.ok() ? inline_folder.Finish() : absl::OkStatus();
  for (auto& t : threads) folded.Update(t->Close());
  if (!s.ok()) return s;
  if (!folded.ok()) return folded;
  inline_folder.AddCountsTo(result);
  for (const auto& t : threads) t->AddCountsTo(result);
  for (const auto& [p, end] : result.executor_end) {
    overlay.SetOffset(StateStore::ExecOffsetKey(p), end);
  }
  if (s = overlay.Flush(); !s.ok()) return s;
  // Written without the WAL: durable only once Persist returns; never report a state that is not.
  // The digest reads the same writes (from the memtables the flush is writing, or its files)
  // while the flush runs: two cores instead of one in turn at the end of the replay.
  absl::StatusOr<std::string> digest;
  std::thread digester([&] { digest = (*store)->Digest(&result.enrollments, &result.sequences); });
  s = (*store)->Persist();
  digester.join();
  if (!s.ok()) return s;
  if (!digest.ok()) return digest.status();
  result.digest = *digest;
  return result;
}

}  // namespace sequences::executor
