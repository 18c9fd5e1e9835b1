#include "libs/service/kafka_security.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

ABSL_FLAG(std::string, kafka_security_protocol, "PLAINTEXT",
          "security protocol to the Kafka brokers: PLAINTEXT (loopback only), SSL, "
          "SASL_PLAINTEXT or SASL_SSL");
ABSL_FLAG(std::string, kafka_sasl_mechanism, "",
          "SASL mechanism with SASL_*: SCRAM-SHA-256 or SCRAM-SHA-512");
ABSL_FLAG(std::string, kafka_sasl_username, "", "SASL user with SASL_*");
ABSL_FLAG(std::string, kafka_sasl_password_file, "",
          "file holding the SASL password (default: the environment variable "
          "SEQUENCES_KAFKA_SASL_PASSWORD)");
ABSL_FLAG(std::string, kafka_ssl_ca_location, "",
          "PEM CA bundle that signed the Kafka brokers' certificates, with SSL or SASL_SSL "
          "(default: the system's CAs)");
ABSL_FLAG(std::string, kafka_ssl_certificate_location, "",
          "client certificate (PEM) presented to the brokers, for mutual TLS");
ABSL_FLAG(std::string, kafka_ssl_key_location, "",
          "private key (PEM) of --kafka_ssl_certificate_location; an encrypted key's password "
          "comes from the environment variable SEQUENCES_KAFKA_SSL_KEY_PASSWORD");

namespace sequences::service {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

}  // namespace

absl::StatusOr<kafka::SecurityConfig> KafkaSecurityFromFlags() {
  kafka::SecurityConfig c;
  absl::StatusOr<kafka::SecurityProtocol> protocol =
      kafka::ParseSecurityProtocol(absl::GetFlag(FLAGS_kafka_security_protocol));
  if (!protocol.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--kafka_security_protocol: ", protocol.status().message()));
  }
  c.protocol = *protocol;
  c.sasl_mechanism = absl::GetFlag(FLAGS_kafka_sasl_mechanism);
  c.sasl_username = absl::GetFlag(FLAGS_kafka_sasl_username);
  if (const std::string path = absl::GetFlag(FLAGS_kafka_sasl_password_file); !path.empty()) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
      return absl::InvalidArgumentError(
          absl::StrCat("--kafka_sasl_password_file: cannot read ", path));
    std::ostringstream s;
    s << in.rdbuf();
    std::string password = s.str();
    absl::string_view trimmed(password);
    absl::ConsumeSuffix(&trimmed, "\n");
    absl::ConsumeSuffix(&trimmed, "\r");
    c.sasl_password = std::string(trimmed);
    if (c.sasl_password.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--kafka_sasl_password_file: ", path, " is empty"));
    }
  } else if (c.UsesSasl()) {
    // Only read for SASL: a password left in the environment does not break a PLAINTEXT run.
    c.sasl_password = Env("SEQUENCES_KAFKA_SASL_PASSWORD");
  }
  c.ssl_ca_location = absl::GetFlag(FLAGS_kafka_ssl_ca_location);
  c.ssl_certificate_location = absl::GetFlag(FLAGS_kafka_ssl_certificate_location);
  c.ssl_key_location = absl::GetFlag(FLAGS_kafka_ssl_key_location);
  if (c.UsesTls()) c.ssl_key_password = Env("SEQUENCES_KAFKA_SSL_KEY_PASSWORD");
  if (absl::Status s = kafka::ValidateSecurity(c); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(s.message(),
                     " (see --kafka_security_protocol and the --kafka_sasl_* and "
                     "--kafka_ssl_* flags)"));
  }
  return c;
}

}  // namespace sequences::service
