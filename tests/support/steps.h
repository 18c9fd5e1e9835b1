#ifndef SEQUENCES_TESTS_SUPPORT_STEPS_H_
#define SEQUENCES_TESTS_SUPPORT_STEPS_H_

// The one set of step builders for tests (unit, e2e, bench): an activity step and an email step as
// a CRM user configures them. Delays are in minutes (InDays for days); the texts below are what
// tests may assert on after rendering.

#include <string>

#include "sequences/v1/sequence.pb.h"

namespace sequences::testing {

// Default texts: the activity's subject has no merge field (an enrollment without merge data can
// still run it); the email's use person.first_name.
inline constexpr char kActivitySubject[] = "Call the contact";
inline constexpr char kEmailSubject[] = "Following up, {{person.first_name}}";
inline constexpr char kEmailBody[] = "Hi {{person.first_name}}, thanks for your time.";

// A call task for the item's owner, `delay_minutes` after the previous step; with
// `wait_for_completion` the next step waits until the task is completed.
inline v1::Step ActivityStep(const std::string& id, int delay_minutes,
                             bool wait_for_completion = false,
                             const std::string& subject = kActivitySubject) {
  v1::Step s;
  s.set_id(id);
  s.mutable_delay()->set_unit(v1::DELAY_UNIT_MINUTES);
  s.mutable_delay()->set_amount(delay_minutes);
  v1::ActivityStep* a = s.mutable_activity();
  a->set_activity_type("call");
  a->set_subject(subject);
  a->mutable_assignee()->set_item_owner(true);
  a->set_priority(v1::PRIORITY_NORMAL);
  a->set_wait_for_completion(wait_for_completion);
  return s;
}

// An email from the item's owner, `delay_minutes` after the previous step: sent automatically, or
// a draft for review.
inline v1::Step EmailStep(const std::string& id, int delay_minutes, bool automatic,
                          const std::string& subject = kEmailSubject,
                          const std::string& body = kEmailBody) {
  v1::Step s;
  s.set_id(id);
  s.mutable_delay()->set_unit(v1::DELAY_UNIT_MINUTES);
  s.mutable_delay()->set_amount(delay_minutes);
  v1::EmailStep* e = s.mutable_email();
  e->mutable_sender()->set_item_owner(true);
  e->set_subject(subject);
  e->set_body(body);
  e->set_send_automatically(automatic);
  return s;
}

// The same step with its delay amount counted in days.
inline v1::Step InDays(v1::Step s) {
  s.mutable_delay()->set_unit(v1::DELAY_UNIT_DAYS);
  return s;
}

}  // namespace sequences::testing

#endif  // SEQUENCES_TESTS_SUPPORT_STEPS_H_
