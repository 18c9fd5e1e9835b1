#include "libs/kafka/internal/client.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "libs/kafka/internal/errors.h"
#include "libs/runtime/thread.h"

namespace sequences::kafka {

int32_t PartitionForKey(absl::string_view key, int32_t partition_count) {
  // The topic handle is only used for a record without a key (a random partition).
  return rd_kafka_msg_partitioner_consistent_random(nullptr, key.data(), key.size(),
                                                    partition_count, nullptr, nullptr);
}

const std::string* Message::FindHeader(absl::string_view key) const {
  for (const Header& h : headers) {
    if (h.key == key) return &h.value;
  }
  return nullptr;
}

namespace internal {

absl::StatusOr<KafkaHandle> NewClient(rd_kafka_type_t type, const Properties& properties,
                                      void (*configure)(rd_kafka_conf_t*, void*), void* opaque) {
  auto conf = BuildConf(properties);
  if (!conf.ok()) return conf.status();
  if (configure != nullptr) configure(conf->get(), opaque);
  char err[512];
  // rd_kafka_new takes ownership of the conf only on success.
  rd_kafka_t* rk = rd_kafka_new(type, conf->get(), err, sizeof(err));
  if (rk == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("creating kafka client: ", err));
  }
  conf->release();
  return KafkaHandle(rk);
}

PollThread::PollThread(rd_kafka_t* rk) : rk_(rk) {
  thread_ = std::thread([this] {
    NameThisThread("kafka-poll");
    while (!stop_.load(std::memory_order_relaxed)) rd_kafka_poll(rk_, 100);
  });
}

PollThread::~PollThread() { Stop(); }

void PollThread::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

HeadersHandle ToHeaders(const std::vector<Header>& headers) {
  if (headers.empty()) return nullptr;
  HeadersHandle h(rd_kafka_headers_new(headers.size()));
  for (const Header& header : headers) {
    rd_kafka_header_add(h.get(), header.key.data(), static_cast<ssize_t>(header.key.size()),
                        header.value.data(), static_cast<ssize_t>(header.value.size()));
  }
  return h;
}

rd_kafka_resp_err_t ProduceRecord(rd_kafka_t* rk, const Record& r, void* opaque) {
  HeadersHandle headers = ToHeaders(r.headers);
  rd_kafka_resp_err_t err;
  int32_t partition = r.partition < 0 ? RD_KAFKA_PARTITION_UA : r.partition;
  if (headers != nullptr) {
    err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(r.topic.c_str()), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(r.key.data(), r.key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
        RD_KAFKA_V_HEADERS(headers.get()), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    // On success librdkafka owns the headers.
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) headers.release();
  } else {
    err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(r.topic.c_str()), RD_KAFKA_V_PARTITION(partition),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_KEY(r.key.data(), r.key.size()),
                            RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
                            RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
  }
  return err;
}

Message ToMessage(const rd_kafka_message_t* m) {
  Message out;
  out.topic = rd_kafka_topic_name(m->rkt);
  out.partition = m->partition;
  out.offset = m->offset;
  if (m->key != nullptr) out.key.assign(static_cast<const char*>(m->key), m->key_len);
  if (m->payload != nullptr) out.value.assign(static_cast<const char*>(m->payload), m->len);
  rd_kafka_timestamp_type_t tstype;
  int64_t ts = rd_kafka_message_timestamp(m, &tstype);
  if (ts >= 0) out.timestamp = absl::FromUnixMillis(ts);
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs != nullptr) {
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0;
         rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      out.headers.push_back(
          {name, value != nullptr ? std::string(static_cast<const char*>(value), size) : ""});
    }
  }
  return out;
}

int Ms(absl::Duration d) {
  return static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(d), 0, 1 << 30));
}

TopicPartitionListHandle ToList(const std::vector<TopicPartitionOffset>& offsets) {
  TopicPartitionListHandle list(
      rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const auto& o : offsets) {
    rd_kafka_topic_partition_list_add(list.get(), o.topic.c_str(), o.partition)->offset =
        o.offset == kOffsetStored ? RD_KAFKA_OFFSET_STORED : o.offset;
  }
  return list;
}

TopicPartitionListHandle ToList(const std::vector<TopicPartition>& partitions) {
  TopicPartitionListHandle list(
      rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const auto& p : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), p.topic.c_str(), p.partition);
  }
  return list;
}

std::vector<TopicPartitionOffset> FromList(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartitionOffset> out;
  if (list == nullptr) return out;
  out.reserve(list->cnt);
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition, list->elems[i].offset});
  }
  return out;
}

absl::StatusOr<int> PartitionCountOf(rd_kafka_t* rk, const std::string& topic,
                                     absl::Duration timeout) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, Ms(timeout));
  rd_kafka_topic_destroy(rkt);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return FromResponseError(err, absl::StrCat("metadata for topic ", topic));
  }
  int count = -1;
  rd_kafka_resp_err_t topic_err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (topic == md->topics[i].topic) {
      topic_err = md->topics[i].err;
      count = md->topics[i].partition_cnt;
    }
  }
  rd_kafka_metadata_destroy(md);
  if (topic_err != RD_KAFKA_RESP_ERR_NO_ERROR || count <= 0) {
    return FromResponseError(topic_err != RD_KAFKA_RESP_ERR_NO_ERROR
                                 ? topic_err
                                 : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
                             absl::StrCat("metadata for topic ", topic));
  }
  return count;
}

}  // namespace internal
}  // namespace sequences::kafka
