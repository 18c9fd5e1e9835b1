#ifndef SEQUENCES_SERVICES_STEP_EXECUTOR_TESTS_BUILDERS_H_
#define SEQUENCES_SERVICES_STEP_EXECUTOR_TESTS_BUILDERS_H_

// Builders for the executor's tests (unit and e2e): sequence events made by the domain's own
// decider (as the API makes them) and enrollment inputs as a publisher writes them. Steps come
// from tests/support/steps.h.

#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "libs/domain/envelope.h"
#include "libs/domain/sequence.h"
#include "sequences/v1/commands.pb.h"
#include "sequences/v1/events.pb.h"
#include "tests/support/steps.h"

namespace sequences::executor::testing {

// The step builders every test shares (tests/support/steps.h).
using ::sequences::testing::ActivityStep;
using ::sequences::testing::EmailStep;

// Decides sequence commands against a folded state, as the API does.
class SequenceBuilder {
 public:
  SequenceBuilder(std::string company, std::string id) : company_(company), id_(id) {}

  std::vector<v1::Envelope> Run(v1::SequenceCommand c, absl::Time now) {
    c.set_company_id(company_);
    c.set_sequence_id(id_);
    c.set_request_id(absl::StrCat("req-", id_, "-", ++n_));
    if (c.actor_user_id().empty()) c.set_actor_user_id("owner-1");
    auto events = domain::DecideSequence(state_, c, now);
    if (!events.ok()) throw std::runtime_error(events.status().ToString());
    for (const v1::Envelope& e : *events) state_ = domain::EvolveSequence(std::move(state_), e);
    return *events;
  }
  std::vector<v1::Envelope> Create(const std::vector<v1::Step>& steps, absl::Time now) {
    v1::SequenceCommand c;
    c.mutable_create()->set_name("Follow up");
    c.mutable_create()->set_owner_id("owner-1");
    c.mutable_create()->set_entity_kind(v1::ENTITY_KIND_DEAL);
    c.mutable_create()->mutable_settings()->set_default_time_zone("UTC");
    c.mutable_create()->mutable_settings()->set_reenrollment(v1::REENROLLMENT_RULE_WHEN_NOT_ACTIVE);
    for (const v1::Step& s : steps) *c.mutable_create()->add_steps() = s;
    return Run(c, now);
  }
  std::vector<v1::Envelope> AutomatedSending(bool on, absl::Time now) {
    v1::SequenceCommand c;
    c.mutable_switch_automated_sending()->set_enabled(on);
    return Run(c, now);
  }
  std::vector<v1::Envelope> Consent(const std::string& user, bool grant, absl::Time now) {
    v1::SequenceCommand c;
    c.set_actor_user_id(user);
    if (grant) {
      c.mutable_grant_consent()->set_user_id(user);
    } else {
      c.mutable_revoke_consent()->set_user_id(user);
    }
    return Run(c, now);
  }
  std::vector<v1::Envelope> Delete(absl::Time now) {
    v1::SequenceCommand c;
    c.mutable_delete_();
    return Run(c, now);
  }
  std::vector<v1::Envelope> Pause(absl::Time now) {
    v1::SequenceCommand c;
    c.mutable_pause();
    return Run(c, now);
  }
  std::vector<v1::Envelope> Resume(absl::Time now) {
    v1::SequenceCommand c;
    c.mutable_resume();
    return Run(c, now);
  }
  const domain::SequenceState& state() const { return state_; }
  const std::string& id() const { return id_; }

 private:
  std::string company_;
  std::string id_;
  domain::SequenceState state_;
  int n_ = 0;
};

// An input envelope as a publisher (API, automation engine, CRM) writes it.
inline v1::Envelope Input(const std::string& event_id, absl::Time now) {
  return domain::MakeEnvelope(event_id, "c1", now, "", absl::StrCat("corr-", event_id));
}

inline v1::Envelope Enroll(const std::string& item_key, const std::string& sequence_id,
                           int64_t sequence_version, absl::Time now,
                           const std::string& first_name = "Ada") {
  v1::Envelope e = Input(absl::StrCat("enroll-", item_key, "-", sequence_id), now);
  v1::EnrollRequested* r = e.mutable_enroll_requested();
  r->set_request_id(absl::StrCat("r-", item_key, "-", sequence_id));
  r->set_sequence_id(sequence_id);
  r->set_sequence_version(sequence_version);
  r->set_item_key(item_key);
  r->set_entity_kind(v1::ENTITY_KIND_DEAL);
  r->set_owner_id("owner-1");
  r->mutable_recipient()->set_email("ada@example.com");
  r->mutable_recipient()->set_name("Ada");
  if (!first_name.empty()) (*r->mutable_merge_data())["person.first_name"] = first_name;
  return e;
}

}  // namespace sequences::executor::testing

#endif  // SEQUENCES_SERVICES_STEP_EXECUTOR_TESTS_BUILDERS_H_
