#ifndef SEQUENCES_TESTS_BENCH_FIGURES_H_
#define SEQUENCES_TESTS_BENCH_FIGURES_H_

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace sequences::bench {

// Named figures of one benchmark, written to the results file as a JSON object.
using Figures = std::map<std::string, double>;

// Exact percentiles over recorded durations (benchmarks hold at most a few million samples).
class Histogram {
 public:
  void Add(absl::Duration d) { ms_.push_back(absl::ToDoubleMilliseconds(d)); }
  size_t count() const { return ms_.size(); }
  double Percentile(double p) {
    if (ms_.empty()) return 0;
    std::sort(ms_.begin(), ms_.end());
    size_t i = std::min(ms_.size() - 1, static_cast<size_t>(p / 100.0 * ms_.size()));
    return ms_[i];
  }
  Figures Summary(const std::string& prefix) {
    return {{prefix + "_p50", Percentile(50)},
            {prefix + "_p99", Percentile(99)},
            {prefix + "_max", Percentile(100)},
            {prefix + "_count", static_cast<double>(ms_.size())}};
  }
  const std::vector<double>& samples_ms() const { return ms_; }

 private:
  std::vector<double> ms_;
};

inline std::string ToJson(const Figures& f) {
  std::string out = "{";
  for (const auto& [k, v] : f) {
    if (out.size() > 1) out += ",";
    absl::StrAppend(&out, "\"", k, "\":", v);
  }
  return out + "}";
}

}  // namespace sequences::bench

#endif  // SEQUENCES_TESTS_BENCH_FIGURES_H_
