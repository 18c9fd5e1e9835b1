#include "libs/kafka/producer.h"

#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "libs/kafka/internal/client.h"
#include "libs/kafka/internal/errors.h"

namespace sequences::kafka {
namespace {

using internal::KafkaHandle;

// Owned by librdkafka between produce and the delivery callback.
struct Pending {
  Producer::DeliveryCallback done;
};

class ProducerImpl final : public Producer {
 public:
  ProducerImpl(KafkaHandle rk, absl::Duration delivery_timeout)
      : rk_(std::move(rk)), delivery_timeout_(delivery_timeout), poller_(rk_.get()) {}

  ~ProducerImpl() override {
    rd_kafka_flush(rk_.get(), internal::Ms(delivery_timeout_));
    // Whatever is left could not be delivered in time; its callbacks report that.
    rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(rk_.get(), 1000);
    poller_.Stop();
  }

  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    std::unique_ptr<Pending> pending(static_cast<Pending*>(m->_private));
    if (pending == nullptr) return;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      pending->done(internal::FromResponseError(
          m->err, absl::StrCat("produce to ", rd_kafka_topic_name(m->rkt))));
      return;
    }
    pending->done(DeliveryReport{rd_kafka_topic_name(m->rkt), m->partition, m->offset});
  }

  absl::Status SendAsync(const Record& record, DeliveryCallback done) override {
    auto pending = std::make_unique<Pending>(Pending{std::move(done)});
    rd_kafka_resp_err_t err = internal::ProduceRecord(rk_.get(), record, pending.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return internal::FromResponseError(err, absl::StrCat("produce to ", record.topic));
    }
    pending.release();  // the delivery callback owns it now
    return absl::OkStatus();
  }

  absl::StatusOr<DeliveryReport> Send(const Record& record) override {
    std::vector<absl::StatusOr<DeliveryReport>> out = SendAll(absl::MakeConstSpan(&record, 1));
    return std::move(out[0]);
  }

  std::vector<absl::StatusOr<DeliveryReport>> SendAll(absl::Span<const Record> records) override {
    struct Batch {
      std::vector<absl::StatusOr<DeliveryReport>> results;
      std::atomic<size_t> remaining;
      absl::Notification all_done;
    };
    auto batch = std::make_shared<Batch>();
    batch->results.assign(records.size(), absl::UnknownError("not sent"));
    batch->remaining = records.size();
    auto finish_one = [batch](size_t i, absl::StatusOr<DeliveryReport> r) {
      batch->results[i] = std::move(r);
      if (batch->remaining.fetch_sub(1) == 1) batch->all_done.Notify();
    };
    for (size_t i = 0; i < records.size(); ++i) {
      absl::Status queued = SendAsync(
          records[i], [finish_one, i](absl::StatusOr<DeliveryReport> r) { finish_one(i, r); });
      if (!queued.ok()) finish_one(i, queued);
    }
    if (records.empty()) return {};
    // librdkafka reports every record within message.timeout.ms; the margin covers scheduling.
    if (!batch->all_done.WaitForNotificationWithTimeout(delivery_timeout_ + absl::Seconds(5))) {
      // Should not happen; never report success for an unconfirmed record.
      std::vector<absl::StatusOr<DeliveryReport>> out;
      for (size_t i = 0; i < records.size(); ++i) {
        out.push_back(absl::DeadlineExceededError(
            absl::StrCat("produce to ", records[i].topic, ": no delivery report in time")));
      }
      return out;
    }
    return std::move(batch->results);
  }

  int OutstandingCount() override { return rd_kafka_outq_len(rk_.get()); }

  absl::Status FatalError() override { return internal::ClientFatalError(rk_.get(), "producer"); }

 private:
  KafkaHandle rk_;
  absl::Duration delivery_timeout_;
  internal::PollThread poller_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Producer>> Producer::Create(const ProducerConfig& config) {
  if (absl::Status s = ValidateSecurity(config.client.security); !s.ok()) return s;
  auto rk = internal::NewClient(RD_KAFKA_PRODUCER, internal::ProducerProperties(config),
                                [](rd_kafka_conf_t* conf, void*) {
                                  rd_kafka_conf_set_dr_msg_cb(conf, &ProducerImpl::OnDelivery);
                                });
  if (!rk.ok()) return rk.status();
  return std::make_unique<ProducerImpl>(std::move(*rk), config.delivery_timeout);
}

}  // namespace sequences::kafka
