#include "libs/service/broker_check.h"

#include <algorithm>

#include "absl/strings/str_join.h"
#include "libs/kafka/admin.h"
#include "libs/runtime/log.h"

namespace sequences::service {

absl::Status CheckBroker(const kafka::ClientConfig& config) {
  auto features = kafka::ProbeBrokerFeatures(config);
  if (!features.ok()) return features.status();
  std::vector<std::string> missing;
  for (const std::string& f : kafka::RequiredBrokerFeatures()) {
    if (std::find(features->begin(), features->end(), f) == features->end()) missing.push_back(f);
  }
  Log(LogLevel::kInfo, "service", "broker protocol features",
      {{"bootstrap", config.bootstrap_servers}, {"features", absl::StrJoin(*features, ",")}});
  if (!missing.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("Kafka at ", config.bootstrap_servers, " lacks protocol features ",
                     absl::StrJoin(missing, ","), ": use a broker of the 3.9 line (see README)"));
  }
  return absl::OkStatus();
}

}  // namespace sequences::service
