#include "libs/runtime/thread.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace sequences {

void NameThisThread(absl::string_view name) {
  const std::string shown(name.substr(0, 15));
  pthread_setname_np(pthread_self(), shown.c_str());
}

absl::Status LowerThisThreadPriority(int increment) {
  if (increment < 0 || increment > 19) {
    return absl::InvalidArgumentError(absl::StrCat("nice increment ", increment, " not in 0..19"));
  }
  const id_t tid = static_cast<id_t>(gettid());
  errno = 0;
  const int now = getpriority(PRIO_PROCESS, tid);
  if (now == -1 && errno != 0) {
    return absl::InternalError(absl::StrCat("getpriority: ", std::strerror(errno)));
  }
  if (setpriority(PRIO_PROCESS, tid, std::min(19, now + increment)) != 0) {
    return absl::InternalError(absl::StrCat("setpriority: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace sequences
