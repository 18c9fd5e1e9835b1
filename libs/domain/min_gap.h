#ifndef SEQUENCES_LIBS_DOMAIN_MIN_GAP_H_
#define SEQUENCES_LIBS_DOMAIN_MIN_GAP_H_

// Minimum gap between automatic emails to the same person (docs/min-gap.md).
//
// A company may require at least `gap` between two automatic emails to one person across all its
// sequences and senders (CompanySendingSettings.min_gap_between_emails_seconds, 0: off). "The
// same person" is the recipient address, trimmed and lower-cased: the only identity every email
// has (the person id in merge data is optional, and one person's items on several deals share the
// address, not the item).
//
// Every such email passes the person's stage (keyed PersonKey) before its sender's stage. The
// stage holds a queue per person and forwards at most one email at a time to the sender stage
// (the one "in flight"); the next is forwarded only after the sender stage reported the one in
// flight sent (at T) or dropped, and not before T + gap. So consecutive sends to one person are
// at least `gap` apart whatever the send limits delay, and each email is forwarded once.
//
// The rule (PlanTouch): given the person's last send, whether one is in flight, the queue, the gap
// and `now`: which to forward now and when to look again.
//   - Nothing is forwarded while one is in flight (the sender stage's notice wakes the stage).
//   - Allowed from last_sent + gap (no send yet: at once).
//   - The queue in order of due time, then id: the first that is due and inside its send window
//     at `now` goes, if `now` is allowed.
//   - Next look: the earliest instant at or after max(allowed, due) inside some waiting email's
//     send window.
//   - Deterministic: a function of its arguments; ties broken by ids.
//   - No gap (gap 0: the company turned it off while emails waited here): nothing is serialized
//     any more. Every waiting email that is due and inside its send window is passed on at once,
//     in that order (`passed`), whether or not one is in flight; the next look is the earliest
//     instant at or after its due time inside some remaining email's send window. So emails that
//     waited for the old gap are not overtaken by new emails (which skip the stage) for longer
//     than it takes the stage to look again (docs/min-gap.md).
//
// The person's state is a SenderState folded from its SendLedgerEntry records (forwarded /
// settled / last_sent_at, see EvolveSender) under the person key.
//
// Pure: no IO, no clock reads.

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/domain/send_limits.h"
#include "sequences/v1/sequence.pb.h"

namespace sequences::domain {

// The reason an email waits for the gap (EmailDeferred.reason).
inline constexpr char kDeferredMinGap[] = "min_gap";
inline constexpr int64_t kMaxMinGapSeconds = 30 * 24 * 3600;

// The gap in force (0: none; negative or unset settings: none).
absl::Duration MinGapOf(const v1::CompanySendingSettings& settings);
// The address as the person's identity: ASCII whitespace trimmed, lower-cased.
std::string NormalizeAddress(absl::string_view address);
// "<company_id>/person/<16 hex digits>": the enrollment-events key of a person's stage, a stable
// 64-bit FNV-1a hash of the normalized address (an address may hold any character; the key must
// not look like a sender key or an item key). Two addresses sharing a hash would share a gap:
// stricter, never looser.
std::string PersonKey(absl::string_view company_id, absl::string_view address);
bool IsPersonKey(absl::string_view key);
// The company id of a sender or person key ("<company>/sender/..." / "<company>/person/...").
std::string CompanyOfStageKey(absl::string_view key);

struct TouchPlan {
  // The id (EmailSend.idempotency_key) to forward to the sender stage now, if any.
  std::optional<std::string> forward;
  // No gap in force: the ids to hand to their sender stages now, without a gap, in order of due
  // time then id (never set together with `forward`).
  std::vector<std::string> passed;
  // When to look again (nullopt: nothing waits, or the stage waits for the in-flight notice).
  std::optional<absl::Time> next_look;
  // When the waiting emails may go at the earliest as far as the gap is concerned
  // (last_sent + gap; unset: no send yet, or no gap in force).
  std::optional<absl::Time> allowed_from;
};

// The rule (see the file comment). `queue` in any order.
TouchPlan PlanTouch(const std::optional<absl::Time>& last_sent, bool in_flight,
                    const std::vector<QueuedSend>& queue, absl::Duration gap, absl::Time now);

// "2d", "36h", "90m", "1h30m", "45s": a gap for people to read.
std::string FormatGap(absl::Duration gap);

}  // namespace sequences::domain

#endif  // SEQUENCES_LIBS_DOMAIN_MIN_GAP_H_
