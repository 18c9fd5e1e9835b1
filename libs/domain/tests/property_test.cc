// Property tests: random sequences and random histories of inputs, timers and edits, checked
// against the decider's invariants.

#include <rapidcheck.h>
#include <rapidcheck/catch.h>

#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/enrollment_preview.h"
#include "libs/domain/envelope.h"
#include "libs/domain/routing.h"
#include "libs/domain/schedule.h"
#include "libs/domain/sequence.h"
#include "libs/domain/tests/builders.h"

namespace sequences::domain {
namespace {

using namespace testing;

const char* const kZones[] = {"America/New_York",    "Europe/Berlin", "Asia/Kolkata",
                              "Australia/Lord_Howe", "Pacific/Apia",  "UTC"};

// A readable digest of every field of the state (equality for tests).
std::string Digest(const EnrollmentState& s) {
  std::string out = absl::StrCat(
      s.item_key, "|", s.sequence_id, "|", s.company_id, "|", s.enrollment_count, "|",
      absl::StrJoin(s.request_ids, ","), "|", s.enrollment_id, "|", s.status, "|", s.request_id,
      "|", s.correlation_id, "|", s.sequence_version, "|", s.entity_kind, "|", s.owner_id, "|",
      s.recipient.ShortDebugString(), "|", s.time_zone, "|", absl::FormatTime(s.started_at), "|",
      absl::StrJoin(s.executed_step_ids, ","), "|", absl::StrJoin(s.passed_step_ids, ","), "|",
      s.pending_step_id, "|", s.due_at ? absl::FormatTime(*s.due_at) : "-", "|",
      absl::FormatTime(s.anchor), "|", absl::FormatDuration(s.paused_total), "|",
      absl::FormatTime(s.not_before), "|", s.waiting_task_id, "|", s.waiting_step_id, "|",
      absl::StrJoin(s.pause_causes, ","), "|", s.paused_at ? absl::FormatTime(*s.paused_at) : "-",
      "|", s.exit_reason, "|", s.failure_reason, "|", s.failed_step_id, "|", s.missing_merge_field,
      "|", s.removal_reason, "|", absl::FormatTime(s.ended_at));
  for (const auto& [k, v] : s.merge_data) absl::StrAppend(&out, "|", k, "=", v);
  return out;
}

std::string Serialize(const Decision& d) {
  std::string out;
  for (const auto* list : {&d.executor_events, &d.task_events, &d.email_events}) {
    for (const v1::Envelope& e : *list) absl::StrAppend(&out, e.SerializeAsString(), "\n");
  }
  return out;
}

int step_counter = 0;

v1::Step GenStep() {
  const std::string id = absl::StrCat("st", ++step_counter);
  const int unit = *rc::gen::inRange(1, 5);
  const int amount = unit <= 2 ? *rc::gen::inRange(0, 300) : *rc::gen::inRange(0, 4);
  v1::Step s;
  const int kind = *rc::gen::inRange(0, 4);
  if (kind == 0) {
    s = EmailStep(id, static_cast<v1::DelayUnit>(unit), amount, /*automatic=*/true,
                  "Hi {{person.first_name}}",
                  *rc::gen::inRange(0, 4) == 0 ? "About {{person.title}}"
                                               : "Hello {{person.first_name | \"there\"}}");
  } else if (kind == 1) {
    s = EmailStep(id, static_cast<v1::DelayUnit>(unit), amount, /*automatic=*/false);
  } else {
    s = ActivityStep(id, static_cast<v1::DelayUnit>(unit), amount,
                     /*wait=*/*rc::gen::inRange(0, 3) == 0);
  }
  if (*rc::gen::inRange(0, 3) == 0) {
    s.mutable_at_time()->set_hours(*rc::gen::inRange(0, 24));
    s.mutable_at_time()->set_minutes(*rc::gen::element(0, 15, 30, 45));
  }
  return s;
}

v1::SequenceSettings GenSettings() {
  v1::SequenceSettings settings;
  settings.set_default_time_zone(
      *rc::gen::elementOf(std::vector<std::string>(std::begin(kZones), std::end(kZones))));
  if (*rc::gen::inRange(0, 2) == 0) {
    const int from = *rc::gen::inRange(0, 12);
    const int to = *rc::gen::inRange(from + 1, 25);
    for (int d = v1::WEEKDAY_MONDAY; d <= v1::WEEKDAY_FRIDAY; ++d) {
      v1::WindowRange* r = settings.mutable_send_window()->add_ranges();
      r->set_weekday(static_cast<v1::Weekday>(d));
      r->mutable_start()->set_hours(from);
      r->mutable_end()->set_hours(to);
    }
  }
  const int holidays = *rc::gen::inRange(0, 4);
  for (int i = 0; i < holidays; ++i) {
    v1::Date* h = settings.add_holidays();
    h->set_year(2024);
    h->set_month(*rc::gen::inRange(1, 4));
    h->set_day(*rc::gen::inRange(1, 29));
  }
  settings.set_reenrollment(v1::REENROLLMENT_RULE_WHEN_NOT_ACTIVE);
  return settings;
}

// Drives one enrollment through a random history and checks the invariants at every decision.
class Simulation {
 public:
  Simulation() {
    now_ = Utc(2024, 1, 1) + absl::Minutes(*rc::gen::inRange(0, 60 * 24 * 60));
    v1::SequenceCommand c = CreateCommand("s1", {});
    const int n = *rc::gen::inRange(1, 7);
    for (int i = 0; i < n; ++i) *c.mutable_create()->add_steps() = GenStep();
    *c.mutable_create()->mutable_settings() = GenSettings();
    SequenceCommand(c);
    RC_LOG() << "sequence: " << c.ShortDebugString() << "\n";
    if (*rc::gen::inRange(0, 2) == 0) {
      v1::SequenceCommand on = Command("s1");
      on.mutable_switch_automated_sending()->set_enabled(true);
      SequenceCommand(on);
      v1::SequenceCommand grant = Command("s1");
      grant.set_actor_user_id("owner-1");
      grant.mutable_grant_consent()->set_user_id("owner-1");
      SequenceCommand(grant);
    }
    Enroll();
  }

  void Run() {
    const int actions = *rc::gen::inRange(5, 40);
    for (int i = 0; i < actions; ++i) Step();
    Advance(absl::Hours(24 * 40));  // drain
    RC_TAG(state_.executed_step_ids.empty() ? "no step executed" : "steps executed");
    RC_TAG(absl::StrCat("ended as ", v1::EnrollmentStatus_Name(state_.status)));
  }

 private:
  void Step() {
    const int action = *rc::gen::inRange(0, 24);
    switch (action) {
      case 0:
      case 1:
      case 2:
      case 3:
      case 4:
      case 5:
      case 6:
      case 7:
        Advance(absl::Minutes(*rc::gen::inRange(1, 60 * 24 * 4)));
        break;
      case 8:
      case 9:
        PauseResume(/*pause=*/action == 8, *rc::gen::inRange(0, 2) == 0);
        break;
      case 10: {
        v1::SequenceCommand c = Command("s1");
        if (seq_.paused) {
          c.mutable_resume();
        } else {
          c.mutable_pause();
        }
        SequenceCommand(c);
        break;
      }
      case 11:
      case 12: {
        // Edit: keep a random subsequence of the steps, shuffled a little, plus new ones.
        std::vector<v1::Step> steps;
        for (const v1::Step& s : seq_.steps) {
          if (*rc::gen::inRange(0, 4) != 0) steps.push_back(s);
        }
        if (steps.size() >= 2 && *rc::gen::inRange(0, 3) == 0) std::swap(steps[0], steps[1]);
        const int add = *rc::gen::inRange(0, 3);
        for (int i = 0; i < add; ++i) {
          steps.insert(steps.begin() + *rc::gen::inRange(0, static_cast<int>(steps.size()) + 1),
                       GenStep());
        }
        v1::SequenceCommand c = Command("s1");
        for (const v1::Step& s : steps) *c.mutable_replace_steps()->add_steps() = s;
        const v1::EditImpact impact = PreviewEdit(state_, seq_, steps, now_);
        const EnrollmentState before = state_;
        const SequenceState seq_before = seq_;
        SequenceCommand(c);
        if (seq_.version > seq_before.version) CheckPreview(impact, before);
        break;
      }
      case 13: {
        v1::SequenceCommand c = Command("s1");
        c.mutable_change_settings()->set_name("n");
        *c.mutable_change_settings()->mutable_settings() = GenSettings();
        SequenceCommand(c);
        break;
      }
      case 14:
      case 15:
        if (!state_.waiting_task_id.empty()) {
          v1::Envelope e = Input();
          v1::ActivityCompleted* a = e.mutable_activity_completed();
          a->set_task_id(state_.waiting_task_id);
          a->set_item_key(state_.item_key);
          a->set_sequence_id("s1");
          *a->mutable_completed_at() = ToProto(now_);
          Decide(e);
        }
        break;
      case 16: {
        v1::Envelope e = Input();
        e.mutable_merge_data_updated()->set_item_key("c1/deal/42");
        (*e.mutable_merge_data_updated()->mutable_merge_data())["person.title"] = "Dr";
        Decide(e);
        break;
      }
      case 17: {
        v1::Envelope e = Input();
        e.mutable_retry_requested()->mutable_target()->set_item_key("c1/deal/42");
        e.mutable_retry_requested()->mutable_target()->set_sequence_id("s1");
        Decide(e);
        break;
      }
      case 18: {
        v1::SequenceCommand c = Command("s1");
        c.mutable_switch_automated_sending()->set_enabled(!seq_.automated_sending);
        SequenceCommand(c);
        break;
      }
      case 19: {
        v1::Envelope e = Input();
        const int kind = *rc::gen::inRange(0, 4);
        if (kind == 0) {
          e.mutable_email_replied()->set_item_key("c1/deal/42");
        } else if (kind == 1) {
          e.mutable_email_bounced()->set_item_key("c1/deal/42");
        } else if (kind == 2) {
          e.mutable_item_outcome()->set_item_key("c1/deal/42");
          e.mutable_item_outcome()->set_kind(v1::ITEM_OUTCOME_KIND_DEAL_WON);
        } else {
          e.mutable_remove_requested()->mutable_target()->set_item_key("c1/deal/42");
          e.mutable_remove_requested()->mutable_target()->set_sequence_id("s1");
        }
        if (*rc::gen::inRange(0, 3) == 0) Decide(e);  // exits are rarer
        break;
      }
      case 20:
        Enroll();
        break;
      case 21:
        if (*rc::gen::inRange(0, 10) == 0) {
          v1::SequenceCommand c = Command("s1");
          c.mutable_delete_();
          SequenceCommand(c);
        }
        break;
      default:
        // A stale or early timer must be a no-op.
        if (std::optional<absl::Time> due = NextDueAt(state_); due.has_value() && *due > now_) {
          Decision d = Must(DecideStepDue(state_, *due, seq_, now_));
          RC_ASSERT(d.empty());
          Decision stale = Must(DecideStepDue(state_, *due - absl::Seconds(1), seq_, *due));
          RC_ASSERT(stale.empty());
        }
        break;
    }
  }

  // The edit preview made before the edit predicted what the decider did with it (for a paused
  // enrollment: what it does when every pause cause is lifted now).
  void CheckPreview(const v1::EditImpact& impact, const EnrollmentState& before) {
    if (!before.IsActive() || state_.enrollment_id != before.enrollment_id) return;
    EnrollmentState after = state_;
    SequenceState seq = seq_;
    for (int cause : std::set<int>(after.pause_causes)) {
      v1::Envelope e = Input();
      if (cause == v1::PAUSE_CAUSE_SEQUENCE) {
        v1::SequenceCommand resume = Command("s1");
        resume.mutable_resume();
        absl::StatusOr<std::vector<v1::Envelope>> events = DecideSequence(seq, resume, now_);
        RC_ASSERT(events.ok() && events->size() == 1);
        e = events->at(0);
        seq = EvolveSequence(seq, e);
      } else {
        v1::EnrollmentTarget* t = e.mutable_resume_requested()->mutable_target();
        if (cause == v1::PAUSE_CAUSE_OWNER) {
          t->set_owner_id("owner-1");
        } else {
          t->mutable_item_in_sequence()->set_item_key("c1/deal/42");
          t->mutable_item_in_sequence()->set_sequence_id("s1");
        }
      }
      after = Fold(after, Must(DecideEnrollment(after, e, seq, now_)));
    }
    RC_LOG() << "preview " << impact.ShortDebugString() << "\n";
    if (after.status == v1::ENROLLMENT_STATUS_COMPLETED) {
      RC_ASSERT(impact.completes());
      return;
    }
    RC_ASSERT(after.status == v1::ENROLLMENT_STATUS_IN_PROGRESS);
    RC_ASSERT(impact.pending_step_id_after() == after.pending_step_id);
    RC_ASSERT(impact.has_due_at_after() == after.due_at.has_value());
    if (after.due_at.has_value()) RC_ASSERT(FromProto(impact.due_at_after()) == *after.due_at);
    if (!after.waiting_task_id.empty()) RC_ASSERT(!impact.has_due_at_after());
    ++previews_checked[!after.waiting_task_id.empty()                  ? "waiting"
                       : before.status == v1::ENROLLMENT_STATUS_PAUSED ? "paused"
                                                                       : "in progress"];
  }

 public:
  // Edit previews checked, by the enrollment's state at the edit (over all runs).
  static inline std::map<std::string, int> previews_checked;

 private:
  void PauseResume(bool pause, bool owner) {
    v1::Envelope e = Input();
    v1::EnrollmentTarget* t = pause ? e.mutable_pause_requested()->mutable_target()
                                    : e.mutable_resume_requested()->mutable_target();
    if (owner) {
      t->set_owner_id("owner-1");
    } else {
      t->mutable_item_in_sequence()->set_item_key("c1/deal/42");
      t->mutable_item_in_sequence()->set_sequence_id("s1");
    }
    Decide(e);
  }

  void Enroll() {
    v1::Envelope e = testing::Enroll(
        "c1/deal/42", absl::StrCat("r", ++requests_),
        *rc::gen::elementOf(std::vector<std::string>(std::begin(kZones), std::end(kZones))));
    Decide(e);
  }

  void SequenceCommand(const v1::SequenceCommand& c) {
    absl::StatusOr<std::vector<v1::Envelope>> events = DecideSequence(seq_, c, now_);
    if (!events.ok()) return;  // e.g. deleted: refused
    for (const v1::Envelope& e : *events) {
      SequenceState next = EvolveSequence(seq_, e);
      RC_ASSERT(Digest2(next) == Digest2(EvolveSequence(seq_, e)));  // deterministic
      seq_ = next;
      RC_LOG() << absl::FormatTime(now_) << " sequence event " << e.ShortDebugString() << "\n";
      if (RouteInput(e).scope == InputRoute::Scope::kSequence) Decide(e);
    }
  }

  static std::string Digest2(const SequenceState& s) {
    std::string out =
        absl::StrCat(s.exists, s.deleted, s.paused, s.automated_sending, s.version, s.name,
                     absl::StrJoin(s.consented_users, ","), s.settings.ShortDebugString());
    for (const v1::Step& st : s.steps) absl::StrAppend(&out, st.ShortDebugString());
    return out;
  }

  // Moves time forward to `now_ + by`, firing every due step on the way.
  void Advance(absl::Duration by) {
    const absl::Time target = now_ + by;
    for (int guard = 0; guard < 200; ++guard) {
      std::optional<absl::Time> due = NextDueAt(state_);
      if (!due.has_value() || *due > target) break;
      RC_ASSERT(*due >= now_ - absl::Seconds(1) || *due <= now_);  // past dues fire at once
      now_ = std::max(now_, *due);
      Apply(Must(DecideStepDue(state_, *due, seq_, now_)), nullptr, *due);
    }
    now_ = std::max(now_, target);
  }

  void Decide(const v1::Envelope& input) {
    absl::StatusOr<Decision> d = DecideEnrollment(state_, input, seq_, now_);
    if (!d.ok()) {
      RC_ASSERT(d.status().code() == absl::StatusCode::kUnavailable);
      return;
    }
    // Deterministic: the same input decided again yields the same events.
    RC_ASSERT(Serialize(*d) == Serialize(Must(DecideEnrollment(state_, input, seq_, now_))));
    Apply(*d, &input, std::nullopt);
  }

  void Apply(const Decision& d, const v1::Envelope* input, std::optional<absl::Time> due) {
    RC_LOG() << absl::FormatTime(now_) << " "
             << (input != nullptr ? PayloadName(*input) : std::string("timer")) << " ->";
    for (const v1::Envelope& e : d.executor_events) RC_LOG() << " " << e.ShortDebugString();
    RC_LOG() << "\n";
    const EnrollmentState before = state_;
    const bool ended = before.status == v1::ENROLLMENT_STATUS_COMPLETED ||
                       before.status == v1::ENROLLMENT_STATUS_REMOVED ||
                       before.status == v1::ENROLLMENT_STATUS_FAILED;
    const bool reenroll = input != nullptr && input->has_enroll_requested();
    for (const v1::Envelope& e : d.executor_events) {
      if (e.has_step_executed()) {
        // An ended enrollment never executes another step.
        RC_ASSERT(!ended);
        const std::string& step_id = e.step_executed().step_id();
        // Each step executes at most once per enrollment.
        RC_ASSERT(std::count(state_.executed_step_ids.begin(), state_.executed_step_ids.end(),
                             step_id) == 0);
        CheckDelayElapsed(step_id);
      }
    }
    // A failed enrollment can be repaired (new merge data, recipient) and removed; otherwise an
    // ended enrollment decides nothing but a re-enroll or a retry.
    const bool repair = before.status == v1::ENROLLMENT_STATUS_FAILED && input != nullptr &&
                        (input->has_merge_data_updated() || input->has_remove_requested());
    if (ended && !reenroll && !repair && !(input != nullptr && input->has_retry_requested())) {
      RC_ASSERT(d.empty());
    }
    // Evolve is deterministic.
    EnrollmentState a = Fold(state_, d);
    EnrollmentState b = Fold(state_, d);
    RC_ASSERT(Digest(a) == Digest(b));
    // Folding the events gives the state the decision assumed next.
    for (const v1::Envelope& e : d.executor_events) {
      if (e.has_step_executed() && !e.step_executed().next_step_id().empty() &&
          a.status == v1::ENROLLMENT_STATUS_IN_PROGRESS) {
        RC_ASSERT(NextDueAt(a) == FromProto(e.step_executed().next_due_at()));
      }
    }
    if (!d.executor_events.empty()) {
      const v1::Envelope& last = d.executor_events.back();
      if (last.has_step_scheduled() && a.status == v1::ENROLLMENT_STATUS_IN_PROGRESS) {
        RC_ASSERT(NextDueAt(a) == FromProto(last.step_scheduled().due_at()));
      }
      if (last.has_enrollment_started() && !last.enrollment_started().first_step_id().empty()) {
        RC_ASSERT(NextDueAt(a) == FromProto(last.enrollment_started().first_due_at()));
      }
      if (last.has_enrollment_resumed() && !last.enrollment_resumed().next_step_id().empty()) {
        RC_ASSERT(NextDueAt(a) == FromProto(last.enrollment_resumed().next_due_at()));
      }
    }
    // ... and deciding the same trigger again on it changes nothing.
    if (input != nullptr) {
      absl::StatusOr<Decision> again = DecideEnrollment(a, *input, seq_, now_);
      RC_ASSERT(again.ok());
      RC_ASSERT(again->empty());
    } else if (due.has_value()) {
      RC_ASSERT(Must(DecideStepDue(a, *due, seq_, now_)).empty() || NextDueAt(a) == due);
    }
    TrackClock(before, a);
    state_ = a;
  }

  // Bookkeeping for "no step due before its delay elapsed outside pauses".
  void TrackClock(const EnrollmentState& before, const EnrollmentState& after) {
    if (after.enrollment_id != before.enrollment_id) {
      anchor_ = now_;
      paused_total_ = absl::ZeroDuration();
      pause_start_.reset();
    }
    const bool was_paused = before.status == v1::ENROLLMENT_STATUS_PAUSED &&
                            after.enrollment_id == before.enrollment_id;
    const bool is_paused = after.status == v1::ENROLLMENT_STATUS_PAUSED;
    if (!was_paused && is_paused) pause_start_ = now_;
    if (was_paused && !is_paused && pause_start_.has_value()) {
      paused_total_ += now_ - std::max(*pause_start_, anchor_);
      pause_start_.reset();
    }
    if (after.executed_step_ids.size() > before.executed_step_ids.size() ||
        (!before.waiting_task_id.empty() && after.waiting_task_id.empty() && after.IsActive())) {
      anchor_ = now_;  // a step executed or the awaited activity completed
      paused_total_ = absl::ZeroDuration();
      if (is_paused) pause_start_ = now_;
    }
  }

  void CheckDelayElapsed(const std::string& step_id) {
    const int idx = seq_.StepIndex(step_id);
    RC_ASSERT(idx >= 0);
    const v1::Step& step = seq_.steps[idx];
    const absl::Duration active = now_ - anchor_ - paused_total_;
    const absl::TimeZone tz = LoadZoneOrUtc(state_.time_zone);
    switch (step.delay().unit()) {
      case v1::DELAY_UNIT_MINUTES:
        RC_ASSERT(active >= absl::Minutes(step.delay().amount()));
        break;
      case v1::DELAY_UNIT_HOURS:
        RC_ASSERT(active >= absl::Hours(step.delay().amount()));
        break;
      default: {
        // Calendar or business days: the local date (clock shifted back by the pauses) is at
        // least `amount` days after the anchor's.
        const absl::CivilDay from(tz.At(anchor_).cs);
        const absl::CivilDay to(tz.At(now_ - paused_total_).cs);
        RC_ASSERT(to - from >= step.delay().amount());
        break;
      }
    }
  }

  SequenceState seq_;
  EnrollmentState state_;
  absl::Time now_;
  int requests_ = 0;
  absl::Time anchor_;
  absl::Duration paused_total_;
  std::optional<absl::Time> pause_start_;
};

TEST_CASE("Random sequences and histories keep the decider's invariants", "[property]") {
  rc::prop("invariants hold", [] {
    Simulation sim;
    sim.Run();
  });
  // The edit previews were checked in every state they distinguish.
  for (const char* kind : {"waiting", "paused", "in progress"}) {
    INFO("edit previews checked while " << kind);
    CHECK(Simulation::previews_checked[kind] > 0);
  }
}

}  // namespace
}  // namespace sequences::domain
