#ifndef SEQUENCES_LIBS_DOMAIN_TESTS_REFERENCE_SCHEDULE_H_
#define SEQUENCES_LIBS_DOMAIN_TESTS_REFERENCE_SCHEDULE_H_

// A reference scheduler for tests: the scheduling rules of libs/domain/README.md and the proto
// comments (proto/sequences/v1/sequence.proto), written again from the documents, deliberately
// simple and slow, and independent of libs/domain/schedule.cc (it calls none of it).
//
// The only facts it takes from the time zone library are instant -> local wall-clock time
// (absl::TimeZone::At(absl::Time)) and civil-calendar arithmetic (absl::CivilDay). Everything else
// is derived here by search:
// - the instants at which a local time occurs are found by trying every UTC offset the zone uses
//   within a day and a bit of it and keeping those whose wall clock reads that local time;
// - a local time that never occurs (a gap) resolves to the first instant whose wall clock reads
//   later than it, found by bisection over whole seconds (the tz database has whole-second
//   transitions);
// - business days, holidays, at_time and send windows are evaluated day by day on the local
//   calendar; "inside the window" is checked by membership, and the first instant inside the
//   window at or after t is the earliest of t and the window openings after it that are inside.
//
// Thread-compatible; every function is pure.

#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "sequences/v1/sequence.pb.h"

namespace sequences::domain::reference {

// The rule for a local civil time: its first occurrence; in a gap, the instant the clocks jump.
absl::Time ResolveLocal(absl::CivilSecond local, absl::TimeZone tz);

// When `step` comes due after `anchor`, its delay's end moved by `paused` (how long the delay
// clock stood still), never before `not_before`, inside the window, as a whole microsecond
// (rounded up).
absl::Time DueAt(absl::Time anchor, const v1::Step& step, const v1::SequenceSettings& settings,
                 absl::TimeZone tz, absl::Time not_before = absl::InfinitePast(),
                 absl::Duration paused = absl::ZeroDuration());

// The due time of every step of an enrollment started at `start`, each step executing when due.
std::vector<absl::Time> Schedule(const std::vector<v1::Step>& steps,
                                 const v1::SequenceSettings& settings, absl::Time start,
                                 absl::TimeZone tz);

}  // namespace sequences::domain::reference

#endif  // SEQUENCES_LIBS_DOMAIN_TESTS_REFERENCE_SCHEDULE_H_
