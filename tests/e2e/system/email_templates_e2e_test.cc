// Email templates end to end (tier e2e): a template created through the API, a sequence whose
// automatic email step names it, an enrolled deal, and the email the mailer receives on
// email-events, over the real broker with a real sequence-api and step-executor. The step copies
// the template when the sequence is saved (docs/email-templates.md): an edit of the template
// after that does not change what is sent, and the executor, which reads sequence-events where
// the templates live too, dead-letters none of their events.
#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/e2e/api/api_process.h"
#include "tests/e2e/system/system_harness.h"

namespace sequences::testing {
namespace {

TEST_CASE(
    "Given an email template and a sequence whose automatic email step names it, when a deal is "
    "enrolled, then the mailer receives the template's subject and body rendered for the deal, "
    "as copied when the sequence was saved") {
  System sys;
  ApiProcess& api = sys.api();

  v1::CreateEmailTemplateRequest create;
  create.set_parent(absl::StrCat("companies/", kCompany));
  create.set_request_id("tpl-welcome");
  create.mutable_email_template()->set_display_name("Welcome");
  create.mutable_email_template()->set_subject("Welcome aboard, {{person.first_name}}");
  create.mutable_email_template()->set_body("Hello {{person.first_name | \"there\"}}, from v1");
  v1::EmailTemplateResponse created;
  grpc::Status st = api.sequences().CreateEmailTemplate(CallAs(kCompany).get(), create, &created);
  INFO(st.error_message());
  REQUIRE(st.ok());
  const std::string template_name = created.email_template().name();
  const std::string template_id = template_name.substr(template_name.rfind('/') + 1);
  CHECK(created.email_template().version() == 1);

  v1::Step mail = EmailStep("welcome", 0, /*automatic=*/true, "", "");
  mail.mutable_email()->set_email_template_id(template_id);
  const std::string sequence = CreateSequence(api, "create-with-template", {mail});
  const std::string owner = "rep-1";
  EnableAutomaticSending(api, sequence, owner);

  // What users see: the copy, with the template's id and version.
  v1::GetSequenceRequest get;
  get.set_name(sequence);
  v1::Sequence shown;
  REQUIRE(api.sequences().GetSequence(CallAs(kCompany).get(), get, &shown).ok());
  REQUIRE(shown.steps_size() == 1);
  CHECK(shown.steps(0).email().subject() == "Welcome aboard, {{person.first_name}}");
  CHECK(shown.steps(0).email().email_template_id() == template_id);
  CHECK(shown.steps(0).email().email_template_version() == 1);

  // The template changes after the sequence was saved: the sequence keeps its copy.
  v1::UpdateEmailTemplateRequest edit;
  edit.mutable_email_template()->set_name(template_name);
  edit.mutable_email_template()->set_subject("Changed later");
  edit.mutable_update_mask()->add_paths("subject");
  edit.set_request_id("tpl-edit");
  v1::EmailTemplateResponse edited;
  st = api.sequences().UpdateEmailTemplate(CallAs(kCompany).get(), edit, &edited);
  INFO(st.error_message());
  REQUIRE(st.ok());
  CHECK(edited.email_template().version() == 2);

  BatchEnroll(api, sequence, {{"d1", owner}});
  Reader reader({sys.topics().email_events, sys.topics().dead_letter});
  REQUIRE(reader.PollUntil([&] { return !reader.On(sys.topics().email_events).empty(); },
                           absl::Seconds(60)));
  reader.Poll(absl::Seconds(1));
  REQUIRE(reader.On(sys.topics().email_events).size() == 1);
  const v1::EmailSend& sent = reader.On(sys.topics().email_events)[0]->event.email_send();
  CHECK(sent.step_id() == "welcome");
  CHECK(sent.mode() == v1::EMAIL_MODE_AUTOMATIC);
  CHECK(sent.subject() == absl::StrCat("Welcome aboard, ", FirstName("d1")));
  CHECK(sent.body() == absl::StrCat("Hello ", FirstName("d1"), ", from v1"));
  CHECK(sent.recipient().email() == "contact-d1@example.com");
  // The template events on sequence-events were skipped by the executor, not dead-lettered.
  CHECK(reader.On(sys.topics().dead_letter).empty());
}

}  // namespace
}  // namespace sequences::testing
