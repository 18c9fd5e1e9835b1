// The enrollment decider's due times against the reference scheduler (reference_schedule.h), over
// random histories of pauses (enrollment, owner, sequence; also from the start), resumes, awaited
// activities completed (also during a pause, with a completion time in the past), automatic
// emails that fail (switch off, no consent) and are retried, and timers that fire on time or late,
// in zones with 30-minute DST (Lord Howe), 45-minute offsets (Kathmandu, Chatham), midnight DST
// changes (Havana, Santiago, Beirut), the date-line jump of Apia and the southern hemisphere, with
// starts drawn near offset changes.
//
// The test keeps its own delay clock from the events it sees, as libs/domain/README.md
// ("Scheduling", "Pause") states it: the anchor is the enrollment start, the previous step's
// execution, or the awaited activity's completion (never before the anchor it had); the paused
// time is the part after the anchor of every pause (first cause in to last cause out), also of a
// pause that ended before a late report of a completion that happened before it; the step is due
// at max(delay's end + paused time, the anchor, the last resume after the anchor), aligned to the
// window.
// It also checks the time zone chosen (the first name given of recipient, owner, company, the
// sequence's default, else UTC; a name given that is not an IANA zone name refuses the request) and
// an activity's due time of day (TaskCreated.due_at: that local time on the local day the step
// fired, by the DST rule).
//
// SEQUENCES_PAUSE_REFERENCE_CASES sets the number of random histories (default 1000, about a
// second; 100000 for a long run); RC_PARAMS="seed=..." reproduces a run.

#include <rapidcheck.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/envelope.h"
#include "libs/domain/sequence.h"
#include "libs/domain/tests/builders.h"
#include "libs/domain/tests/reference_schedule.h"

namespace sequences::domain {
namespace {

using namespace testing;

const std::vector<std::string> kZones = {
    "Australia/Lord_Howe", "Asia/Kathmandu",   "Pacific/Chatham",  "Pacific/Apia",
    "America/Havana",      "America/Santiago", "Asia/Beirut",      "America/St_Johns",
    "Australia/Sydney",    "Europe/Berlin",    "America/New_York", "UTC"};

// Names an enrollment request may carry that are not IANA zone names: passed over.
const std::vector<std::string> kNotZones = {"Mars/Olympus_Mons",
                                            "/usr/share/zoneinfo/Asia/Tokyo",
                                            "posix/Asia/Tokyo",
                                            "Europe/../Asia/Tokyo",
                                            "utc",
                                            "localtime"};

int Cases() {
  int n = 1000;
  const char* env = std::getenv("SEQUENCES_PAUSE_REFERENCE_CASES");
  if (env != nullptr && !absl::SimpleAtoi(env, &n)) n = 1000;
  return std::max(1, n);
}

std::string Show(absl::Time t, absl::TimeZone tz) {
  return absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone()), " (",
                      absl::FormatTime("%a %Y-%m-%d %H:%M:%E*S %z", t, tz), ")");
}

v1::TimeOfDay Tod(int minutes) {
  v1::TimeOfDay t;
  t.set_hours(minutes / 60);
  t.set_minutes(minutes % 60);
  return t;
}

// A time of day, often in the hours clocks change (around midnight and 01:00-03:59).
int GenMinuteOfDay() {
  const int hour =
      *rc::gen::inRange(0, 3) == 0 ? *rc::gen::element(23, 0, 1, 2, 3) : *rc::gen::inRange(0, 24);
  return hour * 60 + *rc::gen::element(0, 15, 30, 45, *rc::gen::inRange(0, 60));
}

v1::Step GenStep(int i) {
  const auto unit = static_cast<v1::DelayUnit>(*rc::gen::inRange(1, 5));
  int amount = 0;
  if (*rc::gen::inRange(0, 4) != 0) {
    switch (unit) {
      case v1::DELAY_UNIT_MINUTES:
        amount = *rc::gen::inRange(1, 3000);
        break;
      case v1::DELAY_UNIT_HOURS:
        amount = *rc::gen::inRange(1, 80);
        break;
      default:
        amount = *rc::gen::inRange(1, 6);
        break;
    }
  }
  const std::string id = absl::StrCat("s", i);
  // Activities (some awaited), drafts, and automatic emails (which fail without the switch or
  // the sender's consent, and are retried).
  const int kind = *rc::gen::inRange(0, 8);
  v1::Step s = kind == 0   ? EmailStep(id, unit, amount, /*automatic=*/false)
               : kind == 1 ? EmailStep(id, unit, amount, /*automatic=*/true)
                           : ActivityStep(id, unit, amount, /*wait=*/*rc::gen::inRange(0, 4) == 0);
  if (*rc::gen::inRange(0, 3) == 0) *s.mutable_at_time() = Tod(GenMinuteOfDay());
  if (s.has_activity() && *rc::gen::inRange(0, 2) == 0) {
    *s.mutable_activity()->mutable_due_time() = Tod(GenMinuteOfDay());
  }
  return s;
}

v1::SequenceSettings GenSettings(absl::Time start, absl::TimeZone tz) {
  v1::SequenceSettings settings;
  if (*rc::gen::inRange(0, 2) == 0) {
    for (int day = v1::WEEKDAY_MONDAY; day <= v1::WEEKDAY_SUNDAY; ++day) {
      if (*rc::gen::inRange(0, 5) < 2) continue;
      int a = GenMinuteOfDay();
      int b = *rc::gen::inRange(0, 3) == 0 ? 24 * 60 : GenMinuteOfDay();
      if (a > b) std::swap(a, b);
      if (a == b) continue;
      v1::WindowRange* r = settings.mutable_send_window()->add_ranges();
      r->set_weekday(static_cast<v1::Weekday>(day));
      *r->mutable_start() = Tod(a);
      *r->mutable_end() = Tod(b);
    }
  }
  const int holidays = *rc::gen::inRange(0, 5);
  const absl::CivilDay first(tz.At(start).cs);
  for (int i = 0; i < holidays; ++i) {
    const absl::CivilDay day = first + *rc::gen::inRange(-1, 20);
    v1::Date* d = settings.add_holidays();
    d->set_year(static_cast<int32_t>(day.year()));
    d->set_month(day.month());
    d->set_day(day.day());
  }
  return settings;
}

absl::Time GenStart(absl::TimeZone tz) {
  const absl::Time from = Utc(2024, 1, 1);
  absl::Time t = from + absl::Minutes(*rc::gen::inRange(0, 60 * 24 * 365 * 3));
  absl::TimeZone::CivilTransition tr;
  if (*rc::gen::inRange(0, 3) != 0 && tz.NextTransition(t, &tr)) {
    // Shortly before an offset change, so that delays, pauses and resumes cross it.
    t = tz.At(tr.from).trans - absl::Minutes(*rc::gen::inRange(-60, 60 * 24 * 4));
  }
  if (*rc::gen::inRange(0, 4) == 0) t += absl::Nanoseconds(*rc::gen::inRange(1, 1000000000));
  return t;
}

// Picks a time zone candidate: empty, not a zone (now and then), or a zone.
std::string GenCandidate() {
  const int kind = *rc::gen::inRange(0, 10);
  if (kind < 4) return "";
  if (kind < 5) return *rc::gen::elementOf(kNotZones);
  return *rc::gen::elementOf(kZones);
}

bool IsZone(const std::string& name) {
  return std::find(kZones.begin(), kZones.end(), name) != kZones.end();
}

class History {
 public:
  // What the histories covered (over all runs), so that a generator change cannot silently stop
  // exercising a rule.
  static inline std::map<std::string, int> seen;

  void Run() {
    const std::string recipient = GenCandidate();
    const std::string owner = GenCandidate();
    const std::string company = GenCandidate();
    const std::string fallback = *rc::gen::inRange(0, 4) == 0 ? "" : *rc::gen::elementOf(kZones);
    // The first name given wins (an empty one passes to the next); a name given that is not a
    // zone is refused, not replaced by another person's zone.
    std::string zone = "UTC";
    for (const std::string* c : {&recipient, &owner, &company, &fallback}) {
      if (!c->empty()) {
        zone = *c;
        break;
      }
    }
    std::string refused;
    for (const std::string* c : {&recipient, &owner, &company}) {
      if (!c->empty() && !IsZone(*c) && refused.empty()) refused = *c;
    }
    if (!IsZone(zone)) zone = "UTC";
    tz_ = Zone(zone);
    now_ = GenStart(tz_);
    v1::SequenceCommand create = CreateCommand("s1", {});
    const int n = *rc::gen::inRange(1, 7);
    for (int i = 0; i < n; ++i) *create.mutable_create()->add_steps() = GenStep(i);
    *create.mutable_create()->mutable_settings() = GenSettings(now_, tz_);
    create.mutable_create()->mutable_settings()->set_default_time_zone(fallback);
    seq_ = Apply(SequenceState{}, create, now_);
    RC_LOG() << "zones " << recipient << " | " << owner << " | " << company << " | " << fallback
             << " -> " << zone << "\nstart " << Show(now_, tz_) << "\n"
             << create.ShortDebugString() << "\n";

    if (*rc::gen::inRange(0, 2) == 0) AllowAutomaticEmails();
    if (*rc::gen::inRange(0, 6) == 0) Pause(v1::PAUSE_CAUSE_SEQUENCE);  // enrolled while paused
    v1::Envelope enroll = Enroll("c1/deal/42", "r1", recipient);
    enroll.mutable_enroll_requested()->mutable_time_zones()->set_owner(owner);
    enroll.mutable_enroll_requested()->mutable_time_zones()->set_company(company);
    anchor_ = now_;
    const Decision started = Must(DecideEnrollment(state_, enroll, seq_, now_));
    if (!refused.empty()) {
      RC_ASSERT(started.executor_events.size() == 1u);
      RC_ASSERT(started.executor_events[0].has_enrollment_rejected());
      RC_ASSERT(started.executor_events[0].enrollment_rejected().reason() ==
                v1::REJECTION_REASON_INVALID_REQUEST);
      ++seen["request refused for a name that is not a zone"];
      return;
    }
    Fold(started, "enroll");
    RC_ASSERT(state_.time_zone == zone);
    if (state_.status == v1::ENROLLMENT_STATUS_PAUSED) ++seen["enrolled into a paused sequence"];

    const int actions = *rc::gen::inRange(5, 30);
    for (int i = 0; i < actions && (state_.IsActive() || Failed()); ++i) Act();
    // Drain: resume everything, allow automatic emails, retry, and run to the end.
    if (seq_.paused) Resume(v1::PAUSE_CAUSE_SEQUENCE);
    for (int cause : std::set<int>(state_.pause_causes)) Resume(cause);
    AllowAutomaticEmails();
    for (int guard = 0; guard < 20 && (state_.IsActive() || Failed()); ++guard) {
      if (Failed()) Retry();
      if (!state_.waiting_task_id.empty()) {
        const bool pause = *rc::gen::inRange(0, 3) == 0;  // reported during a short pause
        if (pause) Pause(v1::PAUSE_CAUSE_ENROLLMENT);
        CompleteActivity();
        if (pause) {
          Advance(absl::Minutes(*rc::gen::inRange(1, 60 * 24)));
          Resume(v1::PAUSE_CAUSE_ENROLLMENT);
        }
      }
      Advance(absl::Hours(24 * 30));
    }
    RC_ASSERT(state_.status == v1::ENROLLMENT_STATUS_COMPLETED);
    if (pause_count_ > 1) ++seen["several pauses"];
  }

 private:
  bool Failed() const { return state_.status == v1::ENROLLMENT_STATUS_FAILED; }

  void AllowAutomaticEmails() {
    if (!seq_.automated_sending) {
      v1::SequenceCommand on = Command("s1");
      on.mutable_switch_automated_sending()->set_enabled(true);
      SequenceCommand(on);
    }
    if (seq_.consented_users.count("owner-1") == 0) {
      v1::SequenceCommand grant = Command("s1");
      grant.set_actor_user_id("owner-1");
      grant.mutable_grant_consent()->set_user_id("owner-1");
      SequenceCommand(grant);
    }
  }

  void Retry() {
    v1::Envelope e = Input();
    e.mutable_retry_requested()->mutable_target()->set_item_key("c1/deal/42");
    e.mutable_retry_requested()->mutable_target()->set_sequence_id("s1");
    retried_at_ = now_;
    Decide(e);
    ++seen["retried after a failure"];
  }

  void Act() {
    if (Failed()) {
      // Repaired now or later: the time spent failed is not paused time.
      if (*rc::gen::inRange(0, 2) == 0) {
        Advance(absl::Minutes(*rc::gen::inRange(1, 60 * 24 * 2)));
      } else {
        AllowAutomaticEmails();
        Retry();
      }
      return;
    }
    switch (*rc::gen::inRange(0, 10)) {
      case 0:
      case 1:
      case 2:
        Advance(absl::Minutes(*rc::gen::inRange(1, 60 * 24 * 3)));
        break;
      case 3:
        // Exactly to the due time, or a little after it.
        if (std::optional<absl::Time> due = NextDueAt(state_); due.has_value()) {
          Advance(*due - now_ + absl::Seconds(*rc::gen::element(0, 0, 1, 90)));
        }
        break;
      case 4:
      case 5:
        Pause(*rc::gen::element(v1::PAUSE_CAUSE_ENROLLMENT, v1::PAUSE_CAUSE_OWNER,
                                v1::PAUSE_CAUSE_SEQUENCE));
        break;
      case 6:
      case 7:
        if (!state_.pause_causes.empty()) {
          Resume(*rc::gen::elementOf(
              std::vector<int>(state_.pause_causes.begin(), state_.pause_causes.end())));
        }
        break;
      default:
        if (!state_.waiting_task_id.empty()) {
          // Often during a pause: the completion's time and the pause's both move the anchor.
          if (state_.pause_causes.empty() && *rc::gen::inRange(0, 3) == 0) {
            Pause(*rc::gen::element(v1::PAUSE_CAUSE_ENROLLMENT, v1::PAUSE_CAUSE_OWNER,
                                    v1::PAUSE_CAUSE_SEQUENCE));
          }
          CompleteActivity();
        }
        break;
    }
  }

  void Pause(int cause) {
    if (cause == v1::PAUSE_CAUSE_SEQUENCE) {
      v1::SequenceCommand c = Command("s1");
      c.mutable_pause();
      SequenceCommand(c);
      return;
    }
    v1::Envelope e = Input();
    Target(cause, e.mutable_pause_requested()->mutable_target());
    Decide(e);
  }

  void Resume(int cause) {
    if (cause == v1::PAUSE_CAUSE_SEQUENCE) {
      v1::SequenceCommand c = Command("s1");
      c.mutable_resume();
      SequenceCommand(c);
      return;
    }
    v1::Envelope e = Input();
    Target(cause, e.mutable_resume_requested()->mutable_target());
    Decide(e);
  }

  static void Target(int cause, v1::EnrollmentTarget* t) {
    if (cause == v1::PAUSE_CAUSE_OWNER) {
      t->set_owner_id("owner-1");
    } else {
      t->mutable_item_in_sequence()->set_item_key("c1/deal/42");
      t->mutable_item_in_sequence()->set_sequence_id("s1");
    }
  }

  void CompleteActivity() {
    v1::Envelope e = Input();
    v1::ActivityCompleted* a = e.mutable_activity_completed();
    a->set_task_id(state_.waiting_task_id);
    a->set_item_key(state_.item_key);
    a->set_sequence_id("s1");
    // Reported late: done some time ago (possibly before the step fired, or during a pause).
    const absl::Time done = now_ - absl::Minutes(*rc::gen::element(0, 0, 5, 90, 60 * 30));
    *a->mutable_completed_at() = ToProto(done);
    completed_at_ = std::max(done, anchor_);
    Decide(e);
  }

  void SequenceCommand(const v1::SequenceCommand& c) {
    absl::StatusOr<std::vector<v1::Envelope>> events = DecideSequence(seq_, c, now_);
    RC_ASSERT(events.ok());
    for (const v1::Envelope& e : *events) {
      seq_ = EvolveSequence(seq_, e);
      Decide(e);
    }
  }

  // Moves time forward by `by`, firing every due step on the way, each at its due time.
  void Advance(absl::Duration by) {
    const absl::Time target = now_ + by;
    for (int guard = 0; guard < 50; ++guard) {
      const std::optional<absl::Time> due = NextDueAt(state_);
      if (!due.has_value() || *due > target) break;
      // A timer fires at its due time or (executor busy, or down for hours) later, never before
      // it; the steps after a late one keep their delays from its execution (no burst).
      now_ = std::max(now_, *due + absl::Seconds(*rc::gen::element(0, 0, 0, 0, 2, 5 * 3600)));
      RC_ASSERT(Must(DecideStepDue(state_, *due, seq_, *due - absl::Microseconds(1))).empty());
      Fold(Must(DecideStepDue(state_, *due, seq_, now_)), "timer");
    }
    now_ = std::max(now_, target);
  }

  void Decide(const v1::Envelope& input) {
    Fold(Must(DecideEnrollment(state_, input, seq_, now_)), PayloadName(input));
  }

  // Folds a decision and moves the test's own delay clock by what it says happened.
  void Fold(const Decision& d, const std::string& what) {
    RC_LOG() << Show(now_, tz_) << " " << what << " ->";
    for (const v1::Envelope& e : d.executor_events) RC_LOG() << " " << e.ShortDebugString();
    RC_LOG() << "\n";
    const bool was_paused = state_.status == v1::ENROLLMENT_STATUS_PAUSED;
    state_ = testing::Fold(state_, d);
    const bool is_paused = state_.status == v1::ENROLLMENT_STATUS_PAUSED;
    for (const v1::Envelope& e : d.executor_events) {
      if (e.has_step_executed()) {
        anchor_ = FromProto(e.step_executed().executed_at());
        RC_ASSERT(anchor_ == now_);
        ++executed_;
      }
      if (e.has_step_scheduled() && e.step_scheduled().has_anchor_at()) {
        // The awaited activity's completion, never before the step that created it.
        RC_ASSERT(completed_at_.has_value());
        anchor_ = *completed_at_;
        RC_ASSERT(FromProto(e.step_scheduled().anchor_at()) == anchor_);
        for (const auto& [from, to] : pauses_) {
          if (to > anchor_) ++seen["activity reported done after a pause that ended after it"];
        }
        if (state_.status == v1::ENROLLMENT_STATUS_PAUSED) ++seen["activity done while paused"];
      }
    }
    for (const v1::Envelope& e : d.task_events) CheckTask(e.task_created());
    if (!was_paused && is_paused) {
      pause_start_ = now_;
      ++pause_count_;
    }
    if (was_paused && !is_paused) pauses_.emplace_back(*pause_start_, now_);
    Check();
  }

  // The pending step is the next one in order, due when the reference says.
  void Check() {
    if (state_.status != v1::ENROLLMENT_STATUS_IN_PROGRESS || !state_.waiting_task_id.empty()) {
      return;
    }
    RC_ASSERT(executed_ < seq_.steps.size());
    const v1::Step& step = seq_.steps[executed_];
    RC_ASSERT(state_.pending_step_id == step.id());
    RC_ASSERT(state_.due_at.has_value());
    // The delay clock: the part of every (ended) pause after the anchor stood still, and the step
    // is never due before a resume after the anchor.
    absl::Duration paused;
    absl::Time not_before = anchor_;
    // A retry continues the failed step (its delay had elapsed): due no earlier than the retry.
    if (retried_at_.has_value() && *retried_at_ > anchor_) {
      not_before = std::max(not_before, *retried_at_);
    }
    for (const auto& [from, to] : pauses_) {
      paused += std::max(absl::ZeroDuration(), to - std::max(from, anchor_));
      if (to > anchor_) not_before = std::max(not_before, to);
    }
    const absl::Time expected =
        reference::DueAt(anchor_, step, seq_.settings, tz_, not_before, paused);
    if (*state_.due_at != expected) {
      RC_FAIL(absl::StrCat("step ", step.id(), " due ", Show(*state_.due_at, tz_), ", reference ",
                           Show(expected, tz_), " (anchor ", Show(anchor_, tz_), ", paused ",
                           absl::FormatDuration(paused), ", not before ", Show(not_before, tz_),
                           ")"));
    }
  }

  // An activity's due time: its time of day on the local day the step fired, by the DST rule.
  void CheckTask(const v1::TaskCreated& t) {
    const absl::CivilDay day(tz_.At(now_).cs);
    RC_ASSERT(t.due_date().year() == day.year());
    RC_ASSERT(t.due_date().month() == day.month());
    RC_ASSERT(t.due_date().day() == day.day());
    RC_ASSERT(t.time_zone() == state_.time_zone);
    const absl::Time expected =
        t.has_due_time() ? reference::ResolveLocal(
                               absl::CivilSecond(day.year(), day.month(), day.day(),
                                                 t.due_time().hours(), t.due_time().minutes(), 0),
                               tz_)
                         : now_;
    if (FromProto(t.due_at()) != expected) {
      RC_FAIL(absl::StrCat("task due ", Show(FromProto(t.due_at()), tz_), ", reference ",
                           Show(expected, tz_)));
    }
  }

  SequenceState seq_;
  EnrollmentState state_;
  absl::TimeZone tz_;
  absl::Time now_;
  absl::Time anchor_;
  std::vector<std::pair<absl::Time, absl::Time>> pauses_;  // ended pauses: first cause to last
  std::optional<absl::Time> pause_start_;
  std::optional<absl::Time> completed_at_;
  std::optional<absl::Time> retried_at_;
  size_t executed_ = 0;
  int pause_count_ = 0;
};

TEST_CASE("Due times under pauses, resumes and late timers agree with the reference",
          "[reference][pause]") {
  rc::detail::TestParams params = rc::detail::configuration().testParams;
  params.maxSuccess = Cases();
  rc::detail::TestMetadata metadata;
  metadata.id = "pause-reference";
  metadata.description = "the decider's due times agree with the reference";
  const auto result = rc::detail::checkTestable([] { History().Run(); }, metadata, params);
  std::ostringstream message;
  rc::detail::printResultMessage(result, message);
  INFO(message.str());
  CHECK(result.template is<rc::detail::SuccessResult>());
  for (const char* what :
       {"request refused for a name that is not a zone", "enrolled into a paused sequence",
        "several pauses", "retried after a failure",
        "activity reported done after a pause that ended after it", "activity done while paused"}) {
    INFO(what);
    CHECK(History::seen[what] > 0);
  }
}

}  // namespace
}  // namespace sequences::domain
