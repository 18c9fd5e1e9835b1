#include "libs/domain/send_limits.h"

#include <algorithm>
#include <limits>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "libs/domain/envelope.h"
#include "libs/domain/errors.h"

namespace sequences::domain {
namespace {

constexpr int64_t kBucketSeconds = 15 * 60;
constexpr absl::Duration kKeep = absl::Hours(26);

int64_t BucketOf(absl::Time t) {
  const int64_t s = absl::ToUnixSeconds(t);
  // Floor division (times before 1970 are not expected, but stay correct).
  return s >= 0 ? s / kBucketSeconds : -((-s + kBucketSeconds - 1) / kBucketSeconds);
}

// Releasing order within a sequence: due time, then id.
bool FifoLess(const QueuedSend* a, const QueuedSend* b) {
  if (a->due_at != b->due_at) return a->due_at < b->due_at;
  return a->id < b->id;
}

}  // namespace

v1::CompanySendingSettings EffectiveSendingSettings(const v1::CompanySendingSettings& settings) {
  v1::CompanySendingSettings out = settings;
  if (out.daily_limit_per_sender() <= 0) out.set_daily_limit_per_sender(kDefaultDailySendLimit);
  if (out.hourly_limit_per_sender() < 0) out.set_hourly_limit_per_sender(0);
  if (out.time_zone().empty() || !IsValidTimeZoneName(out.time_zone())) out.set_time_zone("UTC");
  return out;
}

SendLimits LimitsOf(const v1::CompanySendingSettings& settings) {
  const v1::CompanySendingSettings s = EffectiveSendingSettings(settings);
  SendLimits limits;
  limits.daily = s.daily_limit_per_sender();
  limits.hourly = s.hourly_limit_per_sender();
  limits.tz = LoadZoneOrUtc(s.time_zone());
  return limits;
}

absl::Status ValidateSendingSettings(const v1::CompanySendingSettings& settings) {
  if (settings.daily_limit_per_sender() < 0 || settings.daily_limit_per_sender() > kMaxSendLimit) {
    return InvalidField("settings.daily_limit_per_sender",
                        absl::StrCat("must be between 1 and ", kMaxSendLimit, " (0: the default, ",
                                     kDefaultDailySendLimit, ")"));
  }
  if (settings.hourly_limit_per_sender() < 0 ||
      settings.hourly_limit_per_sender() > kMaxSendLimit) {
    return InvalidField("settings.hourly_limit_per_sender",
                        absl::StrCat("must be between 0 (none) and ", kMaxSendLimit));
  }
  const int daily = EffectiveSendingSettings(settings).daily_limit_per_sender();
  if (settings.hourly_limit_per_sender() > daily) {
    return InvalidField("settings.hourly_limit_per_sender",
                        absl::StrCat("must not exceed the daily limit (", daily, ")"));
  }
  if (!settings.time_zone().empty() && !IsValidTimeZoneName(settings.time_zone())) {
    return InvalidField("settings.time_zone", "is not an IANA time zone name");
  }
  // 30 days (min_gap.h's kMaxMinGapSeconds; not included here to keep the headers acyclic).
  constexpr int64_t kMaxGap = 30 * 24 * 3600;
  if (settings.min_gap_between_emails_seconds() < 0 ||
      settings.min_gap_between_emails_seconds() > kMaxGap) {
    return InvalidField("settings.min_gap_between_emails_seconds",
                        absl::StrCat("must be between 0 (none) and ", kMaxGap, " (30 days)"));
  }
  return absl::OkStatus();
}

std::string CompanySettingsKey(absl::string_view company_id) {
  return absl::StrCat("company:", company_id);
}

std::optional<std::string> CompanySettingsEventCompany(const v1::Envelope& event) {
  if (!event.has_company_sending_settings_changed()) return std::nullopt;
  return event.company_sending_settings_changed().company_id();
}

CompanySendingState EvolveCompanySending(CompanySendingState state, const v1::Envelope& event) {
  if (!event.has_company_sending_settings_changed()) return state;
  const v1::CompanySendingSettingsChanged& c = event.company_sending_settings_changed();
  if (!state.company_id.empty() && c.company_id() != state.company_id) return state;
  if (c.version() <= state.version) return state;
  state.company_id = c.company_id();
  state.version = c.version();
  state.settings = c.settings();
  return state;
}

std::string SenderKey(absl::string_view company_id, absl::string_view user_id) {
  return absl::StrCat(company_id, "/sender/", user_id);
}

bool IsSenderKey(absl::string_view key) {
  const size_t at = key.find("/sender/");
  return at != absl::string_view::npos && at < key.find("/person/");  // as IsPersonKey
}

void SendCounters::Add(absl::Time at, int n) { buckets[BucketOf(at)] += n; }

int SendCounters::SentSince(absl::Time from) const {
  int n = 0;
  for (auto it = buckets.lower_bound(BucketOf(from)); it != buckets.end(); ++it) n += it->second;
  return n;
}

void SendCounters::Prune(absl::Time now) {
  buckets.erase(buckets.begin(), buckets.lower_bound(BucketOf(now - kKeep)));
}

absl::Time DayStart(absl::Time now, const SendLimits& limits) {
  const absl::CivilDay day(limits.tz.At(now).cs);
  return FromLocal(absl::CivilSecond(day), limits.tz);
}

absl::Time HourStart(absl::Time now, const SendLimits& limits) {
  const absl::CivilHour hour(limits.tz.At(now).cs);
  return FromLocal(absl::CivilSecond(hour), limits.tz);
}

namespace {

absl::Time NextDayStart(absl::Time now, const SendLimits& limits) {
  const absl::CivilDay day(limits.tz.At(now).cs);
  return FromLocal(absl::CivilSecond(day + 1), limits.tz);
}

absl::Time NextHourStart(absl::Time now, const SendLimits& limits) {
  const absl::CivilHour hour(limits.tz.At(now).cs);
  // The next hour's start after `now`: skipped (spring forward), at the change; repeated (fall
  // back), its occurrence after `now` (Chatham repeats 02:45-03:45: from 02:50 of the second
  // pass, 03:00 is the second 03:00).
  const absl::TimeZone::TimeInfo next = limits.tz.At(absl::CivilSecond(hour + 1));
  absl::Time t = next.pre;
  if (next.kind == absl::TimeZone::TimeInfo::SKIPPED) t = next.trans;
  if (next.kind == absl::TimeZone::TimeInfo::REPEATED && next.pre <= now) t = next.post;
  // An offset change before then that puts the clock in another hour (Chatham's 03:45 -> 02:45:
  // from hour 03 back into hour 02) starts that hour at the change.
  absl::TimeZone::CivilTransition change;
  if (limits.tz.NextTransition(now, &change)) {
    // The instant of the change: `to` is repeated after a fall back (its `trans` is the change).
    const absl::TimeZone::TimeInfo to = limits.tz.At(change.to);
    const absl::Time at = to.kind == absl::TimeZone::TimeInfo::UNIQUE ? to.pre : to.trans;
    if (at > now && at < t && absl::CivilHour(change.to) != hour) t = at;
  }
  return t;
}

// Capacity left at `now` given `sent` (never negative).
struct Left {
  int day = 0;
  int hour = std::numeric_limits<int>::max();
  int capacity() const { return std::max(0, std::min(day, hour)); }
};

// Sent in `now`'s clock hour of the limits' zone. Usually all that was sent since the hour began;
// when the offset changed since, only what was sent while the clock showed this hour (Chatham's
// 03:45 -> 02:45 returns to hour 02 after 45 minutes of hour 03, which are not hour 02's).
// Offsets change on quarter hours, so each 15-minute bucket lies in one clock hour.
int SentThisHour(const SendCounters& sent, const SendLimits& limits, absl::Time now) {
  const absl::Time start = HourStart(now, limits);
  const absl::TimeZone::CivilInfo here = limits.tz.At(now);
  if (limits.tz.At(start).offset == here.offset) return sent.SentSince(start);
  const absl::CivilHour hour(here.cs);
  int n = 0;
  for (auto it = sent.buckets.lower_bound(BucketOf(start)); it != sent.buckets.end(); ++it) {
    const absl::Time bucket = absl::FromUnixSeconds(it->first * kBucketSeconds);
    if (absl::CivilHour(limits.tz.At(bucket).cs) == hour) n += it->second;
  }
  return n;
}

Left LeftAt(const SendCounters& sent, const SendLimits& limits, absl::Time now) {
  Left left;
  left.day = limits.daily - sent.SentSince(DayStart(now, limits));
  if (limits.hourly > 0) left.hour = limits.hourly - SentThisHour(sent, limits, now);
  return left;
}

// The first instant with capacity once `used` more are sent at `now`: every later instant has
// some too (counts only grow by sends, and a new hour or day starts from zero; a clock hour an
// offset change returns to keeps what was sent in it, so the next hour with room is looked for).
// Names the limit that is reached in `plan`.
absl::Time FirstCapacity(const SendCounters& sent, Left left, int used, const SendLimits& limits,
                         absl::Time now, ReleasePlan& plan) {
  left.day -= used;
  if (limits.hourly > 0) left.hour -= used;
  if (left.day <= 0) {
    plan.limit_reached = absl::StrCat(limits.daily, "/day reached");
    return NextDayStart(now, limits);
  }
  if (left.hour <= 0) {
    plan.limit_reached = absl::StrCat(limits.hourly, "/hour reached");
    SendCounters after = sent;
    after.Add(now, used);
    absl::Time t = NextHourStart(now, limits);
    // An hour returned to by an offset change may be full too; at most two such in a row.
    for (int i = 0; i < 4 && SentThisHour(after, limits, t) >= limits.hourly; ++i) {
      t = NextHourStart(t, limits);
    }
    return t;
  }
  return now;
}

}  // namespace

ReleasePlan PlanReleases(const SendCounters& sent, const std::vector<QueuedSend>& queue,
                         const std::string& last_sequence_id, const SendLimits& limits,
                         absl::Time now) {
  ReleasePlan plan;
  plan.last_sequence_id = last_sequence_id;
  Left left = LeftAt(sent, limits, now);

  // Eligible requests per sequence, FIFO.
  std::map<std::string, std::vector<const QueuedSend*>> eligible;
  for (const QueuedSend& q : queue) {
    if (q.due_at <= now && AlignToWindow(now, q.calendar) == now) {
      eligible[q.sequence_id].push_back(&q);
    }
  }
  for (auto& [seq, list] : eligible) std::sort(list.begin(), list.end(), FifoLess);

  std::map<std::string, size_t> taken;  // per sequence: how many of its eligible were released
  int capacity = left.capacity();
  while (capacity > 0) {
    // The next sequence after the last served one that still has an eligible request.
    auto pick = [&](auto begin, auto end) {
      for (auto it = begin; it != end; ++it) {
        if (taken[it->first] < it->second.size()) return it;
      }
      return eligible.end();
    };
    auto it = pick(eligible.upper_bound(plan.last_sequence_id), eligible.end());
    if (it == eligible.end()) it = pick(eligible.begin(), eligible.end());
    if (it == eligible.end()) break;
    plan.released.push_back(it->second[taken[it->first]++]->id);
    plan.last_sequence_id = it->first;
    --capacity;
  }

  std::set<std::string> released(plan.released.begin(), plan.released.end());
  const absl::Time first_capacity =
      FirstCapacity(sent, left, static_cast<int>(plan.released.size()), limits, now, plan);
  for (const QueuedSend& q : queue) {
    if (released.count(q.id) > 0) continue;
    const absl::Time t = AlignToWindow(std::max(first_capacity, q.due_at), q.calendar);
    // Still eligible now (capacity was used up): the next capacity instant at the earliest.
    const absl::Time at = t <= now ? std::max(first_capacity, now + absl::Microseconds(1)) : t;
    if (!plan.next_release.has_value() || at < *plan.next_release) plan.next_release = at;
  }
  return plan;
}

namespace {

// A run as PlanReleasesInRuns reads it: what it pulled so far, in order, and how many of those
// it released (a prefix: a sequence releases its requests in (due time, id) order).
struct RunCursor {
  SendRun* run = nullptr;
  std::vector<RunItem> pulled;
  size_t taken = 0;
  bool done = false;
  // The run's request at position `i`, pulling on demand; nullptr past its last.
  const RunItem* At(size_t i) {
    while (pulled.size() <= i && !done) {
      std::optional<RunItem> item = run->next();
      if (item.has_value()) {
        pulled.push_back(std::move(*item));
      } else {
        done = true;
      }
    }
    return i < pulled.size() ? &pulled[i] : nullptr;
  }
  const RunItem* Head() { return At(taken); }
};

}  // namespace

ReleasePlan PlanReleasesInRuns(const SendCounters& sent, std::vector<SendRun> runs,
                               const std::string& last_sequence_id, const SendLimits& limits,
                               absl::Time now) {
  ReleasePlan plan;
  plan.last_sequence_id = last_sequence_id;
  Left left = LeftAt(sent, limits, now);

  std::vector<RunCursor> cursors(runs.size());
  // Sequences with a run whose window is open now: only those may release.
  std::map<std::string, std::vector<RunCursor*>> active;
  for (size_t i = 0; i < runs.size(); ++i) {
    cursors[i].run = &runs[i];
    if (AlignToWindow(now, runs[i].calendar) == now) {
      active[runs[i].sequence_id].push_back(&cursors[i]);
    }
  }
  // A sequence's next eligible request: the least (due time, id) among its open runs' heads due
  // by `now`; nullptr when it has none left.
  auto eligible = [&](const std::vector<RunCursor*>& open) -> RunCursor* {
    RunCursor* best = nullptr;
    const RunItem* best_item = nullptr;
    for (RunCursor* c : open) {
      const RunItem* item = c->Head();
      if (item == nullptr || item->due_at > now) continue;
      if (best_item == nullptr || item->due_at < best_item->due_at ||
          (item->due_at == best_item->due_at && item->id < best_item->id)) {
        best = c;
        best_item = item;
      }
    }
    return best;
  };
  int capacity = left.capacity();
  while (capacity > 0 && !active.empty()) {
    // Round robin: the next sequence after the last served one that still has an eligible
    // request (one that has none now gets none later in this plan: drop it).
    auto it = active.upper_bound(plan.last_sequence_id);
    if (it == active.end()) it = active.begin();
    RunCursor* from = nullptr;
    while (!active.empty()) {
      from = eligible(it->second);
      if (from != nullptr) break;
      it = active.erase(it);
      if (it == active.end()) it = active.begin();
    }
    if (from == nullptr) break;
    plan.released.push_back(from->Head()->id);
    ++from->taken;
    plan.last_sequence_id = it->first;
    --capacity;
  }

  const absl::Time first_capacity =
      FirstCapacity(sent, left, static_cast<int>(plan.released.size()), limits, now, plan);
  auto consider = [&](const RunItem& q, const Calendar& calendar) {
    const absl::Time t = AlignToWindow(std::max(first_capacity, q.due_at), calendar);
    const absl::Time at = t <= now ? std::max(first_capacity, now + absl::Microseconds(1)) : t;
    if (!plan.next_release.has_value() || at < *plan.next_release) plan.next_release = at;
    return t;
  };
  for (RunCursor& c : cursors) {
    const RunItem* head = c.Head();
    if (head == nullptr) continue;
    // The run's first request kept has its earliest due time, so its instant is the run's
    // earliest (aligning is monotone). One still eligible now cannot be kept with capacity left;
    // should it happen anyway, every kept request of the run is looked at, as PlanReleases does.
    if (consider(*head, c.run->calendar) > now) continue;
    for (size_t i = c.taken + 1; const RunItem* q = c.At(i); ++i) consider(*q, c.run->calendar);
  }
  return plan;
}

SenderState EvolveSender(SenderState state, const v1::SendLedgerEntry& entry) {
  if (entry.seq() != state.seq + 1) return state;
  if (!state.sender_key.empty() && entry.sender_key() != state.sender_key) return state;
  state.sender_key = entry.sender_key();
  state.seq = entry.seq();
  const absl::Time at = FromProto(entry.at());
  // A request that this entry queues and also lets go of (released, forwarded, passed on or
  // cancelled: most requests, which wait for nothing) never enters the queue: the same result
  // as adding it and taking it out again, without copying it.
  std::set<absl::string_view> leaving(entry.cancelled().begin(), entry.cancelled().end());
  leaving.insert(entry.released().begin(), entry.released().end());
  leaving.insert(entry.passed().begin(), entry.passed().end());
  if (!entry.forwarded().empty()) leaving.insert(entry.forwarded());
  std::map<absl::string_view, const v1::SendRequested*> passing;
  for (const v1::SendRequested& r : entry.queued()) {
    const std::string& id = r.email().idempotency_key();
    if (state.queue.count(id) > 0) continue;  // queued already: kept once
    if (leaving.count(id) > 0) {
      passing.emplace(id, &r);
    } else {
      state.queue.emplace(id, r);
    }
  }
  for (const std::string& id : entry.cancelled()) {
    state.queue.erase(id);
    passing.erase(id);
  }
  for (const std::string& id : entry.released()) {
    auto it = state.queue.find(id);
    if (it != state.queue.end()) {
      state.last_sequence_id = it->second.email().sequence_id();
      state.queue.erase(it);
      state.sent.Add(at);
    } else if (auto p = passing.find(id); p != passing.end()) {
      state.last_sequence_id = p->second->email().sequence_id();
      passing.erase(p);
      state.sent.Add(at);
    }
  }
  if (!entry.settled().empty() && entry.settled() == state.in_flight) {
    state.in_flight.clear();
    if (entry.has_last_sent_at()) state.last_sent = FromProto(entry.last_sent_at());
  }
  if (!entry.forwarded().empty()) {
    state.queue.erase(entry.forwarded());
    state.in_flight = entry.forwarded();
  }
  for (const std::string& id : entry.passed()) state.queue.erase(id);
  state.sent.Prune(at);
  if (entry.has_next_release_at()) {
    state.next_release = FromProto(entry.next_release_at());
  } else {
    state.next_release.reset();
  }
  return state;
}

std::optional<Withheld> WithheldAtSend(const SequenceState& seq, absl::string_view sender_user_id) {
  if (!seq.exists) return std::nullopt;
  if (seq.deleted) return Withheld{"sequence_deleted", "the sequence was deleted"};
  if (!seq.automated_sending) {
    return Withheld{"automated_sending_off",
                    "automated email sending was switched off for the sequence"};
  }
  if (!seq.HasConsent(sender_user_id)) {
    return Withheld{"consent_missing",
                    absl::StrCat("user ", sender_user_id,
                                 " revoked consent to automated sending for this sequence")};
  }
  return std::nullopt;
}

}  // namespace sequences::domain
