#include "libs/runtime/thread.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <thread>

namespace sequences {
namespace {

int NiceOfThisThread() { return getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())); }

// Runs `fn` on a thread of its own (names and priorities are per thread; the test's thread keeps
// its own), returning what it returned. Catch2 checks stay on the test's thread.
template <typename Fn>
auto OnNewThread(Fn fn) {
  decltype(fn()) out;
  std::thread t([&] { out = fn(); });
  t.join();
  return out;
}

TEST_CASE("given a thread, when its priority is lowered, then only its own nice value rises") {
  const int before = NiceOfThisThread();
  struct Seen {
    int start = 0;
    bool ok = false;
    int after = 0;
  };
  const Seen seen = OnNewThread([] {
    Seen s;
    s.start = NiceOfThisThread();
    s.ok = LowerThisThreadPriority(3).ok();
    s.after = NiceOfThisThread();
    return s;
  });
  CHECK(seen.ok);
  CHECK(seen.after == std::min(19, seen.start + 3));
  CHECK(NiceOfThisThread() == before);
}

TEST_CASE("given a lowering past the weakest priority, then the thread ends at nice 19") {
  const int after = OnNewThread([] {
    static_cast<void>(LowerThisThreadPriority(19));
    static_cast<void>(LowerThisThreadPriority(19));
    return NiceOfThisThread();
  });
  CHECK(after == 19);
}

TEST_CASE("given an increment outside 0..19, then it is refused and the priority is unchanged") {
  const bool refused = OnNewThread([] {
    const int start = NiceOfThisThread();
    return absl::IsInvalidArgument(LowerThisThreadPriority(-1)) &&
           absl::IsInvalidArgument(LowerThisThreadPriority(20)) && NiceOfThisThread() == start;
  });
  CHECK(refused);
}

TEST_CASE("given a name longer than the system shows, then the thread shows its first 15 bytes") {
  const std::string shown = OnNewThread([] {
    NameThisThread("api-handler-with-a-long-name");
    char name[32] = {};
    pthread_getname_np(pthread_self(), name, sizeof(name));
    return std::string(name);
  });
  CHECK(shown == "api-handler-wit");
}

}  // namespace
}  // namespace sequences
