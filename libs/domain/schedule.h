#ifndef SEQUENCES_LIBS_DOMAIN_SCHEDULE_H_
#define SEQUENCES_LIBS_DOMAIN_SCHEDULE_H_

// Scheduling math: when a step comes due. Pure functions of their arguments (no clock reads).
//
// Rules (see libs/domain/README.md):
// - MINUTES/HOURS delays are absolute durations added to the anchor.
// - DAYS delays add calendar days to the anchor's local date, keeping its local time of day.
// - BUSINESS_DAYS delays add days that are Monday..Friday and not a holiday, keeping the local
//   time of day.
// - `at_time` ("at 09:30"): for DAYS/BUSINESS_DAYS the local time on the target date; for
//   MINUTES/HOURS the first occurrence of that local time at or after anchor + delay.
// - The result is then moved forward to the first instant inside the send window on a day that is
//   not a holiday (no window = always open; holidays still block their whole day).
// - DST: a local time that does not exist (spring forward gap) resolves to the instant the clocks
//   jump (the first valid local time after the gap, e.g. 02:30 -> 03:00 in New York); a local time
//   that occurs twice (fall back) resolves to its first occurrence.

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "sequences/v1/sequence.pb.h"

namespace sequences::domain {

// Where and when steps may fire: a time zone, a send window and holidays.
struct Calendar {
  absl::TimeZone tz = absl::UTCTimeZone();
  v1::SendWindow window;  // no ranges = always open
  std::set<absl::CivilDay> holidays;
};

// The calendar of a sequence's settings in time zone `tz`. Invalid holiday dates are ignored.
Calendar MakeCalendar(const v1::SequenceSettings& settings, absl::TimeZone tz);

// true if `name` is an IANA time zone name ("Europe/Berlin", "UTC", "Etc/GMT+5") the system
// database knows. Names only: a file path ("/usr/share/zoneinfo/Europe/Berlin", "/etc/localtime",
// "Europe/../Europe/Berlin", "file:..."), the database's "posix/" and "right/" copies,
// "localtime", "posixrules" and absl's "Fixed/..." are not, although the time zone library
// would load some of them.
bool IsValidTimeZoneName(const std::string& name);

// The enrollment's time zone: the first valid (IsValidTimeZoneName) of recipient, owner, company,
// `default_name`, else "UTC". Returns the chosen name; `*tz` (if not null) receives the loaded
// zone. (An enroll request naming an invalid zone is refused before, by ValidateEnrollRequested:
// for a decided enrollment this is the first name given.)
std::string ResolveTimeZone(const v1::TimeZones& candidates, const std::string& default_name,
                            absl::TimeZone* tz);
// Loads `name`, falling back to UTC when it is not a valid name (IsValidTimeZoneName).
absl::TimeZone LoadZoneOrUtc(const std::string& name);

// A local civil time as an instant, with the DST rule above.
absl::Time FromLocal(absl::CivilSecond local, absl::TimeZone tz);

// Monday..Friday and not a holiday.
bool IsBusinessDay(absl::CivilDay day, const Calendar& calendar);
// `n` business days after `day` (n >= 0; n == 0 returns `day`).
absl::CivilDay AddBusinessDays(absl::CivilDay day, int n, const Calendar& calendar);

// anchor + the step's delay and at_time, before the send window is applied.
absl::Time ApplyDelay(absl::Time anchor, const v1::Step& step, const Calendar& calendar);

// The first instant >= t inside the send window on a non-holiday. Looks at most ~2 years ahead; if
// the window never opens in that span (only possible with absurd holiday lists) returns t.
absl::Time AlignToWindow(absl::Time t, const Calendar& calendar);

// When a step comes due: AlignToWindow(max(ApplyDelay(anchor, step) + paused, not_before)),
// rounded up to a whole microsecond. `paused` is how long the delay clock stood still since the
// anchor (pauses); `not_before` the earliest acceptable instant (e.g. the resume time after a
// pause). Due times are whole microseconds because the due index and the timer ids
// ("<enrollment_id>/<step_id>/due@<unix micros>") are: a finer due time (from an anchor that came
// in a Timestamp with nanoseconds, e.g. ActivityCompleted.completed_at) would not be the time its
// timer names, and deciding the timer again (replay --dry_run) would find it stale.
absl::Time StepDueAt(absl::Time anchor, const v1::Step& step, const Calendar& calendar,
                     absl::Time not_before = absl::InfinitePast(),
                     absl::Duration paused = absl::ZeroDuration());

// One step of a preview due at `due`: UTC and the wall clock of `tz` (ScheduledStep's fields).
v1::ScheduledStep ScheduledAt(const v1::Step& step, int index, absl::Time due, absl::TimeZone tz);

// Schedule preview: when each step would come due for an enrollment started at `start` in `tz`,
// assuming each step executes when due (and activities that wait are completed at once).
std::vector<v1::ScheduledStep> PreviewSchedule(absl::Span<const v1::Step> steps,
                                               const v1::SequenceSettings& settings,
                                               absl::Time start, absl::TimeZone tz);

}  // namespace sequences::domain

#endif  // SEQUENCES_LIBS_DOMAIN_SCHEDULE_H_
