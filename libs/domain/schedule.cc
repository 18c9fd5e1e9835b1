#include "libs/domain/schedule.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "libs/domain/envelope.h"

namespace sequences::domain {
namespace {

// How far AlignToWindow looks ahead for an open window.
constexpr int kAlignHorizonDays = 800;

absl::Weekday ToAbslWeekday(v1::Weekday w) {
  switch (w) {
    case v1::WEEKDAY_MONDAY:
      return absl::Weekday::monday;
    case v1::WEEKDAY_TUESDAY:
      return absl::Weekday::tuesday;
    case v1::WEEKDAY_WEDNESDAY:
      return absl::Weekday::wednesday;
    case v1::WEEKDAY_THURSDAY:
      return absl::Weekday::thursday;
    case v1::WEEKDAY_FRIDAY:
      return absl::Weekday::friday;
    case v1::WEEKDAY_SATURDAY:
      return absl::Weekday::saturday;
    default:
      return absl::Weekday::sunday;
  }
}

int MinutesOf(const v1::TimeOfDay& t) { return t.hours() * 60 + t.minutes(); }

// Local instant of `day` at `minutes` after midnight (may be 24:00 = next day's midnight).
absl::Time AtMinutes(absl::CivilDay day, int minutes, absl::TimeZone tz) {
  return FromLocal(absl::CivilSecond(day.year(), day.month(), day.day(), 0, minutes, 0), tz);
}

bool HasTime(const v1::Step& step) { return step.has_at_time(); }

// The first instant >= t whose local time of day is `at`.
absl::Time NextLocalTimeAtOrAfter(absl::Time t, const v1::TimeOfDay& at, absl::TimeZone tz) {
  absl::CivilDay day(tz.At(t).cs);
  for (int i = 0; i < 3; ++i) {
    absl::Time candidate = AtMinutes(day + i, MinutesOf(at), tz);
    if (candidate >= t) return candidate;
  }
  return t;
}

}  // namespace

Calendar MakeCalendar(const v1::SequenceSettings& settings, absl::TimeZone tz) {
  Calendar calendar;
  calendar.tz = tz;
  calendar.window = settings.send_window();
  for (const v1::Date& d : settings.holidays()) {
    absl::CivilDay day(d.year(), d.month(), d.day());
    // CivilDay normalizes out-of-range fields; keep only dates that were valid as written.
    if (day.year() == d.year() && day.month() == d.month() && day.day() == d.day()) {
      calendar.holidays.insert(day);
    }
  }
  return calendar;
}

namespace {
// The spelling of an IANA zone name ("America/New_York", "Etc/GMT+5", "EST5EDT"): components of
// ASCII letters, digits, '.', '_', '-' and '+' separated by single '/', none empty, "." or "..",
// none starting with '-'. The time zone library would also load a file path ("/etc/localtime",
// "file:...", "Europe/../Europe/Berlin") and the tz directory's copies ("posix/...") and aliases of
// the machine's own zone ("localtime", "posixrules"): none of these is an IANA name, and a path
// would make a schedule depend on the machine that computed it.
bool IsIanaSpelling(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  if (name == "localtime" || name == "posixrules") return false;
  if (absl::StartsWith(name, "posix/") || absl::StartsWith(name, "right/") ||
      absl::StartsWith(name, "Fixed/")) {
    return false;
  }
  size_t begin = 0;
  while (true) {
    const size_t slash = name.find('/', begin);
    const absl::string_view part = name.substr(
        begin, slash == absl::string_view::npos ? absl::string_view::npos : slash - begin);
    if (part.empty() || part == "." || part == ".." || part.front() == '-') return false;
    for (const char c : part) {
      const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-' || c == '+';
      if (!ok) return false;
    }
    if (slash == absl::string_view::npos) return true;
    begin = slash + 1;
  }
}

// Loads `name` into *tz, once (each absl::LoadTimeZone takes a global lock and a lookup).
bool LoadNamedZone(const std::string& name, absl::TimeZone* tz) {
  if (!IsIanaSpelling(name)) return false;
  return absl::LoadTimeZone(name, tz);
}
}  // namespace

bool IsValidTimeZoneName(const std::string& name) {
  absl::TimeZone tz;
  return LoadNamedZone(name, &tz);
}

absl::TimeZone LoadZoneOrUtc(const std::string& name) {
  absl::TimeZone tz;
  if (LoadNamedZone(name, &tz)) return tz;
  return absl::UTCTimeZone();
}

std::string ResolveTimeZone(const v1::TimeZones& candidates, const std::string& default_name,
                            absl::TimeZone* tz) {
  for (const std::string* name :
       {&candidates.recipient(), &candidates.owner(), &candidates.company(), &default_name}) {
    absl::TimeZone loaded;
    if (LoadNamedZone(*name, &loaded)) {
      if (tz != nullptr) *tz = loaded;
      return *name;
    }
  }
  if (tz != nullptr) *tz = absl::UTCTimeZone();
  return "UTC";
}

absl::Time FromLocal(absl::CivilSecond local, absl::TimeZone tz) {
  const absl::TimeZone::TimeInfo info = tz.At(local);
  switch (info.kind) {
    case absl::TimeZone::TimeInfo::SKIPPED:
      return info.trans;  // the instant the clocks jump: first valid local time after the gap
    case absl::TimeZone::TimeInfo::REPEATED:
    case absl::TimeZone::TimeInfo::UNIQUE:
    default:
      return info.pre;  // unique, or the first occurrence of a repeated local time
  }
}

bool IsBusinessDay(absl::CivilDay day, const Calendar& calendar) {
  const absl::Weekday w = absl::GetWeekday(day);
  if (w == absl::Weekday::saturday || w == absl::Weekday::sunday) return false;
  return calendar.holidays.count(day) == 0;
}

absl::CivilDay AddBusinessDays(absl::CivilDay day, int n, const Calendar& calendar) {
  if (n <= 0) return day;
  int guard = 0;
  while (n > 0 && guard < 4000) {
    day += 1;
    ++guard;
    if (IsBusinessDay(day, calendar)) --n;
  }
  return day;
}

absl::Time ApplyDelay(absl::Time anchor, const v1::Step& step, const Calendar& calendar) {
  const v1::Delay& delay = step.delay();
  const int amount = std::max(0, delay.amount());
  switch (delay.unit()) {
    case v1::DELAY_UNIT_DAYS:
    case v1::DELAY_UNIT_BUSINESS_DAYS: {
      // 0 means "immediately": the anchor itself (the window still applies). Resolving the
      // anchor's own local time again would give the first occurrence of a repeated hour, i.e.
      // an instant before an anchor in the second occurrence.
      if (amount == 0 && !HasTime(step)) return anchor;
      const absl::CivilSecond local = calendar.tz.At(anchor).cs;
      const absl::CivilDay start(local);
      const bool business = delay.unit() == v1::DELAY_UNIT_BUSINESS_DAYS;
      absl::CivilDay target = business ? AddBusinessDays(start, amount, calendar) : start + amount;
      const int minutes = HasTime(step) ? MinutesOf(step.at_time())
                                        : static_cast<int>(local.hour() * 60 + local.minute());
      const int seconds = HasTime(step) ? 0 : static_cast<int>(local.second());
      // Sub-second part of the anchor, kept by time-of-day-preserving delays (it is part of the
      // local time of day, so a skipped local time still resolves to the jump itself).
      const absl::Duration fraction =
          HasTime(step) ? absl::ZeroDuration()
                        : anchor - absl::FromUnixSeconds(absl::ToUnixSeconds(anchor));
      auto at = [&](absl::CivilDay d) {
        const absl::CivilSecond cs(d.year(), d.month(), d.day(), 0, minutes, seconds);
        const absl::TimeZone::TimeInfo info = calendar.tz.At(cs);
        if (info.kind == absl::TimeZone::TimeInfo::SKIPPED) return info.trans;
        return FromLocal(cs, calendar.tz) + fraction;
      };
      absl::Time result = at(target);
      // Never before the anchor (a 0-day delay "at 09:30" issued at 10:00 means tomorrow).
      for (int guard = 0; result < anchor && guard < 10; ++guard) {
        target = business ? AddBusinessDays(target, 1, calendar) : target + 1;
        result = at(target);
      }
      return result;
    }
    case v1::DELAY_UNIT_HOURS:
    case v1::DELAY_UNIT_MINUTES:
    default: {
      const absl::Duration d =
          delay.unit() == v1::DELAY_UNIT_HOURS ? absl::Hours(amount) : absl::Minutes(amount);
      const absl::Time t = anchor + d;
      return HasTime(step) ? NextLocalTimeAtOrAfter(t, step.at_time(), calendar.tz) : t;
    }
  }
}

absl::Time AlignToWindow(absl::Time t, const Calendar& calendar) {
  const auto& ranges = calendar.window.ranges();
  if (ranges.empty() && calendar.holidays.empty()) return t;
  const absl::CivilDay first(calendar.tz.At(t).cs);
  for (int i = 0; i < kAlignHorizonDays; ++i) {
    const absl::CivilDay day = first + i;
    if (calendar.holidays.count(day) > 0) continue;
    if (ranges.empty()) {
      // The day is the instants from its 00:00 to the next day's, both by the DST rule, like a
      // range [00:00, 24:00). So an instant in the second pass of an evening repeated across
      // midnight belongs to the next day (St. John's 1987-10-25), and a day the clocks skipped
      // entirely (Apia 2011-12-30) has no instant at all.
      const absl::Time open = AtMinutes(day, 0, calendar.tz);
      const absl::Time close = AtMinutes(day, 24 * 60, calendar.tz);
      if (open < close && t < close) return std::max(t, open);
      continue;
    }
    const absl::Weekday weekday = absl::GetWeekday(day);
    // Ranges of this weekday, earliest first.
    std::vector<std::pair<int, int>> today;
    for (const v1::WindowRange& r : ranges) {
      if (ToAbslWeekday(r.weekday()) == weekday && r.weekday() != v1::WEEKDAY_UNSPECIFIED) {
        today.emplace_back(MinutesOf(r.start()), MinutesOf(r.end()));
      }
    }
    std::sort(today.begin(), today.end());
    for (const auto& [start_minutes, end_minutes] : today) {
      const absl::Time start = AtMinutes(day, start_minutes, calendar.tz);
      const absl::Time end = AtMinutes(day, end_minutes, calendar.tz);
      if (start < end && t < end) return std::max(t, start);
    }
  }
  return t;
}

absl::Time StepDueAt(absl::Time anchor, const v1::Step& step, const Calendar& calendar,
                     absl::Time not_before, absl::Duration paused) {
  const absl::Time due =
      AlignToWindow(std::max(ApplyDelay(anchor, step, calendar) + paused, not_before), calendar);
  // Up, so a due time is never before what it was computed from. (ToUnixMicros rounds down.)
  const absl::Time whole = absl::FromUnixMicros(absl::ToUnixMicros(due));
  return whole < due ? whole + absl::Microseconds(1) : whole;
}

v1::ScheduledStep ScheduledAt(const v1::Step& step, int index, absl::Time due, absl::TimeZone tz) {
  v1::ScheduledStep s;
  s.set_step_id(step.id());
  s.set_step_index(index);
  *s.mutable_due_at() = ToProto(due);
  s.set_time_zone(tz.name());
  s.set_local_due_time(absl::FormatTime("%Y-%m-%dT%H:%M:%S%Ez", due, tz));
  s.set_local_display(
      absl::StrCat(absl::FormatTime("%a %e %b %Y %H:%M %Z", due, tz), ", ", tz.name()));
  return s;
}

std::vector<v1::ScheduledStep> PreviewSchedule(absl::Span<const v1::Step> steps,
                                               const v1::SequenceSettings& settings,
                                               absl::Time start, absl::TimeZone tz) {
  const Calendar calendar = MakeCalendar(settings, tz);
  std::vector<v1::ScheduledStep> out;
  absl::Time anchor = start;
  for (size_t i = 0; i < steps.size(); ++i) {
    const absl::Time due = StepDueAt(anchor, steps[i], calendar);
    out.push_back(ScheduledAt(steps[i], static_cast<int>(i), due, calendar.tz));
    anchor = due;
  }
  return out;
}

}  // namespace sequences::domain
