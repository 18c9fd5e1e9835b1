#ifndef SEQUENCES_SERVICES_SEQUENCE_API_OPS_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_OPS_H_

// What an operator sees of the API over HTTP (libs/service/http_server.h): readiness and the
// Prometheus metrics (docs/metrics.md), and what gRPC health says. main's housekeeping loop calls
// Refresh once a second; the HTTP server's threads call Ready and PrometheusText.
//
// The broker is asked once a second on a thread of its own (a BackgroundProbe): a metadata request
// for sequence-events, then the ends of every partition of the three topics (on a consumer of its
// own that never fetches). The broker counts as reachable when its latest answer was yes and is at
// most `stale_after` old: librdkafka 2.0.2's requests can outlive their 2 s timeout by far while a
// broker is down or frozen, and a question stuck there must not keep health at SERVING.
//
// Ready: the gRPC server serves, the broker is reachable, and the read model is at most
// `max_ready_lag` records behind the ends of its partitions.
//
// Thread-safety: every method is safe from any thread. Lifetime: `read_model` outlives this
// object; the Transport given to SetServing outlives it or is withdrawn first
// (SetServing(nullptr)); `clock` outlives the process's threads (main's does).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/kafka/admin.h"
#include "libs/kafka/consumer.h"
#include "libs/runtime/background_probe.h"
#include "libs/runtime/clock.h"
#include "libs/service/topics.h"
#include "services/sequence-api/grpc_services.h"
#include "services/sequence-api/read_model.h"

namespace sequences::api {

struct OpsOptions {
  service::Topics topics;
  int64_t max_ready_lag = 1000;
  // The broker is asked this often.
  absl::Duration probe_interval = absl::Seconds(1);
  // An answer older than this (the question is stuck) counts as unreachable.
  absl::Duration stale_after = absl::Seconds(5);
};

// One answer of the broker.
struct BrokerAnswer {
  bool reachable = false;  // a metadata request for sequence-events was answered
  // Low and high watermark of every partition of the three topics; nullopt if one was not answered.
  std::optional<std::map<std::pair<std::string, int32_t>, kafka::WatermarkOffsets>> ends;
};

// The question Ops asks: a metadata request for sequence-events, then the ends of every partition
// of the three topics, each request with a 2 s timeout. `admin` and `watermarks` (a consumer
// without group that never fetches) are used only by the question.
std::function<BrokerAnswer()> BrokerQuestion(std::shared_ptr<kafka::Admin> admin,
                                             std::shared_ptr<kafka::Consumer> watermarks,
                                             service::Topics topics);

class Ops {
 public:
  // Starts asking the broker `ask` (BrokerQuestion above, or a test's) on a thread of its own.
  Ops(OpsOptions options, ReadModel& read_model, std::function<BrokerAnswer()> ask, Clock& clock);

  // Takes the broker's latest answer and computes the read model's lag from it; never waits for
  // the broker. Returns whether the broker counts as reachable (before the first answer: true
  // for `stale_after` from the start, so a starting API is not reported down).
  bool Refresh();
  // Set once the gRPC server accepts calls, with the transport whose per-call metrics and event-log
  // counters it shows (nullptr: not serving).
  void SetServing(Transport* transport);
  // OK, or Unavailable with the reason (one line).
  absl::Status Ready();
  std::string PrometheusText();

 private:
  OpsOptions options_;
  ReadModel& read_model_;
  Clock& clock_;
  const absl::Time started_;
  BackgroundProbe<BrokerAnswer> probe_;
  absl::Mutex mu_;
  Transport* transport_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool reachable_ ABSL_GUARDED_BY(mu_) = false;
  bool refreshed_ ABSL_GUARDED_BY(mu_) = false;
  // -1: unknown (the ends could not be asked).
  int64_t lag_ ABSL_GUARDED_BY(mu_) = -1;
};

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_OPS_H_
