#include "libs/service/metrics_text.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <sstream>

namespace sequences::service {
namespace {

prometheus::MetricType TypeOf(MetricKind kind) {
  switch (kind) {
    case MetricKind::kCounter:
      return prometheus::MetricType::Counter;
    case MetricKind::kGauge:
      return prometheus::MetricType::Gauge;
    case MetricKind::kHistogram:
      return prometheus::MetricType::Histogram;
  }
  return prometheus::MetricType::Untyped;
}

}  // namespace

std::string PrometheusText(const std::vector<MetricFamily>& families) {
  std::vector<prometheus::MetricFamily> out;
  out.reserve(families.size());
  for (const MetricFamily& f : families) {
    prometheus::MetricFamily pf;
    pf.name = f.name;
    pf.help = f.help;
    pf.type = TypeOf(f.kind);
    for (const MetricPoint& p : f.points) {
      prometheus::ClientMetric m;
      for (const auto& [name, value] : p.labels) m.label.push_back({name, value});
      switch (f.kind) {
        case MetricKind::kCounter:
          m.counter.value = p.value;
          break;
        case MetricKind::kGauge:
          m.gauge.value = p.value;
          break;
        case MetricKind::kHistogram:
          m.histogram.sample_count = p.histogram.count;
          m.histogram.sample_sum = p.histogram.sum;
          for (size_t i = 0; i < p.histogram.bounds.size() && i < p.histogram.cumulative.size();
               ++i) {
            m.histogram.bucket.push_back({p.histogram.cumulative[i], p.histogram.bounds[i]});
          }
          m.histogram.bucket.push_back(
              {p.histogram.count, std::numeric_limits<double>::infinity()});
          break;
      }
      pf.metric.push_back(std::move(m));
    }
    out.push_back(std::move(pf));
  }
  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, out);
  return text.str();
}

Histogram::Histogram(std::vector<double> bounds) {
  v_.cumulative.assign(bounds.size(), 0);
  v_.bounds = std::move(bounds);
}

void Histogram::Observe(double value) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < v_.bounds.size(); ++i) {
    if (value <= v_.bounds[i]) ++v_.cumulative[i];
  }
  ++v_.count;
  v_.sum += value;
}

HistogramValue Histogram::Value() {
  absl::MutexLock lock(&mu_);
  return v_;
}

}  // namespace sequences::service
