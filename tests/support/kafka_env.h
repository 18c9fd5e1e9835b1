#ifndef SEQUENCES_TESTS_SUPPORT_KAFKA_ENV_H_
#define SEQUENCES_TESTS_SUPPORT_KAFKA_ENV_H_

#include <cstdlib>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"

namespace sequences::testing {

// The live broker the kafka and e2e tiers run against. deploy/local/test.sh starts it and sets
// SEQUENCES_BOOTSTRAP; running these tests without a broker is a setup error, not a skip.
inline std::string Bootstrap() {
  const char* env = std::getenv("SEQUENCES_BOOTSTRAP");
  if (env == nullptr || *env == '\0') {
    std::fprintf(stderr,
                 "SEQUENCES_BOOTSTRAP is not set: run the tests with deploy/local/test.sh, which "
                 "starts the local broker\n");
    std::abort();
  }
  return env;
}

// A name no other test run uses (topics, groups, transactional ids).
inline std::string UniqueName(const std::string& prefix) {
  static std::mt19937_64 rng(std::random_device{}());
  return absl::StrCat("test.", prefix, ".", absl::Hex(rng()));
}

}  // namespace sequences::testing

#endif  // SEQUENCES_TESTS_SUPPORT_KAFKA_ENV_H_
