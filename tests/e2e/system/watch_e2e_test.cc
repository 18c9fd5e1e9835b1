// WatchEnrollments as an enroller follows its enrollments (tier e2e): real sequence-api and
// step-executor processes, the real broker, a real gRPC stream. A watch of a sequence shows each
// status change of an enrollment; after a disconnect, a watch resumed from the last token gets
// exactly the changes missed, then the new ones; shutting the API down ends the stream.
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "tests/e2e/system/system_harness.h"

namespace sequences::testing {
namespace {

// An open stream and its context.
struct Watch {
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::ClientReader<v1::WatchEnrollmentsResponse>> reader;
  std::string last_token;
};

std::unique_ptr<Watch> OpenWatch(ApiProcess& api, const std::string& sequence,
                                 const std::string& token) {
  auto w = std::make_unique<Watch>();
  w->ctx = CallAs(kCompany, "u1", /*deadline_seconds=*/60);
  v1::WatchEnrollmentsRequest req;
  req.set_parent(absl::StrCat("companies/", kCompany));
  req.set_sequence(sequence);
  req.set_resume_token(token);
  w->reader = api.enrollments().WatchEnrollments(w->ctx.get(), req);
  w->reader->WaitForInitialMetadata();  // the watch is in place: no later change is missed
  return w;
}

// The next `n` changes as "KIND STATUS [step]" (REQUIREs that they come before the deadline).
std::vector<std::string> ReadChanges(Watch& w, int n) {
  std::vector<std::string> out;
  v1::WatchEnrollmentsResponse m;
  while (static_cast<int>(out.size()) < n && w.reader->Read(&m)) {
    const v1::EnrollmentUpdate& u = m.update();
    std::string d = absl::StrCat(
        v1::EnrollmentUpdateKind_Name(u.kind()).substr(sizeof("ENROLLMENT_UPDATE_KIND_") - 1), " ",
        v1::EnrollmentStatus_Name(u.status()).substr(sizeof("ENROLLMENT_STATUS_") - 1));
    if (!u.step_id().empty()) absl::StrAppend(&d, " ", u.step_id());
    CHECK(u.ref().item_key() == ItemKey("w1"));
    CHECK_FALSE(m.resume_token().empty());
    w.last_token = m.resume_token();
    out.push_back(d);
  }
  INFO(absl::StrJoin(out, ", "));
  REQUIRE(static_cast<int>(out.size()) == n);
  return out;
}

v1::EnrollmentActionRequest Action(const std::string& name, const std::string& request_id) {
  v1::EnrollmentActionRequest req;
  req.set_name(name);
  req.set_request_id(request_id);
  return req;
}

TEST_CASE(
    "Given a watch of a sequence, when an enrollment runs, pauses, resumes and completes, then "
    "the stream shows each change, a watch resumed after a disconnect gets exactly the changes "
    "missed and then the new ones, and a shutdown ends the stream UNAVAILABLE") {
  System sys;
  ApiProcess& api = sys.api();
  const std::string seq = CreateSequence(api, "create-watched", {ActivityStep("call", 0, true)});
  const std::string name = EnrollmentName(seq, "w1");

  std::unique_ptr<Watch> first = OpenWatch(api, seq, "");
  BatchEnroll(api, seq, {{"w1", "owner-1"}});
  CHECK(ReadChanges(*first, 2) ==
        std::vector<std::string>{"ENROLLED IN_PROGRESS", "STEP_REACHED IN_PROGRESS call"});

  // Disconnect; the enrollment is paused and resumed meanwhile.
  first->ctx->TryCancel();
  CHECK(first->reader->Finish().error_code() == grpc::StatusCode::CANCELLED);
  v1::EnrollmentResponse resp;
  REQUIRE(
      api.enrollments().PauseEnrollment(CallAs(kCompany).get(), Action(name, "p1"), &resp).ok());
  WaitForStatus(api, name, v1::ENROLLMENT_STATUS_PAUSED);
  REQUIRE(
      api.enrollments().ResumeEnrollment(CallAs(kCompany).get(), Action(name, "r1"), &resp).ok());
  const v1::Enrollment running = WaitForStatus(api, name, v1::ENROLLMENT_STATUS_IN_PROGRESS);
  REQUIRE_FALSE(running.waiting_task_id().empty());

  // Resumed: the two missed changes, then (nothing repeated in between) the next live one.
  std::unique_ptr<Watch> resumed = OpenWatch(api, seq, first->last_token);
  CHECK(ReadChanges(*resumed, 2) ==
        std::vector<std::string>{"PAUSED PAUSED", "RESUMED IN_PROGRESS"});
  v1::ReportActivityCompletedRequest done;
  done.set_name(name);
  done.set_task_id(running.waiting_task_id());
  done.set_request_id("call-done");
  REQUIRE(api.enrollments().ReportActivityCompleted(CallAs(kCompany).get(), done, &resp).ok());
  CHECK(ReadChanges(*resumed, 1) == std::vector<std::string>{"COMPLETED COMPLETED"});

  // A second resume from the same token replays the same two changes (the history is kept).
  std::unique_ptr<Watch> replay = OpenWatch(api, seq, first->last_token);
  CHECK(ReadChanges(*replay, 3) ==
        std::vector<std::string>{"PAUSED PAUSED", "RESUMED IN_PROGRESS", "COMPLETED COMPLETED"});

  // SIGTERM: the open streams end with UNAVAILABLE from the server (not a broken connection),
  // and the process exits cleanly.
  CHECK(api.process().Terminate() == 0);
  for (Watch* w : {resumed.get(), replay.get()}) {
    v1::WatchEnrollmentsResponse m;
    CHECK_FALSE(w->reader->Read(&m));
    const grpc::Status end = w->reader->Finish();
    INFO(end.error_code() << " " << end.error_message());
    CHECK(end.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(absl::StrContains(end.error_message(), "shutting down"));
  }
}

}  // namespace
}  // namespace sequences::testing
