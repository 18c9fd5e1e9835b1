#ifndef SEQUENCES_LIBS_SERVICE_METRICS_TEXT_H_
#define SEQUENCES_LIBS_SERVICE_METRICS_TEXT_H_

// Metric families as plain values, and their Prometheus text exposition (format 0.0.4).
//
// The services keep their own counters (the executor's Metrics, the API's per-method table);
// at scrape time they describe them as MetricFamily values and PrometheusText renders them, so
// nothing is counted twice. The rendering uses prometheus-cpp's text serializer (linked PRIVATE:
// no prometheus:: type appears here).
//
// Thread-safety: MetricFamily is a value; Histogram may be used from any thread.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace sequences::service {

enum class MetricKind { kCounter, kGauge, kHistogram };

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// One histogram's state. `cumulative[i]` counts observations <= bounds[i] (bounds ascending, no
// +Inf: `count` is the +Inf bucket).
struct HistogramValue {
  std::vector<double> bounds;
  std::vector<uint64_t> cumulative;
  uint64_t count = 0;
  double sum = 0;
};

struct MetricPoint {
  MetricLabels labels;
  double value = 0;          // counter and gauge
  HistogramValue histogram;  // histogram
};

struct MetricFamily {
  std::string name;
  std::string help;
  MetricKind kind = MetricKind::kGauge;
  std::vector<MetricPoint> points;

  MetricFamily& Add(MetricLabels labels, double value) {
    points.push_back({std::move(labels), value, {}});
    return *this;
  }
  MetricFamily& Add(MetricLabels labels, HistogramValue histogram) {
    points.push_back({std::move(labels), 0, std::move(histogram)});
    return *this;
  }
};

// The text exposition of `families`, in order (what GET /metrics answers).
std::string PrometheusText(const std::vector<MetricFamily>& families);

// Observations into fixed buckets. REQUIRES: `bounds` ascending.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  HistogramValue Value();

 private:
  absl::Mutex mu_;
  HistogramValue v_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sequences::service

#endif  // SEQUENCES_LIBS_SERVICE_METRICS_TEXT_H_
