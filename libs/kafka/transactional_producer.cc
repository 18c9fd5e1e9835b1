#include "libs/kafka/transactional_producer.h"

#include "absl/strings/str_cat.h"
#include "libs/kafka/internal/client.h"
#include "libs/kafka/internal/errors.h"
#include "libs/kafka/internal/group_metadata.h"

namespace sequences::kafka {

class TransactionalProducerImpl final : public TransactionalProducer {
 public:
  TransactionalProducerImpl(internal::KafkaHandle rk, std::string id,
                            std::vector<std::string> output_topics)
      : rk_(std::move(rk)),
        id_(std::move(id)),
        output_topics_(std::move(output_topics)),
        poller_(rk_.get()) {}

  ~TransactionalProducerImpl() override {
    // An open transaction is aborted by the broker (transaction timeout) or by the next producer
    // with the same id; nothing more to do here.
    poller_.Stop();
    topics_.clear();  // topic handles go before the client
  }

  absl::Status Init(absl::Duration timeout) override {
    if (absl::Status s =
            internal::FromError(rd_kafka_init_transactions(rk_.get(), internal::Ms(timeout)),
                                absl::StrCat("init transactions (", id_, ")"));
        !s.ok()) {
      return s;
    }
    // A topic handle held for the producer's life keeps its partitions and leaders known; the
    // metadata request fills them in now instead of on the first produce.
    for (const std::string& topic : output_topics_) {
      topics_.emplace_back(rd_kafka_topic_new(rk_.get(), topic.c_str(), nullptr));
      auto partitions = internal::PartitionCountOf(rk_.get(), topic, timeout);
      if (!partitions.ok()) return partitions.status();
    }
    return absl::OkStatus();
  }

  absl::Status Begin() override {
    return internal::FromError(rd_kafka_begin_transaction(rk_.get()),
                               absl::StrCat("begin transaction (", id_, ")"));
  }

  absl::Status Produce(const Record& record) override {
    rd_kafka_resp_err_t err = internal::ProduceRecord(rk_.get(), record, nullptr);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      // Let librdkafka drain its queue, then try once more.
      rd_kafka_flush(rk_.get(), 1000);
      err = internal::ProduceRecord(rk_.get(), record, nullptr);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // A produce failure inside a transaction means this batch cannot commit.
      absl::Status status = internal::FromResponseError(
          err, absl::StrCat("produce to ", record.topic, " in transaction (", id_, ")"));
      if (rd_kafka_fatal_error(rk_.get(), nullptr, 0) == RD_KAFKA_RESP_ERR_NO_ERROR &&
          status.code() != absl::StatusCode::kInvalidArgument) {
        return absl::AbortedError(status.message());
      }
      return status;
    }
    return absl::OkStatus();
  }

  absl::Status SendOffsets(const std::vector<TopicPartitionOffset>& offsets,
                           const ConsumerGroupMetadata& group, absl::Duration timeout) override {
    if (offsets.empty()) return absl::OkStatus();
    if (group.empty()) {
      return absl::InvalidArgumentError("send offsets to transaction: no consumer group metadata");
    }
    internal::TopicPartitionListHandle list = internal::ToList(offsets);
    return internal::FromError(
        rd_kafka_send_offsets_to_transaction(
            rk_.get(), list.get(), internal::GroupMetadataOf(group), internal::Ms(timeout)),
        absl::StrCat("send offsets to transaction (", id_, ")"));
  }

  absl::Status Flush(absl::Duration timeout) override {
    return internal::FromResponseError(rd_kafka_flush(rk_.get(), internal::Ms(timeout)),
                                       absl::StrCat("flush transaction (", id_, ")"));
  }

  absl::Status Commit(absl::Duration timeout) override {
    return internal::FromError(rd_kafka_commit_transaction(rk_.get(), internal::Ms(timeout)),
                               absl::StrCat("commit transaction (", id_, ")"));
  }

  absl::Status Abort(absl::Duration timeout) override {
    return internal::FromError(rd_kafka_abort_transaction(rk_.get(), internal::Ms(timeout)),
                               absl::StrCat("abort transaction (", id_, ")"));
  }

 private:
  internal::KafkaHandle rk_;
  std::string id_;
  std::vector<std::string> output_topics_;
  std::vector<internal::TopicHandle> topics_;
  internal::PollThread poller_;
};

absl::StatusOr<std::unique_ptr<TransactionalProducer>> TransactionalProducer::Create(
    const TransactionalProducerConfig& config) {
  if (config.transactional_id.empty()) {
    return absl::InvalidArgumentError("transactional_id: must not be empty");
  }
  if (absl::Status s = ValidateSecurity(config.client.security); !s.ok()) return s;
  auto rk =
      internal::NewClient(RD_KAFKA_PRODUCER, internal::TransactionalProducerProperties(config));
  if (!rk.ok()) return rk.status();
  return std::make_unique<TransactionalProducerImpl>(std::move(*rk), config.transactional_id,
                                                     config.output_topics);
}

}  // namespace sequences::kafka
