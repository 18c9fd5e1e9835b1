#include "libs/domain/tests/reference_schedule.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

namespace sequences::domain::reference {
namespace {

// How far the window search looks ahead (README: about two years).
constexpr int kHorizonDays = 800;

struct Resolution {
  absl::Time at;
  bool occurs = true;  // false: the local time is in a gap
};

absl::CivilSecond LocalOf(absl::Time t, absl::TimeZone tz) { return tz.At(t).cs; }
absl::CivilDay DayOf(absl::Time t, absl::TimeZone tz) { return absl::CivilDay(LocalOf(t, tz)); }

// Every instant whose wall clock reads `local`, and the gap rule when there is none.
Resolution Resolve(absl::CivilSecond local, absl::TimeZone tz) {
  // Read as if it were UTC; the real instant is that minus the offset in force then, and every
  // offset in force then is one the zone uses within a day and a bit of it (sampled hourly: no
  // offset in the database lasts less than an hour).
  const absl::Time as_utc = absl::FromCivil(local, absl::UTCTimeZone());
  std::set<int> offsets;
  for (int h = -28; h <= 28; ++h) offsets.insert(tz.At(as_utc + absl::Hours(h)).offset);
  std::vector<absl::Time> candidates;
  std::optional<absl::Time> first;
  for (int offset : offsets) {
    const absl::Time x = as_utc - absl::Seconds(offset);
    candidates.push_back(x);
    if (LocalOf(x, tz) == local && (!first.has_value() || x < *first)) first = x;
  }
  if (first.has_value()) return {*first, true};
  // A gap: the clocks jump over `local`. The jump is the first instant whose wall clock reads
  // later than `local`; it lies between two candidates that read earlier and later.
  std::sort(candidates.begin(), candidates.end());
  for (size_t i = 0; i + 1 < candidates.size(); ++i) {
    absl::Time lo = candidates[i];
    absl::Time hi = candidates[i + 1];
    if (!(LocalOf(lo, tz) < local && LocalOf(hi, tz) > local)) continue;
    while (hi - lo > absl::Seconds(1)) {
      const absl::Time mid = lo + absl::Seconds(absl::ToInt64Seconds(hi - lo) / 2);
      if (LocalOf(mid, tz) > local) {
        hi = mid;
      } else {
        lo = mid;
      }
    }
    return {hi, false};
  }
  return {absl::InfiniteFuture(), false};  // cannot happen; makes any use of it a mismatch
}

int IsoWeekday(absl::CivilDay day) {
  switch (absl::GetWeekday(day)) {
    case absl::Weekday::monday:
      return 1;
    case absl::Weekday::tuesday:
      return 2;
    case absl::Weekday::wednesday:
      return 3;
    case absl::Weekday::thursday:
      return 4;
    case absl::Weekday::friday:
      return 5;
    case absl::Weekday::saturday:
      return 6;
    case absl::Weekday::sunday:
      return 7;
  }
  return 0;
}

// The rules of one sequence in one zone, with a memo of resolved local times.
class Rules {
 public:
  Rules(const v1::SequenceSettings& settings, absl::TimeZone tz) : settings_(settings), tz_(tz) {
    for (const v1::Date& d : settings.holidays()) {
      const absl::CivilDay day(d.year(), d.month(), d.day());
      // Only real dates (absl normalises Feb 30 to Mar 1, which is not what was written).
      if (day.year() == d.year() && day.month() == d.month() && day.day() == d.day()) {
        holidays_.insert(day);
      }
    }
  }

  absl::TimeZone tz() const { return tz_; }

  Resolution At(absl::CivilDay day, int hours, int minutes, int seconds = 0) {
    const absl::CivilSecond local(day.year(), day.month(), day.day(), hours, minutes, seconds);
    auto it = memo_.find(local);
    if (it == memo_.end()) it = memo_.emplace(local, Resolve(local, tz_)).first;
    return it->second;
  }

  bool Holiday(absl::CivilDay day) const { return holidays_.count(day) > 0; }
  bool BusinessDay(absl::CivilDay day) const { return IsoWeekday(day) <= 5 && !Holiday(day); }
  absl::CivilDay NextBusinessDay(absl::CivilDay day) const {
    do {
      day += 1;
    } while (!BusinessDay(day));
    return day;
  }

  // The window's [start, end) ranges of `day`, as instants.
  std::vector<std::pair<absl::Time, absl::Time>> Ranges(absl::CivilDay day) {
    std::vector<std::pair<absl::Time, absl::Time>> out;
    for (const v1::WindowRange& r : settings_.send_window().ranges()) {
      if (r.weekday() != IsoWeekday(day)) continue;
      out.emplace_back(At(day, r.start().hours(), r.start().minutes()).at,
                       At(day, r.end().hours(), r.end().minutes()).at);
    }
    return out;
  }

  bool HasRanges() const { return settings_.send_window().ranges_size() > 0; }

  bool InWindow(absl::Time x) {
    const absl::CivilDay day = DayOf(x, tz_);
    if (!HasRanges()) {
      // A day is [its 00:00, the next day's 00:00), both by the DST rule (as a range would be).
      for (absl::CivilDay d = day - 1; d <= day + 1; ++d) {
        if (!Holiday(d) && At(d, 0, 0).at <= x && x < At(d + 1, 0, 0).at) return true;
      }
      return false;
    }
    for (absl::CivilDay d = day - 1; d <= day + 1; ++d) {
      if (Holiday(d)) continue;
      for (const auto& [start, end] : Ranges(d)) {
        if (start <= x && x < end) return true;
      }
    }
    return false;
  }

  // The first instant >= t inside the window: t itself, or the earliest opening after t that is
  // inside the window.
  absl::Time Align(absl::Time t) {
    if (!HasRanges() && holidays_.empty()) return t;
    if (InWindow(t)) return t;
    std::optional<absl::Time> best;
    std::optional<absl::CivilDay> found_on;
    const absl::CivilDay first = DayOf(t, tz_) - 1;
    for (absl::CivilDay d = first; d < first + kHorizonDays; ++d) {
      if (found_on.has_value() && d > *found_on + 2) break;
      std::vector<absl::Time> openings;
      if (HasRanges()) {
        for (const auto& range : Ranges(d)) openings.push_back(range.first);
      } else {
        openings.push_back(At(d, 0, 0).at);
      }
      for (absl::Time o : openings) {
        if (o > t && InWindow(o) && (!best.has_value() || o < *best)) {
          best = o;
          found_on = d;
        }
      }
    }
    return best.value_or(t);
  }

 private:
  const v1::SequenceSettings& settings_;
  absl::TimeZone tz_;
  std::set<absl::CivilDay> holidays_;
  std::map<absl::CivilSecond, Resolution> memo_;
};

absl::Time Delay(absl::Time anchor, const v1::Step& step, Rules& rules) {
  const int amount = step.delay().amount();
  const bool at_time = step.has_at_time();
  const int at_h = step.at_time().hours();
  const int at_m = step.at_time().minutes();
  switch (step.delay().unit()) {
    case v1::DELAY_UNIT_DAYS:
    case v1::DELAY_UNIT_BUSINESS_DAYS: {
      if (amount == 0 && !at_time) return anchor;  // "0 means immediately"
      const bool business = step.delay().unit() == v1::DELAY_UNIT_BUSINESS_DAYS;
      const absl::CivilSecond local = LocalOf(anchor, rules.tz());
      absl::CivilDay day(local);
      if (business) {
        for (int left = amount; left > 0; --left) day = rules.NextBusinessDay(day);
      } else {
        day += amount;
      }
      // The anchor's time of day, sub-second part included.
      const absl::Duration fraction = anchor - absl::FromUnixSeconds(absl::ToUnixSeconds(anchor));
      auto on = [&](absl::CivilDay d) {
        if (at_time) return rules.At(d, at_h, at_m).at;
        const Resolution r = rules.At(d, local.hour(), local.minute(), local.second());
        return r.occurs ? r.at + fraction : r.at;
      };
      absl::Time due = on(day);
      while (due < anchor) {  // never before the anchor: the next (business) day
        day = business ? rules.NextBusinessDay(day) : day + 1;
        due = on(day);
      }
      return due;
    }
    case v1::DELAY_UNIT_HOURS:
    case v1::DELAY_UNIT_MINUTES:
    default: {
      const absl::Time after =
          anchor + (step.delay().unit() == v1::DELAY_UNIT_HOURS ? absl::Hours(amount)
                                                                : absl::Minutes(amount));
      if (!at_time) return after;
      // The first day, from the local date of `after` on, whose at_time (by the DST rule) is at
      // or after `after` (an earlier date does not count even if its at_time fell into a gap
      // that ends at `after`).
      for (absl::CivilDay d = DayOf(after, rules.tz());; ++d) {
        const absl::Time candidate = rules.At(d, at_h, at_m).at;
        if (candidate >= after) return candidate;
      }
    }
  }
}

// Due times are whole microseconds, rounded up (the README).
absl::Time WholeMicrosUp(absl::Time t) {
  const absl::Duration since_epoch = t - absl::UnixEpoch();
  const absl::Duration sub = since_epoch - absl::Floor(since_epoch, absl::Microseconds(1));
  return sub > absl::ZeroDuration() ? t - sub + absl::Microseconds(1) : t;
}

}  // namespace

absl::Time ResolveLocal(absl::CivilSecond local, absl::TimeZone tz) {
  return Resolve(local, tz).at;
}

absl::Time DueAt(absl::Time anchor, const v1::Step& step, const v1::SequenceSettings& settings,
                 absl::TimeZone tz, absl::Time not_before, absl::Duration paused) {
  Rules rules(settings, tz);
  return WholeMicrosUp(rules.Align(std::max(Delay(anchor, step, rules) + paused, not_before)));
}

std::vector<absl::Time> Schedule(const std::vector<v1::Step>& steps,
                                 const v1::SequenceSettings& settings, absl::Time start,
                                 absl::TimeZone tz) {
  Rules rules(settings, tz);
  std::vector<absl::Time> out;
  absl::Time anchor = start;
  for (const v1::Step& step : steps) {
    anchor = WholeMicrosUp(rules.Align(Delay(anchor, step, rules)));
    out.push_back(anchor);
  }
  return out;
}

}  // namespace sequences::domain::reference
