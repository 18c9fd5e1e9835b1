// The minimum gap between emails to one person through the API (docs/min-gap.md): the company's
// setting, a second email to the same address shown as deferred (min_gap) on GetEnrollment and in
// the history, then sent two days later. Real sequence-api and step-executor processes over the
// real broker.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/e2e/system/system_harness.h"

namespace sequences::testing {
namespace {

TEST_CASE(
    "Given a company minimum gap of 2 days, when two deals of one person and a deal of another "
    "reach an automatic email, then one email to each person goes out, the other shows "
    "'deferred: min_gap' on GetEnrollment and in its history, and goes out 2 days later") {
  System sys;
  ApiProcess& api = sys.api();

  v1::GetCompanySendingSettingsRequest get;
  get.set_parent(absl::StrCat("companies/", kCompany));
  v1::CompanySendingSettingsResponse settings;
  REQUIRE(api.sequences().GetCompanySendingSettings(CallAs(kCompany).get(), get, &settings).ok());
  CHECK(settings.settings().min_gap_between_emails_seconds() == 0);  // off by default
  v1::SetCompanySendingSettingsRequest set;
  set.set_parent(absl::StrCat("companies/", kCompany));
  set.set_request_id("gap-bad");
  set.mutable_settings()->set_min_gap_between_emails_seconds(31 * 86400);
  grpc::Status bad =
      api.sequences().SetCompanySendingSettings(CallAs(kCompany).get(), set, &settings);
  CHECK(bad.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(absl::StrContains(bad.error_message(), "min_gap_between_emails_seconds"));
  set.set_request_id("gap-1");
  set.mutable_settings()->set_min_gap_between_emails_seconds(2 * 86400);
  grpc::Status s =
      api.sequences().SetCompanySendingSettings(CallAs(kCompany).get(), set, &settings);
  INFO(s.error_message());
  REQUIRE(s.ok());
  CHECK(settings.settings().min_gap_between_emails_seconds() == 2 * 86400);
  REQUIRE(api.sequences().GetCompanySendingSettings(CallAs(kCompany).get(), get, &settings).ok());
  CHECK(settings.settings().min_gap_between_emails_seconds() == 2 * 86400);

  const std::string sequence = CreateSequence(api, "create-gap", {EmailStep("auto", 0, true)});
  const std::string owner = "rep-1";
  EnableAutomaticSending(api, sequence, owner);
  // Two deals of ann (one address, spelled two ways) and one of bob.
  const std::vector<std::pair<std::string, std::string>> items = {
      {"ann-1", "ann@example.com"}, {"ann-2", " Ann@Example.com"}, {"bob-1", "bob@example.com"}};
  v1::BatchEnrollRequest batch;
  batch.set_parent(sequence);
  for (const auto& [id, address] : items) {
    v1::EnrollItem* item = batch.add_items();
    item->set_entity_kind(v1::ENTITY_KIND_DEAL);
    item->set_item_id(id);
    item->set_owner_id(owner);
    item->set_request_id("enroll-" + id);
    item->mutable_recipient()->set_email(address);
    item->mutable_recipient()->set_name("Contact " + id);
    (*item->mutable_merge_data())["person.first_name"] = FirstName(id);
  }
  v1::BatchEnrollResponse resp;
  REQUIRE(api.enrollments().BatchEnroll(CallAs(kCompany).get(), batch, &resp).ok());
  REQUIRE(resp.accepted_count() == 3);

  Reader reader({sys.topics().email_events});
  auto deferred = [&] {
    std::vector<v1::Enrollment> out;
    for (const auto& [id, address] : items) {
      std::optional<v1::Enrollment> e = FindEnrollment(api, EnrollmentName(sequence, id));
      if (e.has_value() && e->has_deferred()) out.push_back(*e);
    }
    return out;
  };
  const absl::Time until = absl::Now() + absl::Seconds(60);
  while (deferred().empty() && absl::Now() < until) absl::SleepFor(absl::Milliseconds(200));
  REQUIRE(reader.PollUntil([&] { return reader.On(sys.topics().email_events).size() >= 2; },
                           absl::Seconds(30)));
  reader.Poll(absl::Seconds(1));
  REQUIRE(reader.On(sys.topics().email_events).size() == 2);
  bool bob_sent = false;
  for (const Seen* seen : reader.On(sys.topics().email_events)) {
    bob_sent = bob_sent || seen->event.email_send().item_key() == ItemKey("bob-1");
  }
  CHECK(bob_sent);  // the other person is not delayed
  const std::vector<v1::Enrollment> waiting = deferred();
  REQUIRE(waiting.size() == 1);
  const v1::Enrollment& e = waiting[0];
  INFO(e.DebugString());
  CHECK(absl::StrContains(e.name(), "deal:ann-"));
  CHECK(e.deferred().reason() == "min_gap");
  CHECK(e.deferred().step_id() == "auto");
  CHECK(absl::StrContains(e.deferred().detail(), "ann@example.com"));
  CHECK(absl::StrContains(e.deferred().detail(), "gap 2d"));
  CHECK(domain::FromProto(e.deferred().until()) >= sys.Now() + absl::Hours(47));
  v1::ListEnrollmentEventsRequest list;
  list.set_name(e.name());
  v1::ListEnrollmentEventsResponse history;
  REQUIRE(api.enrollments().ListEnrollmentEvents(CallAs(kCompany).get(), list, &history).ok());
  bool explained = false;
  for (const v1::EnrollmentEvent& h : history.events()) {
    explained = explained ||
                (absl::StrContains(h.description(), "email of step auto deferred: min_gap (") &&
                 absl::StrContains(h.description(), "ann@example.com"));
  }
  CHECK(explained);

  // A day later it still waits; two days after the first send it goes out.
  sys.AdvanceClock(absl::Hours(24));
  reader.Poll(absl::Seconds(2));
  CHECK(reader.On(sys.topics().email_events).size() == 2);
  sys.AdvanceClock(absl::Hours(24) + absl::Seconds(1));
  REQUIRE(reader.PollUntil([&] { return reader.On(sys.topics().email_events).size() >= 3; },
                           absl::Seconds(30)));
  reader.Poll(absl::Seconds(1));
  CHECK(reader.On(sys.topics().email_events).size() == 3);
  const absl::Time cleared = absl::Now() + absl::Seconds(30);
  while (!deferred().empty() && absl::Now() < cleared) absl::SleepFor(absl::Milliseconds(200));
  CHECK(deferred().empty());
}

}  // namespace
}  // namespace sequences::testing
