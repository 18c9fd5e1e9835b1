#include "libs/domain/contract.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/envelope.h"
#include "libs/domain/min_gap.h"
#include "libs/domain/routing.h"

namespace sequences::domain {

namespace {

// A key as the reason quotes it: at most kMaxQuotedBytes, cut at a UTF-8 character boundary and
// marked with its size, so a reason (a dead-letter header) stays small whatever a record holds.
constexpr size_t kMaxQuotedBytes = 128;

std::string Quoted(absl::string_view s) {
  if (s.size() <= kMaxQuotedBytes) return std::string(s);
  size_t end = kMaxQuotedBytes;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return absl::StrCat(s.substr(0, end), "...(", s.size(), " bytes)");
}

}  // namespace

absl::Status CheckEnrollmentInputContract(const v1::Envelope& e, absl::string_view record_key) {
  auto broken = [](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("contract: ", why));
  };
  if (!IsEnrollmentInput(e)) {
    return broken(absl::StrCat("payload ", PayloadName(e), " is not an enrollment input"));
  }
  if (e.event_id().empty()) return broken("event_id is required");
  if (e.company_id().empty()) return broken("company_id is required");
  if (!e.has_occurred_at() || (e.occurred_at().seconds() == 0 && e.occurred_at().nanos() == 0)) {
    return broken("occurred_at is required");
  }
  const InputRoute route = RouteInput(e);
  if (route.scope == InputRoute::Scope::kSender) {
    // Internal (written by the executor): keyed by the sender (or the person, min_gap.h), about
    // an item of the same company.
    if (IsPersonKey(route.sender_key) &&
        (CompanyOfStageKey(route.sender_key) != e.company_id() || record_key != route.sender_key)) {
      return broken(absl::StrCat("record key '", Quoted(record_key), "' is not the person key '",
                                 Quoted(route.sender_key), "' of company '", Quoted(e.company_id()),
                                 "'"));
    }
    if (e.has_send_outcome()) {  // a notice to a person stage
      if (!IsPersonKey(route.sender_key) || e.send_outcome().email_id().empty()) {
        return broken("send_outcome to a person stage needs a person_key and email_id");
      }
      return absl::OkStatus();
    }
    const bool cancel = e.has_send_cancelled();
    const v1::EmailSend& email = e.send_requested().email();
    if (cancel
            ? e.send_cancelled().sender_user_id().empty() || e.send_cancelled().email_id().empty()
            : email.sender_user_id().empty() || email.idempotency_key().empty()) {
      return broken(cancel ? "send_cancelled needs sender_user_id and email_id"
                           : "send_requested needs the email's sender_user_id and idempotency_key");
    }
    if (record_key != route.sender_key) {
      return broken(absl::StrCat("record key '", Quoted(record_key), "' is not the sender key '",
                                 Quoted(route.sender_key), "'"));
    }
    auto item = ParseItemKey(cancel ? e.send_cancelled().ref().item_key() : email.item_key());
    if (!item.ok() || item->company_id != e.company_id()) {
      return broken(absl::StrCat(cancel ? "send_cancelled" : "send_requested",
                                 " names an item of another company"));
    }
    return absl::OkStatus();
  }
  if (route.scope != InputRoute::Scope::kItemInSequence &&
      route.scope != InputRoute::Scope::kItem) {
    return absl::OkStatus();
  }
  auto item = ParseItemKey(route.item_key);
  if (!item.ok()) {
    return absl::InvalidArgumentError("invalid: item_key must be company/deal|lead/item");
  }
  if (record_key != route.item_key) {
    return broken(absl::StrCat("record key '", Quoted(record_key), "' is not the item key '",
                               Quoted(route.item_key), "'"));
  }
  if (item->company_id != e.company_id()) {
    return broken(absl::StrCat("company_id '", Quoted(e.company_id()),
                               "' is not the company of item key '", Quoted(route.item_key), "'"));
  }
  return absl::OkStatus();
}

}  // namespace sequences::domain
