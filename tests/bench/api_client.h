#ifndef SEQUENCES_TESTS_BENCH_API_CLIENT_H_
#define SEQUENCES_TESTS_BENCH_API_CLIENT_H_

#include <string>

#include "absl/status/statusor.h"
#include "tests/bench/figures.h"

namespace sequences::bench {

// A running sequence-api and the caller it is called as.
struct ApiTarget {
  std::string address;  // host:port
  std::string token;
  std::string company;
  std::string user;
};

// `repeats` BatchEnroll calls of `batch` new items each into `parent`, one after another, from a
// compiled client (generated stubs, a request built once per call before its clock starts): the
// latency of the call as a C++ caller sees it. Item ids and request ids are "<tag>-<call>-<i>".
// ghz measures the same call through a dynamic client, whose encoding of 1,000 items and
// decoding of 1,000 results by reflection lies inside its latency (tests/bench/README.md).
absl::StatusOr<Figures> ApiBatchEnroll(const ApiTarget& api, const std::string& parent, int batch,
                                       int repeats, const std::string& tag);

}  // namespace sequences::bench

#endif  // SEQUENCES_TESTS_BENCH_API_CLIENT_H_
