// The edit preview comes true, as a property (tier e2e): real sequence-api and step-executor
// processes over the real broker. For random sequences with enrollments waiting for a delay,
// waiting for an activity and paused, a random edit of the steps is previewed through
// PreviewSchedule (proposed_steps), applied through UpdateSequence, and what the executor then
// decides is read from executor-events (read_committed) and compared with the prediction:
//   in progress   the edit's own decision: StepScheduled with the predicted pending step and due
//                 time, EnrollmentCompleted when it `completes`, nothing when nothing moves;
//   waiting       nothing on the edit; once the activity is reported completed at the preview's
//                 instant (previewed_at), the step scheduled is `upcoming[0]`, its due time the
//                 predicted one moved by exactly the barrier's pause (the pause came after the
//                 activity was done, so the delay clock stood still) and not before the barrier's
//                 resume, or the predicted one itself where the send window absorbs the move;
//   paused        nothing on the edit; on resume at T1 the pending step is the predicted one and
//                 its due time is the predicted one, or that moved by exactly T1 - previewed_at
//                 (a paused delay clock: the preview assumes a resume at previewed_at).
// No step is awaited: every delay is 0 or at least 30 minutes, and due times are compared as the
// executor records them, not waited for.
//
// SEQUENCES_EDIT_PREVIEW_CASES (default 2) random sequences and edits;
// SEQUENCES_EDIT_PREVIEW_SEED replays one run (printed on every run and in failures).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/envelope.h"
#include "libs/domain/routing.h"
#include "tests/e2e/system/system_harness.h"

namespace sequences::testing {
namespace {

// `t` rounded up to a whole microsecond, as the executor records due times.
absl::Time WholeMicrosUp(absl::Time t) {
  absl::Time down = absl::FromUnixMicros(absl::ToUnixMicros(t));
  return down < t ? down + absl::Microseconds(1) : down;
}

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

// What each enrollment was put in before the edit.
enum class Kind { kDelay, kWaiting, kPaused };
const char* KindName(Kind k) {
  return k == Kind::kDelay     ? "waiting for a delay"
         : k == Kind::kWaiting ? "waiting for an activity"
                               : "paused";
}

constexpr int kItems = 6;

class Case {
 public:
  Case(System& sys, Reader& reader, std::mt19937& rng, int n)
      : sys_(sys), api_(sys.api()), reader_(reader), rng_(rng), n_(n) {}

  // Creates the sequence and puts its enrollments in their states: items 0 and 1 wait for the
  // "call" activity (when the window lets it run), 2 and 3 completed it and wait for a delay,
  // 4 and 5 completed it and are paused (each wherever its steps took it).
  void Prepare() {
    tz_ = Pick<std::string>({"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata",
                             "Australia/Lord_Howe", "America/St_Johns"});
    v1::CreateSequenceRequest req;
    req.set_parent(absl::StrCat("companies/", kCompany));
    req.set_request_id(absl::StrCat("preview-create-", n_));
    v1::Sequence* s = req.mutable_sequence();
    s->set_display_name("Edit preview");
    s->set_entity_kind(v1::ENTITY_KIND_DEAL);
    *s->mutable_settings() = Settings();
    if (Rand(2) == 0) *s->add_steps() = Step("pre", /*zero=*/true);
    v1::Step call = ActivityStep("call", 0);
    call.mutable_activity()->set_wait_for_completion(true);
    *s->add_steps() = call;
    // "t1" always follows with a delay: who completes "call" then waits for a delay.
    v1::Step t1 = Step("t1");
    *t1.mutable_delay() = RandomDelay(/*zero=*/false, /*positive=*/true);
    t1.clear_at_time();
    if (t1.has_activity()) t1.mutable_activity()->set_wait_for_completion(false);
    *s->add_steps() = t1;
    for (const char* id : {"t2", "t3"}) {
      if (Rand(3) != 0) *s->add_steps() = Step(id);
    }
    v1::SequenceResponse resp;
    grpc::Status st = api_.sequences().CreateSequence(CallAs(kCompany).get(), req, &resp);
    INFO(st.error_message() << " " << req.DebugString());
    REQUIRE(st.ok());
    sequence_ = resp.sequence();
    name_ = sequence_.name();
    sequence_id_ = name_.substr(name_.rfind('/') + 1);

    std::vector<Item> items;
    for (int i = 0; i < kItems; ++i) items.push_back({absl::StrCat("p", n_, "-", i), "rep-1"});
    BatchEnroll(api_, name_, items);
    std::vector<v1::Enrollment> now = WaitStable();

    // Items 2..5 complete their activity (when they wait for one) and move on; 4 and 5 pause.
    for (int i = 2; i < kItems; ++i) {
      if (!now[i].waiting_task_id().empty())
        Complete(ItemId(i), now[i].waiting_task_id(), absl::Now());
    }
    now = WaitStable();
    for (int i = 4; i < kItems; ++i) {
      if (IsActive(now[i])) Act(&v1::EnrollmentService::Stub::PauseEnrollment, ItemId(i), "pause");
    }
    now = WaitStable({4, 5});
    for (int i = 0; i < kItems; ++i) {
      if (!IsActive(now[i])) continue;
      // Waiting for an activity, paused or not: the activity's completion schedules the next
      // step whether or not the enrollment is paused.
      Kind k = !now[i].waiting_task_id().empty()                 ? Kind::kWaiting
               : now[i].status() == v1::ENROLLMENT_STATUS_PAUSED ? Kind::kPaused
                                                                 : Kind::kDelay;
      kinds_[now[i].enrollment_id()] = k;
      items_[now[i].enrollment_id()] = i;
      before_[now[i].enrollment_id()] = now[i];
    }
  }

  // Previews a random edit, applies it, and compares. Returns the kinds compared.
  std::vector<Kind> EditAndCompare() {
    std::vector<v1::Step> steps = RandomEdit();
    v1::PreviewScheduleRequest preview;
    preview.set_name(name_);
    for (const v1::Step& s : steps) *preview.add_proposed_steps() = s;
    preview.set_has_proposed_steps(true);
    preview.set_max_impacts(1000);
    v1::PreviewScheduleResponse impacts;
    grpc::Status st = api_.sequences().PreviewSchedule(CallAs(kCompany).get(), preview, &impacts);
    INFO(st.error_message());
    REQUIRE(st.ok());
    REQUIRE(impacts.has_previewed_at());
    const absl::Time t0 = domain::FromProto(impacts.previewed_at());
    INFO("preview: " << impacts.ShortDebugString());
    std::map<std::string, v1::EditImpact> by_id;
    for (const v1::EditImpact& i : impacts.impacts()) by_id[i.enrollment_id()] = i;
    // Every active enrollment has its impact.
    for (const auto& [id, kind] : kinds_) {
      INFO(id << " " << KindName(kind));
      REQUIRE(by_id.count(id) == 1);
    }

    v1::UpdateSequenceRequest update;
    update.mutable_sequence()->set_name(name_);
    for (const v1::Step& s : steps) *update.mutable_sequence()->add_steps() = s;
    update.mutable_update_mask()->add_paths("steps");
    update.set_request_id(absl::StrCat("preview-edit-", n_));
    v1::SequenceResponse resp;
    st = api_.sequences().UpdateSequence(CallAs(kCompany).get(), update, &resp);
    INFO(st.error_message());
    REQUIRE(st.ok());
    // A barrier after the edit on the same sequence-events partition: once an enrollment's pause
    // (cause sequence) is read, the edit's decision for it (if any) was read before it.
    v1::PauseSequenceRequest pause;
    pause.set_name(name_);
    pause.set_request_id(absl::StrCat("preview-barrier-", n_));
    REQUIRE(api_.sequences().PauseSequence(CallAs(kCompany).get(), pause, &resp).ok());
    const std::string edit_id = SequenceEventId(v1::Envelope::kSequenceStepsReplaced);
    const std::string pause_id = SequenceEventId(v1::Envelope::kSequencePaused);

    // The edit's decision for each enrollment, then the barrier.
    std::map<std::string, std::vector<v1::Envelope>> edit_events;
    REQUIRE(reader_.PollUntil(
        [&] {
          for (const auto& [id, kind] : kinds_) {
            // Ended after the edit (its decision, or a step it made due at once): no pause.
            if (Caused(id, pause_id).empty() && !EndedById(id)) return false;
          }
          return true;
        },
        absl::Seconds(30)));
    std::vector<Kind> compared;
    for (const auto& [id, kind] : kinds_) {
      const v1::EditImpact& impact = by_id[id];
      const std::vector<v1::Envelope> decided = Caused(id, edit_id);
      INFO(id << " " << KindName(kind) << " impact " << impact.ShortDebugString() << " before "
              << before_[id].ShortDebugString());
      INFO("the edit's decision: " << Describe(decided));
      if (kind != Kind::kDelay) {
        CHECK(decided.empty());  // a paused or waiting enrollment is not rescheduled by an edit
        CHECK(impact.pending_step_id_after().empty() ==
              (kind == Kind::kWaiting || impact.completes()));
        continue;
      }
      compared.push_back(kind);
      const bool moves =
          impact.completes() || impact.not_run_step_ids_size() > 0 ||
          impact.pending_step_id_after() != impact.pending_step_id_before() ||
          domain::FromProto(impact.due_at_after()) != domain::FromProto(impact.due_at_before());
      if (!moves) {
        CHECK(decided.empty());
      } else if (impact.completes()) {
        REQUIRE(decided.size() == 1);
        CHECK(decided[0].has_enrollment_completed());
      } else {
        REQUIRE(!decided.empty());
        REQUIRE(decided[0].has_step_scheduled());
        CHECK(decided[0].step_scheduled().step_id() == impact.pending_step_id_after());
        CHECK(domain::FromProto(decided[0].step_scheduled().due_at()) ==
              domain::FromProto(impact.due_at_after()));
      }
    }

    // Resume the sequence; then complete the waiting activities at the preview's instant, and
    // resume the paused enrollments.
    v1::ResumeSequenceRequest resume;
    resume.set_name(name_);
    resume.set_request_id(absl::StrCat("preview-barrier-end-", n_));
    REQUIRE(api_.sequences().ResumeSequence(CallAs(kCompany).get(), resume, &resp).ok());
    const std::string resume_id = SequenceEventId(v1::Envelope::kSequenceResumed);
    REQUIRE(reader_.PollUntil(
        [&] {
          for (const auto& [id, kind] : kinds_) {
            if (kind != Kind::kDelay && Caused(id, resume_id).empty()) return false;
          }
          return true;
        },
        absl::Seconds(30)));
    for (const auto& [id, kind] : kinds_) {
      if (kind == Kind::kWaiting) Complete(ItemId(items_[id]), before_[id].waiting_task_id(), t0);
      if (kind == Kind::kPaused) {
        Act(&v1::EnrollmentService::Stub::ResumeEnrollment, ItemId(items_[id]), "resume");
      }
    }
    for (const auto& entry : kinds_) {
      // Plain names, not a structured binding: the lambda below captures them (clang before 16
      // refuses to capture a structured binding).
      const auto& id = entry.first;
      const Kind kind = entry.second;
      if (kind == Kind::kDelay) continue;
      const v1::EditImpact& impact = by_id[id];
      INFO(id << " " << KindName(kind) << " impact " << impact.ShortDebugString());
      std::vector<v1::Envelope> decided;
      REQUIRE(reader_.PollUntil(
          [&] {
            decided = kind == Kind::kWaiting
                          ? Caused(id, CompletionId(before_[id].waiting_task_id()))
                          : ResumedByEnrollment(id);
            return !decided.empty() && (!impact.completes() || Ended(decided));
          },
          absl::Seconds(30)));
      INFO("decided: " << Describe(decided));
      compared.push_back(kind);
      if (kind == Kind::kWaiting) {
        if (impact.completes()) {
          CHECK(decided[0].has_enrollment_completed());
          continue;
        }
        REQUIRE(impact.upcoming_size() > 0);
        REQUIRE(decided[0].has_step_scheduled());
        CHECK(decided[0].step_scheduled().step_id() == impact.upcoming(0).step_id());
        // The barrier paused the enrollment after the activity was done (t0) and before it was
        // reported: that pause stops the next step's delay clock too, and the step is not due
        // before the barrier's resume (libs/domain/README.md, "late report").
        std::optional<v1::EnrollmentResumed> barrier;
        for (const v1::Envelope& e : Caused(id, resume_id)) {
          if (e.has_enrollment_resumed()) barrier = e.enrollment_resumed();
        }
        std::optional<absl::Time> paused_at;
        for (const v1::Envelope& e : Caused(id, pause_id)) {
          if (e.has_enrollment_paused())
            paused_at = domain::FromProto(e.enrollment_paused().paused_at());
        }
        REQUIRE(barrier.has_value());
        REQUIRE(paused_at.has_value());
        // The whole barrier came after t0 (an enrollment waiting for an activity has no delay
        // clock running, so the resume's paused_for may be 0: the pause is measured here).
        const absl::Time resumed_at = domain::FromProto(barrier->resumed_at());
        const absl::Duration paused = resumed_at - *paused_at;
        const absl::Time predicted = domain::FromProto(impact.upcoming(0).due_at());
        const absl::Time moved = WholeMicrosUp(std::max(predicted + paused, resumed_at));
        const absl::Time actual = domain::FromProto(decided[0].step_scheduled().due_at());
        INFO("the barrier paused it for " << paused << "; predicted " << predicted << ", moved "
                                          << moved << ", actual " << actual);
        // The predicted time itself where the send window absorbs the move.
        CHECK((actual == moved || actual == predicted));
        continue;
      }
      REQUIRE(decided[0].has_enrollment_resumed());
      const v1::EnrollmentResumed& r = decided[0].enrollment_resumed();
      if (impact.completes()) {
        CHECK(r.next_step_id().empty());
        CHECK(Ended(decided));
        continue;
      }
      CHECK(r.next_step_id() == impact.pending_step_id_after());
      const absl::Time predicted = domain::FromProto(impact.due_at_after());
      const absl::Time actual = domain::FromProto(r.next_due_at());
      const absl::Duration shift = domain::FromProto(r.resumed_at()) - t0;
      INFO("resumed " << shift << " after the preview");
      CHECK((actual == predicted || actual - predicted == shift));
    }
    return compared;
  }

 private:
  template <typename T>
  T Pick(std::vector<T> v) {
    return v[Rand(static_cast<int>(v.size()))];
  }
  int Rand(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

  // Delays are 0 (due at once) or at least 30 minutes (never due within the test).
  v1::Delay RandomDelay(bool zero, bool positive = false) {
    v1::Delay d;
    d.set_unit(v1::DELAY_UNIT_MINUTES);
    if (zero) return d;
    switch (positive ? 1 + Rand(4) : Rand(5)) {
      case 0:
        break;
      case 1:
        d.set_amount(30 + Rand(200));
        break;
      case 2:
        d.set_unit(v1::DELAY_UNIT_HOURS);
        d.set_amount(1 + Rand(30));
        break;
      case 3:
        d.set_unit(v1::DELAY_UNIT_DAYS);
        d.set_amount(1 + Rand(3));
        break;
      default:
        d.set_unit(v1::DELAY_UNIT_BUSINESS_DAYS);
        d.set_amount(1 + Rand(3));
        break;
    }
    return d;
  }
  v1::Step Step(const std::string& id, bool zero = false) {
    v1::Step s = Rand(3) == 0 ? EmailStep(id, 0, /*automatic=*/false) : ActivityStep(id, 0);
    *s.mutable_delay() = RandomDelay(zero);
    const v1::DelayUnit unit = s.delay().unit();
    // At a time of day only two days or more ahead: never due within the test.
    if ((unit == v1::DELAY_UNIT_DAYS || unit == v1::DELAY_UNIT_BUSINESS_DAYS) &&
        s.delay().amount() >= 2 && Rand(3) == 0) {
      s.mutable_at_time()->set_hours(Rand(24));
      s.mutable_at_time()->set_minutes(15 * Rand(4));
    }
    if (s.has_activity() && Rand(4) == 0) s.mutable_activity()->set_wait_for_completion(true);
    return s;
  }

  // A send window and holidays in the sequence's zone. The first case keeps every window open
  // now, so each state occurs; later ones may close it (steps move hours ahead).
  v1::SequenceSettings Settings() {
    v1::SequenceSettings st;
    st.set_default_time_zone(tz_);
    absl::TimeZone zone;
    REQUIRE(absl::LoadTimeZone(tz_, &zone));
    const absl::CivilHour hour = absl::ToCivilHour(absl::Now(), zone);
    const int choice = n_ == 0 ? Rand(2) : Rand(4);
    if (choice == 1) {  // open now: every day, all day, except a weekday or two
      for (int d = 1; d <= 7; ++d) {
        if (d != 1 + Rand(7) || d == static_cast<int>(absl::GetWeekday(hour)) + 1) {
          v1::WindowRange* r = st.mutable_send_window()->add_ranges();
          r->set_weekday(static_cast<v1::Weekday>(d));
          r->mutable_start()->set_hours(0);
          r->mutable_end()->set_hours(24);
        }
      }
    } else if (choice == 2) {  // closed now: opens in three hours, for two hours, every day
      const int start = (hour.hour() + 3) % 24;
      for (int d = 1; d <= 7; ++d) {
        v1::WindowRange* r = st.mutable_send_window()->add_ranges();
        r->set_weekday(static_cast<v1::Weekday>(d));
        r->mutable_start()->set_hours(start);
        r->mutable_end()->set_hours(std::min(start + 2, 24));
      }
    }
    // Holidays in the coming days (never today: a step due at once stays due at once).
    for (int i = Rand(3); i > 0; --i) {
      const absl::CivilDay day = absl::CivilDay(hour) + 1 + Rand(6);
      v1::Date* h = st.add_holidays();
      h->set_year(static_cast<int32_t>(day.year()));
      h->set_month(day.month());
      h->set_day(day.day());
    }
    return st;
  }

  // A random subset of the current steps and new ones, in random order, some with a new delay.
  std::vector<v1::Step> RandomEdit() {
    std::vector<v1::Step> pool(sequence_.steps().begin(), sequence_.steps().end());
    for (const char* id : {"n1", "n2", "n3"}) pool.push_back(Step(id, Rand(4) == 0));
    std::shuffle(pool.begin(), pool.end(), rng_);
    pool.resize(1 + Rand(static_cast<int>(pool.size())));
    for (v1::Step& s : pool) {
      if (Rand(3) == 0) *s.mutable_delay() = RandomDelay(Rand(4) == 0);
    }
    return pool;
  }

  std::string ItemId(int i) const { return absl::StrCat("p", n_, "-", i); }
  std::string EnrollmentName(int i) const {
    return absl::StrCat(name_, "/enrollments/deal:", ItemId(i));
  }
  static bool IsActive(const v1::Enrollment& e) {
    return e.status() == v1::ENROLLMENT_STATUS_IN_PROGRESS ||
           e.status() == v1::ENROLLMENT_STATUS_PAUSED;
  }

  // Polls until every enrollment is decided and settled: waiting for an activity, due at least
  // ten minutes ahead, ended, or (the `paused` ones) paused. Returns them by item.
  std::vector<v1::Enrollment> WaitStable(const std::set<int>& paused = {}) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    std::vector<v1::Enrollment> out(kItems);
    std::string unsettled;
    do {
      unsettled.clear();
      for (int i = 0; i < kItems; ++i) {
        v1::GetEnrollmentRequest req;
        req.set_name(EnrollmentName(i));
        out[i].Clear();
        grpc::Status s = api_.enrollments().GetEnrollment(CallAs(kCompany).get(), req, &out[i]);
        const v1::Enrollment& e = out[i];
        const bool settled =
            s.ok() && !e.pending() &&
            (paused.count(i) > 0 && IsActive(e) ? e.status() == v1::ENROLLMENT_STATUS_PAUSED
             : !IsActive(e)                     ? true
             : e.status() == v1::ENROLLMENT_STATUS_PAUSED
                 ? true
                 : !e.waiting_task_id().empty() ||
                       (e.has_next_due_time() &&
                        domain::FromProto(e.next_due_time()) > absl::Now() + absl::Minutes(10)));
        if (!settled)
          absl::StrAppend(&unsettled, i, ": ", s.error_message(), e.ShortDebugString(), "\n");
      }
      if (unsettled.empty()) return out;
      absl::SleepFor(absl::Milliseconds(150));
    } while (absl::Now() < deadline);
    INFO("not settled:\n" << unsettled);
    REQUIRE(unsettled.empty());
    return out;
  }

  void Complete(const std::string& item, const std::string& task_id, absl::Time at) {
    v1::ReportActivityCompletedRequest req;
    req.set_name(absl::StrCat(name_, "/enrollments/deal:", item));
    req.set_task_id(task_id);
    *req.mutable_complete_time() = domain::ToProto(at);
    req.set_request_id(absl::StrCat("done-", n_, "-", ++requests_));
    v1::EnrollmentResponse resp;
    grpc::Status s = api_.enrollments().ReportActivityCompleted(CallAs(kCompany).get(), req, &resp);
    INFO(item << ": " << s.error_message());
    REQUIRE(s.ok());
  }
  using ActionRpc = grpc::Status (v1::EnrollmentService::Stub::*)(
      grpc::ClientContext*, const v1::EnrollmentActionRequest&, v1::EnrollmentResponse*);
  void Act(ActionRpc rpc, const std::string& item, const std::string& what) {
    v1::EnrollmentActionRequest req;
    req.set_name(absl::StrCat(name_, "/enrollments/deal:", item));
    req.set_request_id(absl::StrCat(what, "-", n_, "-", ++requests_));
    v1::EnrollmentResponse resp;
    grpc::Status s = (api_.enrollments().*rpc)(CallAs(kCompany).get(), req, &resp);
    INFO(item << " " << what << ": " << s.error_message());
    REQUIRE(s.ok());
  }

  // The id of this case's sequence event of `payload` (the only one of its kind), polled for.
  std::string SequenceEventId(v1::Envelope::PayloadCase payload) {
    std::string id;
    reader_.PollUntil(
        [&] {
          for (const Seen* s : reader_.On(sys_.topics().sequence_events, sequence_id_)) {
            if (s->event.payload_case() == payload) id = s->event.event_id();
          }
          return !id.empty();
        },
        absl::Seconds(30));
    INFO("no sequence event " << payload);
    REQUIRE(!id.empty());
    return id;
  }
  // The event id of the ActivityCompleted input for `task_id` ("" until it is read).
  std::string CompletionId(const std::string& task_id) {
    for (const Seen* s : reader_.On(sys_.topics().enrollment_events)) {
      if (s->event.has_activity_completed() && s->event.activity_completed().task_id() == task_id) {
        return s->event.event_id();
      }
    }
    return "";
  }
  // The executor events of enrollment `id` caused by input `cause`, in log order.
  std::vector<v1::Envelope> Caused(const std::string& id, const std::string& cause) {
    std::vector<v1::Envelope> out;
    if (cause.empty()) return out;
    for (const Seen* s : reader_.On(sys_.topics().executor_events)) {
      const v1::EnrollmentRef* ref = domain::ExecutorEventRef(s->event);
      if (ref != nullptr && ref->enrollment_id() == id && s->event.causation_id() == cause) {
        out.push_back(s->event);
      }
    }
    return out;
  }
  // The executor's decision on the enrollment's own resume: its EnrollmentResumed (cause
  // enrollment) and what followed from the same input.
  std::vector<v1::Envelope> ResumedByEnrollment(const std::string& id) {
    for (const Seen* s : reader_.On(sys_.topics().executor_events)) {
      const v1::Envelope& e = s->event;
      if (e.has_enrollment_resumed() && e.enrollment_resumed().ref().enrollment_id() == id &&
          e.enrollment_resumed().cause() == v1::PAUSE_CAUSE_ENROLLMENT) {
        return Caused(id, e.causation_id());
      }
    }
    return {};
  }
  bool EndedById(const std::string& id) {
    for (const Seen* s : reader_.On(sys_.topics().executor_events)) {
      const v1::Envelope& e = s->event;
      const v1::EnrollmentRef* ref = domain::ExecutorEventRef(e);
      if (ref != nullptr && ref->enrollment_id() == id &&
          (e.has_enrollment_completed() || e.has_enrollment_removed() ||
           e.has_enrollment_failed())) {
        return true;
      }
    }
    return false;
  }
  static bool Ended(const std::vector<v1::Envelope>& events) {
    for (const v1::Envelope& e : events) {
      if (e.has_enrollment_completed() || e.has_enrollment_removed()) return true;
    }
    return false;
  }
  static std::string Describe(const std::vector<v1::Envelope>& events) {
    std::string s = events.empty() ? "(none)" : "";
    for (const v1::Envelope& e : events) absl::StrAppend(&s, e.ShortDebugString(), "; ");
    return s;
  }

  System& sys_;
  ApiProcess& api_;
  Reader& reader_;
  std::mt19937& rng_;
  int n_;
  std::string tz_;
  v1::Sequence sequence_;
  std::string name_;
  std::string sequence_id_;
  std::map<std::string, Kind> kinds_;  // active enrollment id -> its state at the edit
  std::map<std::string, int> items_;   // enrollment id -> item index
  std::map<std::string, v1::Enrollment> before_;
  int requests_ = 0;
};

TEST_CASE(
    "Given random sequences with enrollments waiting for a delay, for an activity and paused, "
    "when a random edit is previewed and then applied, then the executor schedules each one's "
    "pending step at the due time the preview predicted") {
  const uint32_t seed = static_cast<uint32_t>(
      EnvInt("SEQUENCES_EDIT_PREVIEW_SEED", static_cast<int>(std::random_device{}() & 0x7fffffff)));
  const int cases = std::max(1, EnvInt("SEQUENCES_EDIT_PREVIEW_CASES", 2));
  std::cout << "edit preview: SEQUENCES_EDIT_PREVIEW_SEED=" << seed
            << " SEQUENCES_EDIT_PREVIEW_CASES=" << cases << std::endl;
  INFO("SEQUENCES_EDIT_PREVIEW_SEED=" << seed << " SEQUENCES_EDIT_PREVIEW_CASES=" << cases);
  std::mt19937 rng(seed);
  System sys;
  Reader reader(
      {sys.topics().executor_events, sys.topics().sequence_events, sys.topics().enrollment_events});
  std::map<Kind, int> compared;
  for (int n = 0; n < cases; ++n) {
    INFO("case " << n);
    Case c(sys, reader, rng, n);
    c.Prepare();
    for (Kind k : c.EditAndCompare()) ++compared[k];
  }
  std::cout << "edit preview: compared " << compared[Kind::kDelay] << " waiting for a delay, "
            << compared[Kind::kWaiting] << " waiting for an activity, " << compared[Kind::kPaused]
            << " paused" << std::endl;
  // The first case's windows are open, so each state occurred at least once.
  for (Kind k : {Kind::kDelay, Kind::kWaiting, Kind::kPaused}) {
    INFO(KindName(k));
    CHECK(compared[k] > 0);
  }
}

}  // namespace
}  // namespace sequences::testing
