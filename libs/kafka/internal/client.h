#ifndef SEQUENCES_LIBS_KAFKA_INTERNAL_CLIENT_H_
#define SEQUENCES_LIBS_KAFKA_INTERNAL_CLIENT_H_

// Shared pieces of the client implementations. Internal to libs/kafka.
#include <atomic>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/kafka/internal/config.h"
#include "libs/kafka/internal/handles.h"
#include "libs/kafka/types.h"

namespace sequences::kafka::internal {

// Creates a client of `type` from `properties`; `configure` may add callbacks to the conf first.
absl::StatusOr<KafkaHandle> NewClient(rd_kafka_type_t type, const Properties& properties,
                                      void (*configure)(rd_kafka_conf_t*, void*) = nullptr,
                                      void* opaque = nullptr);

// Serves a client's callbacks (delivery reports, logs, errors) on its own thread until stopped.
class PollThread {
 public:
  explicit PollThread(rd_kafka_t* rk);
  ~PollThread();
  void Stop();

 private:
  rd_kafka_t* rk_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Copies of a record's headers, for produce; null if there are none.
HeadersHandle ToHeaders(const std::vector<Header>& headers);
// Produces one record with rd_kafka_producev. `opaque` reaches the delivery callback.
rd_kafka_resp_err_t ProduceRecord(rd_kafka_t* rk, const Record& record, void* opaque);
// Our Message from a librdkafka message (non-error).
Message ToMessage(const rd_kafka_message_t* m);
int Ms(absl::Duration d);
TopicPartitionListHandle ToList(const std::vector<TopicPartitionOffset>& offsets);
TopicPartitionListHandle ToList(const std::vector<TopicPartition>& partitions);
std::vector<TopicPartitionOffset> FromList(const rd_kafka_topic_partition_list_t* list);
// Partition count of `topic` from a metadata request.
absl::StatusOr<int> PartitionCountOf(rd_kafka_t* rk, const std::string& topic,
                                     absl::Duration timeout);

}  // namespace sequences::kafka::internal

#endif  // SEQUENCES_LIBS_KAFKA_INTERNAL_CLIENT_H_
