#include "services/step-executor/batch_sizer.h"

#include <algorithm>
#include <cstdint>

namespace sequences::executor {
namespace {

BatchSizerOptions Clamped(BatchSizerOptions o) {
  o.min = std::max(1, o.min);
  o.max = std::max(o.min, o.max);
  if (o.budget <= absl::ZeroDuration()) o.budget = absl::Milliseconds(1);
  return o;
}

}  // namespace

BatchSizer::BatchSizer(BatchSizerOptions options)
    : options_(Clamped(options)), limit_(options_.min) {}

void BatchSizer::Observe(bool full, int taken, absl::Duration took) {
  int64_t next = limit_;
  if (took > options_.budget) {
    // The share of this batch that fits the budget (rounded down, at least 1).
    next = static_cast<int64_t>(static_cast<double>(limit_) *
                                absl::FDivDuration(options_.budget, took));
  } else if (full) {
    next = static_cast<int64_t>(limit_) * 2;
  } else {
    next = std::max<int64_t>(limit_ / 2, taken);
  }
  limit_ = static_cast<int>(std::clamp<int64_t>(next, options_.min, options_.max));
}

}  // namespace sequences::executor
