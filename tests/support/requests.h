#ifndef SEQUENCES_TESTS_SUPPORT_REQUESTS_H_
#define SEQUENCES_TESTS_SUPPORT_REQUESTS_H_

// The API requests tests send most, built once for the API's unit tier (in process) and its e2e
// tier (over gRPC): a "Follow up after demo" sequence of two calls and the enrollment of a deal
// owned by owner-7 with a first name to merge. Steps come from tests/support/steps.h.

#include <string>

#include "absl/strings/str_cat.h"
#include "sequences/v1/enrollment_service.pb.h"
#include "sequences/v1/sequence_service.pb.h"
#include "tests/support/steps.h"

namespace sequences::testing {

// CreateSequence under companies/<company>: two calls for the item's owner, today and two days
// later.
inline v1::CreateSequenceRequest CreateRequest(const std::string& company,
                                               const std::string& request_id,
                                               v1::EntityKind kind = v1::ENTITY_KIND_DEAL) {
  v1::CreateSequenceRequest req;
  req.set_parent(absl::StrCat("companies/", company));
  req.set_request_id(request_id);
  v1::Sequence* s = req.mutable_sequence();
  s->set_display_name("Follow up after demo");
  s->set_entity_kind(kind);
  *s->add_steps() = InDays(ActivityStep("call-1", 0));
  *s->add_steps() = InDays(ActivityStep("call-2", 2));
  return req;
}

// An item of `kind` owned by owner-7, with person.first_name "Ada" and no recipient.
inline v1::EnrollItem Item(const std::string& item_id, const std::string& request_id,
                           v1::EntityKind kind = v1::ENTITY_KIND_DEAL) {
  v1::EnrollItem item;
  item.set_entity_kind(kind);
  item.set_item_id(item_id);
  item.set_owner_id("owner-7");
  item.set_request_id(request_id);
  (*item.mutable_merge_data())["person.first_name"] = "Ada";
  return item;
}

// Enroll of Item(item_id, request_id, kind) into `sequence` (its resource name).
inline v1::EnrollRequest EnrollRequest(const std::string& sequence, const std::string& item_id,
                                       const std::string& request_id,
                                       v1::EntityKind kind = v1::ENTITY_KIND_DEAL) {
  v1::EnrollRequest req;
  req.set_parent(sequence);
  *req.mutable_item() = Item(item_id, request_id, kind);
  return req;
}

}  // namespace sequences::testing

#endif  // SEQUENCES_TESTS_SUPPORT_REQUESTS_H_
