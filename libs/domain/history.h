#ifndef SEQUENCES_LIBS_DOMAIN_HISTORY_H_
#define SEQUENCES_LIBS_DOMAIN_HISTORY_H_

// An enrollment's history for people: one line per executor event saying what happened and why
// (which step, which rule, which cause), e.g. "failed at step auto: consent_missing (user u1 has
// not authorized automated sending for this sequence)". Pure; thread-safe.

#include <string>

#include "sequences/v1/events.pb.h"

namespace sequences::domain {

// The account of executor event `event`; for any other envelope, its payload's name.
std::string DescribeExecutorEvent(const v1::Envelope& event);

}  // namespace sequences::domain

#endif  // SEQUENCES_LIBS_DOMAIN_HISTORY_H_
