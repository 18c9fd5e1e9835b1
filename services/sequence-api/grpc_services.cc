#include "services/sequence-api/grpc_services.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "libs/domain/errors.h"
#include "libs/runtime/log.h"
#include "libs/runtime/thread.h"
#include "services/sequence-api/request_limits.h"

namespace sequences::api {
namespace {

constexpr char kCompanyHeader[] = "x-sequences-company";
constexpr char kUserHeader[] = "x-sequences-user";

std::string Metadata(const grpc::CallbackServerContext& ctx, const std::string& key) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(key);
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// Whether `key` is given more than once. An identity or a secret named twice is ambiguous: which
// one a proxy checked and which one the API would act on could differ (a caller's own header
// followed by the one a gateway appends), so such a call is refused rather than served as either.
bool Repeated(const grpc::CallbackServerContext& ctx, const std::string& key) {
  return ctx.client_metadata().count(key) > 1;
}

// The calling service as its client certificate names it (mutual TLS), else "".
std::string PeerIdentity(const grpc::CallbackServerContext& ctx) {
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return "";
  for (const char* property : {"x509_subject_alternative_name", "x509_common_name"}) {
    std::vector<grpc::string_ref> values = auth->FindPropertyValues(property);
    if (!values.empty()) return std::string(values.front().data(), values.front().size());
  }
  return "";
}

// Constant-time comparison (the token is a secret).
bool SameSecret(const std::string& a, const std::string& b) {
  if (b.empty() || a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::string RequestIdOf(const google::protobuf::Message& m) {
  const google::protobuf::FieldDescriptor* f = m.GetDescriptor()->FindFieldByName("request_id");
  if (f == nullptr || f->type() != google::protobuf::FieldDescriptor::TYPE_STRING ||
      f->is_repeated()) {
    // Enroll carries it in its item.
    const google::protobuf::FieldDescriptor* item = m.GetDescriptor()->FindFieldByName("item");
    if (item != nullptr && item->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE &&
        !item->is_repeated() && m.GetReflection()->HasField(m, item)) {
      return RequestIdOf(m.GetReflection()->GetMessage(m, item));
    }
    return "";
  }
  return m.GetReflection()->GetString(m, f);
}

template <typename Req, typename Resp, typename Fn>
grpc::ServerUnaryReactor* Handle(Transport& t, grpc::CallbackServerContext* ctx,
                                 const std::string& method, const Req& req, Resp* resp,
                                 bool need_identity, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const absl::Time start = t.clock().Now();
  // `req`, `resp` and `ctx` stay valid until Finish.
  auto finish = [&t, method, &req, reactor, start](const CallContext& cc, absl::Status status) {
    const grpc::Status gs = ToGrpcStatus(status);
    const absl::Duration latency = t.clock().Now() - start;
    t.metrics().Record(method, gs.error_code(), latency);
    Log(status.ok() ? LogLevel::kInfo
        : (absl::IsUnavailable(status) || absl::IsInternal(status) || absl::IsDataLoss(status))
            ? LogLevel::kWarning
            : LogLevel::kInfo,
        "api", "request",
        {{"method", method},
         {"code", absl::StatusCodeToString(status.code())},
         {"ms", absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(latency))},
         {"company", cc.company_id},
         {"user", cc.user_id},
         {"peer", cc.peer_identity},
         {"request_id", RequestIdOf(req)},
         {"error", std::string(status.message())}});
    reactor->Finish(gs);
  };
  // Authentication reads metadata only: it runs here, so the call can be queued in its company's
  // lane (Transport::Submit) and refused at once when that lane is full.
  CallContext cc;
  if (absl::Status auth = t.Authenticate(*ctx, need_identity, &cc); !auth.ok()) {
    finish(cc, auth);
    return reactor;
  }
  absl::Status admitted = t.Submit(cc.company_id, [finish, cc, &req, resp, fn] {
    if (absl::Status limits = CheckRequestLimits(req); !limits.ok()) {
      finish(cc, limits);
      return;
    }
    absl::StatusOr<Resp> r = fn(cc, req);
    if (r.ok()) *resp = std::move(*r);
    finish(cc, r.status());
  });
  if (!admitted.ok()) finish(cc, admitted);
  return reactor;
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(status.code());
  const std::string message(status.message());
  const google::rpc::Status rich = ToRpcStatus(status);
  if (rich.details().empty()) return grpc::Status(code, message);
  return grpc::Status(code, message, rich.SerializeAsString());
}

absl::Status Overloaded(absl::string_view why, absl::Duration retry_after) {
  absl::Status s = absl::ResourceExhaustedError(
      absl::StrCat(why, "; retry after ", absl::FormatDuration(retry_after)));
  google::rpc::RetryInfo info;
  info.mutable_retry_delay()->set_seconds(absl::ToInt64Seconds(retry_after));
  info.mutable_retry_delay()->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(retry_after % absl::Seconds(1))));
  s.SetPayload(kRetryInfoTypeUrl, absl::Cord(info.SerializeAsString()));
  return s;
}

// ---------------------------------------------------------------- metrics

const std::vector<double>& Metrics::BucketBounds() {
  static const std::vector<double> bounds = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,  0.5,   1,    2.5,   5,    10};
  return bounds;
}

void Metrics::Record(const std::string& method, grpc::StatusCode code, absl::Duration latency) {
  const double seconds = absl::ToDoubleSeconds(latency);
  absl::MutexLock lock(&mu_);
  PerMethod& m = methods_[method];
  if (m.buckets.empty()) m.buckets.resize(BucketBounds().size());
  ++m.by_code[static_cast<int>(code)];
  ++m.count;
  m.sum += seconds;
  m.max = std::max(m.max, seconds);
  for (size_t i = 0; i < BucketBounds().size(); ++i) {
    if (seconds <= BucketBounds()[i]) ++m.buckets[i];
  }
}

void Metrics::Fill(v1::Metrics* out) {
  for (double b : BucketBounds()) out->add_latency_bucket_bounds_seconds(b);
  absl::MutexLock lock(&mu_);
  for (const auto& [name, m] : methods_) {
    v1::MethodMetrics* mm = out->add_methods();
    mm->set_method(name);
    for (const auto& [code, n] : m.by_code) {
      (*mm->mutable_count_by_code())[absl::StatusCodeToString(
          static_cast<absl::StatusCode>(code))] = n;
    }
    mm->set_count(m.count);
    mm->set_latency_sum_seconds(m.sum);
    mm->set_latency_max_seconds(m.max);
    for (int64_t b : m.buckets) mm->add_latency_buckets(b);
  }
}

std::vector<service::MetricFamily> Metrics::Families() {
  service::MetricFamily requests{.name = "sequences_api_rpc_requests_total",
                                 .help = "gRPC calls finished, by method and status code",
                                 .kind = service::MetricKind::kCounter};
  service::MetricFamily durations{
      .name = "sequences_api_rpc_duration_seconds",
      .help = "gRPC call duration (authentication to answer), by method",
      .kind = service::MetricKind::kHistogram};
  absl::MutexLock lock(&mu_);
  for (const auto& [name, m] : methods_) {
    const std::string method = name.substr(name.rfind('/') + 1);
    for (const auto& [code, n] : m.by_code) {
      requests.Add({{"method", method},
                    {"code", absl::StatusCodeToString(static_cast<absl::StatusCode>(code))}},
                   static_cast<double>(n));
    }
    service::HistogramValue h;
    h.bounds = BucketBounds();
    for (int64_t b : m.buckets) h.cumulative.push_back(static_cast<uint64_t>(b));
    h.count = static_cast<uint64_t>(m.count);
    h.sum = m.sum;
    durations.Add({{"method", method}}, std::move(h));
  }
  return {std::move(requests), std::move(durations)};
}

namespace {

std::string PrometheusText(const v1::Metrics& m) {
  std::string out;
  absl::StrAppend(&out, "# TYPE sequences_api_requests_total counter\n");
  for (const v1::MethodMetrics& mm : m.methods()) {
    for (const auto& [code, n] : mm.count_by_code()) {
      absl::StrAppend(&out, "sequences_api_requests_total{method=\"", mm.method(), "\",code=\"",
                      code, "\"} ", n, "\n");
    }
  }
  absl::StrAppend(&out, "# TYPE sequences_api_request_seconds histogram\n");
  for (const v1::MethodMetrics& mm : m.methods()) {
    for (int i = 0; i < mm.latency_buckets_size(); ++i) {
      absl::StrAppend(&out, "sequences_api_request_seconds_bucket{method=\"", mm.method(),
                      "\",le=\"", m.latency_bucket_bounds_seconds(i), "\"} ", mm.latency_buckets(i),
                      "\n");
    }
    absl::StrAppend(&out, "sequences_api_request_seconds_bucket{method=\"", mm.method(),
                    "\",le=\"+Inf\"} ", mm.count(), "\n");
    absl::StrAppend(&out, "sequences_api_request_seconds_sum{method=\"", mm.method(), "\"} ",
                    mm.latency_sum_seconds(), "\n");
    absl::StrAppend(&out, "sequences_api_request_seconds_count{method=\"", mm.method(), "\"} ",
                    mm.count(), "\n");
  }
  absl::StrAppend(&out, "# TYPE sequences_api_produce_errors_total counter\n",
                  "sequences_api_produce_errors_total ", m.produce_errors(), "\n",
                  "# TYPE sequences_api_produced_records_total counter\n",
                  "sequences_api_produced_records_total ", m.produced_records(), "\n",
                  "# TYPE sequences_api_folded_records_total counter\n",
                  "sequences_api_folded_records_total ", m.folded_records(), "\n",
                  "# TYPE sequences_api_read_model_offset gauge\n");
  for (const v1::PartitionPosition& p : m.read_model()) {
    absl::StrAppend(&out, "sequences_api_read_model_offset{topic=\"", p.topic(), "\",partition=\"",
                    p.partition(), "\"} ", p.applied_offset(), "\n");
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------- services

#define SEQUENCES_API_METHOD(Service, Name, Req, Resp)                                             \
  grpc::ServerUnaryReactor* Name(grpc::CallbackServerContext* ctx, const v1::Req* req,             \
                                 v1::Resp* resp) override {                                        \
    return Handle(t_, ctx, "/sequences.v1." #Service "/" #Name, *req, resp, true,                  \
                  [this](const CallContext& c, const v1::Req& r) { return t_.api().Name(c, r); }); \
  }

class Transport::SequenceServiceImpl final : public v1::SequenceService::CallbackService {
 public:
  explicit SequenceServiceImpl(Transport& t) : t_(t) {}
  SEQUENCES_API_METHOD(SequenceService, CreateSequence, CreateSequenceRequest, SequenceResponse)
  SEQUENCES_API_METHOD(SequenceService, GetSequence, GetSequenceRequest, Sequence)
  SEQUENCES_API_METHOD(SequenceService, ListSequences, ListSequencesRequest, ListSequencesResponse)
  SEQUENCES_API_METHOD(SequenceService, UpdateSequence, UpdateSequenceRequest, SequenceResponse)
  SEQUENCES_API_METHOD(SequenceService, DeleteSequence, DeleteSequenceRequest, SequenceResponse)
  SEQUENCES_API_METHOD(SequenceService, SwitchAutomatedSending, SwitchAutomatedSendingRequest,
                       SequenceResponse)
  SEQUENCES_API_METHOD(SequenceService, GrantSendingConsent, GrantSendingConsentRequest,
                       SequenceResponse)
  SEQUENCES_API_METHOD(SequenceService, RevokeSendingConsent, RevokeSendingConsentRequest,
                       SequenceResponse)
  SEQUENCES_API_METHOD(SequenceService, PauseSequence, PauseSequenceRequest, SequenceResponse)
  SEQUENCES_API_METHOD(SequenceService, ResumeSequence, ResumeSequenceRequest, SequenceResponse)
  SEQUENCES_API_METHOD(SequenceService, ListSequenceTemplates, ListSequenceTemplatesRequest,
                       ListSequenceTemplatesResponse)
  SEQUENCES_API_METHOD(SequenceService, PreviewSchedule, PreviewScheduleRequest,
                       PreviewScheduleResponse)
  SEQUENCES_API_METHOD(SequenceService, GetSequenceStatistics, GetSequenceStatisticsRequest,
                       SequenceStatistics)
  SEQUENCES_API_METHOD(SequenceService, CreateEmailTemplate, CreateEmailTemplateRequest,
                       EmailTemplateResponse)
  SEQUENCES_API_METHOD(SequenceService, GetEmailTemplate, GetEmailTemplateRequest, EmailTemplate)
  SEQUENCES_API_METHOD(SequenceService, ListEmailTemplates, ListEmailTemplatesRequest,
                       ListEmailTemplatesResponse)
  SEQUENCES_API_METHOD(SequenceService, UpdateEmailTemplate, UpdateEmailTemplateRequest,
                       EmailTemplateResponse)
  SEQUENCES_API_METHOD(SequenceService, DeleteEmailTemplate, DeleteEmailTemplateRequest,
                       EmailTemplateResponse)
  SEQUENCES_API_METHOD(SequenceService, SetCompanySendingSettings, SetCompanySendingSettingsRequest,
                       CompanySendingSettingsResponse)
  SEQUENCES_API_METHOD(SequenceService, GetCompanySendingSettings, GetCompanySendingSettingsRequest,
                       CompanySendingSettingsResponse)

 private:
  Transport& t_;
};

class Transport::EnrollmentServiceImpl final : public v1::EnrollmentService::CallbackService {
 public:
  explicit EnrollmentServiceImpl(Transport& t) : t_(t) {}
  SEQUENCES_API_METHOD(EnrollmentService, Enroll, EnrollRequest, EnrollmentResponse)
  SEQUENCES_API_METHOD(EnrollmentService, BatchEnroll, BatchEnrollRequest, BatchEnrollResponse)
  SEQUENCES_API_METHOD(EnrollmentService, RemoveEnrollment, EnrollmentActionRequest,
                       EnrollmentResponse)
  SEQUENCES_API_METHOD(EnrollmentService, PauseEnrollment, EnrollmentActionRequest,
                       EnrollmentResponse)
  SEQUENCES_API_METHOD(EnrollmentService, ResumeEnrollment, EnrollmentActionRequest,
                       EnrollmentResponse)
  SEQUENCES_API_METHOD(EnrollmentService, RetryEnrollment, EnrollmentActionRequest,
                       EnrollmentResponse)
  SEQUENCES_API_METHOD(EnrollmentService, ReportActivityCompleted, ReportActivityCompletedRequest,
                       EnrollmentResponse)
  SEQUENCES_API_METHOD(EnrollmentService, GetEnrollment, GetEnrollmentRequest, Enrollment)
  SEQUENCES_API_METHOD(EnrollmentService, ListEnrollments, ListEnrollmentsRequest,
                       ListEnrollmentsResponse)
  SEQUENCES_API_METHOD(EnrollmentService, GetEnrollmentOverview, GetEnrollmentOverviewRequest,
                       EnrollmentOverview)
  SEQUENCES_API_METHOD(EnrollmentService, PauseUserEnrollments, UserEnrollmentsRequest,
                       UserEnrollmentsResponse)
  SEQUENCES_API_METHOD(EnrollmentService, ResumeUserEnrollments, UserEnrollmentsRequest,
                       UserEnrollmentsResponse)
  SEQUENCES_API_METHOD(EnrollmentService, UpdateEnrollmentData, UpdateEnrollmentDataRequest,
                       EnrollmentResponse)
  SEQUENCES_API_METHOD(EnrollmentService, ReportItemOutcome, ReportItemOutcomeRequest,
                       ItemInputResponse)
  SEQUENCES_API_METHOD(EnrollmentService, ReportEmailReplied, ReportEmailEventRequest,
                       ItemInputResponse)
  SEQUENCES_API_METHOD(EnrollmentService, ReportEmailBounced, ReportEmailEventRequest,
                       ItemInputResponse)
  SEQUENCES_API_METHOD(EnrollmentService, ListEnrollmentEvents, ListEnrollmentEventsRequest,
                       ListEnrollmentEventsResponse)
  grpc::ServerWriteReactor<v1::WatchEnrollmentsResponse>* WatchEnrollments(
      grpc::CallbackServerContext* ctx, const v1::WatchEnrollmentsRequest* req) override;

 private:
  Transport& t_;
};

#undef SEQUENCES_API_METHOD

namespace {

// One WatchEnrollments stream (server streaming, callback API). Nothing here blocks a gRPC
// thread or the read model's folding thread: the request is checked and the change log read on a
// handler thread (Transport::Submit); afterwards Pump writes the next message whenever the
// previous write is done or the hub wakes the stream (on the folding thread: Pump only takes
// this stream's mutex and starts an asynchronous write). Deletes itself in OnDone.
class WatchReactor final : public grpc::ServerWriteReactor<v1::WatchEnrollmentsResponse> {
 public:
  WatchReactor(Transport& t, grpc::CallbackServerContext* ctx,
               const v1::WatchEnrollmentsRequest& req)
      : t_(t), start_(t.clock().Now()) {
    if (absl::Status auth = t_.Authenticate(*ctx, true, &cc_); !auth.ok()) {
      absl::MutexLock lock(&mu_);
      started_ = true;
      FinishLocked(auth);
      return;
    }
    absl::Status admitted = t_.Submit(cc_.company_id, [this, req] { Begin(req); });
    if (!admitted.ok()) {
      absl::MutexLock lock(&mu_);
      started_ = true;
      FinishLocked(admitted);
    }
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    ++written_;
    if (!ok) {
      FinishLocked(absl::CancelledError("the watcher went away"));
      return;
    }
    PumpLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    // Otherwise OnWriteDone, or Begin, finishes.
    if (started_ && !writing_) FinishLocked(absl::CancelledError("the watcher went away"));
  }

  void OnDone() override {
    if (stream_ != nullptr) stream_->subscription().ClearWaker();
    Log(LogLevel::kInfo, "api", "watch ended",
        {{"method", "/sequences.v1.EnrollmentService/WatchEnrollments"},
         {"code", absl::StatusCodeToString(final_.code())},
         {"messages", written_},
         {"s", absl::StrFormat("%.3f", absl::ToDoubleSeconds(t_.clock().Now() - start_))},
         {"company", cc_.company_id},
         {"user", cc_.user_id},
         {"peer", cc_.peer_identity},
         {"error", std::string(final_.message())}});
    delete this;
  }

 private:
  // On a handler thread: check the request, subscribe, read the change log.
  void Begin(const v1::WatchEnrollmentsRequest& req) {
    absl::StatusOr<std::unique_ptr<WatchStream>> stream;
    if (absl::Status limits = CheckRequestLimits(req); !limits.ok()) {
      stream = limits;
    } else {
      stream = t_.api().WatchEnrollments(cc_, req);
    }
    // The waker runs Pump on the publishing thread (Pump does nothing until stream_ is set);
    // OnDone clears it before deleting this. Set before mu_ is taken: the waker takes mu_.
    if (stream.ok()) (*stream)->subscription().SetWaker([this] { Pump(); });
    // The rest under mu_: once it is released, OnCancel may finish the call and OnDone delete this.
    absl::MutexLock lock(&mu_);
    started_ = true;
    if (!stream.ok()) {
      FinishLocked(stream.status());
      return;
    }
    stream_ = std::move(*stream);
    // The headers tell the caller the watch is in place: every change after them is delivered.
    StartSendInitialMetadata();
    PumpLocked();
  }

  void Pump() {
    absl::MutexLock lock(&mu_);
    PumpLocked();
  }

  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || writing_ || stream_ == nullptr) return;
    if (cancelled_) {
      FinishLocked(absl::CancelledError("the watcher went away"));
      return;
    }
    absl::StatusOr<std::optional<v1::WatchEnrollmentsResponse>> next = stream_->TryNext();
    if (!next.ok()) {
      FinishLocked(next.status());
      return;
    }
    if (!next->has_value()) return;  // the hub wakes us
    response_ = std::move(**next);
    writing_ = true;
    StartWrite(&response_);
  }

  void FinishLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    final_ = status;
    Finish(ToGrpcStatus(status));
  }

  Transport& t_;
  const absl::Time start_;
  CallContext cc_;
  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // Set once by Begin, before the waker; read by Pump under mu_ and by OnDone (after the end).
  std::unique_ptr<WatchStream> stream_;
  v1::WatchEnrollmentsResponse response_ ABSL_GUARDED_BY(mu_);
  absl::Status final_;
  int64_t written_ = 0;
};

}  // namespace

grpc::ServerWriteReactor<v1::WatchEnrollmentsResponse>*
Transport::EnrollmentServiceImpl::WatchEnrollments(grpc::CallbackServerContext* ctx,
                                                   const v1::WatchEnrollmentsRequest* req) {
  return new WatchReactor(t_, ctx, *req);
}

class Transport::OperationsImpl final : public v1::Operations::CallbackService {
 public:
  explicit OperationsImpl(Transport& t) : t_(t) {}
  grpc::ServerUnaryReactor* GetMetrics(grpc::CallbackServerContext* ctx,
                                       const v1::GetMetricsRequest* req,
                                       v1::Metrics* resp) override {
    return Handle(t_, ctx, "/sequences.v1.Operations/GetMetrics", *req, resp, false,
                  [this](const CallContext&, const v1::GetMetricsRequest&) {
                    v1::Metrics m;
                    t_.metrics().Fill(&m);
                    if (t_.options().produce_errors) {
                      m.set_produce_errors(t_.options().produce_errors());
                    }
                    if (t_.options().produced_records) {
                      m.set_produced_records(t_.options().produced_records());
                    }
                    m.set_folded_records(t_.read_model().folded_records());
                    for (const LogPosition& p : t_.read_model().AppliedPositions()) {
                      v1::PartitionPosition* pp = m.add_read_model();
                      pp->set_topic(p.topic);
                      pp->set_partition(p.partition);
                      pp->set_applied_offset(p.offset);
                    }
                    m.set_prometheus_text(PrometheusText(m));
                    return absl::StatusOr<v1::Metrics>(std::move(m));
                  });
  }

 private:
  Transport& t_;
};

Transport::Transport(TransportOptions options, Api& api, ReadModel& read_model, Clock& clock)
    : options_(std::move(options)),
      api_(api),
      read_model_(read_model),
      clock_(clock),
      sequences_(std::make_unique<SequenceServiceImpl>(*this)),
      enrollments_(std::make_unique<EnrollmentServiceImpl>(*this)),
      operations_(std::make_unique<OperationsImpl>(*this)) {
  for (int i = 0; i < std::max(1, options_.handler_threads); ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

Transport::~Transport() {
  {
    absl::MutexLock lock(&work_mu_);
    stopping_ = true;
  }
  for (std::thread& w : workers_) w.join();
}

absl::Status Transport::Submit(const std::string& company, std::function<void()> work) {
  absl::MutexLock lock(&work_mu_);
  Lane& lane = lanes_[company];
  if (queued_ >= options_.max_queued_calls) {
    return Overloaded("the server is saturated", absl::Milliseconds(500));
  }
  if (static_cast<int>(lane.queued.size()) >= options_.max_queued_calls_per_company) {
    return Overloaded("too many calls of this company are waiting", absl::Milliseconds(200));
  }
  lane.queued.push_back(std::move(work));
  ++queued_;
  return absl::OkStatus();
}

bool Transport::HasRunnableLocked() const {
  for (const auto& [company, lane] : lanes_) {
    if (!lane.queued.empty() && lane.running < options_.max_running_calls_per_company) return true;
  }
  return false;
}

void Transport::WorkerLoop() {
  NameThisThread("api-handler");
  while (true) {
    std::function<void()> work;
    std::string company;
    {
      absl::MutexLock lock(&work_mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(work_mu_) {
        return (stopping_ && queued_ == 0) || HasRunnableLocked();
      };
      work_mu_.Await(absl::Condition(&ready));
      // Drain what was accepted before stopping: every started call gets its answer.
      if (!HasRunnableLocked()) return;
      // Round robin over companies with runnable calls, starting after the last one served: a
      // company with many queued (or slow) calls delays only its own.
      auto it = lanes_.upper_bound(last_served_);
      for (size_t n = 0; n < lanes_.size(); ++n, ++it) {
        if (it == lanes_.end()) it = lanes_.begin();
        if (!it->second.queued.empty() &&
            it->second.running < options_.max_running_calls_per_company) {
          break;
        }
      }
      company = last_served_ = it->first;
      work = std::move(it->second.queued.front());
      it->second.queued.pop_front();
      ++it->second.running;
      --queued_;
    }
    work();
    absl::MutexLock lock(&work_mu_);
    auto it = lanes_.find(company);
    if (--it->second.running == 0 && it->second.queued.empty()) lanes_.erase(it);
  }
}

void Transport::RegisterWith(grpc::ServerBuilder& builder) {
  builder.RegisterService(sequences_.get());
  builder.RegisterService(enrollments_.get());
  builder.RegisterService(operations_.get());
}

absl::Status Transport::Authenticate(const grpc::CallbackServerContext& ctx, bool need_identity,
                                     CallContext* out) {
  const std::string auth = Metadata(ctx, "authorization");
  constexpr absl::string_view kBearer = "Bearer ";
  if (Repeated(ctx, "authorization") || !absl::StartsWith(auth, kBearer) ||
      !SameSecret(auth.substr(kBearer.size()), options_.auth_token)) {
    return absl::UnauthenticatedError(
        "missing, repeated or wrong \"authorization: Bearer <token>\"");
  }
  out->peer_identity = PeerIdentity(ctx);
  if (need_identity) {
    const std::string company = Metadata(ctx, kCompanyHeader);
    const std::string user = Metadata(ctx, kUserHeader);
    if (company.empty() || user.empty()) {
      return absl::UnauthenticatedError(
          absl::StrCat("every call must name its company and user in the metadata \"",
                       kCompanyHeader, "\" and \"", kUserHeader, "\""));
    }
    // The identity is written into events: refuse what the grammar (names.h) does not allow,
    // without echoing it.
    domain::FieldViolations v;
    if (Repeated(ctx, kCompanyHeader)) {
      v.Add(kCompanyHeader, "must be given once (the call named more than one company)");
    } else if (!IsValidCompanyId(company)) {
      v.Add(kCompanyHeader, kCompanyIdRule);
    }
    if (Repeated(ctx, kUserHeader)) {
      v.Add(kUserHeader, "must be given once (the call named more than one user)");
    } else if (!IsValidUserId(user)) {
      v.Add(kUserHeader, kUserIdRule);
    }
    if (!v.empty()) return v.ToStatus("invalid identity metadata");
    out->company_id = company;
    out->user_id = user;
  }
  const absl::Time cap = clock_.Now() + options_.max_call_duration;
  const auto deadline = ctx.deadline();
  out->deadline =
      deadline < absl::ToChronoTime(cap) ? std::min(cap, absl::FromChrono(deadline)) : cap;
  return absl::OkStatus();
}

}  // namespace sequences::api
