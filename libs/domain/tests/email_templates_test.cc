#include "libs/domain/email_templates.h"

#include <algorithm>
#include <catch2/catch.hpp>

#include "libs/domain/errors.h"
#include "libs/domain/routing.h"
#include "libs/domain/sequence.h"
#include "libs/domain/tests/builders.h"
#include "libs/domain/validation.h"

namespace sequences::domain {
namespace {

using namespace testing;

const absl::Time kT0 = Utc(2024, 5, 6, 9);

v1::EmailTemplateContent Content(const std::string& subject = "Hello {{person.first_name}}",
                                 const std::string& body = "Hi {{person.first_name | \"there\"}}") {
  v1::EmailTemplateContent c;
  c.set_name("Intro");
  c.set_subject(subject);
  c.set_body(body);
  return c;
}

v1::EmailTemplateCommand TemplateCommand(int64_t expected = 0) {
  v1::EmailTemplateCommand c;
  c.set_company_id("c1");
  c.set_template_id("t1");
  c.set_request_id("req");
  c.set_actor_user_id("u1");
  c.set_expected_version(expected);
  return c;
}

EmailTemplateState Fold(EmailTemplateState s, const v1::EmailTemplateCommand& c) {
  absl::StatusOr<std::vector<v1::Envelope>> events = DecideEmailTemplate(s, c, kT0);
  INFO(events.status().ToString());
  REQUIRE(events.ok());
  for (const v1::Envelope& e : *events) s = EvolveEmailTemplate(std::move(s), e);
  return s;
}

EmailTemplateState Created(const v1::EmailTemplateContent& content = Content()) {
  v1::EmailTemplateCommand c = TemplateCommand();
  *c.mutable_create() = content;
  return Fold({}, c);
}

std::vector<std::string> Fields(const absl::Status& s) {
  std::vector<std::string> out;
  for (const FieldViolation& v : GetFieldViolations(s)) out.push_back(v.field);
  return out;
}

// An email step that names template "t1" and has no text of its own.
v1::Step TemplateStep(const std::string& id = "mail") {
  v1::Step s = EmailStep(id, v1::DELAY_UNIT_DAYS, 1, /*automatic=*/true, "", "");
  s.mutable_email()->set_email_template_id("t1");
  return s;
}

TEST_CASE("Given no template, when created, then version 1 with its content is folded",
          "[email_templates]") {
  v1::EmailTemplateCommand c = TemplateCommand();
  *c.mutable_create() = Content();
  auto events = DecideEmailTemplate({}, c, kT0);
  REQUIRE(events.ok());
  REQUIRE(events->size() == 1);
  const v1::Envelope& e = (*events)[0];
  CHECK(e.event_id() == "t1@1");
  CHECK(e.correlation_id() == "req");
  CHECK(IsEmailTemplateEvent(e));
  // A sequence fold does not take it for a sequence event.
  CHECK_FALSE(GetSequenceEventKey(e, nullptr, nullptr));
  CHECK_FALSE(EvolveSequence({}, e).exists);
  EmailTemplateState s = EvolveEmailTemplate({}, e);
  CHECK(s.exists);
  CHECK(s.version == 1);
  CHECK(s.company_id == "c1");
  CHECK(s.content.subject() == "Hello {{person.first_name}}");
}

TEST_CASE(
    "Given a template text, when its merge fields or sizes break a step's rules, then the same "
    "violations name the template's fields",
    "[email_templates]") {
  v1::EmailTemplateCommand c = TemplateCommand();
  *c.mutable_create() = Content("Hi {{person.first_name", std::string(100001, 'b'));
  c.mutable_create()->set_name("");
  absl::Status s = DecideEmailTemplate({}, c, kT0).status();
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  const std::vector<std::string> fields = Fields(s);
  CHECK(std::count(fields.begin(), fields.end(), "create.name") == 1);
  CHECK(std::count(fields.begin(), fields.end(), "create.subject") == 1);
  CHECK(std::count(fields.begin(), fields.end(), "create.body") == 1);
  // The step validator says the same of the same text.
  v1::Step step = EmailStep("e", v1::DELAY_UNIT_DAYS, 1, false, "Hi {{person.first_name", "x");
  CHECK(Fields(ValidateSteps({step})) == std::vector<std::string>{"steps[0].email.subject"});
}

TEST_CASE(
    "Given a template at version 1, when updated with expected version 1 and then again with 1, "
    "then the first is version 2 and the second ABORTED",
    "[email_templates]") {
  v1::EmailTemplateCommand u = TemplateCommand(1);
  *u.mutable_update() = Content("New subject");
  EmailTemplateState s = Fold(Created(), u);
  CHECK(s.version == 2);
  CHECK(s.content.subject() == "New subject");
  *u.mutable_update() = Content("Newer subject");
  CHECK(DecideEmailTemplate(s, u, kT0).status().code() == absl::StatusCode::kAborted);
  // The same content again writes nothing.
  u.set_expected_version(0);
  *u.mutable_update() = Content("New subject");
  auto none = DecideEmailTemplate(s, u, kT0);
  REQUIRE(none.ok());
  CHECK(none->empty());
}

TEST_CASE(
    "Given a template of company c1, when c2 updates or deletes it, then NOT_FOUND, and once "
    "deleted "
    "c1's update is FAILED_PRECONDITION",
    "[email_templates]") {
  EmailTemplateState s = Created();
  v1::EmailTemplateCommand del = TemplateCommand();
  del.set_company_id("c2");
  del.mutable_delete_();
  CHECK(DecideEmailTemplate(s, del, kT0).status().code() == absl::StatusCode::kNotFound);
  del.set_company_id("c1");
  s = Fold(s, del);
  CHECK(s.deleted);
  v1::EmailTemplateCommand u = TemplateCommand();
  *u.mutable_update() = Content("x");
  CHECK(DecideEmailTemplate(s, u, kT0).status().code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE(
    "Given a step naming a template and no text, when the sequence is saved, then the step "
    "carries the template's text and version",
    "[email_templates]") {
  std::map<std::string, EmailTemplateState> templates = {{"t1", Created()}};
  templates["t1"].content.set_body_is_html(true);
  v1::Step activity = ActivityStep("call", v1::DELAY_UNIT_DAYS, 1);
  auto steps = CopyEmailTemplatesIntoSteps({activity, TemplateStep()}, {}, templates, "c1");
  INFO(steps.status().ToString());
  REQUIRE(steps.ok());
  const v1::EmailStep& e = (*steps)[1].email();
  CHECK(e.subject() == "Hello {{person.first_name}}");
  CHECK(e.body() == "Hi {{person.first_name | \"there\"}}");
  CHECK(e.body_is_html());
  CHECK(e.email_template_id() == "t1");
  CHECK(e.email_template_version() == 1);
  CHECK((*steps)[0].SerializeAsString() == activity.SerializeAsString());
  CHECK(ValidateSteps(*steps).ok());
}

TEST_CASE(
    "Given a stored copy of version 1, when the template moved to version 2 and the copy is sent "
    "back unchanged, then the save copies version 2 and a hand-edited text is refused",
    "[email_templates]") {
  std::map<std::string, EmailTemplateState> templates = {{"t1", Created()}};
  const std::vector<v1::Step> stored =
      *CopyEmailTemplatesIntoSteps({TemplateStep()}, {}, templates, "c1");
  v1::EmailTemplateCommand u = TemplateCommand();
  *u.mutable_update() = Content("Version two");
  templates["t1"] = Fold(templates["t1"], u);

  auto again = CopyEmailTemplatesIntoSteps(stored, stored, templates, "c1");
  REQUIRE(again.ok());
  CHECK((*again)[0].email().subject() == "Version two");
  CHECK((*again)[0].email().email_template_version() == 2);

  std::vector<v1::Step> edited = stored;
  edited[0].mutable_email()->set_body("My own words");
  absl::Status refused = CopyEmailTemplatesIntoSteps(edited, stored, templates, "c1").status();
  CHECK(refused.code() == absl::StatusCode::kInvalidArgument);
  CHECK(Fields(refused) == std::vector<std::string>{"steps[0].email.body"});
  // Without the template id the text is the step's own.
  edited[0].mutable_email()->clear_email_template_id();
  auto own = CopyEmailTemplatesIntoSteps(edited, stored, templates, "c1");
  REQUIRE(own.ok());
  CHECK((*own)[0].email().body() == "My own words");
  CHECK((*own)[0].email().email_template_version() == 0);
}

TEST_CASE(
    "Given a template of another company, a deleted one or an unknown id, when a step names it, "
    "then NOT_FOUND naming that step's email_template_id",
    "[email_templates]") {
  EmailTemplateState other = Created();
  other.company_id = "c2";
  EmailTemplateState deleted = Created();
  deleted.deleted = true;
  for (const auto& templates : std::vector<std::map<std::string, EmailTemplateState>>{
           {{"t1", other}}, {{"t1", deleted}}, {}}) {
    v1::Step activity = ActivityStep("call", v1::DELAY_UNIT_DAYS, 1);
    absl::Status s =
        CopyEmailTemplatesIntoSteps({activity, TemplateStep()}, {}, templates, "c1").status();
    CHECK(s.code() == absl::StatusCode::kNotFound);
    CHECK(Fields(s) == std::vector<std::string>{"steps[1].email.email_template_id"});
  }
}

TEST_CASE("Given a step with a template and A/B variants, then INVALID_ARGUMENT",
          "[email_templates]") {
  v1::Step ab = DraftAbStep("ab", v1::DELAY_UNIT_DAYS, 1);
  ab.mutable_email()->set_email_template_id("t1");
  absl::Status s = CopyEmailTemplatesIntoSteps({ab}, {}, {{"t1", Created()}}, "c1").status();
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(Fields(s) == std::vector<std::string>{"steps[0].email.email_template_id"});
}

TEST_CASE(
    "Given email template events on the sequence topic, then they classify as sequence-topic "
    "events but fold only into templates",
    "[email_templates]") {
  v1::EmailTemplateCommand c = TemplateCommand();
  *c.mutable_create() = Content();
  const v1::Envelope e = (*DecideEmailTemplate({}, c, kT0))[0];
  CHECK(IsSequenceEvent(e));  // by payload range: it belongs on sequence-events
  CHECK(EmailTemplateIdsOf({TemplateStep("a"), TemplateStep("b")}) ==
        std::vector<std::string>{"t1"});
}

}  // namespace
}  // namespace sequences::domain
