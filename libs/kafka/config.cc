#include "libs/kafka/internal/config.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "libs/kafka/internal/errors.h"
#include "libs/runtime/log.h"

namespace sequences::kafka::internal {
namespace {

std::string Millis(absl::Duration d) { return absl::StrCat(absl::ToInt64Milliseconds(d)); }

void AddSecurity(Properties& p, const SecurityConfig& s) {
  p["security.protocol"] = absl::AsciiStrToLower(SecurityProtocolName(s.protocol));
  if (s.UsesSasl()) {
    p["sasl.mechanisms"] = s.sasl_mechanism;
    p["sasl.username"] = s.sasl_username;
    p["sasl.password"] = s.sasl_password;
  }
  if (s.UsesTls()) {
    // The broker's certificate must name the host dialled (librdkafka 2's default, made explicit).
    p["ssl.endpoint.identification.algorithm"] = "https";
    if (!s.ssl_ca_location.empty()) p["ssl.ca.location"] = s.ssl_ca_location;
    if (!s.ssl_certificate_location.empty()) {
      p["ssl.certificate.location"] = s.ssl_certificate_location;
    }
    if (!s.ssl_key_location.empty()) p["ssl.key.location"] = s.ssl_key_location;
    if (!s.ssl_key_password.empty()) p["ssl.key.password"] = s.ssl_key_password;
  }
}

Properties Common(const ClientConfig& c) {
  Properties p = {
      {"bootstrap.servers", c.bootstrap_servers},
      {"client.id", c.client_id},
      // Bounded connection attempts: an unreachable broker is reported, never a hang.
      {"socket.connection.setup.timeout.ms", Millis(c.connect_timeout)},
      {"reconnect.backoff.ms", "50"},
      {"reconnect.backoff.max.ms", "1000"},
      {"topic.metadata.refresh.interval.ms", "10000"},
      // IPv4 loopback in development; harmless elsewhere.
      {"broker.address.family", "any"},
  };
  AddSecurity(p, c.security);
  return p;
}

void ApplyOverrides(Properties& p, const ClientConfig& c) {
  for (const auto& [k, v] : c.overrides) p[k] = v;
}

}  // namespace

Properties ProducerProperties(const ProducerConfig& config) {
  Properties p = Common(config.client);
  // librdkafka's default, stated: kafka::PartitionForKey computes the same partition locally.
  p["partitioner"] = "consistent_random";
  p["enable.idempotence"] = "true";
  p["acks"] = "all";
  p["message.timeout.ms"] = Millis(config.delivery_timeout);
  p["linger.ms"] = Millis(config.linger);
  p["compression.type"] = "lz4";
  ApplyOverrides(p, config.client);
  return p;
}

Properties TransactionalProducerProperties(const TransactionalProducerConfig& config) {
  Properties p = Common(config.client);
  // librdkafka's default, stated: kafka::PartitionForKey computes the same partition locally.
  p["partitioner"] = "consistent_random";
  p["transactional.id"] = config.transactional_id;
  p["enable.idempotence"] = "true";
  p["acks"] = "all";
  p["transaction.timeout.ms"] = Millis(config.transaction_timeout);
  p["linger.ms"] = Millis(config.linger);
  p["compression.type"] = "lz4";
  ApplyOverrides(p, config.client);
  return p;
}

Properties ConsumerProperties(const ConsumerConfig& config) {
  Properties p = Common(config.client);
  // librdkafka's consumer needs a group id even for manual assignment; an assign-only consumer gets
  // a private one it never joins or commits to.
  p["group.id"] = config.group_id.empty()
                      ? absl::StrCat("sequences.assign-only.", reinterpret_cast<uintptr_t>(&config))
                      : config.group_id;
  p["isolation.level"] = config.read_committed ? "read_committed" : "read_uncommitted";
  p["enable.auto.commit"] = "false";
  p["enable.auto.offset.store"] = "false";
  p["auto.offset.reset"] = config.auto_offset_reset;
  p["enable.partition.eof"] = config.partition_eof ? "true" : "false";
  p["session.timeout.ms"] = Millis(config.session_timeout);
  p["heartbeat.interval.ms"] =
      Millis(config.heartbeat_interval > absl::ZeroDuration() ? config.heartbeat_interval
                                                              : config.session_timeout / 4);
  p["max.poll.interval.ms"] = Millis(config.max_poll_interval);
  // Cooperative (incremental) rebalancing: a member keeps the partitions it is not asked to give
  // up, and goes on consuming them while the group rebalances (KIP-429).
  p["partition.assignment.strategy"] = "cooperative-sticky";
  p["fetch.wait.max.ms"] = "100";
  ApplyOverrides(p, config.client);
  return p;
}

Properties AdminProperties(const ClientConfig& config) {
  Properties p = Common(config);
  ApplyOverrides(p, config);
  return p;
}

absl::StatusOr<ConfHandle> BuildConf(const Properties& properties) {
  ConfHandle conf(rd_kafka_conf_new());
  char err[512];
  for (const auto& [key, value] : properties) {
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), err, sizeof(err)) !=
        RD_KAFKA_CONF_OK) {
      // Secrets stay out of error messages (and so out of logs).
      const bool secret = key.find("password") != std::string::npos;
      return absl::InvalidArgumentError(
          absl::StrCat("kafka property ", key, "=\"", secret ? "(redacted)" : value, "\": ", err));
    }
  }
  InstallLogging(conf.get());
  return conf;
}

void InstallLogging(rd_kafka_conf_t* conf) {
  rd_kafka_conf_set_log_cb(
      conf, [](const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
        LogLevel l = level <= 3   ? LogLevel::kError
                     : level <= 4 ? LogLevel::kWarning
                     : level <= 6 ? LogLevel::kInfo
                                  : LogLevel::kDebug;
        Log(l, "kafka", buf, {{"client", rd_kafka_name(rk)}, {"facility", fac}});
      });
  rd_kafka_conf_set_error_cb(conf, [](rd_kafka_t* rk, int err, const char* reason, void*) {
    auto code = static_cast<rd_kafka_resp_err_t>(err);
    // Transport errors are routine while a broker restarts; librdkafka reconnects on its own.
    LogLevel l = IsTransient(code) ? LogLevel::kWarning : LogLevel::kError;
    Log(l, "kafka", reason, {{"client", rd_kafka_name(rk)}, {"error", rd_kafka_err2name(code)}});
  });
}

}  // namespace sequences::kafka::internal
