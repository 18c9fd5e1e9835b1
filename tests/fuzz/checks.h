#ifndef SEQUENCES_TESTS_FUZZ_CHECKS_H_
#define SEQUENCES_TESTS_FUZZ_CHECKS_H_

// What every fuzz target asserts, and the fixed states they run inputs against.
// A broken property aborts with a message, which libFuzzer reports as a crash and keeps the input.

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/sequence.h"

namespace sequences::fuzz {

// Aborts with `what` (and the location) unless `ok`.
void Check(bool ok, absl::string_view what, const char* file, int line);
#define FUZZ_CHECK(cond, what) ::sequences::fuzz::Check((cond), (what), __FILE__, __LINE__)

// The company and user every request is made as (valid under the identity grammar).
inline constexpr char kCompany[] = "acme";
inline constexpr char kUser[] = "u1";
// The decision time of every fuzzed call: fixed, so a crash reproduces.
absl::Time Now();

// An error status is bounded whatever the input: a short, valid UTF-8 message, and an
// INVALID_ARGUMENT's google.rpc.BadRequest (required with kRequired: the API returns it to the
// caller as is) decodes to 1..FieldViolations::kMaxViolations+1 entries, each path and description
// cut to its limit. kOptional is for the deciders' refusals of log records (dead-lettered, never
// shown to a caller), which may carry only a message.
enum class BadRequest { kRequired, kOptional };
void CheckBoundedError(const absl::Status& status, BadRequest bad_request = BadRequest::kRequired);

// `m`'s bytes with map entries in key order, so equal messages give equal bytes.
std::string SerializeDeterministic(const google::protobuf::Message& m);

// What is written can be read back: `m` serializes, parses again (proto3 strings must be UTF-8)
// and compares equal.
void CheckDecodable(const google::protobuf::Message& m);

// A sequence created from the template catalog's first template by DecideSequence (company
// kCompany, id "s1"), with automated sending on and kUser's consent: the state the executor and
// the API hold for a live sequence.
const domain::SequenceState& LiveSequence();
// An enrollment of "acme/deal/42" (or the template's entity) in LiveSequence, started and
// in progress, as the executor folds it.
const domain::EnrollmentState& ActiveEnrollment();

}  // namespace sequences::fuzz

#endif  // SEQUENCES_TESTS_FUZZ_CHECKS_H_
