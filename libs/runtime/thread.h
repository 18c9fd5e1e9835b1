#ifndef SEQUENCES_LIBS_RUNTIME_THREAD_H_
#define SEQUENCES_LIBS_RUNTIME_THREAD_H_

// The calling thread's name and scheduling weight (Linux: both are per thread).

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace sequences {

// Names the calling thread as top, perf and /proc/<pid>/task/*/comm show it (the first 15 bytes).
void NameThisThread(absl::string_view name);

// Raises the calling thread's nice value by `increment` (0..19; the result is capped at 19): when
// the cores are busy the scheduler gives it that much less of the CPU than the process's other
// threads, and nothing less when they are idle. INVALID_ARGUMENT outside 0..19; the system's error
// (INTERNAL) if it refused.
[[nodiscard]] absl::Status LowerThisThreadPriority(int increment);

}  // namespace sequences

#endif  // SEQUENCES_LIBS_RUNTIME_THREAD_H_
