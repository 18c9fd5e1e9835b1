#include "services/sequence-api/read_model.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/domain/contract.h"
#include "libs/domain/envelope.h"
#include "libs/domain/errors.h"
#include "libs/domain/routing.h"
#include "libs/domain/stats.h"
#include "libs/domain/updates.h"
#include "libs/kafka/status.h"
#include "libs/runtime/log.h"
#include "libs/runtime/thread.h"

namespace sequences::api {
namespace {

constexpr char kSeqEvents[] = "seq_events";
constexpr char kSequences[] = "sequences";
constexpr char kEnrEvents[] = "enr_events";
constexpr char kEnrollments[] = "enrollments";
constexpr char kPending[] = "pending";
constexpr char kIndex[] = "index";
constexpr char kRequests[] = "requests";
constexpr char kMeta[] = "meta";
constexpr char kStats[] = "stats";
constexpr char kChanges[] = "changes";
constexpr char kEmailTemplates[] = "email_templates";

const std::string kSep(1, '\0');

std::string StatusByte(int status) { return std::string(1, static_cast<char>('0' + status)); }

std::string OffsetKey(const std::string& topic, int32_t partition) {
  return absl::StrCat("off", kSep, topic, kSep, partition);
}

// Change-log key: partition and offset, big-endian, so a scan runs in log order per partition.
std::string ChangeKey(int32_t partition, int64_t offset) {
  std::string key;
  const auto p = static_cast<uint32_t>(partition);
  for (int shift = 24; shift >= 0; shift -= 8)
    key.push_back(static_cast<char>((p >> shift) & 0xff));
  store::AppendBigEndian64(&key, static_cast<uint64_t>(std::max<int64_t>(offset, 0)));
  return key;
}

std::string FloorKey(int32_t partition) { return absl::StrCat("chf", kSep, partition); }

std::string SeqEventKey(const std::string& sequence_id, int64_t version) {
  std::string key = absl::StrCat(sequence_id, kSep);
  store::AppendBigEndian64(&key, static_cast<uint64_t>(version));
  return key;
}

std::string EnrEventKey(const std::string& enrollment_key, int64_t offset) {
  std::string key = absl::StrCat(enrollment_key, kSep);
  store::AppendBigEndian64(&key, static_cast<uint64_t>(offset));
  return key;
}

// The status an enrollment is listed and counted under; 0 = pending. -1: not listed.
int ListStatus(const v1::Enrollment& view) {
  if (view.pending() && !domain::IsActive(view.status())) return 0;
  if (view.status() == v1::ENROLLMENT_STATUS_UNSPECIFIED) return -1;
  return static_cast<int>(view.status());
}

std::string CompanyOfItemKey(absl::string_view item_key) {
  return std::string(item_key.substr(0, item_key.find('/')));
}

// Whether `rest`, what follows "es|<sequence id>|" in a key of the sequence index, is
// "<status byte>|<item key>" of an item of `company_id`; sets *item_key. Items of another company
// (an input of that company naming this sequence id, which the executor rejects) and keys made
// from a sequence id holding the separator are not this sequence's enrollments.
bool IndexedItemOf(absl::string_view rest, absl::string_view company_id,
                   absl::string_view* item_key) {
  if (rest.size() < 3 || rest[1] != kSep[0]) return false;
  const absl::string_view item = rest.substr(2);
  if (absl::StrContains(item, kSep) || CompanyOfItemKey(item) != company_id) return false;
  *item_key = item;
  return true;
}

std::vector<std::string> EnrollmentIndexKeys(const v1::Enrollment& view,
                                             const std::string& sequence_id) {
  std::vector<std::string> keys;
  const int s = ListStatus(view);
  if (s < 0) return keys;
  keys.push_back(absl::StrCat("es", kSep, sequence_id, kSep, StatusByte(s), kSep, view.item_key()));
  if (!view.owner_id().empty()) {
    keys.push_back(absl::StrCat("eo", kSep, CompanyOfItemKey(view.item_key()), kSep,
                                view.owner_id(), kSep, sequence_id, kSep, view.item_key()));
  }
  return keys;
}

std::string StatsKey(absl::string_view sequence_id, absl::string_view day,
                     absl::string_view step_id, absl::string_view variant_id) {
  return absl::StrCat("c", kSep, sequence_id, kSep, day, kSep, step_id, kSep, variant_id);
}

// Adds one increment to a statistics row.
void Count(const domain::StatIncrement& i, v1::StepStatistics* row) {
  using domain::StatCounter;
  switch (i.counter) {
    case StatCounter::kEnrolled:
      row->set_enrolled(row->enrolled() + 1);
      break;
    case StatCounter::kReached:
      row->set_reached(row->reached() + 1);
      break;
    case StatCounter::kTaskCreated:
      row->set_tasks_created(row->tasks_created() + 1);
      break;
    case StatCounter::kTaskCompleted:
      row->set_tasks_completed(row->tasks_completed() + 1);
      break;
    case StatCounter::kEmailDrafted:
      row->set_emails_drafted(row->emails_drafted() + 1);
      break;
    case StatCounter::kEmailSent:
      row->set_emails_sent(row->emails_sent() + 1);
      break;
    case StatCounter::kFailed:
      ++(*row->mutable_failed())[i.reason];
      break;
    case StatCounter::kReplied:
      row->set_replied(row->replied() + 1);
      break;
    case StatCounter::kBounced:
      row->set_bounced(row->bounced() + 1);
      break;
    case StatCounter::kExited:
      ++(*row->mutable_exits())[i.reason];
      break;
    case StatCounter::kDeferred:
      row->set_deferred(row->deferred() + 1);
      break;
  }
}

// The resource an API-written input names (for request records).
std::string InputResource(const v1::Envelope& e) {
  const domain::InputRoute route = domain::RouteInput(e);
  switch (route.scope) {
    case domain::InputRoute::Scope::kItemInSequence:
      return EnrollmentResourceName(route.item_key, route.sequence_id);
    case domain::InputRoute::Scope::kItem:
      return ItemResourceName(route.item_key);
    case domain::InputRoute::Scope::kOwner:
      return absl::StrCat("companies/", e.company_id(), "/users/", route.owner_id);
    default:
      return "";
  }
}

template <typename M>
absl::StatusOr<std::optional<M>> GetProto(store::Store& store, absl::string_view cf,
                                          absl::string_view key,
                                          const store::Snapshot* at = nullptr) {
  absl::StatusOr<std::optional<std::string>> raw = store.Get(cf, key, at);
  if (!raw.ok()) return raw.status();
  if (!raw->has_value()) return std::optional<M>();
  M m;
  if (!m.ParseFromString(**raw)) {
    return absl::DataLossError(absl::StrCat("read model: cannot parse ", cf, " record"));
  }
  return std::optional<M>(std::move(m));
}

// Retries a metadata call while the broker says "try again" (a new topic has no leader yet),
// for at most ~30 s.
template <typename Fn>
auto Retrying(Fn fn) -> decltype(fn()) {
  auto result = fn();
  for (int attempt = 0; attempt < 60 && !result.ok() && kafka::IsRetriable(result.status());
       ++attempt) {
    absl::SleepFor(absl::Milliseconds(500));
    result = fn();
  }
  return result;
}

}  // namespace

void FillEnrollmentView(const domain::EnrollmentState& st, v1::Enrollment* view) {
  v1::Enrollment& v = *view;
  if (!st.enrollment_id.empty()) {
    v.set_enrollment_id(st.enrollment_id);
    v.set_status(st.status);
    if (!v.pending() || domain::IsActive(st.status)) v.set_owner_id(st.owner_id);
    v.set_pending_step_id(st.pending_step_id);
    std::optional<absl::Time> due = domain::NextDueAt(st);
    if (due.has_value()) {
      *v.mutable_next_due_time() = domain::ToProto(*due);
    } else {
      v.clear_next_due_time();
    }
    v.clear_executed_step_ids();
    for (const std::string& s : st.executed_step_ids) v.add_executed_step_ids(s);
    v.set_failure_reason(st.failure_reason);
    v.set_failed_step_id(st.failed_step_id);
    v.set_missing_merge_field(st.missing_merge_field);
    v.set_exit_reason(st.exit_reason);
    v.set_removal_reason(st.removal_reason);
    v.set_waiting_task_id(st.waiting_task_id);
    v.set_time_zone(st.time_zone);
    *v.mutable_start_time() = domain::ToProto(st.started_at);
    if (st.deferred_email_id.empty()) {
      v.clear_deferred();
    } else {
      v1::Enrollment::Deferred* d = v.mutable_deferred();
      d->set_reason(st.deferred_reason);
      d->set_step_id(st.deferred_step_id);
      *d->mutable_until() = domain::ToProto(st.deferred_until);
      d->set_detail(st.deferred_detail);
    }
    if (domain::IsActive(st.status)) {
      v.clear_end_time();
    } else {
      *v.mutable_end_time() = domain::ToProto(st.ended_at);
    }
  }
}

v1::Sequence SequenceView(const domain::SequenceState& s) {
  v1::Sequence v;
  v.set_name(SequenceResourceName(s.company_id, s.sequence_id));
  v.set_display_name(s.name);
  v.set_owner_id(s.owner_id);
  v.set_entity_kind(s.entity_kind);
  for (const v1::Step& step : s.steps) *v.add_steps() = step;
  *v.mutable_settings() = s.settings;
  v.set_template_id(s.template_id);
  v.set_automated_sending(s.automated_sending);
  for (const std::string& u : s.consented_users) v.add_consented_user_ids(u);
  v.set_paused(s.paused);
  v.set_deleted(s.deleted);
  v.set_version(s.version);
  *v.mutable_create_time() = domain::ToProto(s.created_at);
  *v.mutable_update_time() = domain::ToProto(s.updated_at);
  return v;
}

v1::EmailTemplate EmailTemplateView(const domain::EmailTemplateState& s) {
  v1::EmailTemplate v;
  v.set_name(EmailTemplateResourceName(s.company_id, s.template_id));
  v.set_display_name(s.content.name());
  v.set_subject(s.content.subject());
  v.set_body(s.content.body());
  v.set_body_is_html(s.content.body_is_html());
  v.set_version(s.version);
  v.set_deleted(s.deleted);
  *v.mutable_create_time() = domain::ToProto(s.created_at);
  *v.mutable_update_time() = domain::ToProto(s.updated_at);
  return v;
}

// Per-batch caches: each key is loaded once, evolved in memory, written once.
struct ReadModel::Batch {
  struct Seq {
    domain::SequenceState state;
    bool dirty = false;
  };
  struct Tpl {
    domain::EmailTemplateState state;
    bool dirty = false;
  };
  std::map<std::string, Tpl> templates;
  struct Enr {
    EnrollmentRecord record;
    std::string sequence_id;
    std::optional<v1::Enrollment> old_view;
    bool had_pending = false;  // a pending record was stored when loaded
    bool dirty = false;
  };
  std::map<std::string, Seq> sequences;
  std::map<std::string, Enr> enrollments;
  std::map<std::string, RequestRecord> requests;
  std::map<std::pair<std::string, int32_t>, int64_t> offsets;
  // Statistics rows touched by the batch (loaded, then incremented), and task ids counted.
  std::map<std::string, v1::StepStatistics> stats;
  std::set<std::string> completed_tasks;
  store::WriteBatch writes;
};

ReadModel::ReadModel(ReadModelOptions options, std::unique_ptr<store::Store> store)
    : options_(std::move(options)), store_(std::move(store)) {}

ReadModel::~ReadModel() { Stop(); }

absl::StatusOr<std::unique_ptr<ReadModel>> ReadModel::Open(const ReadModelOptions& options) {
  store::StoreOptions so;
  so.path = options.data_dir;
  so.column_families = {kSeqEvents, kSequences, kEnrEvents, kEnrollments, kPending,       kIndex,
                        kRequests,  kMeta,      kStats,     kChanges,     kEmailTemplates};
  absl::StatusOr<std::unique_ptr<store::Store>> store = store::Store::Open(so);
  if (!store.ok()) return store.status();
  std::unique_ptr<ReadModel> rm(new ReadModel(options, std::move(*store)));
  if (absl::Status s = rm->LoadOffsets(); !s.ok()) return s;
  return rm;
}

absl::Status ReadModel::LoadOffsets() {
  absl::MutexLock lock(&mu_);
  absl::Status floors = store_->ScanPrefix(
      kMeta, absl::StrCat("chf", kSep), [this](absl::string_view key, absl::string_view value) {
        mu_.AssertHeld();
        int32_t partition = 0;
        int64_t floor = 0;
        if (absl::SimpleAtoi(key.substr(4), &partition) && absl::SimpleAtoi(value, &floor)) {
          change_floor_[partition] = floor;
        }
        return true;
      });
  if (!floors.ok()) return floors;
  absl::Status offsets = store_->ScanPrefix(
      kMeta, absl::StrCat("off", kSep), [this](absl::string_view key, absl::string_view value) {
        mu_.AssertHeld();  // called within this scope (for the analysis)
        std::vector<std::string> parts = absl::StrSplit(key, kSep[0]);
        int32_t partition = 0;
        int64_t offset = 0;
        if (parts.size() == 3 && absl::SimpleAtoi(parts[2], &partition) &&
            absl::SimpleAtoi(value, &offset)) {
          applied_[{parts[1], partition}] = offset;
        }
        return true;
      });
  if (!offsets.ok()) return offsets;
  // What the store holds is what a new watcher need not be sent again.
  WatchCursor reached;
  for (const auto& [tp, off] : applied_) {
    if (tp.first == options_.topics.executor_events) reached[tp.second] = off;
  }
  watch_hub_.Seed(reached);
  return absl::OkStatus();
}

absl::Status ReadModel::Start() {
  kafka::ConsumerConfig cc;
  cc.client = options_.kafka;
  cc.client.client_id = absl::StrCat(options_.kafka.client_id, "-read-model");
  cc.read_committed = true;
  cc.partition_eof = true;
  absl::StatusOr<std::unique_ptr<kafka::Consumer>> consumer = kafka::Consumer::Create(cc);
  if (!consumer.ok()) return consumer.status();
  consumer_ = std::move(*consumer);

  std::vector<kafka::TopicPartitionOffset> assignment;
  const std::vector<std::string> topics = {options_.topics.sequence_events,
                                           options_.topics.enrollment_events,
                                           options_.topics.executor_events};
  for (const std::string& topic : topics) {
    absl::StatusOr<int> n =
        Retrying([&] { return consumer_->PartitionCount(topic, options_.kafka.connect_timeout); });
    if (!n.ok()) return n.status();
    for (int32_t p = 0; p < *n; ++p) {
      absl::StatusOr<kafka::WatermarkOffsets> w = Retrying([&] {
        return consumer_->QueryWatermarks({topic, p}, options_.kafka.connect_timeout);
      });
      if (!w.ok()) return w.status();
      absl::MutexLock lock(&mu_);
      partitions_[topic] = *n;
      start_end_[{topic, p}] = w->high;
      auto it = applied_.find({topic, p});
      // Offsets below the low watermark were deleted by retention: start at the oldest kept.
      int64_t from = it == applied_.end() ? kafka::kOffsetBeginning : it->second;
      if (it == applied_.end()) applied_[{topic, p}] = 0;
      // A store built now (or left behind longer than the topic's retention) holds no change
      // before the oldest record the topic still has.
      if (topic == options_.topics.executor_events && applied_[{topic, p}] < w->low &&
          w->low > change_floor_[p]) {
        change_floor_[p] = w->low;
        store::WriteBatch floor;
        floor.Put(kMeta, FloorKey(p), absl::StrCat(w->low));
        if (absl::Status s = store_->Write(floor); !s.ok()) return s;
      }
      assignment.push_back({topic, p, from});
    }
  }
  if (absl::Status s = consumer_->Assign(assignment); !s.ok()) return s;
  Log(LogLevel::kInfo, "api.read_model", "folding",
      {{"partitions", assignment.size()}, {"dir", options_.data_dir}});
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void ReadModel::StartInProcess(const std::map<std::string, int>& partition_counts) {
  absl::MutexLock lock(&mu_);
  for (const auto& [topic, n] : partition_counts) partitions_[topic] = n;
}

void ReadModel::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
  if (consumer_ != nullptr) {
    consumer_->Close();
    consumer_.reset();
  }
}

void ReadModel::Run() {
  NameThisThread("api-fold");
  if (options_.fold_nice > 0) {
    if (absl::Status s = LowerThisThreadPriority(options_.fold_nice); !s.ok()) {
      Log(LogLevel::kWarning, "api.read_model", "cannot lower the folding thread's priority",
          {{"error", s.ToString()}});
    }
  }
  int consecutive_errors = 0;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
    }
    absl::StatusOr<std::vector<kafka::Message>> batch =
        consumer_->PollBatch(1000, absl::Milliseconds(100));
    if (!batch.ok()) {
      if (++consecutive_errors % 50 == 1) {
        Log(LogLevel::kWarning, "api.read_model", "poll failed",
            {{"error", batch.status().ToString()}});
      }
      continue;
    }
    consecutive_errors = 0;
    if (batch->empty()) continue;
    if (absl::Status s = Apply(*batch); !s.ok()) {
      // The store failed: nothing of the batch was applied. Go back to the stored offsets so the
      // batch comes again (and do not busy-loop on a broken disk).
      Log(LogLevel::kError, "api.read_model", "apply failed", {{"error", s.ToString()}});
      std::vector<kafka::TopicPartitionOffset> rewind;
      {
        absl::MutexLock lock(&mu_);
        for (const auto& [tp, off] : applied_) rewind.push_back({tp.first, tp.second, off});
        mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Seconds(1));
      }
      if (absl::Status a = consumer_->Assign(rewind); !a.ok()) {
        Log(LogLevel::kError, "api.read_model", "rewind failed", {{"error", a.ToString()}});
      }
    }
  }
}

absl::Status ReadModel::Apply(absl::Span<const kafka::Message> messages) {
  Batch b;
  std::map<std::pair<std::string, int32_t>, int64_t> applied;
  // Company sending settings: the latest version folded so far (this batch included).
  std::map<std::string, int64_t> company_versions;
  {
    absl::MutexLock lock(&mu_);
    applied = applied_;
  }
  int64_t folded = 0;
  // Status changes folded from executor-events, in log order (the change log and the hub).
  std::vector<WatchChange> changes;

  auto load_sequence = [&](const std::string& id) -> absl::StatusOr<Batch::Seq*> {
    auto it = b.sequences.find(id);
    if (it != b.sequences.end()) return &it->second;
    absl::StatusOr<domain::SequenceState> s = LoadSequenceState(id);
    if (!s.ok()) return s.status();
    return &b.sequences.emplace(id, Batch::Seq{std::move(*s), false}).first->second;
  };
  // Every record of the batch decoded once, up front, so that the enrollment and request records
  // its enroll requests and executor events will load are read with one store lookup per column
  // family (a superset: a record skipped below only costs its lookup) instead of a snapshot and
  // reads per record.
  std::vector<v1::Envelope> decoded(messages.size());
  std::vector<bool> decodable(messages.size());
  absl::flat_hash_map<std::string, std::optional<EnrollmentRecord>> prefetched_enrollments;
  absl::flat_hash_map<std::string, std::optional<RequestRecord>> prefetched_requests;
  {
    std::vector<std::string> enrollment_keys;
    std::vector<std::string> request_keys;
    for (size_t i = 0; i < messages.size(); ++i) {
      const kafka::Message& m = messages[i];
      if (m.eof) continue;
      auto at = applied.find(std::make_pair(m.topic, m.partition));
      if (at != applied.end() && m.offset < at->second) continue;
      if (!decoded[i].ParseFromString(m.value)) continue;
      decodable[i] = true;
      const v1::Envelope& e = decoded[i];
      if (e.has_enroll_requested()) {
        const v1::EnrollRequested& req = e.enroll_requested();
        if (!req.item_key().empty() && !req.sequence_id().empty()) {
          enrollment_keys.push_back(domain::EnrollmentKey(req.item_key(), req.sequence_id()));
        }
      } else if (std::optional<domain::ItemInSequence> target = domain::ExecutorEventTarget(e);
                 target.has_value() && !target->item_key.empty() && !target->sequence_id.empty()) {
        enrollment_keys.push_back(domain::EnrollmentKey(target->item_key, target->sequence_id));
      }
      if (!e.correlation_id().empty() && domain::IsEnrollmentInput(e)) {
        request_keys.push_back(absl::StrCat(e.company_id(), kSep, e.correlation_id()));
      }
    }
    for (std::vector<std::string>* keys : {&enrollment_keys, &request_keys}) {
      std::sort(keys->begin(), keys->end());
      keys->erase(std::unique(keys->begin(), keys->end()), keys->end());
    }
    absl::StatusOr<std::vector<std::optional<EnrollmentRecord>>> records =
        LoadEnrollments(enrollment_keys);
    if (!records.ok()) return records.status();
    prefetched_enrollments.reserve(enrollment_keys.size());
    for (size_t i = 0; i < enrollment_keys.size(); ++i) {
      prefetched_enrollments.emplace(std::move(enrollment_keys[i]), std::move((*records)[i]));
    }
    absl::StatusOr<std::vector<std::optional<RequestRecord>>> requests = RequestsAt(request_keys);
    if (!requests.ok()) return requests.status();
    prefetched_requests.reserve(request_keys.size());
    for (size_t i = 0; i < request_keys.size(); ++i) {
      prefetched_requests.emplace(std::move(request_keys[i]), std::move((*requests)[i]));
    }
  }

  auto load_enrollment = [&](const std::string& item_key,
                             const std::string& sequence_id) -> absl::StatusOr<Batch::Enr*> {
    const std::string key = domain::EnrollmentKey(item_key, sequence_id);
    auto it = b.enrollments.find(key);
    if (it != b.enrollments.end()) return &it->second;
    absl::StatusOr<std::optional<EnrollmentRecord>> r;
    if (auto p = prefetched_enrollments.find(key); p != prefetched_enrollments.end()) {
      r = std::move(p->second);
    } else {
      r = LoadEnrollment(item_key, sequence_id);
    }
    if (!r.ok()) return r.status();
    Batch::Enr e;
    e.sequence_id = sequence_id;
    if (r->has_value()) {
      e.record = std::move(**r);
      e.old_view = e.record.view;
      e.had_pending = !e.record.pending_request_ids.empty();
    } else {
      e.record.view.set_name(EnrollmentResourceName(item_key, sequence_id));
      e.record.view.set_item_key(item_key);
    }
    return &b.enrollments.emplace(key, std::move(e)).first->second;
  };

  // Adds `inc` to the sequence's rows: all time and its UTC day, per step and per variant (and
  // a failure also to the sequence row, whose failures are the sum).
  auto count = [&](const std::string& sequence_id,
                   const domain::StatIncrement& inc) -> absl::Status {
    const std::string day = absl::FormatTime("%Y-%m-%d", inc.at, absl::UTCTimeZone());
    std::vector<std::pair<std::string, std::string>> rows = {{inc.step_id, ""}};
    if (!inc.variant_id.empty()) rows.push_back({inc.step_id, inc.variant_id});
    if (inc.counter == domain::StatCounter::kFailed && !inc.step_id.empty())
      rows.push_back({"", ""});
    for (const auto& [step, variant] : rows) {
      for (const std::string& period : {std::string("all"), day}) {
        const std::string key = StatsKey(sequence_id, period, step, variant);
        auto it = b.stats.find(key);
        if (it == b.stats.end()) {
          v1::StepStatistics row;
          absl::StatusOr<std::optional<std::string>> old = store_->Get(kStats, key);
          if (!old.ok()) return old.status();
          if (old->has_value() && !row.ParseFromString(**old)) {
            return absl::DataLossError(absl::StrCat("read model: bad statistics row ", key));
          }
          row.set_step_id(step);
          row.set_variant_id(variant);
          it = b.stats.emplace(key, std::move(row)).first;
        }
        Count(inc, &it->second);
      }
    }
    return absl::OkStatus();
  };

  for (size_t i = 0; i < messages.size(); ++i) {
    const kafka::Message& m = messages[i];
    const auto tp = std::make_pair(m.topic, m.partition);
    int64_t& next = applied[tp];
    if (m.eof) {
      if (m.offset > next) b.offsets[tp] = next = m.offset;
      continue;
    }
    if (m.offset < next) continue;  // delivered again: already applied
    b.offsets[tp] = next = m.offset + 1;
    ++folded;
    if (!decodable[i]) {
      Log(LogLevel::kWarning, "api.read_model", "undecodable record skipped",
          {{"topic", m.topic}, {"partition", m.partition}, {"offset", m.offset}});
      continue;
    }
    const v1::Envelope& e = decoded[i];
    if (std::string id; domain::GetEmailTemplateEventKey(e, &id, nullptr)) {
      int64_t version = 0;
      domain::GetEmailTemplateEventKey(e, nullptr, &version);
      if (id.empty()) continue;
      auto it = b.templates.find(id);
      if (it == b.templates.end()) {
        absl::StatusOr<domain::EmailTemplateState> loaded = LoadEmailTemplateState(id);
        if (!loaded.ok()) return loaded.status();
        it = b.templates.emplace(id, Batch::Tpl{std::move(*loaded), false}).first;
      }
      if (version <= it->second.state.version) continue;  // stale duplicate
      it->second.state = domain::EvolveEmailTemplate(std::move(it->second.state), e);
      it->second.dirty = true;
      b.writes.Put(kSeqEvents, SeqEventKey(id, version), m.value);
      if (!e.correlation_id().empty()) {
        RequestRecord& r = b.requests[absl::StrCat(e.company_id(), kSep, e.correlation_id())];
        r.resource = EmailTemplateResourceName(e.company_id(), id);
        r.positions = EncodePositions(std::vector<LogPosition>{{m.topic, m.partition, m.offset}});
        r.digest = e.request_digest();
      }
      continue;
    }
    if (std::optional<std::string> company = domain::CompanySettingsEventCompany(e)) {
      // Company sending settings: stored like a sequence's events under "company:<id>".
      const std::string key = domain::CompanySettingsKey(*company);
      auto known = company_versions.find(key);
      if (known == company_versions.end()) {
        absl::StatusOr<domain::CompanySendingState> st = LoadCompanySending(*company);
        if (!st.ok()) return st.status();
        known = company_versions.emplace(key, st->version).first;
      }
      const int64_t version = e.company_sending_settings_changed().version();
      if (company->empty() || *company != e.company_id() || version <= known->second) continue;
      known->second = version;
      b.writes.Put(kSeqEvents, SeqEventKey(key, version), m.value);
      if (!e.correlation_id().empty()) {
        RequestRecord& r = b.requests[absl::StrCat(e.company_id(), kSep, e.correlation_id())];
        r.resource = CompanySendingSettingsResourceName(*company);
        r.positions = EncodePositions(std::vector<LogPosition>{{m.topic, m.partition, m.offset}});
        r.digest = e.request_digest();
      }
      continue;
    }
    if (domain::IsSequenceEvent(e)) {
      std::string id;
      int64_t version = 0;
      if (!domain::GetSequenceEventKey(e, &id, &version) || id.empty()) continue;
      absl::StatusOr<Batch::Seq*> seq = load_sequence(id);
      if (!seq.ok()) return seq.status();
      if (version <= (*seq)->state.version) continue;  // stale duplicate (domain ignores it too)
      (*seq)->state = domain::EvolveSequence(std::move((*seq)->state), e);
      (*seq)->dirty = true;
      b.writes.Put(kSeqEvents, SeqEventKey(id, version), m.value);
      if (!e.correlation_id().empty()) {
        RequestRecord& r = b.requests[absl::StrCat(e.company_id(), kSep, e.correlation_id())];
        r.resource = SequenceResourceName(e.company_id(), id);
        r.positions = EncodePositions(std::vector<LogPosition>{{m.topic, m.partition, m.offset}});
        r.digest = e.request_digest();
      }
      continue;
    }
    if (domain::IsEnrollmentInput(e)) {
      // What the executor dead-letters (a broken publisher contract, an item of another company
      // than the envelope's) is not pending here either, and records no request id.
      if (!domain::CheckEnrollmentInputContract(e, m.key).ok()) continue;
      if (std::optional<domain::StatIncrement> done = domain::TaskCompletedIncrement(e)) {
        // Only into the statistics of a sequence of the input's own company: a publisher of
        // another company naming this sequence id must not move its numbers.
        absl::StatusOr<Batch::Seq*> seq = load_sequence(e.activity_completed().sequence_id());
        if (!seq.ok()) return seq.status();
        const std::string task_key = absl::StrCat("t", kSep, e.activity_completed().task_id());
        bool counted =
            (*seq)->state.company_id != e.company_id() || b.completed_tasks.count(task_key) > 0;
        if (!counted) {
          absl::StatusOr<std::optional<std::string>> seen = store_->Get(kStats, task_key);
          if (!seen.ok()) return seen.status();
          counted = seen->has_value();
        }
        if (!counted) {
          b.completed_tasks.insert(task_key);
          b.writes.Put(kStats, task_key, "");
          if (absl::Status st = count(e.activity_completed().sequence_id(), *done); !st.ok()) {
            return st;
          }
        }
      }
      if (e.has_enroll_requested()) {
        const v1::EnrollRequested& req = e.enroll_requested();
        if (req.item_key().empty() || req.sequence_id().empty()) continue;
        // A request naming a sequence of another company (or an id outside the grammar, which
        // no sequence has) is rejected by the executor: it is nobody's pending enrollment, and
        // must not reach that sequence's index (its owner's overview and listings).
        bool foreign = !IsValidId(req.sequence_id());
        if (!foreign) {
          absl::StatusOr<Batch::Seq*> seq = load_sequence(req.sequence_id());
          if (!seq.ok()) return seq.status();
          foreign = (*seq)->state.exists && (*seq)->state.company_id != e.company_id();
        }
        if (foreign) continue;
        absl::StatusOr<Batch::Enr*> enr = load_enrollment(req.item_key(), req.sequence_id());
        if (!enr.ok()) return enr.status();
        EnrollmentRecord& rec = (*enr)->record;
        if (rec.state.request_ids.count(req.request_id()) == 0) {
          rec.pending_request_ids.insert(req.request_id());
          rec.view.set_pending(true);
          if (!domain::IsActive(rec.view.status())) {
            rec.view.set_owner_id(req.owner_id());
            *rec.view.mutable_request_time() = e.occurred_at();
          }
          (*enr)->dirty = true;
        }
      }
      const std::string resource = InputResource(e);
      if (!e.correlation_id().empty() && !resource.empty()) {
        const std::string key = absl::StrCat(e.company_id(), kSep, e.correlation_id());
        auto it = b.requests.find(key);
        if (it == b.requests.end()) {
          absl::StatusOr<std::optional<RequestRecord>> old;
          if (auto p = prefetched_requests.find(key); p != prefetched_requests.end()) {
            old = std::move(p->second);
          } else {
            old = LookupRequest(e.company_id(), e.correlation_id());
          }
          if (!old.ok()) return old.status();
          it = b.requests.emplace(key, old->value_or(RequestRecord{})).first;
        }
        std::vector<LogPosition> positions;
        if (it->second.resource == resource) {
          absl::StatusOr<std::vector<LogPosition>> p = DecodePositions(it->second.positions);
          if (p.ok()) positions = std::move(*p);
        } else {
          it->second.digest.clear();
        }
        positions.push_back({m.topic, m.partition, m.offset});
        it->second.resource = resource;
        it->second.positions = EncodePositions(positions);
        if (it->second.digest.empty()) it->second.digest = e.request_digest();
      }
      continue;
    }
    if (std::optional<domain::ItemInSequence> target = domain::ExecutorEventTarget(e);
        target.has_value()) {
      const std::string& item_key = target->item_key;
      const std::string& sequence_id = target->sequence_id;
      if (item_key.empty() || sequence_id.empty()) continue;
      absl::StatusOr<Batch::Enr*> enr = load_enrollment(item_key, sequence_id);
      if (!enr.ok()) return enr.status();
      EnrollmentRecord& rec = (*enr)->record;
      for (const domain::StatIncrement& inc : domain::StatIncrementsOf(rec.state, e)) {
        if (absl::Status st = count(sequence_id, inc); !st.ok()) return st;
      }
      rec.state = domain::EvolveEnrollment(std::move(rec.state), e);
      if (m.topic == options_.topics.executor_events) {
        if (std::optional<v1::EnrollmentUpdate> u = domain::EnrollmentUpdateFor(e, rec.state)) {
          b.writes.Put(kChanges, ChangeKey(m.partition, m.offset), u->SerializeAsString());
          changes.push_back({m.partition, m.offset, std::move(*u)});
        }
      }
      if (e.has_enrollment_rejected()) {
        // The domain's state may not record rejected request ids; the read model does.
        rec.pending_request_ids.erase(e.enrollment_rejected().request_id());
        rec.view.set_rejection_reason(e.enrollment_rejected().reason());
        rec.view.set_rejection_detail(e.enrollment_rejected().detail());
      }
      if (e.has_enrollment_started()) {
        rec.view.set_rejection_reason(v1::REJECTION_REASON_UNSPECIFIED);
        rec.view.clear_rejection_detail();
      }
      for (auto it = rec.pending_request_ids.begin(); it != rec.pending_request_ids.end();) {
        it = rec.state.request_ids.count(*it) ? rec.pending_request_ids.erase(it) : std::next(it);
      }
      b.writes.Put(kEnrEvents, EnrEventKey(domain::EnrollmentKey(item_key, sequence_id), m.offset),
                   m.value);
      (*enr)->dirty = true;
    }
  }

  // Views and indexes of every key the batch changed.
  for (auto& [id, seq] : b.sequences) {
    if (!seq.dirty || !seq.state.exists) continue;
    b.writes.Put(kSequences, id, SequenceView(seq.state).SerializeAsString());
    b.writes.Put(kIndex, absl::StrCat("sq", kSep, seq.state.company_id, kSep, id), "");
  }
  for (auto& [id, tpl] : b.templates) {
    if (!tpl.dirty || !tpl.state.exists) continue;
    b.writes.Put(kEmailTemplates, id, EmailTemplateView(tpl.state).SerializeAsString());
    b.writes.Put(kIndex, absl::StrCat("et", kSep, tpl.state.company_id, kSep, id), "");
  }
  for (auto& [key, enr] : b.enrollments) {
    if (!enr.dirty) continue;
    EnrollmentRecord& rec = enr.record;
    const domain::EnrollmentState& st = rec.state;
    v1::Enrollment& v = rec.view;
    v.set_pending(!rec.pending_request_ids.empty());
    FillEnrollmentView(st, &v);
    const std::string& sequence_id = enr.sequence_id;
    // Only the index keys that changed: most events (a step reached, a task done) keep the
    // status and the owner, and a delete and put of the same key were two memtable entries each.
    const std::vector<std::string> old_keys = enr.old_view.has_value()
                                                  ? EnrollmentIndexKeys(*enr.old_view, sequence_id)
                                                  : std::vector<std::string>();
    const std::vector<std::string> new_keys = EnrollmentIndexKeys(v, sequence_id);
    for (const std::string& k : old_keys) {
      if (std::find(new_keys.begin(), new_keys.end(), k) == new_keys.end()) {
        b.writes.Delete(kIndex, k);
      }
    }
    for (const std::string& k : new_keys) {
      if (std::find(old_keys.begin(), old_keys.end(), k) == old_keys.end()) {
        b.writes.Put(kIndex, k, "");
      }
    }
    b.writes.Put(kEnrollments, key, v.SerializeAsString());
    std::string pending;
    for (const std::string& id : rec.pending_request_ids) absl::StrAppend(&pending, id, "\n");
    if (!pending.empty()) {
      b.writes.Put(kPending, key, pending);
    } else if (enr.had_pending) {
      b.writes.Delete(kPending, key);
    }
  }
  for (const auto& [key, r] : b.requests) {
    b.writes.Put(kRequests, key, absl::StrCat(r.resource, "\n", r.positions, "\n", r.digest));
  }
  for (const auto& [key, row] : b.stats) b.writes.Put(kStats, key, row.SerializeAsString());
  for (const auto& [tp, off] : b.offsets) {
    b.writes.Put(kMeta, OffsetKey(tp.first, tp.second), absl::StrCat(off));
  }
  // The change log keeps the last watch_history offsets of each executor-events partition.
  WatchCursor reached;
  std::map<int32_t, int64_t> floors;
  {
    absl::MutexLock lock(&mu_);
    floors = change_floor_;
  }
  std::map<int32_t, int64_t> new_floors;
  for (const auto& [tp, off] : b.offsets) {
    if (tp.first != options_.topics.executor_events) continue;
    reached[tp.second] = off;
    const int64_t floor = off - std::max<int64_t>(options_.watch_history, 1);
    const int64_t old = floors[tp.second];
    if (floor <= old) continue;
    absl::Status pruned =
        store_->Scan(kChanges, ChangeKey(tp.second, old), ChangeKey(tp.second, floor),
                     [&](absl::string_view key, absl::string_view) {
                       b.writes.Delete(kChanges, key);
                       return true;
                     });
    if (!pruned.ok()) return pruned;
    b.writes.Put(kMeta, FloorKey(tp.second), absl::StrCat(floor));
    new_floors[tp.second] = floor;
  }
  // A batch longer than the history: its own oldest changes are below the new floor already.
  for (const WatchChange& c : changes) {
    auto f = new_floors.find(c.partition);
    if (f != new_floors.end() && c.offset < f->second) {
      b.writes.Delete(kChanges, ChangeKey(c.partition, c.offset));
    }
  }
  if (b.writes.Count() == 0) return absl::OkStatus();
  if (absl::Status s = store_->Write(b.writes); !s.ok()) return s;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [tp, off] : b.offsets) applied_[tp] = std::max(applied_[tp], off);
    for (const auto& [p, floor] : new_floors) change_floor_[p] = std::max(change_floor_[p], floor);
    folded_ += folded;
  }
  // Durable: watchers may see it now (and a watcher subscribing later finds it in the store).
  watch_hub_.Publish(changes, reached);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<WatchChange>> ReadModel::ChangesSince(const WatchFilter& filter,
                                                                 const WatchCursor& from) {
  std::set<int32_t> partitions;
  for (const auto& [p, off] : from) partitions.insert(p);
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [p, floor] : change_floor_) partitions.insert(p);
    for (const auto& [tp, off] : applied_) {
      if (tp.first == options_.topics.executor_events) partitions.insert(tp.second);
    }
  }
  std::vector<WatchChange> out;
  absl::Status parse = absl::OkStatus();
  for (int32_t p : partitions) {
    auto it = from.find(p);
    const int64_t start = it == from.end() ? 0 : it->second;
    absl::Status scan =
        store_->Scan(kChanges, ChangeKey(p, start), ChangeKey(p + 1, 0),
                     [&](absl::string_view key, absl::string_view value) {
                       uint64_t offset = 0;
                       store::ReadBigEndian64(key.substr(4), &offset);
                       v1::EnrollmentUpdate u;
                       if (!u.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
                         parse = absl::DataLossError("read model: bad change-log record");
                         return false;
                       }
                       if (filter.Matches(u))
                         out.push_back({p, static_cast<int64_t>(offset), std::move(u)});
                       return true;
                     });
    if (!scan.ok()) return scan;
    if (!parse.ok()) return parse;
  }
  // Checked after the scan: pruning only raises floors, so a start still at or above its floor
  // now was not pruned while the scan ran.
  absl::MutexLock lock(&mu_);
  for (const auto& [p, floor] : change_floor_) {
    auto it = from.find(p);
    const int64_t start = it == from.end() ? 0 : it->second;
    if (start < floor) {
      return absl::FailedPreconditionError(absl::StrCat(
          "resume_token is older than the change history this server keeps (the last ",
          options_.watch_history,
          " executor events per partition): start a new watch without a token, and read the "
          "current state with ListEnrollments"));
    }
  }
  return out;
}

bool ReadModel::AppliedLocked(const LogPosition& p) {
  auto it = applied_.find({p.topic, p.partition});
  return it != applied_.end() && it->second > p.offset;
}

bool ReadModel::WaitFor(absl::Span<const LogPosition> positions, absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const LogPosition& p : positions) {
      if (!AppliedLocked(p)) return false;
    }
    return true;
  };
  // absl::Mutex re-evaluates the condition whenever Apply releases the lock.
  return mu_.AwaitWithDeadline(absl::Condition(&done), deadline);
}

bool ReadModel::WaitCaughtUp(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (stop_) return true;
    for (const auto& [tp, end] : start_end_) {
      auto it = applied_.find(tp);
      if (end > 0 && (it == applied_.end() || it->second < end)) return false;
    }
    return true;
  };
  return mu_.AwaitWithDeadline(absl::Condition(&done), deadline) && !stop_;
}

std::vector<LogPosition> ReadModel::AppliedPositions() {
  absl::MutexLock lock(&mu_);
  std::vector<LogPosition> out;
  for (const auto& [tp, off] : applied_) out.push_back({tp.first, tp.second, off});
  return out;
}

int64_t ReadModel::folded_records() {
  absl::MutexLock lock(&mu_);
  return folded_;
}

int ReadModel::PartitionCount(const std::string& topic) {
  absl::MutexLock lock(&mu_);
  auto it = partitions_.find(topic);
  return it == partitions_.end() ? 0 : it->second;
}

absl::StatusOr<domain::CompanySendingState> ReadModel::LoadCompanySending(
    const std::string& company_id) {
  domain::CompanySendingState state;
  absl::Status parse_error;
  absl::Status s = store_->ScanPrefix(
      kSeqEvents, absl::StrCat(domain::CompanySettingsKey(company_id), kSep),
      [&](absl::string_view, absl::string_view value) {
        v1::Envelope e;
        if (!e.ParseFromString(std::string(value))) {
          parse_error = absl::DataLossError("read model: cannot parse a company settings event");
          return false;
        }
        state = domain::EvolveCompanySending(std::move(state), e);
        return true;
      });
  if (!s.ok()) return s;
  if (!parse_error.ok()) return parse_error;
  return state;
}

absl::StatusOr<domain::SequenceState> ReadModel::LoadSequenceState(const std::string& sequence_id) {
  domain::SequenceState state;
  absl::Status parse_error;
  absl::Status s = store_->ScanPrefix(
      kSeqEvents, absl::StrCat(sequence_id, kSep), [&](absl::string_view, absl::string_view value) {
        v1::Envelope e;
        if (!e.ParseFromString(std::string(value))) {
          parse_error = absl::DataLossError("read model: cannot parse a sequence event");
          return false;
        }
        state = domain::EvolveSequence(std::move(state), e);
        return true;
      });
  if (!s.ok()) return s;
  if (!parse_error.ok()) return parse_error;
  return state;
}

absl::StatusOr<std::optional<v1::Sequence>> ReadModel::GetSequence(const std::string& sequence_id) {
  return GetProto<v1::Sequence>(*store_, kSequences, sequence_id);
}

absl::StatusOr<std::optional<std::string>> ReadModel::SequenceEventAt(
    const std::string& sequence_id, int64_t version) {
  return store_->Get(kSeqEvents, SeqEventKey(sequence_id, version));
}

absl::StatusOr<std::vector<v1::Sequence>> ReadModel::ListSequences(const std::string& company_id,
                                                                   const std::string& after,
                                                                   int limit, bool show_deleted) {
  std::vector<v1::Sequence> out;
  const std::string prefix = absl::StrCat("sq", kSep, company_id, kSep);
  absl::Status inner;
  if (!after.empty() && !IsValidId(after)) {
    return domain::InvalidField("page_token", "is not a token returned by this listing");
  }
  const std::string begin = after.empty() ? prefix : absl::StrCat(prefix, after, kSep);
  absl::Status s =
      store_->Scan(kIndex, begin, absl::StrCat("sq", kSep, company_id, std::string(1, '\1')),
                   [&](absl::string_view key, absl::string_view) {
                     const std::string id(key.substr(prefix.size()));
                     absl::StatusOr<std::optional<v1::Sequence>> seq = GetSequence(id);
                     if (!seq.ok()) {
                       inner = seq.status();
                       return false;
                     }
                     if (seq->has_value() && (show_deleted || !(*seq)->deleted()))
                       out.push_back(**seq);
                     return static_cast<int>(out.size()) < limit;
                   });
  if (!s.ok()) return s;
  if (!inner.ok()) return inner;
  return out;
}

absl::StatusOr<domain::EmailTemplateState> ReadModel::LoadEmailTemplateState(
    const std::string& template_id) {
  domain::EmailTemplateState state;
  absl::Status parse_error;
  absl::Status s = store_->ScanPrefix(
      kSeqEvents, absl::StrCat(template_id, kSep), [&](absl::string_view, absl::string_view value) {
        v1::Envelope e;
        if (!e.ParseFromString(std::string(value))) {
          parse_error = absl::DataLossError("read model: cannot parse an email template event");
          return false;
        }
        state = domain::EvolveEmailTemplate(std::move(state), e);
        return true;
      });
  if (!s.ok()) return s;
  if (!parse_error.ok()) return parse_error;
  return state;
}

absl::StatusOr<std::optional<v1::EmailTemplate>> ReadModel::GetEmailTemplate(
    const std::string& template_id) {
  return GetProto<v1::EmailTemplate>(*store_, kEmailTemplates, template_id);
}

absl::StatusOr<std::vector<v1::EmailTemplate>> ReadModel::ListEmailTemplates(
    const std::string& company_id, const std::string& after, int limit, bool show_deleted) {
  std::vector<v1::EmailTemplate> out;
  const std::string prefix = absl::StrCat("et", kSep, company_id, kSep);
  if (!after.empty() && !IsValidId(after)) {
    return domain::InvalidField("page_token", "is not a token returned by this listing");
  }
  absl::Status inner;
  const std::string begin = after.empty() ? prefix : absl::StrCat(prefix, after, kSep);
  absl::Status s =
      store_->Scan(kIndex, begin, absl::StrCat("et", kSep, company_id, std::string(1, '\1')),
                   [&](absl::string_view key, absl::string_view) {
                     const std::string id(key.substr(prefix.size()));
                     absl::StatusOr<std::optional<v1::EmailTemplate>> t = GetEmailTemplate(id);
                     if (!t.ok()) {
                       inner = t.status();
                       return false;
                     }
                     if (t->has_value() && (show_deleted || !(*t)->deleted())) out.push_back(**t);
                     return static_cast<int>(out.size()) < limit;
                   });
  if (!s.ok()) return s;
  if (!inner.ok()) return inner;
  return out;
}

absl::StatusOr<std::optional<EnrollmentRecord>> ReadModel::LoadEnrollment(
    const std::string& item_key, const std::string& sequence_id) {
  // The view, the executor events and the pending request ids are written by one batch of the
  // fold thread: read them through one snapshot so the record never mixes two batches.
  const std::unique_ptr<store::Snapshot> at = store_->NewSnapshot();
  return LoadEnrollmentAt(domain::EnrollmentKey(item_key, sequence_id), at.get());
}

absl::StatusOr<std::vector<std::optional<EnrollmentRecord>>> ReadModel::LoadEnrollments(
    absl::Span<const std::string> keys) {
  const std::unique_ptr<store::Snapshot> at = store_->NewSnapshot();
  absl::StatusOr<std::vector<std::optional<std::string>>> views =
      store_->MultiGet(kEnrollments, keys, at.get());
  if (!views.ok()) return views.status();
  std::vector<std::string> known;  // keys with a view: only they can have events or pending ids
  std::vector<size_t> known_at;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!(*views)[i].has_value()) continue;
    known.push_back(keys[i]);
    known_at.push_back(i);
  }
  absl::StatusOr<std::vector<std::optional<std::string>>> pending =
      store_->MultiGet(kPending, known, at.get());
  if (!pending.ok()) return pending.status();
  std::vector<std::optional<EnrollmentRecord>> out(keys.size());
  for (size_t k = 0; k < known.size(); ++k) {
    absl::StatusOr<EnrollmentRecord> rec =
        RecordAt(known[k], *(*views)[known_at[k]], (*pending)[k], at.get());
    if (!rec.ok()) return rec.status();
    out[known_at[k]] = std::move(*rec);
  }
  return out;
}

absl::StatusOr<std::optional<EnrollmentRecord>> ReadModel::LoadEnrollmentAt(
    const std::string& key, const store::Snapshot* at) {
  absl::StatusOr<std::optional<std::string>> view = store_->Get(kEnrollments, key, at);
  if (!view.ok()) return view.status();
  if (!view->has_value()) return std::optional<EnrollmentRecord>();
  absl::StatusOr<std::optional<std::string>> pending = store_->Get(kPending, key, at);
  if (!pending.ok()) return pending.status();
  absl::StatusOr<EnrollmentRecord> rec = RecordAt(key, **view, *pending, at);
  if (!rec.ok()) return rec.status();
  return std::optional<EnrollmentRecord>(std::move(*rec));
}

absl::StatusOr<EnrollmentRecord> ReadModel::RecordAt(const std::string& key,
                                                     const std::string& view,
                                                     const std::optional<std::string>& pending,
                                                     const store::Snapshot* at) {
  EnrollmentRecord rec;
  if (!rec.view.ParseFromString(view)) {
    return absl::DataLossError(absl::StrCat("read model: cannot parse ", kEnrollments, " record"));
  }
  absl::Status parse_error;
  absl::Status s = store_->ScanPrefix(
      kEnrEvents, absl::StrCat(key, kSep),
      [&](absl::string_view, absl::string_view value) {
        v1::Envelope e;
        if (!e.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          parse_error = absl::DataLossError("read model: cannot parse an executor event");
          return false;
        }
        rec.state = domain::EvolveEnrollment(std::move(rec.state), e);
        return true;
      },
      at);
  if (!s.ok()) return s;
  if (!parse_error.ok()) return parse_error;
  if (pending.has_value()) {
    for (absl::string_view id : absl::StrSplit(*pending, '\n', absl::SkipEmpty())) {
      rec.pending_request_ids.insert(std::string(id));
    }
  }
  return rec;
}

absl::StatusOr<std::vector<v1::Enrollment>> ReadModel::ListEnrollments(const EnrollmentFilter& f,
                                                                       const std::string& after,
                                                                       int limit,
                                                                       std::string* last_key) {
  std::vector<v1::Enrollment> out;
  std::string prefix;
  if (!f.owner_id.empty()) {
    prefix = absl::StrCat("eo", kSep, f.company_id, kSep, f.owner_id, kSep);
    if (!f.sequence_id.empty()) absl::StrAppend(&prefix, f.sequence_id, kSep);
  } else if (f.pending_only) {
    prefix = absl::StrCat("es", kSep, f.sequence_id, kSep, "0", kSep);
  } else if (f.status != v1::ENROLLMENT_STATUS_UNSPECIFIED) {
    prefix = absl::StrCat("es", kSep, f.sequence_id, kSep, StatusByte(f.status), kSep);
  } else {
    prefix = absl::StrCat("es", kSep, f.sequence_id, kSep);
  }
  std::string end = prefix;
  end.back() = '\1';  // every key with `prefix` sorts before prefix-with-last-byte+1
  // Whatever `after` says, the scan stays inside the listing's prefix.
  if (!after.empty() && !absl::StartsWith(after, prefix)) {
    return domain::InvalidField("page_token", "is not a token returned by this listing");
  }
  const std::string begin = after.empty() ? prefix : after + std::string(1, '\0');
  absl::Status inner;
  last_key->clear();
  absl::Status s = store_->Scan(kIndex, begin, end, [&](absl::string_view key, absl::string_view) {
    *last_key = std::string(key);
    // "es|sequence|status|item" or "eo|company|owner|sequence|item"; only the filter's company.
    std::vector<absl::string_view> parts = absl::StrSplit(key, kSep[0]);
    if (parts.size() != (parts[0] == "es" ? 4u : 5u)) return true;
    const std::string item_key(parts.back());
    const std::string seq_id(parts[0] == "es" ? parts[1] : parts[3]);
    if (CompanyOfItemKey(item_key) != f.company_id) return true;
    if (!f.sequence_id.empty() && seq_id != f.sequence_id) return true;
    absl::StatusOr<std::optional<v1::Enrollment>> view =
        GetProto<v1::Enrollment>(*store_, kEnrollments, domain::EnrollmentKey(item_key, seq_id));
    if (!view.ok()) {
      inner = view.status();
      return false;
    }
    if (!view->has_value()) return true;
    const v1::Enrollment& v = **view;
    const int ls = ListStatus(v);
    if (f.pending_only && ls != 0) return true;
    if (f.status != v1::ENROLLMENT_STATUS_UNSPECIFIED && ls != static_cast<int>(f.status)) {
      return true;
    }
    out.push_back(v);
    return static_cast<int>(out.size()) < limit;
  });
  if (!s.ok()) return s;
  if (!inner.ok()) return inner;
  return out;
}

absl::StatusOr<v1::EnrollmentOverview> ReadModel::Overview(const std::string& company_id,
                                                           const std::string& sequence_id) {
  v1::EnrollmentOverview o;
  const std::string prefix = absl::StrCat("es", kSep, sequence_id, kSep);
  absl::Status s =
      store_->ScanPrefix(kIndex, prefix, [&](absl::string_view key, absl::string_view) {
        absl::string_view item;
        if (!IndexedItemOf(key.substr(prefix.size()), company_id, &item)) return true;
        switch (key[prefix.size()] - '0') {
          case 0:
            o.set_pending(o.pending() + 1);
            break;
          case v1::ENROLLMENT_STATUS_IN_PROGRESS:
            o.set_in_progress(o.in_progress() + 1);
            break;
          case v1::ENROLLMENT_STATUS_PAUSED:
            o.set_paused(o.paused() + 1);
            break;
          case v1::ENROLLMENT_STATUS_COMPLETED:
            o.set_completed(o.completed() + 1);
            break;
          case v1::ENROLLMENT_STATUS_FAILED:
            o.set_failed(o.failed() + 1);
            break;
          case v1::ENROLLMENT_STATUS_REMOVED:
            o.set_removed(o.removed() + 1);
            break;
          default:
            break;
        }
        o.set_total(o.total() + 1);
        return true;
      });
  if (!s.ok()) return s;
  return o;
}

absl::StatusOr<std::vector<domain::EnrollmentState>> ReadModel::ActiveEnrollments(
    const std::string& company_id, const std::string& sequence_id, int limit, bool* more) {
  std::vector<domain::EnrollmentState> out;
  *more = false;
  // One snapshot for both index scans and every load: an enrollment paused or resumed meanwhile
  // is listed once, as it was.
  const std::unique_ptr<store::Snapshot> at = store_->NewSnapshot();
  for (int status : {v1::ENROLLMENT_STATUS_IN_PROGRESS, v1::ENROLLMENT_STATUS_PAUSED}) {
    const std::string prefix =
        absl::StrCat("es", kSep, sequence_id, kSep, StatusByte(status), kSep);
    std::vector<std::string> items;
    absl::Status s = store_->ScanPrefix(
        kIndex, prefix,
        [&](absl::string_view key, absl::string_view) {
          absl::string_view item;
          if (!IndexedItemOf(key.substr(prefix.size() - 2), company_id, &item)) return true;
          if (static_cast<int>(out.size() + items.size()) >= limit) {
            *more = true;
            return false;
          }
          items.emplace_back(item);
          return true;
        },
        at.get());
    if (!s.ok()) return s;
    for (const std::string& item : items) {
      absl::StatusOr<std::optional<EnrollmentRecord>> r =
          LoadEnrollmentAt(domain::EnrollmentKey(item, sequence_id), at.get());
      if (!r.ok()) return r.status();
      if (r->has_value()) out.push_back(std::move((*r)->state));
    }
  }
  return out;
}

namespace {

// "resource\npositions\ndigest" (records of older versions: no digest).
RequestRecord ParseRequestRecord(absl::string_view raw) {
  std::vector<std::string> parts = absl::StrSplit(raw, absl::MaxSplits('\n', 2));
  parts.resize(3);
  return RequestRecord{std::move(parts[0]), std::move(parts[1]), std::move(parts[2])};
}

}  // namespace

absl::StatusOr<std::optional<RequestRecord>> ReadModel::LookupRequest(
    const std::string& company_id, const std::string& request_id) {
  absl::StatusOr<std::optional<std::string>> raw =
      store_->Get(kRequests, absl::StrCat(company_id, kSep, request_id));
  if (!raw.ok()) return raw.status();
  if (!raw->has_value()) return std::optional<RequestRecord>();
  return std::optional<RequestRecord>(ParseRequestRecord(**raw));
}

absl::StatusOr<std::vector<std::optional<RequestRecord>>> ReadModel::LookupRequests(
    const std::string& company_id, absl::Span<const std::string> request_ids) {
  std::vector<std::string> keys;
  keys.reserve(request_ids.size());
  for (const std::string& id : request_ids) keys.push_back(absl::StrCat(company_id, kSep, id));
  return RequestsAt(keys);
}

absl::StatusOr<std::vector<std::optional<RequestRecord>>> ReadModel::RequestsAt(
    absl::Span<const std::string> keys) {
  absl::StatusOr<std::vector<std::optional<std::string>>> raw = store_->MultiGet(kRequests, keys);
  if (!raw.ok()) return raw.status();
  std::vector<std::optional<RequestRecord>> out(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if ((*raw)[i].has_value()) out[i] = ParseRequestRecord(*(*raw)[i]);
  }
  return out;
}

absl::StatusOr<v1::SequenceStatistics> ReadModel::Statistics(
    const std::string& sequence_id, const std::string& day,
    const std::vector<std::string>& step_order) {
  v1::SequenceStatistics out;
  out.set_day(day);
  std::map<std::string, v1::StepStatistics> steps;                             // by step id
  std::map<std::pair<std::string, std::string>, v1::StepStatistics> variants;  // step, variant
  absl::Status parse = absl::OkStatus();
  const std::string prefix =
      absl::StrCat("c", kSep, sequence_id, kSep, day.empty() ? "all" : day, kSep);
  absl::Status scan =
      store_->ScanPrefix(kStats, prefix, [&](absl::string_view, absl::string_view value) {
        v1::StepStatistics row;
        if (!row.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          parse = absl::DataLossError("read model: bad statistics row");
          return false;
        }
        if (row.step_id().empty()) {
          *out.mutable_total() = std::move(row);
        } else if (row.variant_id().empty()) {
          steps[row.step_id()] = std::move(row);
        } else {
          variants[{row.step_id(), row.variant_id()}] = std::move(row);
        }
        return true;
      });
  if (!scan.ok()) return scan;
  if (!parse.ok()) return parse;
  // Current steps first, in their order; then steps since removed, by id.
  std::vector<std::string> order;
  std::set<std::string> placed;
  for (const std::string& id : step_order) {
    if (steps.count(id) && placed.insert(id).second) order.push_back(id);
  }
  for (const auto& [id, row] : steps) {
    if (placed.insert(id).second) order.push_back(id);
  }
  for (const std::string& id : order) {
    *out.add_steps() = steps[id];
    for (auto it = variants.lower_bound({id, ""}); it != variants.end() && it->first.first == id;
         ++it) {
      *out.add_variants() = it->second;
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::pair<int64_t, v1::Envelope>>> ReadModel::EnrollmentEvents(
    const std::string& item_key, const std::string& sequence_id, int64_t after, int limit) {
  const std::string key = domain::EnrollmentKey(item_key, sequence_id);
  const std::string begin = EnrEventKey(key, after + 1);
  const std::string end = absl::StrCat(key, std::string(1, kSep[0] + 1));
  std::vector<std::pair<int64_t, v1::Envelope>> out;
  absl::Status parse = absl::OkStatus();
  absl::Status scan =
      store_->Scan(kEnrEvents, begin, end, [&](absl::string_view k, absl::string_view value) {
        const absl::string_view offset = k.substr(key.size() + 1);
        int64_t at = 0;
        for (unsigned char c : offset) at = (at << 8) | c;
        v1::Envelope e;
        if (!e.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          parse = absl::DataLossError("read model: bad enrollment event record");
          return false;
        }
        out.emplace_back(at, std::move(e));
        return static_cast<int>(out.size()) < limit;
      });
  if (!scan.ok()) return scan;
  if (!parse.ok()) return parse;
  return out;
}

}  // namespace sequences::api
