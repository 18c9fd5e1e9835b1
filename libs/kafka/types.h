#ifndef SEQUENCES_LIBS_KAFKA_TYPES_H_
#define SEQUENCES_LIBS_KAFKA_TYPES_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/kafka/security.h"

// Plain value types of the Kafka adapter. No librdkafka type appears in any public header of
// libs/kafka; librdkafka is linked PRIVATE.
namespace sequences::kafka {

// Settings shared by every client.
struct ClientConfig {
  // "host:port[,host:port]".
  std::string bootstrap_servers;
  // Shown in broker logs and metrics; defaults to "sequences".
  std::string client_id = "sequences";
  // How long to wait for a first connection and for metadata requests (bounded, never a hang).
  absl::Duration connect_timeout = absl::Seconds(10);
  // Authentication and encryption (default: PLAINTEXT, for loopback only).
  SecurityConfig security;
  // Extra librdkafka properties (e.g. {"debug", "protocol"}). Applied last; an unknown name or a
  // bad value makes Create() fail with InvalidArgument naming the property.
  std::map<std::string, std::string> overrides;
};

struct Header {
  std::string key;
  std::string value;
  bool operator==(const Header&) const = default;
};

// A record to produce. partition < 0 means "by key": every producer of this adapter uses
// librdkafka's "consistent_random" partitioner (CRC32 of the key modulo the partition count; set
// explicitly in config.cc), so the same key always lands on the same partition, PartitionForKey's.
struct Record {
  std::string topic;
  std::string key;
  std::string value;
  std::vector<Header> headers;
  int32_t partition = -1;
};

// The partition a record with the non-empty `key` lands on when produced "by key" (partition < 0)
// to a topic of `partition_count` > 0 partitions: the producers' partitioner, computed locally.
[[nodiscard]] int32_t PartitionForKey(absl::string_view key, int32_t partition_count);

// A consumed record, or an end-of-partition marker (eof == true: only topic/partition/offset set;
// offset is the next offset to be read).
struct Message {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
  std::vector<Header> headers;
  absl::Time timestamp = absl::UnixEpoch();
  bool eof = false;

  // The value of the first header named `key`, or nullptr.
  const std::string* FindHeader(absl::string_view key) const;
};

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  bool operator==(const TopicPartition&) const = default;
  auto operator<=>(const TopicPartition&) const = default;
};

// offset: the next offset to read (Kafka's committed-offset convention), or one of the constants.
struct TopicPartitionOffset {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  bool operator==(const TopicPartitionOffset&) const = default;
};

inline constexpr int64_t kOffsetBeginning = -2;
inline constexpr int64_t kOffsetEnd = -1;
// "Use the group's committed offset, else auto.offset.reset".
inline constexpr int64_t kOffsetStored = -1000;

// Where the broker stored a produced record.
struct DeliveryReport {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
};

struct WatermarkOffsets {
  int64_t low = 0;
  int64_t high = 0;
};

}  // namespace sequences::kafka

#endif  // SEQUENCES_LIBS_KAFKA_TYPES_H_
