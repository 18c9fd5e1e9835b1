// The public enrollment-updates topic as a follower of enrollments reads it (tier e2e): real
// sequence-api and step-executor processes, the real broker, read_committed. A flow through the
// API produces exactly the expected status changes, each once, keyed by the enrollment.
#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "sequences/v1/enrollment_updates.pb.h"
#include "tests/e2e/system/system_harness.h"

namespace sequences::testing {
namespace {

v1::Step WaitingCall(const std::string& id) {
  v1::Step s = ActivityStep(id, 0);
  s.mutable_activity()->set_wait_for_completion(true);
  return s;
}

std::string SequenceIdOf(const std::string& name) { return name.substr(name.rfind('/') + 1); }

// The updates of one enrollment key, decoded, in log order.
std::vector<v1::EnrollmentUpdate> UpdatesOf(const Reader& reader, const System& sys,
                                            const std::string& enrollment_key) {
  std::vector<v1::EnrollmentUpdate> out;
  for (const Seen* s : reader.On(sys.topics().enrollment_updates, enrollment_key)) {
    v1::EnrollmentUpdate u;
    if (u.ParseFromString(s->message.value)) out.push_back(u);
  }
  return out;
}

// "KIND STATUS detail" per update, short names, for one readable comparison.
std::vector<std::string> Describe(const std::vector<v1::EnrollmentUpdate>& updates) {
  std::vector<std::string> out;
  for (const v1::EnrollmentUpdate& u : updates) {
    std::string d = absl::StrCat(
        v1::EnrollmentUpdateKind_Name(u.kind()).substr(sizeof("ENROLLMENT_UPDATE_KIND_") - 1), " ",
        v1::EnrollmentStatus_Name(u.status()).substr(sizeof("ENROLLMENT_STATUS_") - 1));
    if (!u.step_id().empty()) absl::StrAppend(&d, " ", u.step_id());
    if (u.pause_cause() != v1::PAUSE_CAUSE_UNSPECIFIED) {
      absl::StrAppend(&d, " ", v1::PauseCause_Name(u.pause_cause()));
    }
    if (u.exit_reason() != v1::EXIT_REASON_UNSPECIFIED) {
      absl::StrAppend(&d, " ", v1::ExitReason_Name(u.exit_reason()));
    }
    if (u.removal_reason() != v1::REMOVAL_REASON_UNSPECIFIED) {
      absl::StrAppend(&d, " ", v1::RemovalReason_Name(u.removal_reason()));
    }
    if (u.failure_reason() != v1::FAILURE_REASON_UNSPECIFIED) {
      absl::StrAppend(&d, " ", v1::FailureReason_Name(u.failure_reason()));
    }
    out.push_back(d);
  }
  return out;
}

v1::EnrollmentActionRequest Action(const std::string& name, const std::string& request_id) {
  v1::EnrollmentActionRequest req;
  req.set_name(name);
  req.set_request_id(request_id);
  return req;
}

TEST_CASE(
    "Given enrollments that wait, pause, resume, complete, are removed and fail, when a "
    "read_committed consumer reads enrollment-updates, then each enrollment's status changes "
    "are there exactly once, in order, keyed by the enrollment") {
  System sys;
  ApiProcess& api = sys.api();
  const std::string flow =
      CreateSequence(api, "create-updates", {WaitingCall("call"), ActivityStep("note", 0)});
  const std::string failing = CreateSequence(api, "create-failing", {EmailStep("auto", 0, true)});
  BatchEnroll(api, flow, {{"done", "rep-1"}, {"removed", "rep-1"}});
  BatchEnroll(api, failing, {{"failed", "rep-1"}});
  const std::string done = EnrollmentName(flow, "done");
  const std::string removed = EnrollmentName(flow, "removed");

  // Both wait for their call (its task id is on the enrollment).
  auto waiting = [&](const std::string& name) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    v1::Enrollment e;
    while (absl::Now() < deadline) {
      v1::GetEnrollmentRequest req;
      req.set_name(name);
      e.Clear();
      if (api.enrollments().GetEnrollment(CallAs(kCompany).get(), req, &e).ok() &&
          !e.waiting_task_id().empty()) {
        break;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    INFO(name << " " << e.DebugString());
    REQUIRE(!e.waiting_task_id().empty());
    return e;
  };
  const v1::Enrollment done_waiting = waiting(done);
  waiting(removed);

  v1::EnrollmentResponse resp;
  REQUIRE(
      api.enrollments().PauseEnrollment(CallAs(kCompany).get(), Action(done, "p1"), &resp).ok());
  WaitForStatus(api, done, v1::ENROLLMENT_STATUS_PAUSED);
  REQUIRE(
      api.enrollments().ResumeEnrollment(CallAs(kCompany).get(), Action(done, "r1"), &resp).ok());
  WaitForStatus(api, done, v1::ENROLLMENT_STATUS_IN_PROGRESS);
  v1::ReportActivityCompletedRequest completed;
  completed.set_name(done);
  completed.set_task_id(done_waiting.waiting_task_id());
  completed.set_request_id("call-done");
  REQUIRE(api.enrollments().ReportActivityCompleted(CallAs(kCompany).get(), completed, &resp).ok());
  REQUIRE(api.enrollments()
              .RemoveEnrollment(CallAs(kCompany).get(), Action(removed, "remove"), &resp)
              .ok());

  const std::string done_key = absl::StrCat(ItemKey("done"), "#", SequenceIdOf(flow));
  const std::string removed_key = absl::StrCat(ItemKey("removed"), "#", SequenceIdOf(flow));
  const std::string failed_key = absl::StrCat(ItemKey("failed"), "#", SequenceIdOf(failing));
  const std::map<std::string, std::vector<std::string>> want = {
      {done_key,
       {"ENROLLED IN_PROGRESS", "STEP_REACHED IN_PROGRESS call",
        "PAUSED PAUSED PAUSE_CAUSE_ENROLLMENT", "RESUMED IN_PROGRESS PAUSE_CAUSE_ENROLLMENT",
        "STEP_REACHED IN_PROGRESS note", "COMPLETED COMPLETED EXIT_REASON_ALL_STEPS_DONE"}},
      {removed_key,
       {"ENROLLED IN_PROGRESS", "STEP_REACHED IN_PROGRESS call",
        "REMOVED REMOVED REMOVAL_REASON_REQUESTED"}},
      // Automated sending is off for the failing sequence.
      {failed_key,
       {"ENROLLED IN_PROGRESS", "FAILED FAILED auto FAILURE_REASON_AUTOMATED_SENDING_OFF"}},
  };
  Reader reader({sys.topics().enrollment_updates});
  auto all_there = [&] {
    for (const auto& [key, kinds] : want) {
      if (UpdatesOf(reader, sys, key).size() < kinds.size()) return false;
    }
    return true;
  };
  REQUIRE(reader.PollUntil(all_there, absl::Seconds(30)));
  reader.Poll(absl::Seconds(2));  // anything written twice would arrive meanwhile

  std::set<std::string> ids;
  for (const auto& [key, kinds] : want) {
    const std::vector<v1::EnrollmentUpdate> updates = UpdatesOf(reader, sys, key);
    INFO(key);
    CHECK(Describe(updates) == kinds);
    for (const v1::EnrollmentUpdate& u : updates) {
      CHECK(ids.insert(u.update_id()).second);  // exactly once
      CHECK(u.company_id() == kCompany);
      CHECK(absl::StrCat(u.ref().item_key(), "#", u.ref().sequence_id()) == key);
      CHECK(u.owner_id() == "rep-1");
    }
  }
  // Nothing but these enrollments' updates, and every record decodes.
  CHECK(reader.On(sys.topics().enrollment_updates).size() == ids.size());
}

}  // namespace
}  // namespace sequences::testing
