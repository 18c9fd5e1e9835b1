#ifndef SEQUENCES_LIBS_KAFKA_SECURITY_H_
#define SEQUENCES_LIBS_KAFKA_SECURITY_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// How every client of the adapter authenticates to the brokers and encrypts its traffic. Plain
// values; libs/kafka maps them onto librdkafka's security.protocol, sasl.* and ssl.* properties.
namespace sequences::kafka {

// Kafka's listener security protocols.
enum class SecurityProtocol { kPlaintext, kSsl, kSaslPlaintext, kSaslSsl };

struct SecurityConfig {
  SecurityProtocol protocol = SecurityProtocol::kPlaintext;

  // SASL (kSaslPlaintext, kSaslSsl only): "SCRAM-SHA-256" or "SCRAM-SHA-512", a user and its
  // password, all required. The password never appears in a log line or an error message.
  std::string sasl_mechanism;
  std::string sasl_username;
  std::string sasl_password;

  // TLS (kSsl, kSaslSsl only). The PEM bundle of the CA that signed the brokers' certificates
  // (empty: the system's CA store). The broker's certificate must name the host or IP dialled:
  // hostname verification is always on.
  std::string ssl_ca_location;
  // Optional client certificate and private key (PEM files, both or neither) for mutual TLS, and
  // the key's password if it is encrypted.
  std::string ssl_certificate_location;
  std::string ssl_key_location;
  std::string ssl_key_password;

  bool UsesSasl() const {
    return protocol == SecurityProtocol::kSaslPlaintext || protocol == SecurityProtocol::kSaslSsl;
  }
  bool UsesTls() const {
    return protocol == SecurityProtocol::kSsl || protocol == SecurityProtocol::kSaslSsl;
  }
};

// "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL" (any case). InvalidArgument lists the choices.
absl::StatusOr<SecurityProtocol> ParseSecurityProtocol(absl::string_view name);
// The upper-case Kafka name of `protocol`.
absl::string_view SecurityProtocolName(SecurityProtocol protocol);

// OK if the settings are complete and consistent: SASL needs a SCRAM mechanism, a user and a
// password; SASL or TLS settings given for a protocol that does not use them are refused (a
// forgotten --kafka_security_protocol would otherwise send them nowhere); a client certificate
// needs its key and the other way round. InvalidArgument names the setting. Every client's Create
// checks this before connecting.
absl::Status ValidateSecurity(const SecurityConfig& config);

}  // namespace sequences::kafka

#endif  // SEQUENCES_LIBS_KAFKA_SECURITY_H_
