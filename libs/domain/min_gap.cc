#include "libs/domain/min_gap.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sequences::domain {

absl::Duration MinGapOf(const v1::CompanySendingSettings& settings) {
  const int64_t s = settings.min_gap_between_emails_seconds();
  if (s <= 0) return absl::ZeroDuration();
  return absl::Seconds(std::min(s, kMaxMinGapSeconds));
}

std::string NormalizeAddress(absl::string_view address) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(address));
}

std::string PersonKey(absl::string_view company_id, absl::string_view address) {
  uint64_t h = 14695981039346656037ULL;  // FNV-1a 64
  for (unsigned char c : NormalizeAddress(address)) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return absl::StrCat(company_id, "/person/", absl::StrFormat("%016x", h));
}

// A stage key is the company id, then its first marker; what follows the marker (a user id, from a
// caller that may not have checked its grammar) may contain the other marker.
bool IsPersonKey(absl::string_view key) {
  const size_t at = key.find("/person/");
  return at != absl::string_view::npos && at < key.find("/sender/");
}

std::string CompanyOfStageKey(absl::string_view key) {
  return std::string(key.substr(0, std::min(key.find("/person/"), key.find("/sender/"))));
}

TouchPlan PlanTouch(const std::optional<absl::Time>& last_sent, bool in_flight,
                    const std::vector<QueuedSend>& queue, absl::Duration gap, absl::Time now) {
  TouchPlan plan;
  std::vector<const QueuedSend*> order;
  for (const QueuedSend& q : queue) order.push_back(&q);
  std::sort(order.begin(), order.end(), [](const QueuedSend* a, const QueuedSend* b) {
    if (a->due_at != b->due_at) return a->due_at < b->due_at;
    return a->id < b->id;
  });
  if (gap <= absl::ZeroDuration()) {
    // No gap: nothing to serialize, nothing to wait for but due time and send window.
    for (const QueuedSend* q : order) {
      if (q->due_at <= now && AlignToWindow(now, q->calendar) == now) {
        plan.passed.push_back(q->id);
        continue;
      }
      const absl::Time at = AlignToWindow(std::max(q->due_at, now), q->calendar);
      if (!plan.next_look.has_value() || at < *plan.next_look) plan.next_look = at;
    }
    return plan;
  }
  if (last_sent.has_value()) plan.allowed_from = *last_sent + gap;
  if (queue.empty() || in_flight) return plan;
  const absl::Time allowed = plan.allowed_from.value_or(absl::InfinitePast());
  if (allowed <= now) {
    for (const QueuedSend* q : order) {
      if (q->due_at <= now && AlignToWindow(now, q->calendar) == now) {
        plan.forward = q->id;
        return plan;  // in flight now: the notice of its send wakes the stage
      }
    }
  }
  for (const QueuedSend* q : order) {
    absl::Time at = AlignToWindow(std::max({allowed, q->due_at, now}), q->calendar);
    if (at <= now) at = now + absl::Seconds(1);  // cannot happen after the loop above; be safe
    if (!plan.next_look.has_value() || at < *plan.next_look) plan.next_look = at;
  }
  return plan;
}

std::string FormatGap(absl::Duration gap) {
  int64_t s = absl::ToInt64Seconds(gap);
  if (s <= 0) return "0s";
  std::string out;
  const int64_t d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60, sec = s % 60;
  if (d > 0) absl::StrAppend(&out, d, "d");
  if (h > 0) absl::StrAppend(&out, h, "h");
  if (m > 0) absl::StrAppend(&out, m, "m");
  if (sec > 0) absl::StrAppend(&out, sec, "s");
  return out;
}

}  // namespace sequences::domain
