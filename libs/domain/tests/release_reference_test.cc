// When a waiting email goes out, against a brute-force reference: the send limits (PlanReleases)
// and the minimum gap (PlanTouch) release an email at the EARLIEST instant the rule allows, no
// earlier and no later (send_limits_test.cc and min_gap_test.cc check "never over the limit" and
// "never closer than the gap"; a planner that waits a day too long passes those).
//
// The reference (namespace brute) is written from docs/send-limits.md, docs/min-gap.md and the
// DST rule of libs/domain/README.md, and calls nothing of libs/domain: it takes from the time zone
// library only instant -> local wall clock (absl::TimeZone::At) and civil-calendar arithmetic.
//   - A local time is resolved by reading the wall clock at every whole UTC minute of the 32
//     hours around it: its first occurrence, or (a gap) the first minute whose wall clock reads
//     later (every transition of the zones used here falls on a whole minute).
//   - "Inside the send window" is membership in the ranges [start, end) of the instant's local day
//     and its neighbours, each edge resolved as above (no ranges: the whole day).
//   - The limits count the sends whose local calendar day (hour) in the company's zone is the
//     instant's own: absl::CivilDay / absl::CivilHour of the wall clock, nothing else.
//   - The earliest allowed instant is found by walking forward minute by minute (plus the due
//     times and gap ends, which need not be whole minutes) and testing the rule at each.
// Scenarios are drawn around the zones' DST changes (23- and 25-hour days, Lord Howe's
// 30-minute shift, Santiago's skipped midnight) and local midnights, in zones with 30- and
// 45-minute offsets, with send windows whose edges fall into the gap or the repeated hour.

#include <rapidcheck.h>
#include <rapidcheck/catch.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "libs/domain/min_gap.h"
#include "libs/domain/send_limits.h"
#include "libs/domain/tests/builders.h"

namespace sequences::domain {
namespace {

using testing::Zone;

// ---------------------------------------------------------------- the reference

namespace brute {

absl::CivilSecond Wall(absl::Time t, absl::TimeZone tz) { return tz.At(t).cs; }

// A zone's local times as instants, by scanning whole UTC minutes (memoized).
class LocalTimes {
 public:
  explicit LocalTimes(absl::TimeZone tz) : tz_(tz) {}
  absl::TimeZone tz() const { return tz_; }

  // The first instant whose wall clock reads `local` (a whole minute); when none does (a gap),
  // the first whole minute whose wall clock reads later: the instant the clocks jump.
  absl::Time Resolve(absl::CivilSecond local) {
    auto it = memo_.find(local);
    if (it != memo_.end()) return it->second;
    const absl::Time as_utc = absl::FromCivil(local, absl::UTCTimeZone());
    std::optional<absl::Time> later;
    std::optional<absl::Time> found;
    for (int m = -16 * 60; m <= 16 * 60 && !found.has_value(); ++m) {
      const absl::Time x = as_utc + absl::Minutes(m);
      const absl::CivilSecond w = Wall(x, tz_);
      if (w == local) found = x;
      if (w > local && !later.has_value()) later = x;
    }
    const absl::Time at = found.value_or(later.value_or(absl::InfiniteFuture()));
    memo_.emplace(local, at);
    return at;
  }

 private:
  absl::TimeZone tz_;
  std::map<absl::CivilSecond, absl::Time> memo_;
};

int IsoWeekday(absl::CivilDay d) {
  // 1970-01-05 was a Monday.
  const int64_t days = d - absl::CivilDay(1970, 1, 5);
  return static_cast<int>(((days % 7) + 7) % 7) + 1;
}

// An email's send window in its enrollment's zone.
struct Window {
  v1::SendWindow ranges;
  std::set<absl::CivilDay> holidays;
};

bool Inside(absl::Time x, const Window& w, LocalTimes& local) {
  if (w.ranges.ranges().empty() && w.holidays.empty()) return true;
  const absl::CivilDay day(Wall(x, local.tz()));
  for (absl::CivilDay d = day - 1; d <= day + 1; ++d) {
    if (w.holidays.count(d) > 0) continue;
    const absl::CivilSecond midnight(d);
    if (w.ranges.ranges().empty()) {
      if (local.Resolve(midnight) <= x && x < local.Resolve(absl::CivilSecond(d + 1))) return true;
      continue;
    }
    for (const v1::WindowRange& r : w.ranges.ranges()) {
      if (r.weekday() != IsoWeekday(d)) continue;
      // CivilSecond normalizes 24:00 to the next day's 00:00.
      const absl::Time start = local.Resolve(absl::CivilSecond(
          d.year(), d.month(), d.day(), r.start().hours(), r.start().minutes(), 0));
      const absl::Time end = local.Resolve(
          absl::CivilSecond(d.year(), d.month(), d.day(), r.end().hours(), r.end().minutes(), 0));
      if (start <= x && x < end) return true;
    }
  }
  return false;
}

// Emails the sender may still send at `t` given `sends` (instants, all <= t): the daily limit
// counts sends of t's local calendar day in `tz`, the hourly one those of its local clock hour.
int Capacity(absl::Time t, const std::vector<absl::Time>& sends, int daily, int hourly,
             absl::TimeZone tz) {
  const absl::CivilSecond now = Wall(t, tz);
  int day = 0, hour = 0;
  for (absl::Time s : sends) {
    const absl::CivilSecond w = Wall(s, tz);
    if (absl::CivilDay(w) == absl::CivilDay(now)) ++day;
    if (absl::CivilHour(w) == absl::CivilHour(now)) ++hour;
  }
  int left = daily - day;
  if (hourly > 0) left = std::min(left, hourly - hour);
  return std::max(0, left);
}

// The first instant in [from, until] at which `allowed` holds, trying `from`, every whole UTC
// minute after it and every instant of `extra` after it, in order; nullopt if none does.
template <typename Allowed>
std::optional<absl::Time> FirstAllowed(absl::Time from, absl::Time until,
                                       std::vector<absl::Time> extra, Allowed allowed) {
  std::sort(extra.begin(), extra.end());
  absl::Time t = from;
  while (t <= until) {
    if (allowed(t)) return t;
    absl::Time next = absl::FromUnixSeconds((absl::ToUnixSeconds(t) / 60 + 1) * 60);
    if (next <= t) next += absl::Minutes(1);  // t before 1970 (not expected)
    auto it = std::upper_bound(extra.begin(), extra.end(), t);
    if (it != extra.end() && *it < next) next = *it;
    t = next;
  }
  return std::nullopt;
}

}  // namespace brute

// ---------------------------------------------------------------- scenarios

const char* const kZones[] = {"Australia/Lord_Howe", "America/St_Johns", "Asia/Kathmandu",
                              "Pacific/Chatham",     "Europe/Berlin",    "Europe/London",
                              "America/New_York",    "America/Santiago", "UTC"};

std::string AnyZone() {
  return *rc::gen::elementOf(std::vector<std::string>(std::begin(kZones), std::end(kZones)));
}

// An instant worth testing around in `zone`: one of its DST changes in 2025..2027, one of its
// local midnights, or any instant of those years.
absl::Time Anchor(const std::string& zone) {
  const absl::TimeZone tz = Zone(zone);
  const absl::Time lo = absl::FromCivil(absl::CivilSecond(2025, 1, 1), absl::UTCTimeZone());
  const int kind = *rc::gen::inRange(0, 3);
  if (kind == 0) {
    std::vector<absl::Time> changes;
    absl::TimeZone::CivilTransition tr;
    absl::Time t = lo;
    while (changes.size() < 6 && tz.NextTransition(t, &tr)) {
      // The instant of the change: the first after a gap, the second pass's start of a repeat.
      const absl::TimeZone::TimeInfo to = tz.At(tr.to);
      t = to.kind == absl::TimeZone::TimeInfo::UNIQUE ? to.pre : to.trans;
      changes.push_back(t);
    }
    if (!changes.empty()) return *rc::gen::elementOf(changes);
  }
  const absl::CivilDay day = absl::CivilDay(2025, 1, 1) + *rc::gen::inRange(0, 3 * 365);
  if (kind == 1) {
    // Its first instant by the wall clock: the first whole minute reading that day.
    absl::Time t = absl::FromCivil(absl::CivilSecond(day), absl::UTCTimeZone()) - absl::Hours(16);
    while (absl::CivilDay(tz.At(t).cs) < day) t += absl::Minutes(1);
    return t;
  }
  return absl::FromCivil(absl::CivilSecond(day), absl::UTCTimeZone()) +
         absl::Seconds(*rc::gen::inRange(0, 86400));
}

v1::TimeOfDay Tod(int minutes) {
  v1::TimeOfDay t;
  t.set_hours(minutes / 60);
  t.set_minutes(minutes % 60);
  return t;
}

// A send window as a sequence may set it: per weekday none, one or two ranges, their edges often
// on the hours DST changes touch (00:00-03:30, 23:00-24:00); or none at all (always open).
v1::SendWindow AnyWindow() {
  v1::SendWindow w;
  if (*rc::gen::inRange(0, 4) == 0) return w;
  static const std::vector<int> kEdges = {0,   30,  60,  90,  105,  120,  135, 150,
                                          165, 180, 210, 240, 1380, 1410, 1440};
  for (int day = v1::WEEKDAY_MONDAY; day <= v1::WEEKDAY_SUNDAY; ++day) {
    if (*rc::gen::inRange(0, 5) == 0) continue;
    std::vector<int> edges;
    const int n = *rc::gen::inRange(1, 3) * 2;
    for (int i = 0; i < n; ++i) {
      edges.push_back(*rc::gen::inRange(0, 2) == 0 ? *rc::gen::elementOf(kEdges)
                                                   : *rc::gen::inRange(0, 96) * 15);
    }
    std::sort(edges.begin(), edges.end());
    edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
    for (size_t i = 0; i + 1 < edges.size(); i += 2) {
      if (edges[i] >= 1440) break;
      v1::WindowRange* r = w.add_ranges();
      r->set_weekday(static_cast<v1::Weekday>(day));
      *r->mutable_start() = Tod(edges[i]);
      *r->mutable_end() = Tod(edges[i + 1]);
    }
  }
  return w;
}

// An email of the sender's queue, with its window as the reference sees it.
struct Email {
  QueuedSend q;
  brute::Window window;
  std::string zone;
};

std::vector<Email> AnyEmails(absl::Time around, int max_emails, absl::Duration due_before,
                             absl::Duration due_after) {
  const int sequences = *rc::gen::inRange(1, 4);
  std::map<std::string, std::pair<std::string, v1::SendWindow>> windows;  // zone, window
  for (int s = 0; s < sequences; ++s) windows[absl::StrCat("s", s)] = {AnyZone(), AnyWindow()};
  std::vector<Email> out;
  const int n = *rc::gen::inRange(1, max_emails + 1);
  for (int i = 0; i < n; ++i) {
    const std::string seq = absl::StrCat("s", *rc::gen::inRange(0, sequences));
    const auto& [zone, window] = windows[seq];
    Email e;
    e.zone = zone;
    e.window.ranges = window;
    e.q.id = absl::StrCat("e", i);
    e.q.sequence_id = seq;
    e.q.due_at = around + absl::Seconds(*rc::gen::inRange<int64_t>(
                              -absl::ToInt64Seconds(due_before), absl::ToInt64Seconds(due_after)));
    e.q.calendar.tz = Zone(zone);
    e.q.calendar.window = window;
    // Now and then a holiday on the local day it comes due, or the next.
    if (*rc::gen::inRange(0, 6) == 0) {
      const absl::CivilDay d =
          absl::CivilDay(e.q.calendar.tz.At(e.q.due_at).cs) + *rc::gen::inRange(0, 2);
      e.q.calendar.holidays.insert(d);
      e.window.holidays.insert(d);
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::string Show(absl::Time t, const std::string& zone) {
  return absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone()), " (",
                      absl::FormatTime("%Y-%m-%d %H:%M:%E*S %Z", t, Zone(zone)), ")");
}

std::string Show(const std::optional<absl::Time>& t, const std::string& zone) {
  return t.has_value() ? Show(*t, zone) : "none";
}

// Zones and windows of a case, resolved by the reference.
struct Reference {
  std::map<std::string, brute::LocalTimes> zones;
  brute::LocalTimes& Of(const std::string& zone) {
    return zones.try_emplace(zone, Zone(zone)).first->second;
  }
  bool Inside(absl::Time t, const Email& e) { return brute::Inside(t, e.window, Of(e.zone)); }
};

constexpr absl::Duration kHorizon = absl::Hours(24 * 12);

// ---------------------------------------------------------------- send limits

struct LimitCase {
  std::string company_zone;
  SendLimits limits;
  absl::Time now;
  std::vector<absl::Time> history;  // earlier sends of the sender, all <= now
  std::vector<Email> emails;
};

LimitCase AnyLimitCase(int max_emails) {
  LimitCase c;
  c.company_zone = AnyZone();
  c.limits.tz = Zone(c.company_zone);
  c.limits.daily = *rc::gen::inRange(1, 6);
  c.limits.hourly = *rc::gen::inRange(0, 2) == 0 ? 0 : *rc::gen::inRange(1, c.limits.daily + 1);
  c.now = Anchor(c.company_zone) + absl::Seconds(*rc::gen::inRange(-3 * 3600, 3 * 3600));
  // Sends of the last 25 hours, often crowded just before `now` so the limit is reached there.
  const int sends = *rc::gen::inRange(0, 2 * c.limits.daily + 1);
  const int64_t spread = *rc::gen::elementOf(std::vector<int64_t>{25 * 3600, 2 * 3600, 3600, 1200});
  for (int i = 0; i < sends; ++i) {
    c.history.push_back(c.now - absl::Seconds(*rc::gen::inRange<int64_t>(0, spread)));
  }
  c.emails = AnyEmails(c.now, max_emails, absl::Hours(3), absl::Hours(30));
  return c;
}

std::string Describe(const LimitCase& c) {
  std::string out = absl::StrCat("company zone ", c.company_zone, ", ", c.limits.daily, "/day ",
                                 c.limits.hourly, "/hour, now ", Show(c.now, c.company_zone), "\n");
  for (absl::Time s : c.history) absl::StrAppend(&out, "  sent ", Show(s, c.company_zone), "\n");
  for (const Email& e : c.emails) {
    absl::StrAppend(&out, "  ", e.q.id, " of ", e.q.sequence_id, " due ", Show(e.q.due_at, e.zone),
                    " window ", e.window.ranges.ShortDebugString(), " holidays ",
                    e.window.holidays.size(), "\n");
  }
  return out;
}

TEST_CASE(
    "Send limits against a brute-force reference: what goes now is exactly what the limit and "
    "the windows allow now, and the next release is the earliest instant at which the limit "
    "allows one more and a waiting email is due inside its window",
    "[send_limits][property][reference]") {
  rc::prop("next release == reference", [] {
    const LimitCase c = AnyLimitCase(5);
    RC_LOG() << Describe(c);
    Reference ref;
    SendCounters counters;
    for (absl::Time s : c.history) counters.Add(s);
    std::vector<QueuedSend> queue;
    for (const Email& e : c.emails) queue.push_back(e.q);
    const ReleasePlan plan = PlanReleases(counters, queue, "", c.limits, c.now);

    // Now: as many as the limit allows of those due and inside their window.
    std::set<std::string> eligible;
    for (const Email& e : c.emails) {
      if (e.q.due_at <= c.now && ref.Inside(c.now, e)) eligible.insert(e.q.id);
    }
    const int capacity =
        brute::Capacity(c.now, c.history, c.limits.daily, c.limits.hourly, c.limits.tz);
    for (const std::string& id : plan.released) RC_ASSERT(eligible.count(id) > 0);
    RC_ASSERT(plan.released.size() == std::min<size_t>(capacity, eligible.size()));

    // Then: the earliest instant at which one more may go.
    std::vector<absl::Time> sends = c.history;
    const std::set<std::string> released(plan.released.begin(), plan.released.end());
    std::vector<const Email*> waiting;
    std::vector<absl::Time> dues;
    for (const Email& e : c.emails) {
      if (released.count(e.q.id) > 0) {
        sends.push_back(c.now);
      } else {
        waiting.push_back(&e);
        dues.push_back(e.q.due_at);
      }
    }
    std::optional<absl::Time> expected;
    if (!waiting.empty()) {
      expected = brute::FirstAllowed(c.now, c.now + kHorizon, dues, [&](absl::Time t) {
        if (brute::Capacity(t, sends, c.limits.daily, c.limits.hourly, c.limits.tz) == 0) {
          return false;
        }
        for (const Email* e : waiting) {
          if (e->q.due_at <= t && ref.Inside(t, *e)) return true;
        }
        return false;
      });
      RC_PRE(expected.has_value());  // every generated window opens within the horizon
    }
    RC_LOG() << "planned " << Show(plan.next_release, c.company_zone) << ", reference "
             << Show(expected, c.company_zone) << "\n";
    RC_TAG(plan.limit_reached.empty() ? "no limit reached" : "limit reached");
    RC_TAG(expected.has_value() && *expected > c.now ? "waits" : "nothing waits");
    RC_ASSERT(plan.next_release == expected);
  });
}

// The sender run over time: requests join its queue when due, it plans at each arrival and each
// next release it asked for (folding its ledger like the executor); what it sent and when.
std::map<std::string, absl::Time> RunSender(const LimitCase& c) {
  std::map<std::string, const Email*> by_id;
  for (const Email& e : c.emails) by_id[e.q.id] = &e;
  SenderState state;
  for (absl::Time s : c.history) state.sent.Add(s);
  std::map<std::string, absl::Time> sent;
  std::set<std::string> arrived;
  absl::Time now = c.now;
  for (int i = 0; i < 2000 && sent.size() < c.emails.size(); ++i) {
    v1::SendLedgerEntry entry;
    entry.set_sender_key("c/sender/u");
    entry.set_seq(state.seq + 1);
    *entry.mutable_at() = ToProto(now);
    std::vector<QueuedSend> queue;
    for (const auto& [id, r] : state.queue) queue.push_back(by_id.at(id)->q);
    for (const Email& e : c.emails) {
      if (e.q.due_at <= now && arrived.insert(e.q.id).second) {
        entry.add_queued()->mutable_email()->set_idempotency_key(e.q.id);
        entry.mutable_queued()->rbegin()->mutable_email()->set_sequence_id(e.q.sequence_id);
        queue.push_back(e.q);
      }
    }
    const ReleasePlan plan = PlanReleases(state.sent, queue, state.last_sequence_id, c.limits, now);
    for (const std::string& id : plan.released) {
      entry.add_released(id);
      sent[id] = now;
    }
    if (plan.next_release) *entry.mutable_next_release_at() = ToProto(*plan.next_release);
    state = EvolveSender(std::move(state), entry);
    std::optional<absl::Time> next = plan.next_release;
    for (const Email& e : c.emails) {
      if (e.q.due_at > now && (!next || e.q.due_at < *next)) next = e.q.due_at;
    }
    if (!next.has_value()) break;
    now = std::max(*next, now + absl::Microseconds(1));
  }
  return sent;
}

TEST_CASE(
    "A sender run over days against a brute-force reference: at every instant it sends exactly "
    "min(what the limit allows then, emails due and inside their window then), so each email goes "
    "at the earliest instant the limit and its window allow, never earlier, never later",
    "[send_limits][property][reference]") {
  rc::prop("releases == reference", [] {
    LimitCase c = AnyLimitCase(6);
    c.emails = AnyEmails(c.now, 6, absl::Hours(1), absl::Hours(40));
    RC_LOG() << Describe(c);
    const std::map<std::string, absl::Time> sent = RunSender(c);
    RC_ASSERT(sent.size() == c.emails.size());  // none lost, each once (a map)
    absl::Time last = c.now;
    std::vector<absl::Time> extra;
    for (const auto& [id, at] : sent) {
      last = std::max(last, at);
      extra.push_back(at);
    }
    for (const Email& e : c.emails) extra.push_back(e.q.due_at);
    Reference ref;
    // Every instant from the start to the last send: the sends at it against the reference.
    std::optional<std::string> broken;
    brute::FirstAllowed(c.now, last, extra, [&](absl::Time t) {
      std::vector<absl::Time> before = c.history;
      int at_t = 0;
      for (const auto& [id, at] : sent) {
        if (at < t) before.push_back(at);
        if (at == t) ++at_t;
      }
      int eligible = 0;
      for (const Email& e : c.emails) {
        const bool waiting = e.q.due_at <= t && sent.at(e.q.id) >= t;
        if (!waiting || !ref.Inside(t, e)) {
          if (sent.at(e.q.id) == t) broken = absl::StrCat(e.q.id, " sent when not allowed");
          continue;
        }
        ++eligible;
      }
      const int capacity = brute::Capacity(t, before, c.limits.daily, c.limits.hourly, c.limits.tz);
      if (at_t != std::min(capacity, eligible)) {
        broken = absl::StrCat(at_t, " sent, reference: ", std::min(capacity, eligible),
                              " (capacity ", capacity, ", eligible ", eligible, ")");
      }
      if (broken.has_value()) {
        absl::StrAppend(&*broken, " at ", Show(t, c.company_zone));
        return true;
      }
      return false;
    });
    for (const auto& [id, at] : sent)
      RC_LOG() << id << " sent " << Show(at, c.company_zone) << "\n";
    RC_ASSERT(broken.value_or("") == "");
  });
}

// ---------------------------------------------------------------- minimum gap

absl::Duration AnyGap() {
  static const std::vector<int64_t> kGaps = {15 * 60,   3600,      5400,     23 * 3600,
                                             24 * 3600, 25 * 3600, 2 * 86400};
  return absl::Seconds(*rc::gen::inRange(0, 2) == 0 ? *rc::gen::elementOf(kGaps)
                                                    : *rc::gen::inRange<int64_t>(60, 3 * 86400));
}

// Order of the person's queue: due time, then id.
bool Earlier(const Email* a, const Email* b) {
  if (a->q.due_at != b->q.due_at) return a->q.due_at < b->q.due_at;
  return a->q.id < b->q.id;
}

TEST_CASE(
    "Minimum gap against a brute-force reference: the person stage forwards the first email due "
    "inside its window once the gap has passed, else looks again at the earliest instant at "
    "which the gap has passed and a waiting email is due inside its window",
    "[min_gap][property][reference]") {
  rc::prop("forward and next look == reference", [] {
    const std::string zone = AnyZone();
    const absl::Time now = Anchor(zone) + absl::Seconds(*rc::gen::inRange(-3 * 3600, 3 * 3600));
    const bool no_gap = *rc::gen::inRange(0, 8) == 0;
    const absl::Duration gap = no_gap ? absl::ZeroDuration() : AnyGap();
    std::optional<absl::Time> last_sent;
    if (*rc::gen::inRange(0, 5) > 0) {
      last_sent =
          now - absl::Seconds(*rc::gen::inRange<int64_t>(0, absl::ToInt64Seconds(gap) + 2 * 86400));
    }
    const std::vector<Email> emails = AnyEmails(now, 4, absl::Hours(3), absl::Hours(30));
    RC_LOG() << "zone " << zone << ", gap " << FormatGap(gap) << ", last sent "
             << Show(last_sent, zone) << ", now " << Show(now, zone) << "\n";
    for (const Email& e : emails) {
      RC_LOG() << "  " << e.q.id << " due " << Show(e.q.due_at, e.zone) << " window "
               << e.window.ranges.ShortDebugString() << "\n";
    }
    std::vector<QueuedSend> queue;
    for (const Email& e : emails) queue.push_back(e.q);
    const TouchPlan plan = PlanTouch(last_sent, false, queue, gap, now);

    Reference ref;
    const absl::Time allowed =
        no_gap || !last_sent.has_value() ? absl::InfinitePast() : *last_sent + gap;
    std::vector<const Email*> ready;  // due and inside the window now, in queue order
    for (const Email& e : emails) {
      if (e.q.due_at <= now && ref.Inside(now, e)) ready.push_back(&e);
    }
    std::sort(ready.begin(), ready.end(), Earlier);
    std::vector<const Email*> waiting;
    std::vector<absl::Time> extra = {allowed};
    if (no_gap) {
      std::vector<std::string> expected;
      for (const Email* e : ready) expected.push_back(e->q.id);
      RC_ASSERT(plan.passed == expected);
      RC_ASSERT(!plan.forward.has_value());
      for (const Email& e : emails) {
        if (std::find(ready.begin(), ready.end(), &e) == ready.end()) waiting.push_back(&e);
      }
    } else if (allowed <= now && !ready.empty()) {
      RC_ASSERT(plan.forward == std::optional<std::string>(ready.front()->q.id));
      return;  // in flight now: the notice of its send wakes the stage
    } else {
      RC_ASSERT(!plan.forward.has_value());
      for (const Email& e : emails) waiting.push_back(&e);
    }
    std::optional<absl::Time> expected;
    if (!waiting.empty()) {
      for (const Email* e : waiting) extra.push_back(e->q.due_at);
      expected = brute::FirstAllowed(now, now + kHorizon, extra, [&](absl::Time t) {
        if (t < allowed) return false;
        for (const Email* e : waiting) {
          if (e->q.due_at <= t && ref.Inside(t, *e)) return true;
        }
        return false;
      });
      RC_PRE(expected.has_value());
    }
    RC_LOG() << "planned " << Show(plan.next_look, zone) << ", reference " << Show(expected, zone)
             << "\n";
    RC_ASSERT(plan.next_look == expected);
  });
}

TEST_CASE(
    "A person stage run over days in front of a sender that sends at once, against a "
    "brute-force reference: at every instant an email goes exactly when the gap since the last "
    "send has passed and one is due inside its window (the first in due order), so each waits "
    "no longer than the gap and its window demand",
    "[min_gap][property][reference]") {
  rc::prop("sends == reference", [] {
    const std::string zone = AnyZone();
    const absl::Time start = Anchor(zone) + absl::Seconds(*rc::gen::inRange(-3 * 3600, 3 * 3600));
    const absl::Duration gap = AnyGap();
    const std::vector<Email> emails = AnyEmails(start, 5, absl::Hours(0), absl::Hours(40));
    std::map<std::string, const Email*> by_id;
    for (const Email& e : emails) by_id[e.q.id] = &e;
    RC_LOG() << "gap " << FormatGap(gap) << ", start " << Show(start, zone) << "\n";

    // The stage's loop: arrivals at their due time, the sender's notice at once.
    std::map<std::string, absl::Time> sent;
    std::optional<absl::Time> last_sent;
    std::set<std::string> queued;
    absl::Time now = start;
    for (int i = 0; i < 2000 && sent.size() < emails.size(); ++i) {
      for (const Email& e : emails) {
        if (e.q.due_at <= now && sent.count(e.q.id) == 0) queued.insert(e.q.id);
      }
      std::vector<QueuedSend> queue;
      for (const std::string& id : queued) queue.push_back(by_id.at(id)->q);
      const TouchPlan plan = PlanTouch(last_sent, false, queue, gap, now);
      std::optional<absl::Time> next = plan.next_look;
      if (plan.forward.has_value()) {
        sent[*plan.forward] = now;
        last_sent = now;
        queued.erase(*plan.forward);
        next = now;  // the notice: the stage looks again at once
      }
      for (const Email& e : emails) {
        if (e.q.due_at > now && (!next || e.q.due_at < *next)) next = e.q.due_at;
      }
      if (!next.has_value()) break;
      now = std::max(*next, now);
    }
    RC_ASSERT(sent.size() == emails.size());

    absl::Time end = start;
    std::vector<absl::Time> extra;
    for (const auto& [id, at] : sent) {
      end = std::max(end, at);
      extra.push_back(at);
      extra.push_back(at + gap);
    }
    for (const Email& e : emails) extra.push_back(e.q.due_at);
    Reference ref;
    std::optional<std::string> broken;
    brute::FirstAllowed(start, end, extra, [&](absl::Time t) {
      std::optional<absl::Time> last;
      std::vector<std::string> at_t;
      for (const auto& [id, at] : sent) {
        if (at < t && (!last || at > *last)) last = at;
        if (at == t) at_t.push_back(id);
      }
      std::vector<const Email*> ready;
      for (const Email& e : emails) {
        if (e.q.due_at <= t && sent.at(e.q.id) >= t && ref.Inside(t, e)) ready.push_back(&e);
      }
      std::sort(ready.begin(), ready.end(), Earlier);
      const bool gap_passed = !last.has_value() || t >= *last + gap;
      std::vector<std::string> expected;
      if (gap_passed && !ready.empty()) expected.push_back(ready.front()->q.id);
      if (at_t != expected) {
        broken = absl::StrCat(at_t.size(), " sent at ", Show(t, zone), " (",
                              at_t.empty() ? "" : at_t.front(),
                              "), reference: ", expected.empty() ? "none" : expected.front());
        return true;
      }
      return false;
    });
    for (const auto& [id, at] : sent) {
      RC_LOG() << id << " due " << Show(by_id.at(id)->q.due_at, by_id.at(id)->zone) << " window "
               << by_id.at(id)->window.ranges.ShortDebugString() << " sent " << Show(at, zone)
               << "\n";
    }
    RC_ASSERT(broken.value_or("") == "");
  });
}

}  // namespace
}  // namespace sequences::domain
