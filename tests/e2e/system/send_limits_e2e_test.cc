// Send limits through the API (docs/send-limits.md): the company's setting, an email over the
// limit shown as deferred on GetEnrollment, in the history and in the step statistics, then sent
// the next day. Real sequence-api and step-executor processes over the real broker.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "tests/e2e/system/system_harness.h"

namespace sequences::testing {
namespace {

TEST_CASE(
    "Given a company limit of 2 automatic emails a day per sender, when 4 deals of one sender "
    "reach an automatic email, then 2 are sent, 2 show 'deferred: send_limit' on GetEnrollment, "
    "in their history and in the step statistics, and go out the next day") {
  System sys;
  ApiProcess& api = sys.api();

  v1::GetCompanySendingSettingsRequest get;
  get.set_parent(absl::StrCat("companies/", kCompany));
  v1::CompanySendingSettingsResponse settings;
  REQUIRE(api.sequences().GetCompanySendingSettings(CallAs(kCompany).get(), get, &settings).ok());
  CHECK(settings.settings().daily_limit_per_sender() == 200);  // the documented default
  v1::SetCompanySendingSettingsRequest set;
  set.set_parent(absl::StrCat("companies/", kCompany));
  set.set_request_id("limits-1");
  set.mutable_settings()->set_daily_limit_per_sender(2);
  grpc::Status s =
      api.sequences().SetCompanySendingSettings(CallAs(kCompany).get(), set, &settings);
  INFO(s.error_message());
  REQUIRE(s.ok());
  CHECK(settings.version() == 1);

  const std::string sequence = CreateSequence(api, "create-limited", {EmailStep("auto", 0, true)});
  const std::string owner = "rep-1";
  EnableAutomaticSending(api, sequence, owner);
  std::vector<Item> items;
  for (int i = 0; i < 4; ++i) items.push_back({absl::StrCat("d", i), owner});
  BatchEnroll(api, sequence, items);

  Reader reader({sys.topics().email_events});
  auto deferred = [&] {
    std::vector<v1::Enrollment> out;
    for (const Item& it : items) {
      v1::Enrollment e = GetEnrollment(api, EnrollmentName(sequence, it.id));
      if (e.has_deferred()) out.push_back(e);
    }
    return out;
  };
  const absl::Time until = absl::Now() + absl::Seconds(60);
  while (deferred().size() < 2 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(200));
  REQUIRE(reader.PollUntil([&] { return reader.On(sys.topics().email_events).size() >= 2; },
                           absl::Seconds(30)));
  reader.Poll(absl::Seconds(1));
  CHECK(reader.On(sys.topics().email_events).size() == 2);
  const std::vector<v1::Enrollment> waiting = deferred();
  REQUIRE(waiting.size() == 2);
  const absl::CivilDay today(absl::UTCTimeZone().At(sys.Now()).cs);
  const absl::Time tomorrow = absl::FromCivil(today + 1, absl::UTCTimeZone());
  for (const v1::Enrollment& e : waiting) {
    INFO(e.DebugString());
    CHECK(e.deferred().reason() == "send_limit");
    CHECK(e.deferred().step_id() == "auto");
    CHECK(e.deferred().detail() == "sender rep-1: 2/day reached");
    CHECK(domain::FromProto(e.deferred().until()) == tomorrow);
    // The history says why.
    v1::ListEnrollmentEventsRequest list;
    list.set_name(e.name());
    v1::ListEnrollmentEventsResponse history;
    REQUIRE(api.enrollments().ListEnrollmentEvents(CallAs(kCompany).get(), list, &history).ok());
    bool explained = false;
    for (const v1::EnrollmentEvent& h : history.events()) {
      explained = explained || absl::StrContains(h.description(), "deferred: send_limit");
    }
    CHECK(explained);
  }
  v1::GetSequenceStatisticsRequest stats;
  stats.set_name(sequence);
  v1::SequenceStatistics st;
  REQUIRE(api.sequences().GetSequenceStatistics(CallAs(kCompany).get(), stats, &st).ok());
  int64_t deferred_total = 0;
  for (const v1::StepStatistics& row : st.steps()) {
    if (row.step_id() == "auto" && row.variant_id().empty()) deferred_total += row.deferred();
  }
  CHECK(deferred_total == 2);

  // The next day the two waiting emails go out, and the enrollments no longer show a wait.
  sys.AdvanceClock(tomorrow - sys.Now() + absl::Seconds(1));
  REQUIRE(reader.PollUntil([&] { return reader.On(sys.topics().email_events).size() >= 4; },
                           absl::Seconds(30)));
  reader.Poll(absl::Seconds(1));
  CHECK(reader.On(sys.topics().email_events).size() == 4);
  const absl::Time cleared = absl::Now() + absl::Seconds(30);
  while (!deferred().empty() && absl::Now() < cleared) absl::SleepFor(absl::Milliseconds(200));
  CHECK(deferred().empty());
}

}  // namespace
}  // namespace sequences::testing
