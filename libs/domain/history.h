#ifndef SEQUENCES_LIBS_DOMAIN_HISTORY_H_
#define SEQUENCES_LIBS_DOMAIN_HISTORY_H_

// An enrollment's history for people: one line per executor event saying what happened and why
// (which step, which rule, which cause), e.g. "failed at step auto: consent_missing (user u1 has
// not authorized automated sending for this sequence)". Pure; thread-safe.

#include <string>

#include "absl/time/time.h"
#include "sequences/v1/events.pb.h"

namespace sequences::domain {

// The account of executor event `event`; for any other envelope, its payload's name.
std::string DescribeExecutorEvent(const v1::Envelope& event);

// The form every time in the history takes, the ones inside a rule's detail included: RFC 3339 in
// UTC, "2026-11-29T10:14:00Z". One zone for every time of a line, named in the text (an
// enrollment's zone, its sequence's window zone and the company's zone may all differ).
std::string HistoryTime(absl::Time t);

}  // namespace sequences::domain

#endif  // SEQUENCES_LIBS_DOMAIN_HISTORY_H_
