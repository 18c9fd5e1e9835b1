// The enrollment lifecycle as the services that call us use it (tier e2e): outcomes reported by
// the CRM and the mailer, repairing a failed enrollment, removing it. Real sequence-api and
// step-executor processes, the real broker, real gRPC.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/e2e/system/system_harness.h"

namespace sequences::testing {
namespace {

// WaitForStatus for an enrollment just requested: the read model folds the request
// asynchronously, so GetEnrollment may answer NOT_FOUND for a moment first.
v1::Enrollment WaitForNewEnrollment(ApiProcess& api, const std::string& name,
                                    v1::EnrollmentStatus status) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (;;) {
    v1::GetEnrollmentRequest req;
    req.set_name(name);
    v1::Enrollment e;
    grpc::Status s = api.enrollments().GetEnrollment(CallAs(kCompany).get(), req, &e);
    if (s.ok() || absl::Now() > deadline) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return WaitForStatus(api, name, status);
}

v1::ItemInputResponse ReportOutcome(ApiProcess& api, const std::string& item_id,
                                    v1::ItemOutcomeKind outcome) {
  v1::ReportItemOutcomeRequest req;
  req.set_parent(absl::StrCat("companies/", kCompany));
  req.set_entity_kind(v1::ENTITY_KIND_DEAL);
  req.set_item_id(item_id);
  req.set_outcome(outcome);
  req.set_request_id("outcome-" + item_id);
  v1::ItemInputResponse resp;
  grpc::Status s = api.enrollments().ReportItemOutcome(CallAs(kCompany).get(), req, &resp);
  INFO(item_id << ": " << s.error_message());
  REQUIRE(s.ok());
  return resp;
}

v1::ReportEmailEventRequest EmailEvent(const std::string& item_id, const std::string& sequence) {
  v1::ReportEmailEventRequest req;
  req.set_parent(absl::StrCat("companies/", kCompany));
  req.set_entity_kind(v1::ENTITY_KIND_DEAL);
  req.set_item_id(item_id);
  req.set_sequence(sequence);
  req.set_request_id("email-" + item_id);
  return req;
}

TEST_CASE(
    "Given deals in progress, when the CRM reports won, lost and deleted and the mailer a reply "
    "and a bounce through the API, then each enrollment ends with the matching reason, and every "
    "record is keyed by its item") {
  System sys;
  ApiProcess& api = sys.api();
  const std::string sequence = CreateSequence(api, "create-outcomes", {ActivityStep("call", 60)});
  const std::vector<std::string> ids = {"won", "lost", "deleted", "replied", "bounced"};
  std::vector<Item> items;
  for (const std::string& id : ids) items.push_back({id, "rep-1"});
  BatchEnroll(api, sequence, items);
  for (const std::string& id : ids) {
    WaitForNewEnrollment(api, EnrollmentName(sequence, id), v1::ENROLLMENT_STATUS_IN_PROGRESS);
  }

  // An action's reply shows the enrollment as the executor's decision leaves it.
  v1::EnrollmentActionRequest pause;
  pause.set_name(EnrollmentName(sequence, "lost"));
  pause.set_request_id("pause-lost");
  v1::EnrollmentResponse paused;
  grpc::Status ps = api.enrollments().PauseEnrollment(CallAs(kCompany).get(), pause, &paused);
  INFO(ps.error_message());
  REQUIRE(ps.ok());
  CHECK(paused.enrollment().status() == v1::ENROLLMENT_STATUS_PAUSED);
  CHECK_FALSE(paused.enrollment().has_next_due_time());
  WaitForStatus(api, EnrollmentName(sequence, "lost"), v1::ENROLLMENT_STATUS_PAUSED);

  const v1::ItemInputResponse won = ReportOutcome(api, "won", v1::ITEM_OUTCOME_KIND_DEAL_WON);
  CHECK(won.item() == absl::StrCat("companies/", kCompany, "/items/deal:won"));
  CHECK_FALSE(won.consistency_token().empty());
  ReportOutcome(api, "lost", v1::ITEM_OUTCOME_KIND_DEAL_LOST);
  ReportOutcome(api, "deleted", v1::ITEM_OUTCOME_KIND_ITEM_DELETED);
  v1::ItemInputResponse resp;
  grpc::Status s = api.enrollments().ReportEmailReplied(CallAs(kCompany).get(),
                                                        EmailEvent("replied", sequence), &resp);
  INFO(s.error_message());
  REQUIRE(s.ok());
  v1::ReportEmailEventRequest bounce = EmailEvent("bounced", "");  // every sequence of the item
  bounce.set_detail("mailbox full");
  s = api.enrollments().ReportEmailBounced(CallAs(kCompany).get(), bounce, &resp);
  INFO(s.error_message());
  REQUIRE(s.ok());

  CHECK(WaitForStatus(api, EnrollmentName(sequence, "won"), v1::ENROLLMENT_STATUS_COMPLETED)
            .exit_reason() == v1::EXIT_REASON_DEAL_WON);
  CHECK(WaitForStatus(api, EnrollmentName(sequence, "lost"), v1::ENROLLMENT_STATUS_COMPLETED)
            .exit_reason() == v1::EXIT_REASON_DEAL_LOST);
  CHECK(WaitForStatus(api, EnrollmentName(sequence, "deleted"), v1::ENROLLMENT_STATUS_REMOVED)
            .removal_reason() == v1::REMOVAL_REASON_ITEM_DELETED);
  CHECK(WaitForStatus(api, EnrollmentName(sequence, "replied"), v1::ENROLLMENT_STATUS_COMPLETED)
            .exit_reason() == v1::EXIT_REASON_REPLIED);
  CHECK(WaitForStatus(api, EnrollmentName(sequence, "bounced"), v1::ENROLLMENT_STATUS_FAILED)
            .failure_reason() == v1::FAILURE_REASON_BOUNCED);

  // Each input is one record on enrollment-events, keyed by its item (so it reaches the partition
  // of the item's enrollments), built from the caller's company.
  Reader reader({sys.topics().enrollment_events});
  auto inputs = [&] {
    std::vector<const Seen*> v;
    for (const Seen* seen : reader.On(sys.topics().enrollment_events)) {
      if (seen->event.has_item_outcome() || seen->event.has_email_replied() ||
          seen->event.has_email_bounced()) {
        v.push_back(seen);
      }
    }
    return v;
  };
  REQUIRE(reader.PollUntil([&] { return inputs().size() >= ids.size(); }, absl::Seconds(30)));
  reader.Poll(absl::Milliseconds(500));
  REQUIRE(inputs().size() == ids.size());
  for (const Seen* seen : inputs()) {
    INFO(seen->event.DebugString());
    CHECK(seen->event.company_id() == kCompany);
    const std::string item = absl::StrCat(
        kCompany, "/deal/",
        seen->event.correlation_id().substr(seen->event.correlation_id().find('-') + 1));
    CHECK(seen->message.key == item);
  }

  // Retrying a report with its request id writes nothing more and answers as the first time.
  CHECK(ReportOutcome(api, "won", v1::ITEM_OUTCOME_KIND_DEAL_WON).consistency_token() ==
        won.consistency_token());

  // Refused up front: an outcome of the wrong kind of item, an unknown outcome, a bad item id.
  v1::ReportItemOutcomeRequest wrong;
  wrong.set_parent(absl::StrCat("companies/", kCompany));
  wrong.set_entity_kind(v1::ENTITY_KIND_LEAD);
  wrong.set_item_id("l-1");
  wrong.set_outcome(v1::ITEM_OUTCOME_KIND_DEAL_WON);
  wrong.set_request_id("outcome-wrong");
  s = api.enrollments().ReportItemOutcome(CallAs(kCompany).get(), wrong, &resp);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(s.error_message().find("outcome") != std::string::npos);
  wrong.set_outcome(v1::ITEM_OUTCOME_KIND_UNSPECIFIED);
  s = api.enrollments().ReportItemOutcome(CallAs(kCompany).get(), wrong, &resp);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  wrong.set_outcome(v1::ITEM_OUTCOME_KIND_LEAD_CONVERTED);
  wrong.set_item_id("a/b");
  s = api.enrollments().ReportItemOutcome(CallAs(kCompany).get(), wrong, &resp);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  v1::ReportEmailEventRequest replied_with_detail = EmailEvent("replied", sequence);
  replied_with_detail.set_detail("x");
  replied_with_detail.set_request_id("email-detail");
  s = api.enrollments().ReportEmailReplied(CallAs(kCompany).get(), replied_with_detail, &resp);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(sys.executor().Terminate() == 0);
}

TEST_CASE(
    "Given an automatic email that failed on a missing merge field, when its merge data and "
    "recipient are updated through the API and it is retried, then the email goes out with the "
    "new values, and a failed enrollment can be removed and a removed one is not updated") {
  System sys;
  ApiProcess& api = sys.api();
  const std::string sequence =
      CreateSequence(api, "create-repair", {EmailStep("auto", 0, true, "Hi {{person.title}}")});
  EnableAutomaticSending(api, sequence, "rep-1");
  // Enroll refuses an item missing person.title up front; this caller will repair it later.
  BatchEnroll(api, sequence, {{"fix", "rep-1"}, {"drop", "rep-1"}}, /*allow_incomplete=*/true);
  const std::string fix = EnrollmentName(sequence, "fix");
  const std::string drop = EnrollmentName(sequence, "drop");
  CHECK(WaitForNewEnrollment(api, fix, v1::ENROLLMENT_STATUS_FAILED).missing_merge_field() ==
        "person.title");
  WaitForNewEnrollment(api, drop, v1::ENROLLMENT_STATUS_FAILED);

  v1::UpdateEnrollmentDataRequest update;
  update.set_name(fix);
  update.set_request_id("update-fix");
  (*update.mutable_merge_data())["person.title"] = "Dr";
  update.mutable_recipient()->set_email("grace@example.com");
  update.mutable_recipient()->set_name("Grace");
  v1::EnrollmentResponse resp;
  grpc::Status s = api.enrollments().UpdateEnrollmentData(CallAs(kCompany).get(), update, &resp);
  INFO(s.error_message());
  REQUIRE(s.ok());
  CHECK_FALSE(resp.consistency_token().empty());
  CHECK(resp.enrollment().status() == v1::ENROLLMENT_STATUS_FAILED);  // until retried

  v1::EnrollmentActionRequest retry;
  retry.set_name(fix);
  retry.set_request_id("retry-fix");
  s = api.enrollments().RetryEnrollment(CallAs(kCompany).get(), retry, &resp);
  INFO(s.error_message());
  REQUIRE(s.ok());
  CHECK(resp.enrollment().status() == v1::ENROLLMENT_STATUS_IN_PROGRESS);
  CHECK(resp.enrollment().pending_step_id() == "auto");
  CHECK(resp.enrollment().missing_merge_field().empty());
  WaitForStatus(api, fix, v1::ENROLLMENT_STATUS_COMPLETED);
  Reader reader({sys.topics().email_events});
  REQUIRE(reader.PollUntil(
      [&] { return !reader.On(sys.topics().email_events, ItemKey("fix")).empty(); },
      absl::Seconds(30)));
  const v1::EmailSend& email =
      reader.On(sys.topics().email_events, ItemKey("fix"))[0]->event.email_send();
  CHECK(email.subject() == "Hi Dr");
  CHECK(email.recipient().email() == "grace@example.com");

  // Remove works on a failed enrollment; a removed one cannot be updated.
  v1::EnrollmentActionRequest remove;
  remove.set_name(drop);
  remove.set_request_id("remove-drop");
  s = api.enrollments().RemoveEnrollment(CallAs(kCompany).get(), remove, &resp);
  INFO(s.error_message());
  REQUIRE(s.ok());
  CHECK(resp.enrollment().status() == v1::ENROLLMENT_STATUS_REMOVED);
  CHECK(resp.enrollment().removal_reason() == v1::REMOVAL_REASON_REQUESTED);
  CHECK(WaitForStatus(api, drop, v1::ENROLLMENT_STATUS_REMOVED).removal_reason() ==
        v1::REMOVAL_REASON_REQUESTED);
  update.set_name(drop);
  update.set_request_id("update-drop");
  s = api.enrollments().UpdateEnrollmentData(CallAs(kCompany).get(), update, &resp);
  CHECK(s.error_code() == grpc::StatusCode::FAILED_PRECONDITION);

  // Nothing to update, or an item that is not enrolled: refused.
  v1::UpdateEnrollmentDataRequest empty;
  empty.set_name(fix);
  empty.set_request_id("update-empty");
  s = api.enrollments().UpdateEnrollmentData(CallAs(kCompany).get(), empty, &resp);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  update.set_name(EnrollmentName(sequence, "nobody"));
  update.set_request_id("update-nobody");
  s = api.enrollments().UpdateEnrollmentData(CallAs(kCompany).get(), update, &resp);
  CHECK(s.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(sys.executor().Terminate() == 0);
}

}  // namespace
}  // namespace sequences::testing
