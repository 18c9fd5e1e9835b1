#include "libs/kafka/consumer.h"

#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/kafka/internal/client.h"
#include "libs/kafka/internal/errors.h"
#include "libs/kafka/internal/group_metadata.h"
#include "libs/runtime/log.h"

namespace sequences::kafka {
namespace {

// Lives as long as the consumer; librdkafka's rebalance callback reaches it through the opaque.
struct RebalanceState {
  RebalanceListener listener;
  // An assignment (possibly empty) reached this consumer: librdkafka's assignor state exists.
  bool assigned = false;
};

// librdkafka before 2.3.0 asserts in rd_kafka_destroy on a cooperative-sticky group member that
// joined (got a JoinGroup answer) but never got an assignment: the assignor's state it frees is
// still null (librdkafka issue 4312, fixed in 2.3.0), and the process aborts. Debian bookworm
// ships 2.0.2. A consumer stopped while its group waits for a stalled leader hits it.
bool DestroyMayAbortBeforeAssignment() { return rd_kafka_version() < 0x020300ff; }

// Cooperative (incremental) rebalancing: each callback names only the partitions that are added
// or taken away; partitions kept stay assigned and keep their fetch position. A consumer fenced
// or failed for good may still see the eager protocol's whole-assignment calls (librdkafka reports
// "EAGER" before the first join): both are handled.
void Unassign(rd_kafka_t* rk, rd_kafka_topic_partition_list_t* parts, bool cooperative) {
  if (!cooperative) {
    rd_kafka_assign(rk, nullptr);
    return;
  }
  if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, parts); e != nullptr) {
    Log(LogLevel::kWarning, "kafka", "incremental unassign", {{"error", rd_kafka_error_string(e)}});
    rd_kafka_error_destroy(e);
  }
}

void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                 void* opaque) {
  auto* state = static_cast<RebalanceState*>(opaque);
  const char* protocol = rd_kafka_rebalance_protocol(rk);
  const bool cooperative = protocol != nullptr && std::string_view(protocol) == "COOPERATIVE";
  std::vector<TopicPartition> partitions;
  for (int i = 0; i < parts->cnt; ++i) {
    partitions.push_back({parts->elems[i].topic, parts->elems[i].partition});
  }
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    state->assigned = true;
    std::vector<TopicPartitionOffset> positions;
    if (state->listener.on_assigned) positions = state->listener.on_assigned(partitions);
    for (int i = 0; i < parts->cnt; ++i) parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
    for (const TopicPartitionOffset& p : positions) {
      rd_kafka_topic_partition_t* tp =
          rd_kafka_topic_partition_list_find(parts, p.topic.c_str(), p.partition);
      if (tp != nullptr)
        tp->offset = p.offset == kOffsetStored ? RD_KAFKA_OFFSET_INVALID : p.offset;
    }
    if (!cooperative) {
      rd_kafka_assign(rk, parts);
    } else if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, parts); e != nullptr) {
      Log(LogLevel::kWarning, "kafka", "incremental assign", {{"error", rd_kafka_error_string(e)}});
      rd_kafka_error_destroy(e);
    }
  } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    if (state->listener.on_revoked) state->listener.on_revoked(partitions);
    Unassign(rk, parts, cooperative);
  } else {
    // Any other rebalance error: give up the whole assignment (librdkafka's contract).
    Log(LogLevel::kWarning, "kafka", "rebalance error", {{"error", rd_kafka_err2name(err)}});
    std::vector<TopicPartition> all;
    rd_kafka_topic_partition_list_t* raw = nullptr;
    if (rd_kafka_assignment(rk, &raw) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      internal::TopicPartitionListHandle list(raw);
      for (const auto& tpo : internal::FromList(list.get()))
        all.push_back({tpo.topic, tpo.partition});
    }
    if (state->listener.on_revoked) state->listener.on_revoked(all);
    rd_kafka_assign(rk, nullptr);
  }
}

class ConsumerImpl final : public Consumer {
 public:
  ConsumerImpl(internal::KafkaHandle rk, std::unique_ptr<RebalanceState> rebalance, bool has_group)
      : rk_(std::move(rk)), rebalance_(std::move(rebalance)), has_group_(has_group) {}

  ~ConsumerImpl() override {
    Close();
    if (has_group_ && subscribed_ && !rebalance_->assigned && DestroyMayAbortBeforeAssignment()) {
      // Closed (it left the group), but not destroyed: its handle and threads are left to the
      // process (a stop exits next; a rebuild leaks one idle client). Destroying it would abort.
      Log(LogLevel::kWarning, "kafka",
          "group consumer closed before its first assignment; not destroyed (librdkafka < 2.3.0 "
          "would abort)",
          {{"librdkafka", rd_kafka_version_str()}});
      // Its threads log through our logger, which the process's exit destroys: silence them.
      rd_kafka_set_log_level(rk_.get(), 0);
      static_cast<void>(rk_.release());
      static_cast<void>(rebalance_.release());
    }
  }

  absl::Status Subscribe(const std::vector<std::string>& topics,
                         RebalanceListener listener) override {
    if (!has_group_) return absl::FailedPreconditionError("subscribe: consumer has no group_id");
    rebalance_->listener = std::move(listener);
    internal::TopicPartitionListHandle list(
        rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
    for (const std::string& t : topics) {
      rd_kafka_topic_partition_list_add(list.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
    }
    absl::Status s =
        internal::FromResponseError(rd_kafka_subscribe(rk_.get(), list.get()),
                                    absl::StrCat("subscribe to ", absl::StrJoin(topics, ",")));
    if (s.ok()) subscribed_ = true;
    return s;
  }

  absl::Status Assign(const std::vector<TopicPartitionOffset>& partitions) override {
    internal::TopicPartitionListHandle list = internal::ToList(partitions);
    return internal::FromResponseError(rd_kafka_assign(rk_.get(), list.get()), "assign");
  }

  std::vector<TopicPartition> Assignment() override {
    rd_kafka_topic_partition_list_t* raw = nullptr;
    std::vector<TopicPartition> out;
    if (rd_kafka_assignment(rk_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return out;
    internal::TopicPartitionListHandle list(raw);
    for (const auto& tpo : internal::FromList(list.get()))
      out.push_back({tpo.topic, tpo.partition});
    return out;
  }

  absl::StatusOr<std::optional<Message>> Poll(absl::Duration timeout) override {
    internal::MessageHandle m(rd_kafka_consumer_poll(rk_.get(), internal::Ms(timeout)));
    if (m == nullptr) return std::nullopt;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      Message eof;
      eof.topic = m->rkt != nullptr ? rd_kafka_topic_name(m->rkt) : "";
      eof.partition = m->partition;
      eof.offset = m->offset;
      eof.eof = true;
      return eof;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::string what = absl::StrCat(
          "consume", m->rkt != nullptr ? absl::StrCat(" from ", rd_kafka_topic_name(m->rkt)) : "");
      absl::Status status = internal::FromResponseError(m->err, what);
      if (internal::IsTransient(m->err)) {
        // librdkafka retries by itself; the caller just polls again.
        Log(LogLevel::kWarning, "kafka", std::string(status.message()));
        return std::nullopt;
      }
      return status;
    }
    return internal::ToMessage(m.get());
  }

  absl::StatusOr<std::vector<Message>> PollBatch(int max, absl::Duration timeout) override {
    std::vector<Message> out;
    absl::Duration wait = timeout;
    while (static_cast<int>(out.size()) < max) {
      auto m = Poll(wait);
      if (!m.ok()) {
        if (out.empty()) return m.status();
        break;  // deliver what we have; the error comes again on the next poll
      }
      if (!m->has_value()) break;
      out.push_back(std::move(**m));
      wait = absl::ZeroDuration();
    }
    return out;
  }

  absl::Status Commit(const std::vector<TopicPartitionOffset>& offsets) override {
    if (offsets.empty()) return absl::OkStatus();
    internal::TopicPartitionListHandle list = internal::ToList(offsets);
    return internal::FromResponseError(rd_kafka_commit(rk_.get(), list.get(), 0), "commit offsets");
  }

  absl::StatusOr<std::vector<TopicPartitionOffset>> Committed(
      const std::vector<TopicPartition>& partitions, absl::Duration timeout) override {
    internal::TopicPartitionListHandle list = internal::ToList(partitions);
    rd_kafka_resp_err_t err = rd_kafka_committed(rk_.get(), list.get(), internal::Ms(timeout));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return internal::FromResponseError(err, "fetch committed offsets");
    }
    return internal::FromList(list.get());
  }

  absl::StatusOr<std::vector<TopicPartitionOffset>> Position(
      const std::vector<TopicPartition>& partitions) override {
    internal::TopicPartitionListHandle list = internal::ToList(partitions);
    rd_kafka_resp_err_t err = rd_kafka_position(rk_.get(), list.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return internal::FromResponseError(err, "position");
    return internal::FromList(list.get());
  }

  absl::Status Seek(const TopicPartitionOffset& to, absl::Duration timeout) override {
    internal::TopicPartitionListHandle list = internal::ToList(std::vector{to});
    absl::Status status =
        internal::FromError(rd_kafka_seek_partitions(rk_.get(), list.get(), internal::Ms(timeout)),
                            absl::StrCat("seek ", to.topic, "/", to.partition));
    if (!status.ok()) return status;
    return internal::FromResponseError(list->elems[0].err,
                                       absl::StrCat("seek ", to.topic, "/", to.partition));
  }

  absl::StatusOr<WatermarkOffsets> QueryWatermarks(const TopicPartition& tp,
                                                   absl::Duration timeout) override {
    WatermarkOffsets w;
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
        rk_.get(), tp.topic.c_str(), tp.partition, &w.low, &w.high, internal::Ms(timeout));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return internal::FromResponseError(
          err, absl::StrCat("query watermarks of ", tp.topic, "/", tp.partition));
    }
    return w;
  }

  absl::StatusOr<std::vector<TopicPartitionOffset>> OffsetsForTime(
      const std::vector<TopicPartition>& partitions, absl::Time at,
      absl::Duration timeout) override {
    std::vector<TopicPartitionOffset> query;
    for (const auto& p : partitions)
      query.push_back({p.topic, p.partition, absl::ToUnixMillis(at)});
    internal::TopicPartitionListHandle list = internal::ToList(query);
    rd_kafka_resp_err_t err =
        rd_kafka_offsets_for_times(rk_.get(), list.get(), internal::Ms(timeout));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return internal::FromResponseError(err, "offsets for time");
    }
    return internal::FromList(list.get());
  }

  absl::StatusOr<int> PartitionCount(const std::string& topic, absl::Duration timeout) override {
    return internal::PartitionCountOf(rk_.get(), topic, timeout);
  }

  ConsumerGroupMetadata GroupMetadata() override {
    auto handle = std::make_shared<ConsumerGroupMetadata::Handle>();
    handle->metadata.reset(rd_kafka_consumer_group_metadata(rk_.get()));
    if (handle->metadata == nullptr) return ConsumerGroupMetadata();
    return ConsumerGroupMetadata(std::move(handle));
  }

  absl::Status FatalError() override { return internal::ClientFatalError(rk_.get(), "consumer"); }

  void Close() override {
    if (closed_) return;
    closed_ = true;
    rd_kafka_consumer_close(rk_.get());
  }

 private:
  internal::KafkaHandle rk_;
  std::unique_ptr<RebalanceState> rebalance_;
  bool has_group_;
  bool subscribed_ = false;
  bool closed_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Consumer>> Consumer::Create(const ConsumerConfig& config) {
  if (absl::Status s = ValidateSecurity(config.client.security); !s.ok()) return s;
  auto rebalance = std::make_unique<RebalanceState>();
  auto rk = internal::NewClient(
      RD_KAFKA_CONSUMER, internal::ConsumerProperties(config),
      [](rd_kafka_conf_t* conf, void* opaque) {
        rd_kafka_conf_set_opaque(conf, opaque);
        rd_kafka_conf_set_rebalance_cb(conf, &OnRebalance);
      },
      rebalance.get());
  if (!rk.ok()) return rk.status();
  // Serve logs, errors and rebalances from Poll.
  rd_kafka_poll_set_consumer(rk->get());
  return std::make_unique<ConsumerImpl>(std::move(*rk), std::move(rebalance),
                                        !config.group_id.empty());
}

}  // namespace sequences::kafka
