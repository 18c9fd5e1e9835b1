#ifndef SEQUENCES_SERVICES_SEQUENCE_API_GRPC_SERVICES_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_GRPC_SERVICES_H_

// The gRPC transport of the sequence API (callback API): authenticates each call from its
// metadata, calls the application layer (api.h), maps the absl::Status to a gRPC status, logs one
// structured line per call and counts it in the metrics.
//
// Identity (every call):
//   authorization: Bearer <token>      must equal the deployment's shared secret
//                                      (--auth_token / SEQUENCES_API_TOKEN); else UNAUTHENTICATED
//   x-sequences-company, x-sequences-user   the tenant and the user; missing -> UNAUTHENTICATED
// Operations/GetMetrics needs the bearer token only. Company and user ids follow the grammar of
// names.h (malformed: INVALID_ARGUMENT naming the metadata key, the value is not echoed). With
// mutual TLS the client certificate's identity (SAN, else CN) is logged with every call.
//
// Errors: the gRPC code is the absl code; INVALID_ARGUMENT (and any status carrying field
// violations) also carries a serialized google.rpc.Status with a google.rpc.BadRequest in the
// grpc-status-details-bin trailer, the standard rich error model.
//
// The handlers authenticate on the gRPC callback thread, then queue the (blocking,
// deadline-bounded) application call in its company's lane for a handler thread (Submit).
// WatchEnrollments (server streaming) starts the same way; its messages are then written as the
// watch hub wakes the stream (watch.h), with no thread held per stream; it is logged when it ends.

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "libs/runtime/clock.h"
#include "libs/service/metrics_text.h"
#include "sequences/v1/enrollment_service.grpc.pb.h"
#include "sequences/v1/operations_service.grpc.pb.h"
#include "sequences/v1/sequence_service.grpc.pb.h"
#include "services/sequence-api/api.h"

namespace sequences::api {

// Counts and latencies per method and code. Thread-safe.
class Metrics {
 public:
  static const std::vector<double>& BucketBounds();
  void Record(const std::string& method, grpc::StatusCode code, absl::Duration latency);
  // Fills methods and buckets (not the sources below).
  void Fill(v1::Metrics* out);
  // sequences_api_rpc_requests_total{method,code} and sequences_api_rpc_duration_seconds{method}
  // (docs/metrics.md); `method` is the short name ("Enroll"), `code` the gRPC code's name.
  std::vector<service::MetricFamily> Families();

 private:
  struct PerMethod {
    std::map<int, int64_t> by_code;
    int64_t count = 0;
    double sum = 0;
    double max = 0;
    std::vector<int64_t> buckets;
  };
  absl::Mutex mu_;
  std::map<std::string, PerMethod> methods_ ABSL_GUARDED_BY(mu_);
};

// The absl status as a gRPC status, with google.rpc.Status details for field violations.
grpc::Status ToGrpcStatus(const absl::Status& status);

struct TransportOptions {
  // The shared secret callers present as "authorization: Bearer <token>". REQUIRES: non-empty.
  std::string auth_token;
  // Applied when the caller sets no deadline (and as an upper bound).
  absl::Duration max_call_duration = absl::Seconds(30);
  // Threads that run the application layer. Handlers block while a write becomes durable (a few
  // milliseconds per call); running them here keeps gRPC's few callback threads free, so
  // concurrent calls overlap instead of queueing behind each other's acknowledgements.
  int handler_threads = 64;
  // Isolation of callers: calls queue in one lane per company and the handler threads serve the
  // lanes round robin; one company runs at most this many calls at once, so its slow calls
  // (waits for a consistency token, a slow broker) never take every thread.
  int max_running_calls_per_company = 32;
  // Load shedding: beyond these, a call is refused at once with RESOURCE_EXHAUSTED and a
  // google.rpc.RetryInfo hint.
  int max_queued_calls_per_company = 1000;
  int max_queued_calls = 4000;
  // Extra numbers for GetMetrics.
  std::function<int64_t()> produce_errors;
  std::function<int64_t()> produced_records;
};

// Owns the three services; register them all with RegisterWith. REQUIRES: `api`, `read_model`,
// `clock` outlive this object and the server.
class Transport {
 public:
  Transport(TransportOptions options, Api& api, ReadModel& read_model, Clock& clock);
  ~Transport();
  void RegisterWith(grpc::ServerBuilder& builder);
  Metrics& metrics() { return metrics_; }

  // Authenticates a call: OK and the context, or UNAUTHENTICATED.
  absl::Status Authenticate(const grpc::CallbackServerContext& ctx, bool need_identity,
                            CallContext* out);
  const TransportOptions& options() const { return options_; }
  Api& api() { return api_; }
  ReadModel& read_model() { return read_model_; }
  Clock& clock() { return clock_; }
  // Queues `work` in the lane of `company` to run on a handler thread; RESOURCE_EXHAUSTED (with
  // a retry hint) when the lane or the server is full.
  [[nodiscard]] absl::Status Submit(const std::string& company, std::function<void()> work);

 private:
  struct Lane {
    std::deque<std::function<void()>> queued;
    int running = 0;
  };
  void WorkerLoop();
  bool HasRunnableLocked() const ABSL_SHARED_LOCKS_REQUIRED(work_mu_);
  class SequenceServiceImpl;
  class EnrollmentServiceImpl;
  class OperationsImpl;
  TransportOptions options_;
  Api& api_;
  ReadModel& read_model_;
  Clock& clock_;
  Metrics metrics_;
  std::unique_ptr<SequenceServiceImpl> sequences_;
  std::unique_ptr<EnrollmentServiceImpl> enrollments_;
  std::unique_ptr<OperationsImpl> operations_;
  absl::Mutex work_mu_;
  std::map<std::string, Lane> lanes_ ABSL_GUARDED_BY(work_mu_);
  int queued_ ABSL_GUARDED_BY(work_mu_) = 0;
  std::string last_served_ ABSL_GUARDED_BY(work_mu_);
  bool stopping_ ABSL_GUARDED_BY(work_mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_GRPC_SERVICES_H_
