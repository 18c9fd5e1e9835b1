#ifndef SEQUENCES_TESTS_SUPPORT_TOPIC_READER_H_
#define SEQUENCES_TESTS_SUPPORT_TOPIC_READER_H_

// Reads topics of the live broker for e2e tests, as a consumer of our output would: read_committed,
// from the beginning, each record decoded as an Envelope, kept with the moment it arrived.

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/kafka/consumer.h"
#include "sequences/v1/events.pb.h"
#include "tests/support/kafka_env.h"

namespace sequences::testing {

// A committed record, decoded, with the moment this test's consumer received it.
struct Seen {
  kafka::Message message;
  v1::Envelope event;  // empty if the value is not an Envelope (e.g. garbage dead-lettered as is)
  bool decoded = false;
  absl::Time received_at;
};

// Assigns every partition (0..partitions-1) of `topics` from the beginning; Poll reads on from
// where it stopped and keeps everything read (records that are not Envelopes too: Seen::decoded).
// REQUIREs that the broker answers. Not thread-safe (Catch's assertions are not).
class TopicReader {
 public:
  TopicReader(const std::vector<std::string>& topics, int partitions,
              const std::string& bootstrap = Bootstrap())
      : TopicReader(topics, partitions, kafka::ClientConfig{.bootstrap_servers = bootstrap}) {}
  // The same over a broker that needs more than an address (TLS, a SASL login).
  TopicReader(const std::vector<std::string>& topics, int partitions,
              const kafka::ClientConfig& client) {
    kafka::ConsumerConfig c;
    c.client = client;
    c.read_committed = true;
    auto consumer = kafka::Consumer::Create(c);
    REQUIRE(consumer.ok());
    consumer_ = std::move(*consumer);
    std::vector<kafka::TopicPartitionOffset> assign;
    for (const std::string& t : topics) {
      for (int p = 0; p < partitions; ++p) assign.push_back({t, p, kafka::kOffsetBeginning});
    }
    REQUIRE(consumer_->Assign(assign).ok());
  }

  void Poll(absl::Duration d) {
    const absl::Time end = absl::Now() + d;
    do {
      auto batch = consumer_->PollBatch(1000, absl::Milliseconds(100));
      INFO(batch.status().ToString());
      REQUIRE(batch.ok());
      const absl::Time now = absl::Now();
      for (kafka::Message& m : *batch) {
        if (m.eof) continue;
        Seen s;
        s.decoded = s.event.ParseFromString(m.value);
        s.message = std::move(m);
        s.received_at = now;
        seen_.push_back(std::move(s));
      }
    } while (absl::Now() < end);
  }
  // Polls until `done()` or the timeout; returns done().
  template <typename F>
  bool PollUntil(F done, absl::Duration timeout) {
    const absl::Time end = absl::Now() + timeout;
    while (!done() && absl::Now() < end) Poll(absl::Milliseconds(200));
    return done();
  }

  const std::vector<Seen>& seen() const { return seen_; }
  // The records of one topic, optionally only those of one record key, in log order per key.
  std::vector<const Seen*> On(const std::string& topic, const std::string& key = "") const {
    std::vector<const Seen*> v;
    for (const Seen& s : seen_) {
      if (s.message.topic == topic && (key.empty() || s.message.key == key)) v.push_back(&s);
    }
    return v;
  }
  // The decoded events of one topic with one payload, in the order read.
  std::vector<const v1::Envelope*> Of(const std::string& topic,
                                      v1::Envelope::PayloadCase kind) const {
    std::vector<const v1::Envelope*> v;
    for (const Seen* s : On(topic)) {
      if (s->event.payload_case() == kind) v.push_back(&s->event);
    }
    return v;
  }

 private:
  std::unique_ptr<kafka::Consumer> consumer_;
  std::vector<Seen> seen_;
};

}  // namespace sequences::testing

#endif  // SEQUENCES_TESTS_SUPPORT_TOPIC_READER_H_
