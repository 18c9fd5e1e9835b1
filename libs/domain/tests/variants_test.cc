#include "libs/domain/variants.h"

#include <rapidcheck.h>
#include <rapidcheck/catch.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/errors.h"
#include "libs/domain/tests/builders.h"
#include "libs/domain/validation.h"

namespace sequences::domain {
namespace {

using namespace testing;

v1::EmailVariant Variant(const std::string& id, int weight) {
  v1::EmailVariant v;
  v.set_id(id);
  v.set_weight(weight);
  v.set_subject(absl::StrCat("Subject ", id, " for {{person.first_name}}"));
  v.set_body(absl::StrCat("Body ", id));
  return v;
}

v1::Step AbStep(const std::string& id, const std::vector<v1::EmailVariant>& variants) {
  v1::Step s = EmailStep(id, v1::DELAY_UNIT_HOURS, 1, /*automatic=*/false, "", "");
  for (const v1::EmailVariant& v : variants) *s.mutable_email()->add_variants() = v;
  return s;
}

std::vector<std::string> Fields(const absl::Status& st) {
  std::vector<std::string> out;
  for (const FieldViolation& v : GetFieldViolations(st)) out.push_back(v.field);
  return out;
}

google::protobuf::RepeatedPtrField<v1::EmailVariant> Repeated(
    const std::vector<v1::EmailVariant>& variants) {
  return {variants.begin(), variants.end()};
}

// The reference: every variant repeated `weight` times in list order, indexed by the draw.
int ReferenceChoice(uint64_t draw, const std::vector<v1::EmailVariant>& variants) {
  std::vector<int> tickets;
  for (size_t i = 0; i < variants.size(); ++i)
    tickets.insert(tickets.end(), variants[i].weight(), i);
  return tickets[draw % tickets.size()];
}

TEST_CASE("A/B steps need 2 to 5 variants with unique ids, weights 1..1000 and their own text",
          "[variants][validation]") {
  CHECK(ValidateSteps({AbStep("e", {Variant("a", 1), Variant("b", 1000)})}).ok());
  CHECK(Fields(ValidateSteps({AbStep("e", {Variant("a", 1)})})) ==
        std::vector<std::string>{"steps[0].email.variants"});
  std::vector<v1::EmailVariant> six;
  for (int i = 0; i < 6; ++i) six.push_back(Variant(absl::StrCat("v", i), 1));
  CHECK(Fields(ValidateSteps({AbStep("e", six)})) ==
        std::vector<std::string>{"steps[0].email.variants"});

  v1::EmailVariant no_body = Variant("c", 0);
  no_body.clear_body();
  v1::Step step = AbStep("e", {Variant("a", 1), Variant("a", 1001), Variant("bad id", 1), no_body});
  step.mutable_email()->set_subject("a step subject beside variants");
  CHECK(Fields(ValidateSteps({step})) ==
        std::vector<std::string>{
            "steps[0].email.subject", "steps[0].email.variants[1].id",
            "steps[0].email.variants[1].weight", "steps[0].email.variants[2].id",
            "steps[0].email.variants[3].weight", "steps[0].email.variants[3].body"});
}

TEST_CASE(
    "ChooseVariant equals the ticket-drawing reference for any weights and ids, and is stable",
    "[variants][property]") {
  rc::prop("choice == reference", [](const std::string& enrollment_id, const std::string& step_id) {
    const int n = *rc::gen::inRange(kMinEmailVariants, kMaxEmailVariants + 1);
    std::vector<v1::EmailVariant> variants;
    for (int i = 0; i < n; ++i) {
      variants.push_back(
          Variant(absl::StrCat("v", i), *rc::gen::inRange(1, kMaxVariantWeight + 1)));
    }
    const int chosen = ChooseVariant(enrollment_id, step_id, Repeated(variants));
    RC_ASSERT(chosen == ReferenceChoice(VariantDraw(enrollment_id, step_id), variants));
    RC_ASSERT(chosen == ChooseVariant(enrollment_id, step_id, Repeated(variants)));
  });
}

TEST_CASE("Over many enrollments each variant's share follows its weight, independently per step",
          "[variants]") {
  const std::vector<v1::EmailVariant> quarter = {Variant("a", 1), Variant("b", 3)};
  const std::vector<v1::EmailVariant> fifths = {Variant("a", 7), Variant("b", 7), Variant("c", 7),
                                                Variant("d", 7), Variant("e", 7)};
  constexpr int kEnrollments = 40000;
  int b = 0, same_across_steps = 0;
  std::map<int, int> by_fifth;
  for (int i = 0; i < kEnrollments; ++i) {
    const std::string id = absl::StrCat("c1/deal/", i, "#s1#1");
    const int first = ChooseVariant(id, "email-1", Repeated(quarter));
    b += first == 1;
    same_across_steps += first == ChooseVariant(id, "email-2", Repeated(quarter));
    ++by_fifth[ChooseVariant(id, "email-1", Repeated(fifths))];
  }
  // Binomial standard deviations at n = 40,000 are ~0.2%; the bounds are > 5 of them.
  CHECK(std::abs(b / double(kEnrollments) - 0.75) < 0.012);
  // Independent draws agree with probability 0.25^2 + 0.75^2 = 0.625.
  CHECK(std::abs(same_across_steps / double(kEnrollments) - 0.625) < 0.015);
  REQUIRE(by_fifth.size() == 5);
  for (const auto& [index, count] : by_fifth) {
    INFO("variant " << index);
    CHECK(std::abs(count / double(kEnrollments) - 0.2) < 0.012);
  }
}

TEST_CASE(
    "Given an A/B email step, when it fires, then the email carries the drawn variant's "
    "rendered text and both EmailSend and StepExecuted name the variant",
    "[variants][enrollment]") {
  const absl::Time t0 = Utc(2024, 3, 4, 10);
  SequenceState seq =
      MakeSequence({AbStep("email-1", {Variant("short", 1), Variant("long", 1)})}, t0);
  std::map<std::string, int> seen;
  for (int i = 0; i < 40; ++i) {
    EnrollmentState s =
        Fold({}, Must(DecideEnrollment({}, Enroll(absl::StrCat("c1/deal/", i), "r1"), seq, t0)));
    const absl::Time due = *NextDueAt(s);
    const Decision d = Must(DecideStepDue(s, due, seq, due));
    REQUIRE(d.email_events.size() == 1);
    const v1::EmailSend& email = d.email_events[0].email_send();
    const int expected = ChooseVariant(s.enrollment_id, "email-1", seq.steps[0].email().variants());
    const v1::EmailVariant& variant = seq.steps[0].email().variants(expected);
    CHECK(email.variant_id() == variant.id());
    CHECK(email.subject() == absl::StrCat("Subject ", variant.id(), " for Ada"));
    REQUIRE(!d.executor_events.empty());
    CHECK(d.executor_events[0].step_executed().variant_id() == variant.id());
    ++seen[email.variant_id()];
  }
  CHECK(seen.size() == 2);  // 40 fair draws all alike: probability 2^-39
}

TEST_CASE(
    "Given enrollments before an A/B step, when its weights are edited, then they draw with "
    "the new weights, a step without variants names none",
    "[variants][enrollment]") {
  const absl::Time t0 = Utc(2024, 3, 4, 10);
  SequenceState seq = MakeSequence({AbStep("email-1", {Variant("a", 1), Variant("b", 1)})}, t0);
  std::vector<EnrollmentState> waiting;
  for (int i = 0; i < 200; ++i) {
    waiting.push_back(
        Fold({}, Must(DecideEnrollment({}, Enroll(absl::StrCat("c1/deal/", i), "r1"), seq, t0))));
  }
  seq.steps[0].mutable_email()->mutable_variants(0)->set_weight(1);
  seq.steps[0].mutable_email()->mutable_variants(1)->set_weight(1000);
  int got_b = 0;
  for (const EnrollmentState& s : waiting) {
    const absl::Time due = *NextDueAt(s);
    got_b +=
        Must(DecideStepDue(s, due, seq, due)).email_events.at(0).email_send().variant_id() == "b";
  }
  CHECK(got_b >= 190);  // expected 199.8; fewer than 190 has probability < 1e-9

  SequenceState plain = MakeSequence({EmailStep("email-1", v1::DELAY_UNIT_HOURS, 1, false)}, t0);
  const EnrollmentState s = waiting[0];
  const Decision d = Must(DecideStepDue(s, *NextDueAt(s), plain, *NextDueAt(s)));
  CHECK(d.email_events.at(0).email_send().variant_id().empty());
}

TEST_CASE(
    "Given enrollments that ran an A/B step, when its weights are edited to favour the other "
    "variant and the edit reaches them, then none draws again: the recorded variant stays, no "
    "second email goes, later steps run, and folding their log again gives the same state",
    "[variants][enrollment]") {
  const absl::Time t0 = Utc(2024, 3, 4, 10);
  SequenceState seq = MakeSequence({AbStep("email-1", {Variant("a", 1), Variant("b", 1)}),
                                    ActivityStep("call", v1::DELAY_UNIT_HOURS, 1)},
                                   t0);
  struct Walk {
    EnrollmentState state;
    std::vector<v1::Envelope> log;
    std::string variant;
    int emails = 0;
  };
  std::vector<Walk> walks(60);
  auto take = [](Walk& w, const Decision& d) {
    for (const v1::Envelope& e : d.executor_events) {
      w.state = EvolveEnrollment(std::move(w.state), e);
      w.log.push_back(e);
    }
    w.emails += static_cast<int>(d.email_events.size());
  };
  for (size_t i = 0; i < walks.size(); ++i) {
    Walk& w = walks[i];
    take(w, Must(DecideEnrollment({}, Enroll(absl::StrCat("c1/deal/", i), "r1"), seq, t0)));
    const absl::Time due = *NextDueAt(w.state);
    const Decision d = Must(DecideStepDue(w.state, due, seq, due));
    REQUIRE(d.email_events.size() == 1);
    w.variant = d.email_events[0].email_send().variant_id();
    take(w, d);
  }

  // Each enrollment's own variant gets weight 1, the other 1000: a new draw would flip ~all.
  const absl::Time edit_at = t0 + absl::Minutes(90);
  int flips = 0;  // enrollments a draw under the edited weights would give the other variant
  for (Walk& w : walks) {
    v1::SequenceCommand replace = Command("s1");
    replace.set_request_id(absl::StrCat("edit-", w.state.enrollment_id));
    for (v1::Step step : seq.steps) {
      if (!step.has_email()) {
        *replace.mutable_replace_steps()->add_steps() = step;
        continue;
      }
      for (v1::EmailVariant& v : *step.mutable_email()->mutable_variants()) {
        v.set_weight(v.id() == w.variant ? 1 : 1000);
      }
      *replace.mutable_replace_steps()->add_steps() = step;
    }
    absl::StatusOr<std::vector<v1::Envelope>> edit = DecideSequence(seq, replace, edit_at);
    INFO(edit.status().ToString());
    REQUIRE(edit.ok());
    REQUIRE(edit->size() == 1);
    const SequenceState edited = EvolveSequence(seq, edit->front());
    const auto& now_variants = edited.steps[0].email().variants();
    flips += now_variants[ChooseVariant(w.state.enrollment_id, "email-1", now_variants)].id() !=
             w.variant;
    // The edit reaches the enrollment (the executor feeds it to every enrollment), then the
    // rest of the sequence runs under the edited steps.
    take(w, Must(DecideEnrollment(w.state, edit->front(), seq, edit_at)));
    for (int guard = 0; guard < 4 && NextDueAt(w.state).has_value(); ++guard) {
      const absl::Time due = std::max(*NextDueAt(w.state), edit_at);
      take(w, Must(DecideStepDue(w.state, *NextDueAt(w.state), edited, due)));
    }
    INFO(w.state.enrollment_id);
    CHECK(w.emails == 1);
    CHECK(w.state.last_email_step_id == "email-1");
    CHECK(w.state.last_email_variant_id == w.variant);
    CHECK(std::count(w.state.executed_step_ids.begin(), w.state.executed_step_ids.end(),
                     "email-1") == 1);
    CHECK(std::count(w.state.executed_step_ids.begin(), w.state.executed_step_ids.end(), "call") ==
          1);
    int variant_events = 0;
    for (const v1::Envelope& e : w.log) {
      if (e.has_step_executed() && e.step_executed().step_id() == "email-1") {
        ++variant_events;
        CHECK(e.step_executed().variant_id() == w.variant);
      }
    }
    CHECK(variant_events == 1);
    // Replay: the same log folded from nothing gives the same state, twice over.
    EnrollmentState replayed;
    for (int pass = 0; pass < 2; ++pass) {
      for (const v1::Envelope& e : w.log) replayed = EvolveEnrollment(std::move(replayed), e);
    }
    CHECK(replayed.last_email_variant_id == w.variant);
    CHECK(replayed.executed_step_ids == w.state.executed_step_ids);
    CHECK(replayed.status == w.state.status);
  }
  CHECK(flips >= 55);  // the edit would have changed almost every choice (expected 59.9)
}

TEST_CASE(
    "Given an automatic A/B email, when merge data lacks a field only one variant uses, then "
    "the enrollment is already certain to fail (any variant may be drawn)",
    "[variants][completeness]") {
  v1::EmailVariant uses_title = Variant("b", 1);
  uses_title.set_body("Dear {{person.title}}");
  v1::Step step = AbStep("email-1", {Variant("a", 1), uses_title});
  step.mutable_email()->set_send_automatically(true);
  v1::EnrollRequested r;
  r.mutable_recipient()->set_email("ada@example.com");
  (*r.mutable_merge_data())["person.first_name"] = "Ada";
  CHECK(Fields(CheckEnrollmentComplete(r, {step})) ==
        std::vector<std::string>{"merge_data[\"person.title\"]"});
}

}  // namespace
}  // namespace sequences::domain
