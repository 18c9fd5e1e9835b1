#ifndef SEQUENCES_LIBS_DOMAIN_CONTRACT_H_
#define SEQUENCES_LIBS_DOMAIN_CONTRACT_H_

// The publisher contract of enrollment-events (services/step-executor/README.md, "Contract for
// publishers"), checked in one place: by the executor before it decides a record, and usable by
// any other reader of the topic (the API's read model) that must tell a valid input from a broken
// one the same way.

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "sequences/v1/events.pb.h"

namespace sequences::domain {

// Whether `envelope`, read from enrollment-events with record key `record_key`, honours the
// publisher contract: an enrollment input payload (200-299); a non-empty event_id and company_id;
// occurred_at set; and for an input that names an item, a well-formed item key
// "company/deal|lead/item" that equals the record key and whose company is the envelope's
// company_id. (An owner-wide input may use any key that routes to the partition.)
//
// OK, or INVALID_ARGUMENT whose message is the reason, ready for a dead-letter `reason` header:
// "contract: ..." for a broken envelope, "invalid: ..." for a malformed item key. A Ping is not an
// input: callers skip it before asking.
[[nodiscard]] absl::Status CheckEnrollmentInputContract(const v1::Envelope& envelope,
                                                        absl::string_view record_key);

}  // namespace sequences::domain

#endif  // SEQUENCES_LIBS_DOMAIN_CONTRACT_H_
