#ifndef SEQUENCES_LIBS_KAFKA_INTERNAL_CONFIG_H_
#define SEQUENCES_LIBS_KAFKA_INTERNAL_CONFIG_H_

// How our config structs become librdkafka properties. Internal to libs/kafka (and its tests).
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/internal/handles.h"
#include "libs/kafka/producer.h"
#include "libs/kafka/transactional_producer.h"

namespace sequences::kafka::internal {

using Properties = std::map<std::string, std::string>;

// The librdkafka properties each client type runs with (overrides applied last).
Properties ProducerProperties(const ProducerConfig& config);
Properties TransactionalProducerProperties(const TransactionalProducerConfig& config);
Properties ConsumerProperties(const ConsumerConfig& config);
Properties AdminProperties(const ClientConfig& config);

// Builds a librdkafka configuration. InvalidArgument names the property and librdkafka's reason.
absl::StatusOr<ConfHandle> BuildConf(const Properties& properties);

// Routes librdkafka's log and error callbacks to our structured log (component "kafka").
void InstallLogging(rd_kafka_conf_t* conf);

}  // namespace sequences::kafka::internal

#endif  // SEQUENCES_LIBS_KAFKA_INTERNAL_CONFIG_H_
