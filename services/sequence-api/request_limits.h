#ifndef SEQUENCES_SERVICES_SEQUENCE_API_REQUEST_LIMITS_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_REQUEST_LIMITS_H_

// Size limits every request meets before anything else looks at it, checked generically (by
// protobuf reflection) over every string, map and repeated field, so a field added to the proto
// tomorrow is bounded too:
//   strings   valid UTF-8 and at most 1,024 bytes, except those in kStringLimits and the API's
//             own page and consistency tokens (8,192 bytes)
//   repeated  at most 100 elements (maps: entries), except those in kCountLimits
// A violation is INVALID_ARGUMENT naming the field path ("item.merge_data[\"k\"]",
// "sequence.steps[3].email.body") and the limit, never echoing the value. The domain's own rules
// (e.g. at most 50 steps, subjects of 998 bytes) are tighter where they exist and are checked
// after.
//
// Pure; thread-safe.

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace sequences::api {

inline constexpr int kDefaultMaxStringBytes = 1024;
inline constexpr int kDefaultMaxRepeated = 100;

[[nodiscard]] absl::Status CheckRequestLimits(const google::protobuf::Message& request);

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_REQUEST_LIMITS_H_
