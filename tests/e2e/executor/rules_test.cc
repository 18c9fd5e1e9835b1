// Rules checked when a step fires, end to end: exit conditions, pause/resume, consent revoked,
// missing merge field, sequence deleted while items wait.
#include <catch2/catch.hpp>

#include "libs/domain/envelope.h"
#include "tests/e2e/executor/harness.h"

namespace sequences::executor::e2e {
namespace {

using namespace sequences::executor::testing;

// An activity at once, then an automatic email one minute later.
SequenceBuilder CallThenMail(World& w, const std::string& id) {
  SequenceBuilder seq("c1", id);
  const absl::Time now = w.Now();
  std::vector<v1::Envelope> events =
      seq.Create({ActivityStep("call", 0), EmailStep("mail", 1, true)}, now);
  for (auto& e : seq.AutomatedSending(true, now)) events.push_back(e);
  for (auto& e : seq.Consent("owner-1", true, now)) events.push_back(e);
  w.PublishSequence(events);
  return seq;
}

v1::Envelope ItemInput(const World& w, const std::string& id) { return Input(id, w.Now()); }

// Waits until the executor has folded `seq` at its current version: an enroll request that needs
// that version is deferred until then, so an executor event for the sentinel item proves it.
void AwaitSequenceVersion(World& w, Reader& reader, const SequenceBuilder& seq,
                          const std::string& sentinel_item) {
  w.Publish(w.topics().enrollment_events, sentinel_item,
            Enroll(sentinel_item, seq.id(), seq.state().version, w.Now()));
  INFO(seq.id() << " version " << seq.state().version);
  REQUIRE(reader.PollUntil(
      [&] { return !reader.On(w.topics().executor_events, sentinel_item).empty(); },
      absl::Seconds(60)));
}

TEST_CASE(
    "Exit conditions, pause and resume, revoked consent, a missing merge field and a "
    "deleted sequence decide what an automatic email does when it comes due") {
  World w;
  w.UseTestClock();  // the email's minute and the pause pass when the test moves the clock
  SequenceBuilder main_seq = CallThenMail(w, "s-main");
  SequenceBuilder revoked_seq = CallThenMail(w, "s-revoked");
  SequenceBuilder deleted_seq = CallThenMail(w, "s-deleted");
  auto exec = w.StartExecutor("a");

  const std::string kNormal = "c1/deal/normal", kWon = "c1/deal/won", kPaused = "c1/deal/paused",
                    kNoName = "c1/deal/noname", kRevoked = "c1/deal/revoked",
                    kDeleted = "c1/deal/deleted";
  auto enroll = [&](const std::string& item, const SequenceBuilder& seq,
                    const std::string& name = "Ada") {
    w.Publish(w.topics().enrollment_events, item,
              Enroll(item, seq.id(), seq.state().version, w.Now(), name));
  };
  enroll(kNormal, main_seq);
  enroll(kWon, main_seq);
  enroll(kPaused, main_seq);
  enroll(kNoName, main_seq, "");
  enroll(kRevoked, revoked_seq);
  enroll(kDeleted, deleted_seq);

  Reader reader({w.topics().executor_events, w.topics().task_events, w.topics().email_events});
  auto count = [&](const std::string& topic) { return reader.On(topic).size(); };
  auto has = [&](const std::string& item, v1::Envelope::PayloadCase payload) {
    for (const Seen* s : reader.On(w.topics().executor_events, item)) {
      if (s->event.payload_case() == payload) return true;
    }
    return false;
  };
  REQUIRE(reader.PollUntil([&] { return count(w.topics().task_events) >= 6; }, absl::Seconds(60)));

  // While the emails wait: the deal is won, one enrollment paused, consent revoked, a sequence
  // deleted. Each is decided before the clock moves on.
  v1::Envelope won = ItemInput(w, "won-1");
  won.mutable_item_outcome()->set_item_key(kWon);
  won.mutable_item_outcome()->set_kind(v1::ITEM_OUTCOME_KIND_DEAL_WON);
  w.Publish(w.topics().enrollment_events, kWon, won);
  v1::Envelope pause = ItemInput(w, "pause-1");
  pause.mutable_pause_requested()->mutable_target()->mutable_item_in_sequence()->set_item_key(
      kPaused);
  pause.mutable_pause_requested()->mutable_target()->mutable_item_in_sequence()->set_sequence_id(
      main_seq.id());
  w.Publish(w.topics().enrollment_events, kPaused, pause);
  w.PublishSequence(revoked_seq.Consent("owner-1", false, w.Now()));
  w.PublishSequence(deleted_seq.Delete(w.Now()));
  REQUIRE(reader.PollUntil(
      [&] {
        return has(kWon, v1::Envelope::kEnrollmentCompleted) &&
               has(kPaused, v1::Envelope::kEnrollmentPaused);
      },
      absl::Seconds(60)));
  AwaitSequenceVersion(w, reader, revoked_seq, "c1/deal/sentinel-revoked");
  AwaitSequenceVersion(w, reader, deleted_seq, "c1/deal/sentinel-deleted");
  CHECK(count(w.topics().email_events) == 0);  // not before the minute is up

  constexpr absl::Duration kPauseFor = absl::Seconds(20);
  w.AdvanceClock(kPauseFor);
  v1::Envelope resume = ItemInput(w, "resume-1");
  *resume.mutable_resume_requested()->mutable_target() = pause.pause_requested().target();
  w.Publish(w.topics().enrollment_events, kPaused, resume);
  REQUIRE(reader.PollUntil([&] { return has(kPaused, v1::Envelope::kEnrollmentResumed); },
                           absl::Seconds(60)));
  CHECK(count(w.topics().email_events) == 0);
  // Past every email's due time, the pause's 20 s included.
  w.AdvanceClock(absl::Minutes(1));

  auto mail_of = [&](const std::string& item) -> const Seen* {
    for (const Seen* s : reader.On(w.topics().email_events)) {
      if (s->message.key == item) return s;
    }
    return nullptr;
  };
  auto ended = [&](const std::string& item) -> const v1::Envelope* {
    for (const Seen* s : reader.On(w.topics().executor_events)) {
      if (s->message.key != item) continue;
      const v1::Envelope& e = s->event;
      if (e.has_enrollment_completed() || e.has_enrollment_failed() || e.has_enrollment_removed())
        return &e;
    }
    return nullptr;
  };
  REQUIRE(reader.PollUntil(
      [&] {
        return mail_of(kNormal) != nullptr && mail_of(kPaused) != nullptr &&
               ended(kWon) != nullptr && ended(kNoName) != nullptr && ended(kRevoked) != nullptr &&
               ended(kDeleted) != nullptr;
      },
      absl::Seconds(60)));
  reader.Poll(absl::Seconds(2));

  // Exactly the two emails that should go out went out.
  CHECK(count(w.topics().email_events) == 2);
  CHECK(ended(kWon)->enrollment_completed().exit_reason() == v1::EXIT_REASON_DEAL_WON);
  CHECK(ended(kNoName)->enrollment_failed().reason() == v1::FAILURE_REASON_MISSING_MERGE_FIELD);
  CHECK(ended(kNoName)->enrollment_failed().missing_merge_field() == "person.first_name");
  CHECK(ended(kRevoked)->enrollment_failed().reason() == v1::FAILURE_REASON_CONSENT_MISSING);
  CHECK(ended(kDeleted)->enrollment_removed().reason() == v1::REMOVAL_REASON_SEQUENCE_DELETED);
  CHECK(mail_of(kNormal)->event.email_send().subject() == "Following up, Ada");

  // The paused enrollment's delay stood still while it was paused.
  absl::Time call_at = absl::InfinitePast();
  absl::Time paused_at = absl::InfiniteFuture();
  for (const Seen* s : reader.On(w.topics().executor_events)) {
    if (s->message.key == kPaused && s->event.has_step_executed() &&
        s->event.step_executed().step_id() == "call") {
      call_at = domain::FromProto(s->event.step_executed().executed_at());
    }
    if (s->message.key == kPaused && s->event.has_enrollment_paused()) {
      paused_at = domain::FromProto(s->event.enrollment_paused().paused_at());
    }
  }
  const absl::Time mailed_at =
      domain::FromProto(mail_of(kPaused)->event.email_send().scheduled_at());
  CHECK(paused_at < call_at + absl::Minutes(1));  // the pause came before the original due time
  CHECK(mailed_at >= call_at + absl::Minutes(1) + kPauseFor - absl::Seconds(2));
  CHECK(exec->Terminate() == 0);
}

}  // namespace
}  // namespace sequences::executor::e2e
