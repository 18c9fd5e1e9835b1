#ifndef SEQUENCES_LIBS_SERVICE_KAFKA_SECURITY_H_
#define SEQUENCES_LIBS_SERVICE_KAFKA_SECURITY_H_

#include <string>

#include "absl/status/statusor.h"
#include "libs/kafka/security.h"

// How both services are told to secure their Kafka connections. The flags are defined here, once,
// for every binary that links libs/service:
//
//   --kafka_security_protocol           PLAINTEXT (default) | SSL | SASL_PLAINTEXT | SASL_SSL
//   --kafka_sasl_mechanism              SCRAM-SHA-256 | SCRAM-SHA-512
//   --kafka_sasl_username
//   --kafka_sasl_password_file          a file holding the password (one trailing newline ignored);
//                                       default: the environment variable
//                                       SEQUENCES_KAFKA_SASL_PASSWORD
//   --kafka_ssl_ca_location             PEM CA bundle that signed the brokers' certificates
//   --kafka_ssl_certificate_location    client certificate (PEM), for mutual TLS to Kafka
//   --kafka_ssl_key_location            its private key (PEM); an encrypted key's password comes
//                                       from SEQUENCES_KAFKA_SSL_KEY_PASSWORD
//
// Secrets come from a file or the environment, never from the command line (visible in ps).
namespace sequences::service {

// The security settings the flags and environment describe, validated
// (kafka::ValidateSecurity). InvalidArgument names the flag at fault.
absl::StatusOr<kafka::SecurityConfig> KafkaSecurityFromFlags();

}  // namespace sequences::service

#endif  // SEQUENCES_LIBS_SERVICE_KAFKA_SECURITY_H_
