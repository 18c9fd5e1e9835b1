#include "libs/kafka/internal/config.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

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

SecurityConfig ScramOverTls() {
  return {.protocol = SecurityProtocol::kSaslSsl,
          .sasl_mechanism = "SCRAM-SHA-512",
          .sasl_username = "sequences",
          .sasl_password = "s3cret",
          .ssl_ca_location = "/etc/sequences/kafka-ca.pem"};
}

TEST_CASE("this librdkafka build has TLS and SASL/SCRAM") {
  ConfHandle conf(rd_kafka_conf_new());
  char features[512];
  size_t size = sizeof(features);
  REQUIRE(rd_kafka_conf_get(conf.get(), "builtin.features", features, &size) == RD_KAFKA_CONF_OK);
  const std::string f(features);
  INFO(f);
  CHECK(f.find("ssl") != std::string::npos);
  CHECK(f.find("sasl_scram") != std::string::npos);
}

TEST_CASE("by default every client speaks PLAINTEXT and sets no SASL or TLS property") {
  ConsumerConfig consumer;
  consumer.group_id = "g";
  for (const Properties& p :
       {ProducerProperties({}), ConsumerProperties(consumer), AdminProperties({})}) {
    CHECK(p.at("security.protocol") == "plaintext");
    for (const auto& [key, value] : p) {
      INFO(key);
      CHECK(key.rfind("sasl.", 0) != 0);
      CHECK(key.rfind("ssl.", 0) != 0);
    }
  }
}

TEST_CASE(
    "SASL_SSL with SCRAM reaches every client type: producer, transactional producer, consumer, "
    "admin") {
  ClientConfig client;
  client.bootstrap_servers = "127.0.0.1:45093";
  client.security = ScramOverTls();
  ProducerConfig producer;
  producer.client = client;
  TransactionalProducerConfig txn;
  txn.client = client;
  txn.transactional_id = "t";
  ConsumerConfig consumer;
  consumer.client = client;
  consumer.group_id = "g";
  for (const Properties& p : {ProducerProperties(producer), TransactionalProducerProperties(txn),
                              ConsumerProperties(consumer), AdminProperties(client)}) {
    CHECK(p.at("security.protocol") == "sasl_ssl");
    CHECK(p.at("sasl.mechanisms") == "SCRAM-SHA-512");
    CHECK(p.at("sasl.username") == "sequences");
    CHECK(p.at("sasl.password") == "s3cret");
    CHECK(p.at("ssl.ca.location") == "/etc/sequences/kafka-ca.pem");
    CHECK(p.at("ssl.endpoint.identification.algorithm") == "https");
    CHECK(p.count("ssl.certificate.location") == 0);
    // librdkafka accepts the names and values (the CA file is only read when a client starts).
    CHECK(BuildConf(p).ok());
  }
}

TEST_CASE("SASL_PLAINTEXT sets SASL properties only, SSL with a client certificate sets TLS only") {
  ClientConfig client;
  client.security = {.protocol = SecurityProtocol::kSaslPlaintext,
                     .sasl_mechanism = "SCRAM-SHA-256",
                     .sasl_username = "u",
                     .sasl_password = "p"};
  Properties p = AdminProperties(client);
  CHECK(p.at("security.protocol") == "sasl_plaintext");
  CHECK(p.at("sasl.mechanisms") == "SCRAM-SHA-256");
  CHECK(p.count("ssl.ca.location") == 0);
  CHECK(p.count("ssl.endpoint.identification.algorithm") == 0);

  client.security = {.protocol = SecurityProtocol::kSsl,
                     .ssl_ca_location = "ca.pem",
                     .ssl_certificate_location = "client.pem",
                     .ssl_key_location = "client.key",
                     .ssl_key_password = "k"};
  p = AdminProperties(client);
  CHECK(p.at("security.protocol") == "ssl");
  CHECK(p.at("ssl.certificate.location") == "client.pem");
  CHECK(p.at("ssl.key.location") == "client.key");
  CHECK(p.at("ssl.key.password") == "k");
  CHECK(p.count("sasl.mechanisms") == 0);
  CHECK(p.count("sasl.username") == 0);
}

TEST_CASE("security protocol names parse in any case, an unknown one lists the choices") {
  CHECK(*ParseSecurityProtocol("SASL_SSL") == SecurityProtocol::kSaslSsl);
  CHECK(*ParseSecurityProtocol("sasl_plaintext") == SecurityProtocol::kSaslPlaintext);
  CHECK(*ParseSecurityProtocol("Ssl") == SecurityProtocol::kSsl);
  CHECK(*ParseSecurityProtocol("PLAINTEXT") == SecurityProtocol::kPlaintext);
  auto bad = ParseSecurityProtocol("TLS");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("SASL_SSL") != absl::string_view::npos);
}

TEST_CASE("incomplete or inconsistent security settings are refused naming what is wrong") {
  CHECK(ValidateSecurity({}).ok());
  CHECK(ValidateSecurity(ScramOverTls()).ok());
  struct Case {
    const char* what;
    SecurityConfig config;
    const char* message;
  };
  SecurityConfig no_password = ScramOverTls();
  no_password.sasl_password.clear();
  SecurityConfig no_user = ScramOverTls();
  no_user.sasl_username.clear();
  SecurityConfig plain_mechanism = ScramOverTls();
  plain_mechanism.sasl_mechanism = "PLAIN";
  SecurityConfig forgot_protocol = ScramOverTls();
  forgot_protocol.protocol = SecurityProtocol::kPlaintext;
  forgot_protocol.ssl_ca_location.clear();
  SecurityConfig tls_on_plaintext = {.protocol = SecurityProtocol::kSaslPlaintext,
                                     .sasl_mechanism = "SCRAM-SHA-256",
                                     .sasl_username = "u",
                                     .sasl_password = "p",
                                     .ssl_ca_location = "ca.pem"};
  SecurityConfig cert_without_key = {.protocol = SecurityProtocol::kSsl,
                                     .ssl_certificate_location = "client.pem"};
  for (const Case& c : std::vector<Case>{
           {"no password", no_password, "password"},
           {"no user", no_user, "username"},
           {"PLAIN", plain_mechanism, "SCRAM-SHA-256 or SCRAM-SHA-512"},
           {"SASL settings with PLAINTEXT", forgot_protocol, "SASL settings given"},
           {"TLS settings with SASL_PLAINTEXT", tls_on_plaintext, "TLS settings given"},
           {"certificate without key", cert_without_key, "needs its key"},
       }) {
    INFO(c.what);
    absl::Status s = ValidateSecurity(c.config);
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    CHECK(s.message().find(c.message) != absl::string_view::npos);
    // No password ever shows in the message.
    CHECK(s.message().find("s3cret") == absl::string_view::npos);
  }
}

TEST_CASE("a client with incomplete security settings is refused before it connects") {
  ProducerConfig config;
  config.client.bootstrap_servers = "127.0.0.1:1";
  config.client.security = ScramOverTls();
  config.client.security.sasl_password.clear();
  auto producer = Producer::Create(config);
  REQUIRE_FALSE(producer.ok());
  CHECK(producer.status().code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sequences::kafka::internal
