#ifndef SEQUENCES_SERVICES_SEQUENCE_API_RPC_STATUS_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_RPC_STATUS_H_

// The one mapping of the application layer's absl::Status to the API's rich error model, used for
// gRPC trailers (grpc_services.cc) and for the per-item results of a batch.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "google/rpc/status.pb.h"

namespace sequences::api {

// Type URL of the google.rpc.RetryInfo payload a RESOURCE_EXHAUSTED status may carry.
inline constexpr char kRetryInfoTypeUrl[] = "type.googleapis.com/google.rpc.RetryInfo";

// Code, message, and the google.rpc.BadRequest / RetryInfo payloads as details.
google::rpc::Status ToRpcStatus(const absl::Status& status);

// Field-violation paths of `status` (the domain's command fields) rewritten to the API request's
// fields by the first matching (from-prefix, to-prefix); an empty from-prefix prefixes every path.
// A status without violations is returned unchanged.
absl::Status RemapFieldPaths(const absl::Status& status,
                             const std::vector<std::pair<std::string, std::string>>& map);

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_RPC_STATUS_H_
