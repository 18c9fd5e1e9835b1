#include "libs/domain/templates.h"

#include <string>
#include <vector>

namespace sequences::domain {
namespace {

v1::Step Delay(v1::Step step, absl::string_view id, v1::DelayUnit unit, int amount) {
  step.set_id(std::string(id));
  step.mutable_delay()->set_unit(unit);
  step.mutable_delay()->set_amount(amount);
  return step;
}

v1::Step Activity(absl::string_view id, v1::DelayUnit unit, int amount, absl::string_view type,
                  absl::string_view subject, absl::string_view note) {
  v1::Step step;
  v1::ActivityStep* a = step.mutable_activity();
  a->set_activity_type(std::string(type));
  a->set_subject(std::string(subject));
  a->set_note(std::string(note));
  a->mutable_assignee()->set_item_owner(true);
  a->set_priority(v1::PRIORITY_NORMAL);
  return Delay(std::move(step), id, unit, amount);
}

v1::Step Email(absl::string_view id, v1::DelayUnit unit, int amount, absl::string_view subject,
               absl::string_view body) {
  v1::Step step;
  v1::EmailStep* e = step.mutable_email();
  e->mutable_sender()->set_item_owner(true);
  e->set_subject(std::string(subject));
  e->set_body(std::string(body));
  e->set_send_automatically(false);  // drafts: safe until the team turns automation on
  return Delay(std::move(step), id, unit, amount);
}

v1::SequenceSettings BusinessHours() {
  v1::SequenceSettings s;
  for (int d = v1::WEEKDAY_MONDAY; d <= v1::WEEKDAY_FRIDAY; ++d) {
    v1::WindowRange* r = s.mutable_send_window()->add_ranges();
    r->set_weekday(static_cast<v1::Weekday>(d));
    r->mutable_start()->set_hours(8);
    r->mutable_end()->set_hours(18);
  }
  s.set_reenrollment(v1::REENROLLMENT_RULE_WHEN_NOT_ACTIVE);
  return s;
}

std::vector<v1::SequenceTemplate> BuildCatalog() {
  std::vector<v1::SequenceTemplate> out;
  {
    v1::SequenceTemplate t;
    t.set_id("cold-lead-outreach");
    t.set_name("Cold lead outreach");
    t.set_description("Introduce yourself, follow up twice, then call.");
    t.set_entity_kind(v1::ENTITY_KIND_LEAD);
    *t.add_steps() = Email("intro", v1::DELAY_UNIT_MINUTES, 0,
                           "Quick question, {{person.first_name | \"there\"}}",
                           "Hi {{person.first_name | \"there\"}},\n\nI noticed "
                           "{{organization.name | \"your team\"}} ... Would a short call help?");
    *t.add_steps() = Email("follow-up-1", v1::DELAY_UNIT_BUSINESS_DAYS, 3, "Re: Quick question",
                           "Just following up on my last note.");
    *t.add_steps() = Activity("call", v1::DELAY_UNIT_BUSINESS_DAYS, 2, "call",
                              "Call {{person.first_name}}", "Reference the two emails sent.");
    *t.add_steps() = Email("break-up", v1::DELAY_UNIT_BUSINESS_DAYS, 5, "Should I close your file?",
                           "I have not heard back, so I will stop reaching out for now.");
    *t.mutable_settings() = BusinessHours();
    out.push_back(std::move(t));
  }
  {
    v1::SequenceTemplate t;
    t.set_id("deal-follow-up");
    t.set_name("Deal follow-up after demo");
    t.set_description("Thank-you email, proposal task, check-in call.");
    t.set_entity_kind(v1::ENTITY_KIND_DEAL);
    *t.add_steps() = Email("thanks", v1::DELAY_UNIT_HOURS, 2, "Thanks for your time today",
                           "Hi {{person.first_name | \"there\"}}, thank you for the demo.");
    v1::Step proposal = Activity("proposal", v1::DELAY_UNIT_BUSINESS_DAYS, 1, "task",
                                 "Send the proposal", "Use the pricing discussed in the demo.");
    proposal.mutable_activity()->set_wait_for_completion(true);
    proposal.mutable_activity()->set_priority(v1::PRIORITY_HIGH);
    *t.add_steps() = std::move(proposal);
    v1::Step call = Activity("check-in", v1::DELAY_UNIT_BUSINESS_DAYS, 3, "call",
                             "Check in on the proposal", "");
    call.mutable_at_time()->set_hours(10);
    *t.add_steps() = std::move(call);
    *t.mutable_settings() = BusinessHours();
    out.push_back(std::move(t));
  }
  {
    v1::SequenceTemplate t;
    t.set_id("re-engage-stalled-deal");
    t.set_name("Re-engage a stalled deal");
    t.set_description("A nudge, a call a week later, a last email.");
    t.set_entity_kind(v1::ENTITY_KIND_DEAL);
    *t.add_steps() = Email("nudge", v1::DELAY_UNIT_MINUTES, 0, "Checking in",
                           "Hi {{person.first_name | \"there\"}}, is this still a priority?");
    *t.add_steps() = Activity("call", v1::DELAY_UNIT_DAYS, 7, "call", "Call about next steps", "");
    *t.add_steps() = Email("last", v1::DELAY_UNIT_DAYS, 7, "Closing the loop",
                           "I will assume the timing is not right and check back later.");
    *t.mutable_settings() = BusinessHours();
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

absl::Span<const v1::SequenceTemplate> TemplateCatalog() {
  static const std::vector<v1::SequenceTemplate>* const catalog =
      new std::vector<v1::SequenceTemplate>(BuildCatalog());
  return *catalog;
}

const v1::SequenceTemplate* FindTemplate(absl::string_view id) {
  for (const v1::SequenceTemplate& t : TemplateCatalog()) {
    if (t.id() == id) return &t;
  }
  return nullptr;
}

}  // namespace sequences::domain
