#include "services/step-executor/sink.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "libs/kafka/producer.h"
#include "libs/kafka/transactional_producer.h"
#include "libs/runtime/log.h"

namespace sequences::executor {
namespace {

constexpr char kLog[] = "executor";

// One transaction per batch: records and input offsets commit together.
class ExactlyOnceSink final : public BatchSink {
 public:
  ExactlyOnceSink(SinkOptions options, kafka::Consumer& input)
      : options_(std::move(options)), input_(input) {}

  absl::Status Init() override {
    producer_.reset();
    kafka::TransactionalProducerConfig config;
    config.client = options_.client;
    config.transactional_id = options_.transactional_id;
    config.transaction_timeout = options_.transaction_timeout;
    config.output_topics = options_.output_topics;
    auto p = kafka::TransactionalProducer::Create(config);
    if (!p.ok()) return p.status();
    if (absl::Status s = (*p)->Init(options_.timeout); !s.ok()) return s;
    producer_ = std::move(*p);
    Log(LogLevel::kInfo, kLog, "transactional producer ready",
        {{"transactional_id", config.transactional_id}});
    return absl::OkStatus();
  }

  absl::Status Write(const std::vector<kafka::Record>& records,
                     const std::vector<kafka::TopicPartitionOffset>& offsets,
                     const std::string& executor_topic,
                     std::map<int32_t, int64_t>* executor_ends) override {
    if (producer_ == nullptr) return absl::FailedPreconditionError("no transactional producer");
    if (absl::Status s = producer_->Begin(); !s.ok()) return s;
    std::map<int32_t, int64_t> written;  // executor-events records per partition
    for (const kafka::Record& r : records) {
      if (absl::Status s = producer_->Produce(r); !s.ok()) return s;
      if (r.topic == executor_topic) ++written[r.partition];
    }
    if (absl::Status s = producer_->SendOffsets(offsets, input_.GroupMetadata(), options_.timeout);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = producer_->Commit(options_.timeout); !s.ok()) return s;
    // A committed transaction adds its records and one commit marker to each partition it wrote.
    // Records of anyone else (a fenced zombie's aborted ones) only make the real end larger.
    // (Executor events always name their partition.)
    for (const auto& [p, n] : written) {
      auto it = executor_ends->find(p);
      if (it != executor_ends->end()) it->second += n + 1;
    }
    return absl::OkStatus();
  }

  absl::Status Abort() override {
    if (producer_ == nullptr) return absl::FailedPreconditionError("no transactional producer");
    return producer_->Abort(options_.timeout);
  }

 private:
  SinkOptions options_;
  kafka::Consumer& input_;
  std::unique_ptr<kafka::TransactionalProducer> producer_;
};

// No transactions: every record acknowledged by the broker (idempotent, acks=all), then the input
// offsets committed. A failure in between leaves delivered records that the batch decided again
// will produce once more.
class AtLeastOnceSink final : public BatchSink {
 public:
  AtLeastOnceSink(SinkOptions options, kafka::Consumer& input)
      : options_(std::move(options)), input_(input) {}

  absl::Status Init() override {
    producer_.reset();
    kafka::ProducerConfig config;
    config.client = options_.client;
    auto p = kafka::Producer::Create(config);
    if (!p.ok()) return p.status();
    producer_ = std::move(*p);
    Log(LogLevel::kInfo, kLog, "idempotent producer ready (at_least_once)");
    return absl::OkStatus();
  }

  absl::Status Write(const std::vector<kafka::Record>& records,
                     const std::vector<kafka::TopicPartitionOffset>& offsets,
                     const std::string& executor_topic,
                     std::map<int32_t, int64_t>* executor_ends) override {
    if (producer_ == nullptr) return absl::FailedPreconditionError("no producer");
    std::map<int32_t, int64_t> ends;
    std::vector<absl::StatusOr<kafka::DeliveryReport>> reports = producer_->SendAll(records);
    for (const auto& r : reports) {
      if (!r.ok()) return r.status();
      if (r->topic == executor_topic) {
        int64_t& end = ends[r->partition];
        end = std::max(end, r->offset + 1);
      }
    }
    if (!offsets.empty()) {
      if (absl::Status s = input_.Commit(offsets); !s.ok()) return s;
    }
    // Delivery reports tell exactly where this batch's records went.
    for (const auto& [p, end] : ends) (*executor_ends)[p] = end;
    return absl::OkStatus();
  }

  // Delivered records cannot be taken back: the batch is decided again after recovery.
  absl::Status Abort() override { return absl::OkStatus(); }

 private:
  SinkOptions options_;
  kafka::Consumer& input_;
  std::unique_ptr<kafka::Producer> producer_;
};

}  // namespace

absl::StatusOr<ProcessingGuarantee> ParseProcessingGuarantee(absl::string_view name) {
  if (name == "exactly_once") return ProcessingGuarantee::kExactlyOnce;
  if (name == "at_least_once") return ProcessingGuarantee::kAtLeastOnce;
  return absl::InvalidArgumentError(
      absl::StrCat("processing guarantee '", name, "': want exactly_once or at_least_once"));
}

absl::string_view ProcessingGuaranteeName(ProcessingGuarantee g) {
  return g == ProcessingGuarantee::kExactlyOnce ? "exactly_once" : "at_least_once";
}

std::unique_ptr<BatchSink> NewBatchSink(ProcessingGuarantee guarantee, SinkOptions options,
                                        kafka::Consumer& input) {
  if (guarantee == ProcessingGuarantee::kAtLeastOnce) {
    return std::make_unique<AtLeastOnceSink>(std::move(options), input);
  }
  return std::make_unique<ExactlyOnceSink>(std::move(options), input);
}

}  // namespace sequences::executor
