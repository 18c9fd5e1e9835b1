#include "libs/kafka/security.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace sequences::kafka {

absl::StatusOr<SecurityProtocol> ParseSecurityProtocol(absl::string_view name) {
  const std::string upper = absl::AsciiStrToUpper(name);
  for (SecurityProtocol p : {SecurityProtocol::kPlaintext, SecurityProtocol::kSsl,
                             SecurityProtocol::kSaslPlaintext, SecurityProtocol::kSaslSsl}) {
    if (upper == SecurityProtocolName(p)) return p;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown Kafka security protocol \"", name,
                   "\": expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"));
}

absl::string_view SecurityProtocolName(SecurityProtocol protocol) {
  switch (protocol) {
    case SecurityProtocol::kPlaintext:
      return "PLAINTEXT";
    case SecurityProtocol::kSsl:
      return "SSL";
    case SecurityProtocol::kSaslPlaintext:
      return "SASL_PLAINTEXT";
    case SecurityProtocol::kSaslSsl:
      return "SASL_SSL";
  }
  return "PLAINTEXT";
}

absl::Status ValidateSecurity(const SecurityConfig& c) {
  const absl::string_view protocol = SecurityProtocolName(c.protocol);
  if (c.UsesSasl()) {
    if (c.sasl_mechanism != "SCRAM-SHA-256" && c.sasl_mechanism != "SCRAM-SHA-512") {
      return absl::InvalidArgumentError(absl::StrCat("Kafka SASL mechanism \"", c.sasl_mechanism,
                                                     "\" with ", protocol,
                                                     ": expected SCRAM-SHA-256 or SCRAM-SHA-512"));
    }
    if (c.sasl_username.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("Kafka ", protocol, " needs a SASL username"));
    }
    if (c.sasl_password.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("Kafka ", protocol, " needs a SASL password"));
    }
  } else if (!c.sasl_mechanism.empty() || !c.sasl_username.empty() || !c.sasl_password.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Kafka SASL settings given, but the security protocol is ", protocol,
                     " (use SASL_SSL or SASL_PLAINTEXT)"));
  }
  const bool any_tls = !c.ssl_ca_location.empty() || !c.ssl_certificate_location.empty() ||
                       !c.ssl_key_location.empty() || !c.ssl_key_password.empty();
  if (!c.UsesTls() && any_tls) {
    return absl::InvalidArgumentError(
        absl::StrCat("Kafka TLS settings given, but the security protocol is ", protocol,
                     " (use SSL or SASL_SSL)"));
  }
  if (c.ssl_certificate_location.empty() != c.ssl_key_location.empty()) {
    return absl::InvalidArgumentError(
        "a Kafka client certificate needs its key and a key its certificate");
  }
  return absl::OkStatus();
}

}  // namespace sequences::kafka
