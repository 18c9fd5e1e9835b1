#include "services/sequence-api/ops.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace sequences::api {

namespace {

BrokerAnswer AskBroker(kafka::Admin& admin, kafka::Consumer& watermarks,
                       const service::Topics& topics) {
  constexpr absl::Duration kTimeout = absl::Seconds(2);
  BrokerAnswer answer;
  // The reachability question's answer is also sequence-events' partition count.
  const absl::StatusOr<int> sequence_partitions =
      admin.PartitionCount(topics.sequence_events, kTimeout);
  answer.reachable = sequence_partitions.ok();
  if (!answer.reachable) return answer;
  std::map<std::pair<std::string, int32_t>, kafka::WatermarkOffsets> ends;
  for (const std::string& topic :
       {topics.sequence_events, topics.enrollment_events, topics.executor_events}) {
    absl::StatusOr<int> n = topic == topics.sequence_events ? sequence_partitions
                                                            : admin.PartitionCount(topic, kTimeout);
    if (!n.ok()) return answer;
    for (int32_t p = 0; p < *n; ++p) {
      absl::StatusOr<kafka::WatermarkOffsets> w = watermarks.QueryWatermarks({topic, p}, kTimeout);
      if (!w.ok()) return answer;  // the others would fail the same way, each after its timeout
      ends[{topic, p}] = *w;
    }
  }
  answer.ends = std::move(ends);
  return answer;
}

}  // namespace

std::function<BrokerAnswer()> BrokerQuestion(std::shared_ptr<kafka::Admin> admin,
                                             std::shared_ptr<kafka::Consumer> watermarks,
                                             service::Topics topics) {
  return [admin = std::move(admin), watermarks = std::move(watermarks),
          topics = std::move(topics)] { return AskBroker(*admin, *watermarks, topics); };
}

Ops::Ops(OpsOptions options, ReadModel& read_model, std::function<BrokerAnswer()> ask, Clock& clock)
    : options_(std::move(options)),
      read_model_(read_model),
      clock_(clock),
      started_(clock.Now()),
      probe_(std::move(ask), clock, options_.probe_interval) {}

bool Ops::Refresh() {
  const std::optional<BackgroundProbe<BrokerAnswer>::Answer> answer = probe_.Latest();
  const absl::Time now = clock_.Now();
  if (!answer.has_value()) return now - started_ <= options_.stale_after;  // not asked yet
  const bool fresh = now - answer->at <= options_.stale_after;
  const bool reachable = fresh && answer->value.reachable;
  int64_t lag = -1;
  if (reachable && answer->value.ends.has_value()) {
    std::map<std::pair<std::string, int32_t>, int64_t> applied;
    for (const LogPosition& p : read_model_.AppliedPositions()) {
      applied[{p.topic, p.partition}] = p.offset;
    }
    lag = 0;
    for (const auto& [tp, w] : *answer->value.ends) {
      auto it = applied.find(tp);
      const int64_t at = it != applied.end() ? it->second : w.low;
      lag += std::max<int64_t>(0, w.high - at);
    }
  }
  absl::MutexLock lock(&mu_);
  reachable_ = reachable;
  refreshed_ = true;
  lag_ = lag;
  return reachable;
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
  add("sequences_api_broker_reachable",
      absl::StrCat("1 when the broker answered the latest metadata request, at most ",
                   absl::FormatDuration(options_.stale_after), " ago"),
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
