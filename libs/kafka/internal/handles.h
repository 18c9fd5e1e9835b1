#ifndef SEQUENCES_LIBS_KAFKA_INTERNAL_HANDLES_H_
#define SEQUENCES_LIBS_KAFKA_INTERNAL_HANDLES_H_

// RAII holders for librdkafka's C handles. Internal to libs/kafka.
#include <librdkafka/rdkafka.h>

#include <memory>

namespace sequences::kafka::internal {

template <auto Destroy>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    if (p != nullptr) Destroy(p);
  }
};

using KafkaHandle = std::unique_ptr<rd_kafka_t, Deleter<rd_kafka_destroy>>;
using ConfHandle = std::unique_ptr<rd_kafka_conf_t, Deleter<rd_kafka_conf_destroy>>;
using TopicPartitionListHandle = std::unique_ptr<rd_kafka_topic_partition_list_t,
                                                 Deleter<rd_kafka_topic_partition_list_destroy>>;
using ErrorHandle = std::unique_ptr<rd_kafka_error_t, Deleter<rd_kafka_error_destroy>>;
using MessageHandle = std::unique_ptr<rd_kafka_message_t, Deleter<rd_kafka_message_destroy>>;
using QueueHandle = std::unique_ptr<rd_kafka_queue_t, Deleter<rd_kafka_queue_destroy>>;
using EventHandle = std::unique_ptr<rd_kafka_event_t, Deleter<rd_kafka_event_destroy>>;
using GroupMetadataHandle = std::unique_ptr<rd_kafka_consumer_group_metadata_t,
                                            Deleter<rd_kafka_consumer_group_metadata_destroy>>;
using AdminOptionsHandle =
    std::unique_ptr<rd_kafka_AdminOptions_t, Deleter<rd_kafka_AdminOptions_destroy>>;
using NewTopicHandle = std::unique_ptr<rd_kafka_NewTopic_t, Deleter<rd_kafka_NewTopic_destroy>>;
using DeleteTopicHandle =
    std::unique_ptr<rd_kafka_DeleteTopic_t, Deleter<rd_kafka_DeleteTopic_destroy>>;
using HeadersHandle = std::unique_ptr<rd_kafka_headers_t, Deleter<rd_kafka_headers_destroy>>;
using TopicHandle = std::unique_ptr<rd_kafka_topic_t, Deleter<rd_kafka_topic_destroy>>;

}  // namespace sequences::kafka::internal

#endif  // SEQUENCES_LIBS_KAFKA_INTERNAL_HANDLES_H_
