#include "services/sequence-api/ops.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"

namespace sequences::api {

Ops::Ops(OpsOptions options, ReadModel& read_model, std::unique_ptr<kafka::Consumer> watermarks)
    : options_(std::move(options)), read_model_(read_model), watermarks_(std::move(watermarks)) {}

void Ops::Refresh(bool broker_reachable) {
  int64_t lag = -1;
  if (broker_reachable && watermarks_ != nullptr) {
    std::map<std::pair<std::string, int32_t>, int64_t> applied;
    for (const LogPosition& p : read_model_.AppliedPositions()) {
      applied[{p.topic, p.partition}] = p.offset;
    }
    lag = 0;
    for (const std::string& topic :
         {options_.topics.sequence_events, options_.topics.enrollment_events,
          options_.topics.executor_events}) {
      const int n = read_model_.PartitionCount(topic);
      for (int32_t p = 0; p < n && lag >= 0; ++p) {
        absl::StatusOr<kafka::WatermarkOffsets> w =
            watermarks_->QueryWatermarks({topic, p}, absl::Seconds(2));
        if (!w.ok()) {
          lag = -1;
          break;
        }
        auto it = applied.find({topic, p});
        const int64_t at = it != applied.end() ? it->second : w->low;
        lag += std::max<int64_t>(0, w->high - at);
      }
    }
  }
  absl::MutexLock lock(&mu_);
  reachable_ = broker_reachable;
  refreshed_ = true;
  lag_ = lag;
}

void Ops::SetServing(Transport* transport) {
  absl::MutexLock lock(&mu_);
  transport_ = transport;
}

absl::Status Ops::Ready() {
  absl::MutexLock lock(&mu_);
  if (transport_ == nullptr) return absl::UnavailableError("starting: read model catching up");
  if (!refreshed_) return absl::UnavailableError("starting: broker not asked yet");
  if (!reachable_) return absl::UnavailableError("broker unreachable");
  if (lag_ < 0) return absl::UnavailableError("read model lag unknown: partition ends not known");
  if (lag_ > options_.max_ready_lag) {
    return absl::UnavailableError(
        absl::StrCat("read model catching up: ", lag_, " records behind"));
  }
  return absl::OkStatus();
}

std::string Ops::PrometheusText() {
  const bool ready = Ready().ok();
  std::vector<service::MetricFamily> families;
  bool reachable;
  int64_t lag;
  int64_t produced = 0;
  int64_t produce_errors = 0;
  {
    // Under the lock: SetServing(nullptr) waits for a scrape that reads the transport.
    absl::MutexLock lock(&mu_);
    if (transport_ != nullptr) {
      families = transport_->metrics().Families();
      const TransportOptions& o = transport_->options();
      if (o.produced_records) produced = o.produced_records();
      if (o.produce_errors) produce_errors = o.produce_errors();
    }
    reachable = reachable_;
    lag = lag_;
  }
  using service::MetricFamily;
  using service::MetricKind;
  auto add = [&families](std::string name, std::string help, MetricKind kind, double v) {
    MetricFamily f{.name = std::move(name), .help = std::move(help), .kind = kind};
    f.Add({}, v);
    families.push_back(std::move(f));
  };
  add("sequences_api_broker_reachable", "1 when the broker answered the latest metadata request",
      MetricKind::kGauge, reachable ? 1 : 0);
  if (lag >= 0) {  // unknown: no sample (absent, rather than a made-up number)
    add("sequences_api_read_model_lag_records",
        "records of the read model's partitions not folded yet (summed)", MetricKind::kGauge,
        static_cast<double>(lag));
  }
  add("sequences_api_ready", "1 when /readyz answers 200", MetricKind::kGauge, ready ? 1 : 0);
  add("sequences_api_read_model_folded_records_total", "records folded into the read model",
      MetricKind::kCounter, static_cast<double>(read_model_.folded_records()));
  add("sequences_api_produced_records_total", "records the API wrote to the log",
      MetricKind::kCounter, static_cast<double>(produced));
  add("sequences_api_produce_errors_total", "writes to the log that failed", MetricKind::kCounter,
      static_cast<double>(produce_errors));
  return service::PrometheusText(families);
}

}  // namespace sequences::api
