#ifndef SEQUENCES_LIBS_KAFKA_INTERNAL_GROUP_METADATA_H_
#define SEQUENCES_LIBS_KAFKA_INTERNAL_GROUP_METADATA_H_

#include "libs/kafka/consumer.h"
#include "libs/kafka/internal/handles.h"

namespace sequences::kafka {

struct ConsumerGroupMetadata::Handle {
  internal::GroupMetadataHandle metadata;
};

namespace internal {

inline const rd_kafka_consumer_group_metadata_t* GroupMetadataOf(const ConsumerGroupMetadata& m) {
  return m.handle() == nullptr ? nullptr : m.handle()->metadata.get();
}

}  // namespace internal
}  // namespace sequences::kafka

#endif  // SEQUENCES_LIBS_KAFKA_INTERNAL_GROUP_METADATA_H_
