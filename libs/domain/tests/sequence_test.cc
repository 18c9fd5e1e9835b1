#include "libs/domain/sequence.h"

#include <catch2/catch.hpp>

#include "libs/domain/errors.h"
#include "libs/domain/templates.h"
#include "libs/domain/tests/builders.h"

namespace sequences::domain {
namespace {

using namespace testing;

const absl::Time kT0 = Utc(2024, 5, 6, 9);

SequenceState Created() { return MakeSequence({ActivityStep("a", v1::DELAY_UNIT_DAYS, 1)}, kT0); }

absl::StatusCode CodeOf(const SequenceState& s, const v1::SequenceCommand& c) {
  return DecideSequence(s, c, kT0).status().code();
}

TEST_CASE("Given no sequence, when created, then SequenceCreated version 1 is folded",
          "[sequence]") {
  auto events =
      DecideSequence({}, CreateCommand("s1", {ActivityStep("a", v1::DELAY_UNIT_DAYS, 1)}), kT0);
  REQUIRE(events.ok());
  REQUIRE(events->size() == 1);
  const v1::Envelope& e = (*events)[0];
  CHECK(e.event_id() == "s1@1");
  CHECK(e.company_id() == "c1");
  CHECK(e.correlation_id() == "req");
  CHECK(e.sequence_created().version() == 1);
  SequenceState s = EvolveSequence({}, e);
  CHECK(s.exists);
  CHECK(s.version == 1);
  CHECK(s.entity_kind == v1::ENTITY_KIND_DEAL);
  CHECK(s.steps.size() == 1);
  CHECK(s.created_at == kT0);
  CHECK_FALSE(s.automated_sending);
}

TEST_CASE("Given an existing sequence, when created again, then ALREADY_EXISTS", "[sequence]") {
  CHECK(CodeOf(Created(), CreateCommand("s1", {})) == absl::StatusCode::kAlreadyExists);
}

TEST_CASE(
    "Given a template id, when created from it, then steps and settings come from the "
    "template",
    "[sequence]") {
  const v1::SequenceTemplate& t = TemplateCatalog()[0];
  v1::SequenceCommand c = Command("s2");
  c.mutable_create()->set_owner_id("u1");
  c.mutable_create()->set_template_id(t.id());
  SequenceState s = Apply({}, c, kT0);
  CHECK(s.name == t.name());
  CHECK(s.entity_kind == t.entity_kind());
  CHECK(static_cast<int>(s.steps.size()) == t.steps_size());
  CHECK(s.template_id == t.id());
}

TEST_CASE(
    "Given a template, when created from it with a settings override, then only the overridden "
    "fields change and the template's send window and re-enrollment rule stay",
    "[sequence][templates]") {
  const v1::SequenceTemplate& t = TemplateCatalog()[0];
  REQUIRE(t.settings().has_send_window());
  REQUIRE(t.settings().reenrollment() != v1::REENROLLMENT_RULE_UNSPECIFIED);
  v1::SequenceCommand c = Command("s2");
  c.mutable_create()->set_owner_id("u1");
  c.mutable_create()->set_template_id(t.id());
  c.mutable_create()->mutable_settings()->set_default_time_zone("Europe/Berlin");
  SequenceState s = Apply({}, c, kT0);
  CHECK(s.settings.default_time_zone() == "Europe/Berlin");
  CHECK(s.settings.send_window().SerializeAsString() ==
        t.settings().send_window().SerializeAsString());
  CHECK(s.settings.reenrollment() == t.settings().reenrollment());

  // An overridden rule replaces the template's; the window still comes from the template.
  v1::SequenceCommand never = Command("s3");
  never.mutable_create()->set_owner_id("u1");
  never.mutable_create()->set_template_id(t.id());
  never.mutable_create()->mutable_settings()->set_reenrollment(v1::REENROLLMENT_RULE_NEVER);
  SequenceState n = Apply({}, never, kT0);
  CHECK(n.settings.reenrollment() == v1::REENROLLMENT_RULE_NEVER);
  CHECK(n.settings.send_window().ranges_size() == t.settings().send_window().ranges_size());
}

TEST_CASE(
    "Given an unknown template, when created from it, then INVALID_ARGUMENT names "
    "template_id",
    "[sequence]") {
  v1::SequenceCommand c = Command("s2");
  c.mutable_create()->set_owner_id("u1");
  c.mutable_create()->set_template_id("nope");
  absl::Status st = DecideSequence({}, c, kT0).status();
  CHECK(st.code() == absl::StatusCode::kInvalidArgument);
  CHECK(GetFieldViolations(st).at(0).field == "create.template_id");
}

TEST_CASE("Given a malformed definition, when created, then INVALID_ARGUMENT with field paths",
          "[sequence]") {
  v1::SequenceCommand c = CreateCommand("s1", {ActivityStep("a", v1::DELAY_UNIT_DAYS, 1),
                                               ActivityStep("a", v1::DELAY_UNIT_DAYS, 999)});
  c.mutable_create()->set_name("");
  absl::Status st = DecideSequence({}, c, kT0).status();
  REQUIRE(st.code() == absl::StatusCode::kInvalidArgument);
  REQUIRE(st.GetPayload(kBadRequestTypeUrl).has_value());
  std::vector<std::string> fields;
  for (const auto& v : GetFieldViolations(st)) fields.push_back(v.field);
  CHECK(fields == std::vector<std::string>{"create.name", "create.steps[1].delay.amount",
                                           "create.steps[1].id"});
}

TEST_CASE("Given a sequence, when its steps are replaced, then version 2 holds the new steps",
          "[sequence]") {
  v1::SequenceCommand c = Command("s1", 1);
  *c.mutable_replace_steps()->add_steps() = ActivityStep("b", v1::DELAY_UNIT_HOURS, 3);
  SequenceState s = Apply(Created(), c, kT0);
  CHECK(s.version == 2);
  REQUIRE(s.steps.size() == 1);
  CHECK(s.steps[0].id() == "b");
}

TEST_CASE("Given version 2, when a command expects version 1, then ABORTED", "[sequence]") {
  v1::SequenceCommand pause = Command("s1");
  pause.mutable_pause();
  SequenceState s = Apply(Created(), pause, kT0);
  v1::SequenceCommand c = Command("s1", 1);
  c.mutable_resume();
  CHECK(CodeOf(s, c) == absl::StatusCode::kAborted);
}

TEST_CASE("Given no sequence, when a command other than create arrives, then NOT_FOUND",
          "[sequence]") {
  v1::SequenceCommand c = Command("s1");
  c.mutable_delete_();
  CHECK(CodeOf({}, c) == absl::StatusCode::kNotFound);
}

TEST_CASE("Given a sequence, when settings change, then name and settings are replaced",
          "[sequence]") {
  v1::SequenceCommand c = Command("s1");
  c.mutable_change_settings()->set_name("Renamed");
  c.mutable_change_settings()->mutable_settings()->set_default_time_zone("Europe/Berlin");
  SequenceState s = Apply(Created(), c, kT0);
  CHECK(s.name == "Renamed");
  CHECK(s.settings.default_time_zone() == "Europe/Berlin");
}

TEST_CASE("Given a sequence, when settings name an unknown time zone, then INVALID_ARGUMENT",
          "[sequence]") {
  v1::SequenceCommand c = Command("s1");
  c.mutable_change_settings()->mutable_settings()->set_default_time_zone("Mars/Olympus");
  absl::Status st = DecideSequence(Created(), c, kT0).status();
  CHECK(st.code() == absl::StatusCode::kInvalidArgument);
  CHECK(GetFieldViolations(st).at(0).field == "change_settings.settings.default_time_zone");
}

TEST_CASE("Given a deleted sequence, when any command arrives, then FAILED_PRECONDITION",
          "[sequence]") {
  v1::SequenceCommand del = Command("s1");
  del.mutable_delete_();
  SequenceState s = Apply(Created(), del, kT0);
  CHECK(s.deleted);
  v1::SequenceCommand c = Command("s1");
  c.mutable_pause();
  CHECK(CodeOf(s, c) == absl::StatusCode::kFailedPrecondition);
  CHECK(CodeOf(s, del) == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE(
    "Given automated sending off, when switched on, then it is on, switching again is a "
    "no-op",
    "[sequence]") {
  v1::SequenceCommand c = Command("s1");
  c.mutable_switch_automated_sending()->set_enabled(true);
  SequenceState s = Apply(Created(), c, kT0);
  CHECK(s.automated_sending);
  CHECK(DecideSequence(s, c, kT0)->empty());
  c.mutable_switch_automated_sending()->set_enabled(false);
  CHECK_FALSE(Apply(s, c, kT0).automated_sending);
}

TEST_CASE("Given a user, when they grant consent, then it is recorded, revoke removes it",
          "[sequence]") {
  v1::SequenceCommand grant = Command("s1");
  grant.mutable_grant_consent()->set_user_id("u1");
  SequenceState s = Apply(Created(), grant, kT0);
  CHECK(s.HasConsent("u1"));
  CHECK(DecideSequence(s, grant, kT0)->empty());
  v1::SequenceCommand revoke = Command("s1");
  revoke.mutable_revoke_consent()->set_user_id("u1");
  s = Apply(s, revoke, kT0);
  CHECK_FALSE(s.HasConsent("u1"));
  CHECK(DecideSequence(s, revoke, kT0)->empty());
}

TEST_CASE("Given another user, when granting consent for someone else, then PERMISSION_DENIED",
          "[sequence]") {
  v1::SequenceCommand grant = Command("s1");
  grant.mutable_grant_consent()->set_user_id("u2");
  CHECK(CodeOf(Created(), grant) == absl::StatusCode::kPermissionDenied);
}

TEST_CASE("Given a sequence, when paused and resumed, then the flag follows, repeats are no-ops",
          "[sequence]") {
  v1::SequenceCommand pause = Command("s1");
  pause.mutable_pause();
  SequenceState s = Apply(Created(), pause, kT0);
  CHECK(s.paused);
  CHECK(DecideSequence(s, pause, kT0)->empty());
  v1::SequenceCommand resume = Command("s1");
  resume.mutable_resume();
  s = Apply(s, resume, kT0);
  CHECK_FALSE(s.paused);
  CHECK(DecideSequence(s, resume, kT0)->empty());
}

TEST_CASE("Given a command without payload or id, then INVALID_ARGUMENT", "[sequence]") {
  CHECK(CodeOf({}, Command("s1")) == absl::StatusCode::kInvalidArgument);
  CHECK(CodeOf({}, CreateCommand("", {})) == absl::StatusCode::kInvalidArgument);
}

TEST_CASE(
    "Given version 3, when an event with version <= 3 is folded, then it is ignored, a gap "
    "is applied",
    "[sequence]") {
  SequenceState s = Created();
  v1::SequenceCommand pause = Command("s1");
  pause.mutable_pause();
  auto events = DecideSequence(s, pause, kT0);
  s = EvolveSequence(s, (*events)[0]);
  CHECK(s.version == 2);
  CHECK(s.paused);
  // Redelivered: ignored.
  SequenceState again = EvolveSequence(s, (*events)[0]);
  CHECK(again.version == 2);
  // A stale "resumed" at version 2 does nothing.
  v1::Envelope stale = MakeEnvelope("x", "c1", kT0, "", "");
  stale.mutable_sequence_resumed()->set_sequence_id("s1");
  stale.mutable_sequence_resumed()->set_version(2);
  CHECK(EvolveSequence(s, stale).paused);
  // A gap is applied.
  stale.mutable_sequence_resumed()->set_version(5);
  SequenceState gap = EvolveSequence(s, stale);
  CHECK_FALSE(gap.paused);
  CHECK(gap.version == 5);
  // Another sequence's event is ignored.
  stale.mutable_sequence_resumed()->set_sequence_id("s9");
  CHECK(EvolveSequence(s, stale).version == 2);
}

TEST_CASE("Every catalog template is a valid definition", "[sequence][templates]") {
  for (const v1::SequenceTemplate& t : TemplateCatalog()) {
    v1::SequenceCommand c = Command(t.id());
    c.mutable_create()->set_owner_id("u1");
    c.mutable_create()->set_template_id(t.id());
    INFO(t.id());
    CHECK(DecideSequence({}, c, kT0).ok());
    CHECK(FindTemplate(t.id()) == &t);
  }
  CHECK(FindTemplate("missing") == nullptr);
}

}  // namespace
}  // namespace sequences::domain
