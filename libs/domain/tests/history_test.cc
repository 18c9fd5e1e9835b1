#include "libs/domain/history.h"

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "libs/domain/tests/builders.h"

namespace sequences::domain {
namespace {

using namespace testing;

TEST_CASE(
    "Given an enrollment that runs a task step, then fails an automatic email for want of "
    "consent and is removed, its history names each step, rule and cause",
    "[history]") {
  const absl::Time t0 = Utc(2024, 3, 4, 10);
  const SequenceState seq = MakeSequence({ActivityStep("call", v1::DELAY_UNIT_HOURS, 1),
                                          EmailStep("auto", v1::DELAY_UNIT_HOURS, 1, true)},
                                         t0);
  std::vector<std::string> lines;
  EnrollmentState s;
  auto fold = [&](const Decision& d) {
    for (const v1::Envelope& e : d.executor_events) {
      lines.push_back(DescribeExecutorEvent(e));
      s = EvolveEnrollment(std::move(s), e);
    }
  };
  fold(Must(DecideEnrollment(s, Enroll(), seq, t0)));
  fold(Must(DecideStepDue(s, *NextDueAt(s), seq, *NextDueAt(s))));
  fold(Must(DecideStepDue(s, *NextDueAt(s), seq, *NextDueAt(s))));
  v1::Envelope remove = Input();
  remove.mutable_remove_requested()->mutable_target()->set_item_key("c1/deal/42");
  remove.mutable_remove_requested()->mutable_target()->set_sequence_id("s1");
  remove.mutable_remove_requested()->set_requested_by("u9");
  fold(Must(DecideEnrollment(s, remove, seq, t0 + absl::Hours(5))));

  REQUIRE(lines.size() == 4);
  INFO(lines[0] << "\n" << lines[1] << "\n" << lines[2] << "\n" << lines[3]);
  CHECK(absl::StartsWith(lines[0], "enrolled"));
  CHECK(absl::StrContains(lines[0], "first step call due 2024-03-04T11:00:00Z"));
  CHECK(absl::StartsWith(lines[1], "step call ran (due 2024-03-04T11:00:00Z): task created"));
  CHECK(absl::StrContains(lines[1], "next step auto due 2024-03-04T12:00:00Z"));
  CHECK(absl::StartsWith(lines[2], "failed at step auto: automated_sending_off"));
  CHECK(absl::StrContains(lines[2], "switched off"));
  CHECK(lines[3] == "removed: requested by u9");
}

}  // namespace
}  // namespace sequences::domain
