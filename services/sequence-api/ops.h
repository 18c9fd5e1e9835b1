#ifndef SEQUENCES_SERVICES_SEQUENCE_API_OPS_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_OPS_H_

// What an operator sees of the API over HTTP (libs/service/http_server.h): readiness and the
// Prometheus metrics (docs/metrics.md). main's housekeeping loop calls Refresh once a second; the
// HTTP server's threads call Ready and PrometheusText.
//
// Ready: the gRPC server serves, the broker answered the latest metadata request, and the read
// model is at most `max_ready_lag` records behind the ends of its partitions (asked from the
// broker by Refresh, on a consumer of its own that never fetches).
//
// Thread-safety: every method is safe from any thread. Lifetime: `read_model` outlives this
// object; the Transport given to SetServing outlives it or is withdrawn first
// (SetServing(nullptr)).

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "libs/kafka/consumer.h"
#include "libs/service/topics.h"
#include "services/sequence-api/grpc_services.h"
#include "services/sequence-api/read_model.h"

namespace sequences::api {

struct OpsOptions {
  service::Topics topics;
  int64_t max_ready_lag = 1000;
};

class Ops {
 public:
  // `watermarks`: a consumer without group used only here, to ask partition ends.
  Ops(OpsOptions options, ReadModel& read_model, std::unique_ptr<kafka::Consumer> watermarks);

  // Records the broker's reachability and, when reachable, asks the partition ends and
  // computes the read model's lag. Blocks for the broker (bounded: 2 s per partition).
  void Refresh(bool broker_reachable);
  // Set once the gRPC server accepts calls, with the transport whose per-call metrics and event-log
  // counters it shows (nullptr: not serving).
  void SetServing(Transport* transport);
  // OK, or Unavailable with the reason (one line).
  absl::Status Ready();
  std::string PrometheusText();

 private:
  OpsOptions options_;
  ReadModel& read_model_;
  std::unique_ptr<kafka::Consumer> watermarks_;  // used by Refresh only (one caller thread)
  absl::Mutex mu_;
  Transport* transport_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool reachable_ ABSL_GUARDED_BY(mu_) = false;
  bool refreshed_ ABSL_GUARDED_BY(mu_) = false;
  // -1: unknown (the ends could not be asked).
  int64_t lag_ ABSL_GUARDED_BY(mu_) = -1;
};

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_OPS_H_
