#include "libs/kafka/internal/config.h"

#include <catch2/catch.hpp>

namespace sequences::kafka::internal {
namespace {

TEST_CASE("producer runs idempotent with acks=all and a bounded delivery timeout") {
  ProducerConfig config;
  config.client.bootstrap_servers = "127.0.0.1:9092";
  config.delivery_timeout = absl::Seconds(7);
  Properties p = ProducerProperties(config);
  CHECK(p["enable.idempotence"] == "true");
  CHECK(p["acks"] == "all");
  CHECK(p["message.timeout.ms"] == "7000");
  CHECK(p["bootstrap.servers"] == "127.0.0.1:9092");
}

TEST_CASE("transactional producer carries its transactional id and timeout") {
  TransactionalProducerConfig config;
  config.transactional_id = "executor-0";
  config.transaction_timeout = absl::Seconds(20);
  Properties p = TransactionalProducerProperties(config);
  CHECK(p["transactional.id"] == "executor-0");
  CHECK(p["transaction.timeout.ms"] == "20000");
  CHECK(p["acks"] == "all");
}

TEST_CASE("consumer reads committed data and never commits on its own") {
  ConsumerConfig config;
  config.group_id = "g";
  Properties p = ConsumerProperties(config);
  CHECK(p["isolation.level"] == "read_committed");
  CHECK(p["enable.auto.commit"] == "false");
  CHECK(p["enable.auto.offset.store"] == "false");
  CHECK(p["group.id"] == "g");

  config.read_committed = false;
  config.group_id.clear();
  p = ConsumerProperties(config);
  CHECK(p["isolation.level"] == "read_uncommitted");
  CHECK(p["group.id"].rfind("sequences.assign-only.", 0) == 0);
}

TEST_CASE("overrides are applied last") {
  ProducerConfig config;
  config.client.overrides = {{"linger.ms", "50"}, {"acks", "1"}};
  Properties p = ProducerProperties(config);
  CHECK(p["linger.ms"] == "50");
  CHECK(p["acks"] == "1");
}

TEST_CASE("an unknown property is refused naming the property") {
  auto conf = BuildConf({{"bootstrap.servers", "x:1"}, {"no.such.property", "1"}});
  REQUIRE_FALSE(conf.ok());
  CHECK(conf.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(conf.status().message().find("no.such.property") != absl::string_view::npos);
}

TEST_CASE("a bad value is refused naming the property and the value") {
  auto conf = BuildConf({{"acks", "sometimes"}});
  REQUIRE_FALSE(conf.ok());
  CHECK(conf.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(conf.status().message().find("acks=\"sometimes\"") != absl::string_view::npos);
}

TEST_CASE("every client's default properties are accepted by librdkafka") {
  ConsumerConfig consumer;
  consumer.group_id = "g";
  TransactionalProducerConfig txn;
  txn.transactional_id = "t";
  for (const Properties& p : {ProducerProperties({}), TransactionalProducerProperties(txn),
                              ConsumerProperties(consumer), AdminProperties({})}) {
    CHECK(BuildConf(p).ok());
  }
}

}  // namespace
}  // namespace sequences::kafka::internal
