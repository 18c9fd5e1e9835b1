#include "services/step-executor/executor.h"

#include <algorithm>
#include <functional>

#include "absl/strings/str_cat.h"
#include "libs/kafka/status.h"
#include "libs/runtime/log.h"

namespace sequences::executor {
namespace {

constexpr char kLog[] = "executor";
constexpr absl::Duration kKafkaTimeout = absl::Seconds(10);

}  // namespace

Executor::Executor(ExecutorOptions options, Clock& clock)
    : options_(std::move(options)), clock_(clock), sizer_(options_.batch) {}

Executor::~Executor() = default;

MetricsSnapshot Executor::Snapshot() {
  MetricsSnapshot m = metrics_.Snapshot();
  const int64_t beat = loop_beat_micros_.load(std::memory_order_relaxed);
  const absl::Duration since = clock_.Now() - absl::FromUnixMicros(beat);
  if (m.serving && (beat == 0 || since > kLoopStall)) {
    m.serving = false;
    m.health_reason =
        absl::StrCat("loop blocked for ", absl::FormatDuration(since), " (broker unreachable?)");
  }
  return m;
}

absl::Status Executor::AssignSequenceConsumer() {
  if (sequence_partitions_ == 0) {
    auto n = sequences_->PartitionCount(options_.topics.sequence_events, kKafkaTimeout);
    if (!n.ok()) return n.status();
    sequence_partitions_ = *n;
  }
  if (input_partitions_ == 0) {
    auto n = sequences_->PartitionCount(options_.topics.enrollment_events, kKafkaTimeout);
    if (!n.ok()) return n.status();
    input_partitions_ = *n;
  }
  std::vector<kafka::TopicPartitionOffset> assign;
  sequence_positions_.clear();
  for (int p = 0; p < sequence_partitions_; ++p) {
    auto stored = store_->GetOffset(StateStore::SeqOffsetKey(p));
    if (!stored.ok()) return stored.status();
    const int64_t off = stored->has_value() ? **stored : kafka::kOffsetBeginning;
    sequence_positions_[p] = off;
    assign.push_back({options_.topics.sequence_events, p, off});
  }
  return sequences_->Assign(assign);
}

void Executor::SetQueueLimits(kafka::ClientConfig& client) const {
  client.overrides.try_emplace("queued.max.messages.kbytes",
                               absl::StrCat(options_.consumer_queue_kbytes));
  client.overrides.try_emplace("queued.min.messages",
                               absl::StrCat(std::max(1000, 2 * options_.batch.max)));
  // The queue limits stop the next fetch, not the size of one: a fetch brings up to this many
  // bytes per partition as the broker stores them, lz4-compressed. Enrollment envelopes shrink
  // about 15x, so librdkafka's default (1 MiB per partition) decompressed a 6-partition fetch
  // into ~90 MiB of records at once, the largest part of the resident set at its peak
  // (tests/bench/README.md, "Memory at 1M and 3M"). 1/32 of the queue budget per partition
  // (256 KiB by default): 1/128 (64 KiB) starved the batches (smaller, more transactions, more
  // CPU per enrollment). A larger record batch still comes whole.
  client.overrides.try_emplace(
      "max.partition.fetch.bytes",
      absl::StrCat(std::max(16 << 10, options_.consumer_queue_kbytes * 1024 / 32)));
}

absl::Status Executor::Setup() {
  const absl::Time start = clock_.Now();
  auto store = StateStore::Open(options_.data_dir, options_.store_memory);
  if (!store.ok()) return store.status();
  store_ = std::move(*store);
  processor_ = std::make_unique<Processor>(*store_, options_.topics);
  if (options_.decide_stages_in_batch && options_.guarantee == ProcessingGuarantee::kExactlyOnce) {
    // Owned: recovered, and the batch's offsets (every owned partition's) fence it with the
    // group generation, as for the due timers FireDue decides.
    processor_->SetLocalStage([this](const std::string& key) -> std::optional<int32_t> {
      if (input_partitions_ <= 0) return std::nullopt;
      const int32_t p = kafka::PartitionForKey(key, input_partitions_);
      return Owned(p) ? std::optional<int32_t>(p) : std::nullopt;
    });
  }
  overlay_ = std::make_unique<Overlay>(*store_);
  if (absl::Status s = processor_->LoadSequences(); !s.ok()) return s;
  // After a kill -9 the open replays the write-ahead log: part of the time to the first step.
  Log(LogLevel::kInfo, kLog, "state opened",
      {{"millis", absl::ToInt64Milliseconds(clock_.Now() - start)}});

  auto consumer = [&](bool read_committed,
                      bool eof) -> absl::StatusOr<std::unique_ptr<kafka::Consumer>> {
    kafka::ConsumerConfig c;
    c.client = options_.client;
    SetQueueLimits(c.client);
    c.read_committed = read_committed;
    c.partition_eof = eof;
    return kafka::Consumer::Create(c);
  };
  auto seq = consumer(true, false);
  if (!seq.ok()) return seq.status();
  sequences_ = std::move(*seq);
  auto changelog = consumer(true, true);
  if (!changelog.ok()) return changelog.status();
  changelog_ = std::move(*changelog);
  auto changelog_ends = consumer(false, false);
  if (!changelog_ends.ok()) return changelog_ends.status();
  changelog_ends_ = std::move(*changelog_ends);
  auto standby = consumer(true, false);
  if (!standby.ok()) return standby.status();
  standby_ = std::move(*standby);
  auto marks = consumer(false, false);
  if (!marks.ok()) return marks.status();
  input_marks_ = std::make_unique<WatermarkPoller>(
      std::move(*marks), options_.topics.enrollment_events, clock_, absl::Seconds(1));
  return CreateGroupClients();
}

absl::Status Executor::CreateGroupClients() {
  // The sink refers to the consumer: destroy it first.
  sink_.reset();
  input_.reset();
  kafka::ConsumerConfig c;
  c.client = options_.client;
  SetQueueLimits(c.client);
  c.group_id = options_.group_id;
  c.read_committed = true;
  c.session_timeout = options_.session_timeout;
  c.heartbeat_interval = std::min(options_.heartbeat_interval, options_.session_timeout / 3);
  // Static membership (KIP-345): a restarted instance takes its partitions back at once instead
  // of waiting for the session of its previous incarnation to time out. The price: librdkafka
  // treats FENCED_INSTANCE_ID as fatal, which this process itself can provoke after a session
  // timeout (RebuildGroupClients, README "Fatal client errors").
  c.client.overrides["group.instance.id"] = options_.instance_id;
  auto input = kafka::Consumer::Create(c);
  if (!input.ok()) return input.status();
  input_ = std::move(*input);
  SinkOptions sink;
  sink.client = options_.client;
  sink.transactional_id = absl::StrCat(options_.group_id, ".", options_.instance_id);
  sink.transaction_timeout = options_.transaction_timeout;
  sink.output_topics = {options_.topics.executor_events, options_.topics.task_events,
                        options_.topics.email_events, options_.topics.dead_letter,
                        options_.topics.enrollment_updates,
                        // Internal inputs of the sender stage (docs/send-limits.md).
                        options_.topics.enrollment_events};
  sink.timeout = kKafkaTimeout;
  sink_ = NewBatchSink(options_.guarantee, std::move(sink), *input_);
  return absl::OkStatus();
}

void Executor::Pause(absl::Duration d) { clock_.SleepUntil(clock_.Now() + d, stop_); }

bool Executor::JoinGroup() {
  // Broker trouble is waited out, never fatal.
  auto retry = [&](absl::string_view what, const std::function<absl::Status()>& f) {
    while (!Stopping()) {
      absl::Status s = f();
      if (s.ok()) return true;
      Log(LogLevel::kWarning, kLog, absl::StrCat(what, " failed; retrying"),
          {{"error", s.ToString()}});
      metrics_.SetHealth(false, absl::StrCat(what, ": ", s.message()));
      Pause(absl::Seconds(1));
    }
    return false;
  };
  if (!retry("init producer", [&] { return sink_->Init(); })) return false;
  if (!retry("assign sequence-events", [&] { return AssignSequenceConsumer(); })) return false;
  // Warm before joining: the partitions the group hands over then need only a short fold.
  if (!retry("warm up", [&] { return WarmUp(); })) return false;
  kafka::RebalanceListener listener;
  listener.on_assigned = [this](const std::vector<kafka::TopicPartition>& tps) {
    return OnAssigned(tps);
  };
  listener.on_revoked = [this](const std::vector<kafka::TopicPartition>& tps) { OnRevoked(tps); };
  return retry("subscribe",
               [&] { return input_->Subscribe({options_.topics.enrollment_events}, listener); });
}

bool Executor::RebuildGroupClients(const absl::Status& why) {
  Log(LogLevel::kError, kLog,
      "fatal kafka client error; rebuilding the group consumer and producer",
      {{"error", why.ToString()}});
  metrics_.AddClientRebuild(why.ToString());
  metrics_.SetHealth(false, absl::StrCat("rebuilding kafka clients: ", why.message()));
  overlay_->Discard();
  // Closing the consumer revokes its partitions through OnRevoked; forget them here too, in case
  // a fatal consumer does not call back.
  input_->Close();
  ForgetPartitions();
  for (;;) {
    absl::Status s = CreateGroupClients();
    if (s.ok()) break;
    Log(LogLevel::kWarning, kLog, "recreate kafka clients", {{"error", s.ToString()}});
    if (Stopping()) return false;
    Pause(absl::Seconds(1));
  }
  // Folds of the dropped batch may be in memory only.
  if (absl::Status l = processor_->LoadSequences(); !l.ok()) {
    Log(LogLevel::kError, kLog, "reload sequences", {{"error", l.ToString()}});
  }
  scan_from_ = DuePosition();
  next_due_known_ = false;
  recovery_failed_ = false;
  // Init fences the previous producer of this transactional id and aborts its open transaction;
  // the new consumer's assignment runs recovery before anything is decided.
  if (!JoinGroup()) return false;
  Log(LogLevel::kInfo, kLog, "kafka clients rebuilt; rejoining the group");
  return true;
}

absl::Status Executor::Run(absl::Notification& stop) {
  stop_ = &stop;
  if (absl::Status s = Setup(); !s.ok()) return s;
  if (!JoinGroup()) return absl::OkStatus();
  Log(LogLevel::kInfo, kLog, "running",
      {{"group", options_.group_id},
       {"instance", options_.instance_id},
       {"processing_guarantee", ProcessingGuaranteeName(options_.guarantee)}});

  while (!stop.HasBeenNotified()) {
    loop_beat_micros_.store(absl::ToUnixMicros(clock_.Now()), std::memory_order_relaxed);
    if (absl::Status fatal = ClientFatalError(); !fatal.ok()) {
      if (!RebuildGroupClients(fatal)) break;
      continue;
    }
    auto did = RunBatch(WaitBudget());
    if (!did.ok()) {
      Log(LogLevel::kWarning, kLog, "batch failed", {{"error", did.status().ToString()}});
      consume_error_ = did.status().ToString();
      if (!ClientFatalError().ok()) continue;  // rebuilt at the top of the loop
      Resync(kafka::IsFatal(did.status()), did.status().ToString());
      Pause(absl::Milliseconds(200));
    }
    if (did.ok()) consume_error_.clear();
    if (absl::Status s = FoldStandby(options_.standby_records_per_round); !s.ok()) {
      Log(LogLevel::kWarning, kLog, "standby fold failed", {{"error", s.ToString()}});
      standby_parts_.clear();  // reassigned from the stored offsets next round
    }
    const absl::Time now = clock_.Now();
    if (now - last_lag_update_ >= absl::Seconds(1)) UpdateLag();
    if (now - last_metrics_log_ >= options_.metrics_interval) {
      last_metrics_log_ = now;
      MetricsSnapshot m = metrics_.Snapshot();
      Log(LogLevel::kInfo, kLog, "metrics",
          {{"serving", m.serving ? "true" : "false"},
           {"input_lag", m.input_lag},
           {"due_index_size", m.due_index_size},
           {"owned_partitions", m.owned_partitions},
           {"steps_fired", m.steps_fired},
           {"steps_fired_per_second", m.steps_fired_per_second},
           {"transactions_committed", m.transactions_committed},
           {"transactions_aborted", m.transactions_aborted},
           {"dead_lettered", m.dead_lettered},
           {"metrics", m.ToJson()}});
    }
  }
  input_->Close();
  int64_t enrollments = 0, sequences = 0;
  auto digest = store_->Digest(&enrollments, &sequences);
  Log(LogLevel::kInfo, kLog, "stopped",
      {{"digest", digest.ok() ? *digest : digest.status().ToString()},
       {"enrollments", enrollments},
       {"sequences", sequences},
       {"metrics", metrics_.Snapshot().ToJson()}});
  return absl::OkStatus();
}

std::vector<kafka::TopicPartitionOffset> Executor::OnAssigned(
    const std::vector<kafka::TopicPartition>& tps) {
  std::vector<int32_t> parts;
  for (const auto& tp : tps) {
    if (Owned(tp.partition)) continue;
    partitions_[tp.partition] = PartitionState{};
    parts.push_back(tp.partition);
  }
  member_ = true;
  Log(LogLevel::kInfo, kLog, "partitions assigned",
      {{"count", parts.size()}, {"owned", partitions_.size()}});
  std::vector<int32_t> owned;
  for (const auto& [p, ps] : partitions_) owned.push_back(p);
  input_marks_->SetPartitions(owned);
  // The standby stops folding them before recovery does.
  UpdateStandby();
  absl::Status s = Recover(parts);
  if (!s.ok()) {
    Log(LogLevel::kWarning, kLog, "recovery failed", {{"error", s.ToString()}});
    recovery_failed_ = true;
  }
  std::vector<kafka::TopicPartitionOffset> positions;
  for (int32_t p : parts) {
    const int64_t c = partitions_[p].committed;
    positions.push_back({options_.topics.enrollment_events, p, c >= 0 ? c : kafka::kOffsetStored});
  }
  scan_from_ = DuePosition();
  next_due_known_ = false;
  return positions;
}

void Executor::OnRevoked(const std::vector<kafka::TopicPartition>& tps) {
  // Their state stays in RocksDB (the standby folds on from the stored offset) but is neither
  // served nor fired while not owned. Nothing of theirs is in flight: the callback runs inside
  // the poll, between batches.
  for (const auto& tp : tps) {
    partitions_.erase(tp.partition);
    executor_ends_.erase(tp.partition);
  }
  Log(LogLevel::kInfo, kLog, "partitions revoked",
      {{"count", tps.size()}, {"owned", partitions_.size()}});
  if (partitions_.empty()) member_ = false;
  std::vector<int32_t> owned;
  for (const auto& [p, ps] : partitions_) owned.push_back(p);
  input_marks_->SetPartitions(owned);
  next_due_known_ = false;
  UpdateStandby();
}

void Executor::ForgetPartitions() {
  partitions_.clear();
  executor_ends_.clear();
  member_ = false;
  input_marks_->SetPartitions({});
  next_due_known_ = false;
  standby_parts_.clear();
}

absl::Status Executor::Recover(const std::vector<int32_t>& parts) {
  if (parts.empty()) return absl::OkStatus();
  metrics_.AddRecovery();
  const absl::Time start = clock_.Now();
  // Stable offsets first: a read_committed consumer's offset fetch waits while a transaction
  // with offsets for these partitions is pending (KIP-447), so an older owner's last
  // transaction is decided before the changelog is read to its end.
  std::vector<kafka::TopicPartition> tps;
  for (int32_t p : parts) tps.push_back({options_.topics.enrollment_events, p});
  absl::StatusOr<std::vector<kafka::TopicPartitionOffset>> committed;
  for (int attempt = 0; attempt < 30; ++attempt) {
    committed = input_->Committed(tps, kKafkaTimeout);
    if (committed.ok()) break;
    Log(LogLevel::kWarning, kLog, "committed offsets not available yet",
        {{"error", committed.status().ToString()}});
    // A fatal consumer never answers; the loop rebuilds it.
    if (Stopping() || kafka::IsFatal(committed.status())) break;
    Pause(absl::Milliseconds(500));
  }
  if (!committed.ok()) return committed.status();
  for (const auto& c : *committed) {
    PartitionState& ps = partitions_[c.partition];
    ps.committed = c.offset >= 0 ? c.offset : -1;
    ps.next_expected = ps.committed;
    ps.queue.clear();
  }
  if (absl::Status s = FoldExecutorEvents(parts); !s.ok()) return s;
  metrics_.SetRecoveryDuration(clock_.Now() - start);
  Log(LogLevel::kInfo, kLog, "recovered",
      {{"partitions", parts.size()}, {"millis", absl::ToInt64Milliseconds(clock_.Now() - start)}});
  return absl::OkStatus();
}

absl::Status Executor::FoldRecord(Overlay& overlay, const kafka::Message& m, int64_t* folded,
                                  int64_t* undecodable) {
  v1::Envelope e;
  const bool parsed = e.ParseFromString(m.value);
  if (parsed && e.has_send_ledger_entry()) {
    if (absl::Status s = overlay.ApplyLedger(e.send_ledger_entry(), m.partition); !s.ok()) return s;
    ++*folded;
  } else if (parsed && EnrollmentKeyOfEvent(e).has_value()) {
    if (absl::Status s = overlay.Apply(e, m.value, m.partition); !s.ok()) return s;
    ++*folded;
  } else {
    // Records that do not decode, or decode to no executor event this version knows: skipped
    // (there is nothing to fold), but never silently.
    ++*undecodable;
    Log(LogLevel::kError, kLog, "executor event does not decode; skipped",
        {{"topic", options_.topics.executor_events},
         {"partition", m.partition},
         {"offset", m.offset},
         {"bytes", m.value.size()}});
  }
  overlay.SetOffset(StateStore::ExecOffsetKey(m.partition), m.offset + 1);
  return absl::OkStatus();
}

absl::Status Executor::FoldExecutorEvents(const std::vector<int32_t>& parts, bool owned,
                                          int64_t* folded_out) {
  std::vector<kafka::TopicPartitionOffset> assign;
  for (int32_t p : parts) {
    executor_ends_.erase(p);
    auto stored = store_->GetOffset(StateStore::ExecOffsetKey(p));
    if (!stored.ok()) return stored.status();
    assign.push_back({options_.topics.executor_events, p,
                      stored->has_value() ? **stored : kafka::kOffsetBeginning});
  }
  if (absl::Status s = changelog_->Assign(assign); !s.ok()) return s;
  Overlay overlay(*store_);
  std::set<int32_t> at_end;
  std::set<int32_t> held_back;  // owned partitions whose end an open transaction held back
  std::map<int32_t, int64_t> ends;
  int64_t folded = 0;
  int64_t undecodable = 0;
  absl::Time last_progress = clock_.Now();
  absl::Status result = absl::OkStatus();
  while (at_end.size() < parts.size()) {
    auto batch = changelog_->PollBatch(1000, absl::Milliseconds(200));
    if (!batch.ok()) {
      result = batch.status();
      break;
    }
    if (!batch->empty()) last_progress = clock_.Now();
    for (const kafka::Message& m : *batch) {
      // A partition whose end was reached is done: records of it read after that end (others
      // write to a partition this instance does not own while it folds the rest) are not folded,
      // so a later end must not move its offset past them; the standby or the next fold reads
      // them from there.
      if (at_end.count(m.partition) > 0) continue;
      if (m.eof) {
        if (owned) {
          // The end of a read_committed read is the last stable offset. Below the high watermark
          // it is held back by a transaction still open: a dead instance's, which the broker
          // aborts after its timeout. Records committed after it (another owner's decisions since)
          // are not readable yet; deciding without them would fire their steps again or lose
          // them. Wait: the read goes on, and a new eof comes once the transaction ends.
          auto marks = changelog_ends_->QueryWatermarks(
              {options_.topics.executor_events, m.partition}, kKafkaTimeout);
          if (!marks.ok()) {
            result = marks.status();
            break;
          }
          if (marks->high > m.offset) {
            if (held_back.insert(m.partition).second) {
              Log(LogLevel::kWarning, kLog,
                  "executor-events: an open transaction holds back the end; waiting for the broker "
                  "to end it",
                  {{"partition", m.partition},
                   {"last_stable_offset", m.offset},
                   {"high_watermark", marks->high}});
            }
            continue;
          }
        }
        overlay.SetOffset(StateStore::ExecOffsetKey(m.partition), m.offset);
        at_end.insert(m.partition);
        ends[m.partition] = m.offset;
        continue;
      }
      if (absl::Status s = FoldRecord(overlay, m, &folded, &undecodable); !s.ok()) return s;
    }
    if (!result.ok()) break;
    if (overlay.entries().size() + overlay.senders().size() >= 1000) {
      if (absl::Status s = overlay.Flush(); !s.ok()) return s;
    }
    if (clock_.Now() - last_progress > absl::Seconds(60)) {
      result = absl::UnavailableError("recovery: executor-events made no progress for 60s");
      break;
    }
    if (Stopping()) {
      result = absl::CancelledError("recovery: stopping");
      break;
    }
  }
  if (result.ok()) result = overlay.Flush();
  if (result.ok() && owned) {
    for (const auto& [p, end] : ends) executor_ends_[p] = end;
  }
  changelog_->Assign({}).IgnoreError();
  if (folded > 0 || undecodable > 0) {
    Log(undecodable > 0 ? LogLevel::kError : LogLevel::kInfo, kLog, "folded executor-events",
        {{"events", folded}, {"undecodable", undecodable}, {"owned", owned ? "true" : "false"}});
  }
  if (folded_out != nullptr) *folded_out = folded;
  return result;
}

absl::Status Executor::WarmUp() {
  if (options_.standby_records_per_round <= 0) return absl::OkStatus();
  if (executor_partitions_ == 0) {
    auto n = changelog_->PartitionCount(options_.topics.executor_events, kKafkaTimeout);
    if (!n.ok()) return n.status();
    executor_partitions_ = *n;
  }
  std::vector<int32_t> all;
  for (int p = 0; p < executor_partitions_; ++p) all.push_back(p);
  const absl::Time start = clock_.Now();
  int64_t total = 0;
  // Each pass folds what the others wrote during the previous one; the fold is faster than
  // they write, so the passes shrink. Few events left: the assignment's fold takes the rest.
  constexpr int64_t kWarmEnough = 5000;
  for (int pass = 0; pass < 5; ++pass) {
    int64_t folded = 0;
    if (absl::Status s = FoldExecutorEvents(all, /*owned=*/false, &folded); !s.ok()) return s;
    total += folded;
    if (folded < kWarmEnough) break;
  }
  Log(LogLevel::kInfo, kLog, "warmed up",
      {{"events", total}, {"millis", absl::ToInt64Milliseconds(clock_.Now() - start)}});
  return absl::OkStatus();
}

void Executor::UpdateStandby() {
  if (options_.standby_records_per_round <= 0 || executor_partitions_ == 0) return;
  std::set<int32_t> want;
  for (int p = 0; p < executor_partitions_; ++p) {
    if (!Owned(p)) want.insert(p);
  }
  if (want == standby_parts_) return;
  std::vector<kafka::TopicPartitionOffset> assign;
  for (int32_t p : want) {
    auto stored = store_->GetOffset(StateStore::ExecOffsetKey(p));
    if (!stored.ok()) {
      Log(LogLevel::kWarning, kLog, "standby offset", {{"error", stored.status().ToString()}});
      standby_parts_.clear();
      standby_->Assign({}).IgnoreError();
      return;
    }
    assign.push_back({options_.topics.executor_events, p,
                      stored->has_value() ? **stored : kafka::kOffsetBeginning});
  }
  if (absl::Status s = standby_->Assign(assign); !s.ok()) {
    Log(LogLevel::kWarning, kLog, "standby assign", {{"error", s.ToString()}});
    standby_parts_.clear();
    return;
  }
  standby_parts_ = std::move(want);
}

absl::Status Executor::FoldStandby(int max) {
  if (max <= 0) return absl::OkStatus();
  if (standby_parts_.empty()) UpdateStandby();
  if (standby_parts_.empty()) return absl::OkStatus();
  auto batch = standby_->PollBatch(max, absl::ZeroDuration());
  if (!batch.ok()) return batch.status();
  if (batch->empty()) return absl::OkStatus();
  Overlay overlay(*store_);
  int64_t folded = 0;
  int64_t undecodable = 0;
  for (const kafka::Message& m : *batch) {
    // Owned ones are folded by recovery and written by the batches (the assignment may have
    // changed since this record was fetched).
    if (m.eof || Owned(m.partition) || standby_parts_.count(m.partition) == 0) continue;
    if (absl::Status s = FoldRecord(overlay, m, &folded, &undecodable); !s.ok()) return s;
  }
  return overlay.Flush();
}

void Executor::RewindConsumers() {
  for (auto& [p, ps] : partitions_) {
    ps.queue.clear();
    ps.next_expected = ps.committed;
    absl::Status s = input_->Seek({options_.topics.enrollment_events, p,
                                   ps.committed >= 0 ? ps.committed : kafka::kOffsetBeginning},
                                  kKafkaTimeout);
    if (!s.ok()) Log(LogLevel::kWarning, kLog, "seek input", {{"error", s.ToString()}});
  }
  if (absl::Status s = AssignSequenceConsumer(); !s.ok()) {
    Log(LogLevel::kWarning, kLog, "reassign sequence-events", {{"error", s.ToString()}});
  }
}

void Executor::Resync(bool reinit_sink, absl::string_view why) {
  metrics_.AddAbort(std::string(why));
  metrics_.SetHealth(false, absl::StrCat("resync: ", why));
  overlay_->Discard();
  if (!reinit_sink) {
    absl::Status s = sink_->Abort();
    if (!s.ok()) {
      Log(LogLevel::kWarning, kLog, "abort failed", {{"error", s.ToString()}});
      reinit_sink = true;
    }
  }
  if (reinit_sink) {
    for (;;) {
      absl::Status s = sink_->Init();
      if (s.ok()) break;
      Log(LogLevel::kWarning, kLog, "recreate producer", {{"error", s.ToString()}});
      if (Stopping()) return;
      Pause(absl::Seconds(1));
    }
  }
  // A fatal consumer cannot recover anything: the loop rebuilds it first.
  if (!ClientFatalError().ok()) return;
  std::vector<int32_t> parts;
  for (const auto& [p, ps] : partitions_) parts.push_back(p);
  absl::Status s = Recover(parts);
  recovery_failed_ = !s.ok();
  if (!s.ok()) Log(LogLevel::kWarning, kLog, "recovery failed", {{"error", s.ToString()}});
  if (absl::Status l = processor_->LoadSequences(); !l.ok()) {
    Log(LogLevel::kError, kLog, "reload sequences", {{"error", l.ToString()}});
  }
  RewindConsumers();
  scan_from_ = DuePosition();
  next_due_known_ = false;
}

absl::Duration Executor::WaitBudget() {
  for (const auto& [p, ps] : partitions_) {
    if (!ps.queue.empty()) return options_.flush_interval;  // retry deferred inputs each tick
  }
  const absl::Time now = clock_.Now();
  if (!next_due_known_) {
    auto next = processor_->NextDue(
        scan_from_, [this](int32_t p) { return Owned(p); }, 1000);
    if (!next.ok()) return options_.flush_interval;
    next_due_ = *next;
    next_due_known_ = true;
  }
  if (!next_due_.has_value()) return options_.flush_interval;
  return std::clamp(*next_due_ - now, absl::ZeroDuration(), options_.flush_interval);
}

absl::StatusOr<bool> Executor::RunBatch(absl::Duration wait) {
  const absl::Time start = clock_.Now();
  // The same limit for inputs and for due steps; either reaching it means a backlog.
  const int limit = sizer_.limit();
  auto polled = input_->PollBatch(limit, wait);
  if (!polled.ok()) return polled.status();
  if (recovery_failed_) {
    Resync(false, "recovery failed");
    return true;
  }
  processor_->DiscardPending();  // a batch that failed before its senders were planned
  // Microseconds: the resolution of the due index and of the timer ids.
  const absl::Time now = absl::FromUnixMicros(absl::ToUnixMicros(clock_.Now()));
  for (kafka::Message& m : *polled) {
    if (m.eof || !Owned(m.partition)) continue;
    PartitionState& ps = partitions_[m.partition];
    if (ps.next_expected >= 0 && m.offset < ps.next_expected) continue;  // redelivered
    ps.next_expected = m.offset + 1;
    if (ps.queue.empty()) ps.head_since = now;
    ps.queue.push_back(std::move(m));
  }
  const bool inputs_full = static_cast<int>(polled->size()) >= limit;
  auto seq = sequences_->PollBatch(sizer_.options().max, absl::ZeroDuration());
  if (!seq.ok()) return seq.status();

  auto owned = [this](int32_t p) { return Owned(p); };
  BatchOutput out;
  std::map<int32_t, int64_t> new_committed;
  std::map<int32_t, size_t> decided_count;
  std::map<int32_t, int64_t> new_seq_positions;
  for (const kafka::Message& m : *seq) {
    if (m.eof) continue;
    if (absl::Status s = processor_->OnSequenceRecord(m, owned, now, *overlay_, out); !s.ok()) {
      overlay_->Discard();
      return s;
    }
    new_seq_positions[m.partition] = m.offset + 1;
    overlay_->SetOffset(StateStore::SeqOffsetKey(m.partition), m.offset + 1);
  }
  int decided = 0;
  for (auto& [p, ps] : partitions_) {
    size_t i = 0;
    for (; i < ps.queue.size(); ++i) {
      const bool force = now - ps.head_since >= options_.defer_timeout;
      auto r = processor_->OnInputRecord(ps.queue[i], force, now, *overlay_, out);
      if (!r.ok()) {
        overlay_->Discard();
        return r.status();
      }
      if (*r == Processor::InputResult::kDeferred) break;
      new_committed[p] = ps.queue[i].offset + 1;
      ++decided;
    }
    if (i > 0) decided_count[p] = i;
  }
  if (absl::Status s = processor_->FlushSenders(now, *overlay_, out); !s.ok()) {
    overlay_->Discard();
    return s;
  }
  if (!next_due_known_ || (next_due_.has_value() && *next_due_ <= now)) {
    if (absl::Status s = processor_->FireDue(now, owned, limit, &scan_from_, *overlay_, out);
        !s.ok()) {
      overlay_->Discard();
      return s;
    }
    next_due_known_ = false;
  }
  // Steps this batch's inputs made due already (no delay) fire in this same transaction.
  if (absl::Status s = processor_->FireStaged(now, owned, *overlay_, out); !s.ok()) {
    overlay_->Discard();
    return s;
  }
  // The fired steps' requests to stages this instance owns, and what those decide in turn.
  if (absl::Status s = processor_->FlushSenders(now, *overlay_, out); !s.ok()) {
    overlay_->Discard();
    return s;
  }
  if (out.empty() && new_committed.empty() && new_seq_positions.empty()) {
    overlay_->Discard();
    sizer_.Observe(false, 0, absl::ZeroDuration());  // idle: back towards small batches
    return false;
  }
  const absl::Time decided_at = clock_.Now();
  if (!out.empty() || !new_committed.empty()) {
    const absl::Status s = CommitBatch(out, new_committed);
    metrics_.ObserveTransaction(clock_.Now() - decided_at);
    if (!s.ok()) {
      Log(LogLevel::kWarning, kLog, "transaction failed", {{"error", s.ToString()}});
      Resync(kafka::IsFatal(s), s.ToString());
      return true;
    }
    metrics_.AddCommit();
    // The executor-events position after our records, as the sink counted it (never past the
    // partition's end). Unknown: the stored offset stays behind, and recovery folds from there
    // (folding an event the store already holds changes nothing).
    for (int32_t p : out.executor_partitions) {
      auto it = executor_ends_.find(p);
      if (it != executor_ends_.end()) overlay_->SetOffset(StateStore::ExecOffsetKey(p), it->second);
    }
  }
  const absl::Time committed_at = clock_.Now();
  std::optional<absl::Time> earliest;
  if (absl::Status s = overlay_->Flush(&earliest); !s.ok()) {
    Resync(false, absl::StrCat("state write: ", s.ToString()));
    return true;
  }
  for (const auto& [p, off] : new_committed) partitions_[p].committed = off;
  for (const auto& [p, n] : decided_count) {
    PartitionState& ps = partitions_[p];
    ps.queue.erase(ps.queue.begin(), ps.queue.begin() + static_cast<long>(n));
    ps.head_since = now;
  }
  for (const auto& [p, off] : new_seq_positions) sequence_positions_[p] = off;
  if (earliest.has_value()) scan_from_ = std::min(scan_from_, DuePosition::At(*earliest));
  next_due_known_ = false;
  metrics_.AddInputs(decided);
  metrics_.AddDeadLettered(out.dead_lettered);
  metrics_.AddEmailsDeferred(out.emails_deferred, out.emails_released, out.emails_deferred_min_gap);
  if (out.steps_fired > 0) metrics_.AddFired(out.steps_fired_by_kind, now);
  for (absl::Duration d : out.lateness) metrics_.AddLateness(d);
  const absl::Time end = clock_.Now();
  // The batch's size and time (from the poll's end) set the next batch's limit. A full batch
  // (inputs or due entries left at the limit) says there is a backlog.
  const int size = std::max(static_cast<int>(polled->size()), out.due_visited);
  sizer_.Observe(inputs_full || out.due_visited >= limit, size, end - now);
  metrics_.ObserveBatch(size, sizer_.limit());
  auto ms = [](absl::Duration d) { return absl::ToDoubleMilliseconds(d); };
  Log(LogLevel::kDebug, kLog, "batch",
      {{"poll_ms", ms(now - start)},
       {"decide_ms", ms(decided_at - now)},
       {"commit_ms", ms(committed_at - decided_at)},
       {"store_ms", ms(end - committed_at)},
       {"inputs", decided},
       {"fired", out.steps_fired},
       {"records", out.records.size()},
       {"limit", limit},
       {"next_limit", sizer_.limit()}});
  return true;
}

absl::Status Executor::CommitBatch(BatchOutput& out,
                                   const std::map<int32_t, int64_t>& new_committed) {
  // Offsets of every owned partition with a known position, so the broker checks this instance's
  // group generation for each partition the batch writes to (a fenced zombie cannot commit).
  std::vector<kafka::TopicPartitionOffset> offsets;
  for (const auto& [p, ps] : partitions_) {
    auto it = new_committed.find(p);
    const int64_t off = it != new_committed.end() ? it->second : ps.committed;
    if (off >= 0) offsets.push_back({options_.topics.enrollment_events, p, off});
  }
  return sink_->Write(out.records, offsets, options_.topics.executor_events, &executor_ends_);
}

void Executor::UpdateLag() {
  const absl::Time now = clock_.Now();
  last_lag_update_ = now;
  const WatermarkPoller::Marks marks = input_marks_->Latest();
  int64_t lag = 0;
  int64_t deferred = 0;
  bool known = true;
  std::map<int32_t, int64_t> by_partition;
  // Where the consumer is: past the marker of a transaction whose records it decided (this
  // instance's own writes to enrollment-events end in one), which the committed offset (last
  // record + 1) stops short of; so a caught-up instance shows lag 0, not 1 per such partition.
  std::vector<kafka::TopicPartition> owned;
  for (const auto& [p, ps] : partitions_) owned.push_back({options_.topics.enrollment_events, p});
  std::map<int32_t, int64_t> position;
  if (auto at = input_->Position(owned); at.ok()) {
    for (const kafka::TopicPartitionOffset& o : *at) position[o.partition] = o.offset;
  }
  for (const auto& [p, ps] : partitions_) {
    deferred += static_cast<int64_t>(ps.queue.size());
    auto w = marks.offsets.find(p);
    if (w == marks.offsets.end()) {
      known = false;  // just assigned: not asked about yet
      continue;
    }
    int64_t from = ps.committed >= 0 ? ps.committed : w->second.low;
    // Nothing polled waits undecided: all before the position is decided, or a marker.
    if (auto at = position.find(p); ps.committed >= 0 && ps.queue.empty() && at != position.end()) {
      from = std::max(from, at->second);
    }
    const int64_t behind = std::max<int64_t>(0, w->second.high - from);
    by_partition[p] = behind;
    lag += behind;
  }
  metrics_.SetPartitionLag(std::move(by_partition));
  metrics_.SetStoreStats(store_->raw().Stats());
  if (options_.process_memory) metrics_.SetProcessMemory(options_.process_memory());
  metrics_.SetGauges(lag, store_->raw().EstimateKeys(kDueCf),
                     static_cast<int64_t>(partitions_.size()), deferred);
  // A poller that has not finished a round for a while is stuck on a broker that does not answer.
  const bool stale = !partitions_.empty() && marks.at != absl::InfinitePast() &&
                     now - marks.at > absl::Seconds(10);
  // Not a member (before the first assignment, after a revocation, a session timeout or a fatal
  // error): it owns nothing, though partitions exist, so it must not look healthy.
  if (!member_) {
    metrics_.SetHealth(false, "not a group member: waiting for an assignment");
  } else if (!consume_error_.empty()) {
    metrics_.SetHealth(false, absl::StrCat("cannot consume: ", consume_error_));
  } else if (!marks.ok || stale) {
    metrics_.SetHealth(false, "broker unreachable");
  } else if (recovery_failed_) {
    metrics_.SetHealth(false, "recovery failed");
  } else if (!known) {
    metrics_.SetHealth(false, "catching up: lag not known yet");
  } else if (lag > options_.max_serving_lag) {
    metrics_.SetHealth(false, absl::StrCat("catching up: lag ", lag));
  } else {
    metrics_.SetHealth(true, "caught up");
  }
}

}  // namespace sequences::executor
