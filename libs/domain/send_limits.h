#ifndef SEQUENCES_LIBS_DOMAIN_SEND_LIMITS_H_
#define SEQUENCES_LIBS_DOMAIN_SEND_LIMITS_H_

// Per-sender send limits with fair queueing (docs/send-limits.md).
//
// A company limits how many automatic emails one sending user sends per calendar day (and
// optionally per clock hour) across all its sequences. Days and hours are those of the company's
// sending settings time zone (CompanySendingSettings.time_zone, default UTC), one zone per
// company, so every sender of a company shares one calendar and "today" never depends on which
// enrollment asks. An email over the limit is neither dropped nor failed: it waits in its
// sender's queue and is released at the next instant the limit and its sequence's send window
// (in the enrollment's time zone) allow.
//
// The rule (PlanReleases): given what the sender sent so far (SendCounters), the limits, `now`
// and the queued requests, which to send now and when to look again.
//   - A request is eligible when it is due and its send window is open at `now`.
//   - Capacity = min(daily - sent today, hourly - sent this hour) (no hourly limit: daily only).
//   - Fairness: round robin over sequences (in sequence id order, starting after the sequence
//     served last), one request per sequence per turn; within a sequence FIFO by due time, then
//     id. A flood in one sequence cannot starve another: each sequence with eligible requests gets
//     a release at least every (number of such sequences) releases.
//   - Deterministic: a function of its arguments only (ties broken by ids, never by arrival), so
//     replaying the log yields the same decisions.
//   - Next release: none when the queue is empty; otherwise the first instant at or after the
//     next moment with capacity (now if capacity is left, else the next hour or day start) at
//     which some remaining request is due and inside its send window.
//
// Counters are kept in 15-minute UTC buckets for the last 26 hours (every zone's day and hour
// start on a quarter hour; a window start that did not would count its whole first bucket, which
// only makes the limit stricter, never looser).
//
// The sender's state (counters, queue, round-robin position) is the fold of its ledger entries
// (v1::SendLedgerEntry) with EvolveSender.
//
// Pure: no IO, no clock reads; thread-compatible value types.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/domain/schedule.h"
#include "libs/domain/sequence.h"
#include "sequences/v1/events.pb.h"
#include "sequences/v1/sequence.pb.h"

namespace sequences::domain {

inline constexpr int kDefaultDailySendLimit = 200;
inline constexpr int kMaxSendLimit = 100000;
// The reason an email waits (EmailDeferred.reason, GetEnrollment's deferred_reason).
inline constexpr char kDeferredSendLimit[] = "send_limit";

// The limits in force.
struct SendLimits {
  int daily = kDefaultDailySendLimit;
  int hourly = 0;  // 0: none
  absl::TimeZone tz = absl::UTCTimeZone();
};

// `settings` with the defaults filled in (daily 200, time zone "UTC").
v1::CompanySendingSettings EffectiveSendingSettings(const v1::CompanySendingSettings& settings);
SendLimits LimitsOf(const v1::CompanySendingSettings& settings);
// INVALID_ARGUMENT (naming the field, "settings.daily_limit_per_sender") when a limit is negative
// or above kMaxSendLimit, the hourly limit is above the daily one, the zone is unknown, or
// min_gap_between_emails_seconds is negative or above 30 days (min_gap.h).
[[nodiscard]] absl::Status ValidateSendingSettings(const v1::CompanySendingSettings& settings);

// A company's sending settings: the fold of its CompanySendingSettingsChanged events.
struct CompanySendingState {
  std::string company_id;
  int64_t version = 0;  // 0: never set (defaults)
  v1::CompanySendingSettings settings;
};
// Folds one event; other events, another company's, and versions not after the state's leave it
// unchanged (the first event of each version in log order is kept).
CompanySendingState EvolveCompanySending(CompanySendingState state, const v1::Envelope& event);
// "company:<company_id>": the sequence-events key and store key of a company's settings.
std::string CompanySettingsKey(absl::string_view company_id);
// The company id of a CompanySendingSettingsChanged, or nullopt for any other event.
std::optional<std::string> CompanySettingsEventCompany(const v1::Envelope& event);

// "<company_id>/sender/<user_id>": the enrollment-events key of a sender's requests, so one
// partition owns a sender's counters and queue.
std::string SenderKey(absl::string_view company_id, absl::string_view user_id);
bool IsSenderKey(absl::string_view key);

// Sends per 15-minute UTC bucket (unix seconds / 900), the last 26 hours.
struct SendCounters {
  std::map<int64_t, int> buckets;
  void Add(absl::Time at, int n = 1);
  // Sends at or after the bucket holding `from`.
  int SentSince(absl::Time from) const;
  // Drops buckets more than 26 hours before `now`.
  void Prune(absl::Time now);
};

// A queued email as the rule sees it.
struct QueuedSend {
  std::string id;           // EmailSend.idempotency_key
  std::string sequence_id;  // fairness is across sequences
  absl::Time due_at;        // FIFO within a sequence
  Calendar calendar;        // its sequence's send window, in the enrollment's time zone
};

struct ReleasePlan {
  // Ids to send now, in release order.
  std::vector<std::string> released;
  // The sequence served last (the round-robin position after this plan).
  std::string last_sequence_id;
  // When to look at the queue again; nullopt when nothing is left.
  std::optional<absl::Time> next_release;
  // Why the rest waits when a limit is reached: "200/day reached" / "20/hour reached"; empty when
  // they wait for their send window or due time only.
  std::string limit_reached;
};

// The window starts of `now` in the limits' zone.
absl::Time DayStart(absl::Time now, const SendLimits& limits);
absl::Time HourStart(absl::Time now, const SendLimits& limits);

// The rule (see the file comment). `queue` in any order; `last_sequence_id` the round-robin
// position (empty: start at the first sequence).
ReleasePlan PlanReleases(const SendCounters& sent, const std::vector<QueuedSend>& queue,
                         const std::string& last_sequence_id, const SendLimits& limits,
                         absl::Time now);

// The same rule over a queue kept in runs (docs/send-limits.md, "Cost: lookups, not scans"):
// the requests of one run share a sequence and a send window (calendar), and the run hands them
// out in (due time, id) order, one per call of `next`. The plan reads only what it decides on:
// for each run whose window is open, its requests due by `now` while it releases them, and the
// first request it keeps (whose due time, as the run's earliest, gives the run's next release
// instant: aligning to a window is monotone in time). So a sender with a long waiting queue
// costs each plan O(runs + released), never O(queue).
struct RunItem {
  std::string id;
  absl::Time due_at;
};
struct SendRun {
  std::string sequence_id;
  Calendar calendar;
  // The run's next request in (due time, id) order; nullopt after the last.
  std::function<std::optional<RunItem>()> next;
};
// PlanReleases over the union of `runs` (ids unique across runs): the same plan.
ReleasePlan PlanReleasesInRuns(const SendCounters& sent, std::vector<SendRun> runs,
                               const std::string& last_sequence_id, const SendLimits& limits,
                               absl::Time now);

// A sender's state: the fold of its ledger entries.
struct SenderState {
  std::string sender_key;
  int64_t seq = 0;  // the last entry folded
  SendCounters sent;
  // Waiting requests by EmailSend.idempotency_key.
  std::map<std::string, v1::SendRequested> queue;
  std::string last_sequence_id;
  std::optional<absl::Time> next_release;
  // Person stages only (docs/min-gap.md): the request forwarded to its sender stage and not yet
  // reported sent or dropped (empty: none), and the last send to the person.
  std::string in_flight;
  std::optional<absl::Time> last_sent;
};
// Folds one ledger entry: only the entry right after the last one (seq + 1), so folding the log
// again, or a duplicate, changes nothing. Adds `queued` (a request already queued is kept once),
// removes `cancelled` unsent and uncounted, removes and counts `released` at the entry's time.
// Person stage entries: removes `forwarded` from the queue into in_flight; `settled` (the one in
// flight) clears in_flight and, with last_sent_at, sets last_sent; `passed` (handed on with no
// gap in force) leave the queue without becoming in flight.
SenderState EvolveSender(SenderState state, const v1::SendLedgerEntry& entry);

// Why a queued automatic email of `seq` from `sender_user_id` may not go out now. Automated
// sending and the sender's consent are checked again at the moment of sending, not only when the
// step fired (PRODUCT.md): an email that waited at its sender or person stage while the sequence's
// automated sending was switched off, the sender revoked consent or the sequence was deleted
// leaves the queue unsent (docs/send-limits.md). `reason` is the failure reason's short name
// ("automated_sending_off", "consent_missing", "sequence_deleted"), `detail` a sentence for the
// history. nullopt: it may go. A sequence not folded yet (exists false) is not judged.
struct Withheld {
  std::string reason;
  std::string detail;
};
std::optional<Withheld> WithheldAtSend(const SequenceState& seq, absl::string_view sender_user_id);

}  // namespace sequences::domain

#endif  // SEQUENCES_LIBS_DOMAIN_SEND_LIMITS_H_
