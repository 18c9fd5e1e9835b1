#include "libs/domain/enrollment.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/domain/enrollment_preview.h"
#include "libs/domain/envelope.h"
#include "libs/domain/errors.h"
#include "libs/domain/routing.h"
#include "libs/domain/schedule.h"
#include "libs/domain/validation.h"
#include "libs/domain/variants.h"

namespace sequences::domain {
namespace {

// Builds the derived events of one decision with deterministic ids "<cause>/<subject>/<kind>".
class Emitter {
 public:
  Emitter(std::string cause_id, std::string correlation_id, std::string company_id, absl::Time now)
      : cause_id_(std::move(cause_id)),
        correlation_id_(std::move(correlation_id)),
        company_id_(std::move(company_id)),
        now_(now) {}

  // An envelope whose id is "<cause>/<subject>/<kind>".
  v1::Envelope New(absl::string_view subject, absl::string_view kind) const {
    return MakeEnvelope(absl::StrCat(cause_id_, "/", subject, "/", kind), company_id_, now_,
                        cause_id_, correlation_id_);
  }
  // An envelope with an explicit id (effects and executions whose id must not depend on the
  // cause).
  v1::Envelope WithId(absl::string_view id) const {
    return MakeEnvelope(id, company_id_, now_, cause_id_, correlation_id_);
  }

 private:
  std::string cause_id_;
  std::string correlation_id_;
  std::string company_id_;
  absl::Time now_;
};

v1::EnrollmentRef Ref(const EnrollmentState& s) {
  v1::EnrollmentRef ref;
  ref.set_enrollment_id(s.enrollment_id);
  ref.set_item_key(s.item_key);
  ref.set_sequence_id(s.sequence_id);
  return ref;
}

std::string CompanyOf(absl::string_view item_key) {
  absl::StatusOr<ItemKey> key = ParseItemKey(item_key);
  return key.ok() ? key->company_id : std::string();
}

Calendar CalendarFor(const EnrollmentState& s, const SequenceState& seq) {
  return MakeCalendar(seq.settings, LoadZoneOrUtc(s.time_zone));
}

// The delay clock of a step measured from `anchor`: how long the pauses that ended since the last
// executed step stood still after it, and the last resume after it (the step is never due before
// it). Only an anchor in the past needs it: an awaited activity reported done late, at a time
// before (the end of) a pause in between.
struct Clock {
  absl::Duration paused;
  absl::Time not_before;
};
Clock ClockAfter(const EnrollmentState& s, absl::Time anchor) {
  Clock clock{absl::ZeroDuration(), anchor};
  for (const auto& [from, to] : s.ended_pauses) {
    if (to <= anchor) continue;
    clock.paused += to - std::max(from, anchor);
    clock.not_before = std::max(clock.not_before, to);
  }
  return clock;
}

bool Matches(const EnrollmentState& s, absl::string_view item_key, absl::string_view sequence_id) {
  return s.item_key == item_key && (sequence_id.empty() || s.sequence_id == sequence_id);
}

// ---- events ----

// Stopped by the person or the CRM (a reply, a bounce, a removal, an outcome): its queued email
// must not go out (docs/send-limits.md). A failure is not such a stop: it concerns a later step,
// and the emails already due stay queued (a retry continues after them).
bool EndedEarly(const EnrollmentState& s) {
  return s.status == v1::ENROLLMENT_STATUS_REMOVED ||
         (s.status == v1::ENROLLMENT_STATUS_COMPLETED &&
          s.exit_reason != v1::EXIT_REASON_ALL_STEPS_DONE);
}

// A SendCancelled for each email `s` has waiting in its sender's queue.
void AddSendCancelled(const EnrollmentState& s, const Emitter& em, Decision* d) {
  for (const auto& [email_id, waiting] : s.waiting_emails) {
    if (waiting.sender_user_id().empty()) continue;
    v1::Envelope e = em.New(email_id, "send-cancelled");
    v1::SendCancelled* p = e.mutable_send_cancelled();
    *p->mutable_ref() = Ref(s);
    p->set_step_id(waiting.step_id());
    p->set_email_id(email_id);
    p->set_sender_user_id(waiting.sender_user_id());
    // Waiting at its person stage (min_gap.h): the cancel goes there (it forwards it to the
    // sender stage if the email is in flight by then).
    p->set_person_key(waiting.person_key());
    d->sender_inputs.push_back(std::move(e));
  }
}

void AddCompleted(const EnrollmentState& s, const Emitter& em, v1::ExitReason reason,
                  absl::Time now, Decision* d) {
  v1::Envelope e = em.New(s.enrollment_id, "completed");
  v1::EnrollmentCompleted* p = e.mutable_enrollment_completed();
  *p->mutable_ref() = Ref(s);
  p->set_exit_reason(reason);
  *p->mutable_completed_at() = ToProto(now);
  d->executor_events.push_back(std::move(e));
  if (reason != v1::EXIT_REASON_ALL_STEPS_DONE) AddSendCancelled(s, em, d);
}

void AddRemoved(const EnrollmentState& s, const Emitter& em, v1::RemovalReason reason,
                absl::string_view by, absl::Time now, Decision* d) {
  v1::Envelope e = em.New(s.enrollment_id, "removed");
  v1::EnrollmentRemoved* p = e.mutable_enrollment_removed();
  *p->mutable_ref() = Ref(s);
  p->set_reason(reason);
  *p->mutable_removed_at() = ToProto(now);
  p->set_removed_by(std::string(by));
  d->executor_events.push_back(std::move(e));
  AddSendCancelled(s, em, d);
}

void AddFailed(const EnrollmentState& s, const Emitter& em, v1::FailureReason reason,
               absl::string_view step_id, absl::string_view missing_field, absl::string_view detail,
               absl::Time now, Decision* d) {
  v1::Envelope e = em.New(s.enrollment_id, "failed");
  v1::EnrollmentFailed* p = e.mutable_enrollment_failed();
  *p->mutable_ref() = Ref(s);
  p->set_reason(reason);
  p->set_step_id(std::string(step_id));
  p->set_missing_merge_field(std::string(missing_field));
  p->set_detail(std::string(detail));
  *p->mutable_failed_at() = ToProto(now);
  d->executor_events.push_back(std::move(e));
}

void AddPaused(const EnrollmentState& s, const Emitter& em, v1::PauseCause cause,
               absl::string_view by, absl::Time now, Decision* d) {
  v1::Envelope e = em.New(s.enrollment_id, absl::StrCat("paused-", cause));
  v1::EnrollmentPaused* p = e.mutable_enrollment_paused();
  *p->mutable_ref() = Ref(s);
  p->set_cause(cause);
  *p->mutable_paused_at() = ToProto(now);
  p->set_paused_by(std::string(by));
  d->executor_events.push_back(std::move(e));
}

void AddScheduled(const EnrollmentState& s, const Emitter& em, const v1::Step& step, absl::Time due,
                  const std::vector<std::string>& passed, std::optional<absl::Time> anchor,
                  Decision* d) {
  v1::Envelope e = em.New(s.enrollment_id, absl::StrCat("scheduled-", step.id()));
  v1::StepScheduled* p = e.mutable_step_scheduled();
  *p->mutable_ref() = Ref(s);
  p->set_step_id(step.id());
  *p->mutable_due_at() = ToProto(due);
  for (const std::string& id : passed) p->add_passed_step_ids(id);
  if (anchor.has_value()) *p->mutable_anchor_at() = ToProto(*anchor);
  d->executor_events.push_back(std::move(e));
}

// Next step after the enrollment's position, scheduled from `anchor` (or Completed if none).
void ScheduleNextOrComplete(const EnrollmentState& s, const SequenceState& seq, const Emitter& em,
                            absl::Time anchor, absl::Time now, Decision* d) {
  std::vector<std::string> newly;
  const int idx = NextStepIndex(s.passed_step_ids, seq.steps, &newly);
  if (idx < 0) {
    AddCompleted(s, em, v1::EXIT_REASON_ALL_STEPS_DONE, now, d);
    return;
  }
  const Calendar cal = CalendarFor(s, seq);
  // While paused the clock is stopped; the due time is recomputed on resume. Pauses that ended
  // after the anchor (a completion reported late) stopped it too.
  const Clock clock = ClockAfter(s, anchor);
  AddScheduled(s, em, seq.steps[idx],
               StepDueAt(anchor, seq.steps[idx], cal, clock.not_before, clock.paused), newly,
               anchor, d);
}

// Reschedules the pending step when an edit of steps or settings changed it or its due time.
void Reschedule(const EnrollmentState& s, const SequenceState& seq, const Emitter& em,
                absl::Time now, Decision* d) {
  if (s.status != v1::ENROLLMENT_STATUS_IN_PROGRESS || !s.waiting_task_id.empty()) return;
  std::vector<std::string> newly;
  const int idx = NextStepIndex(s.passed_step_ids, seq.steps, &newly);
  if (idx < 0) {
    AddCompleted(s, em, v1::EXIT_REASON_ALL_STEPS_DONE, now, d);
    return;
  }
  const v1::Step& step = seq.steps[idx];
  const absl::Time due =
      StepDueAt(s.anchor, step, CalendarFor(s, seq), s.not_before, s.paused_total);
  if (step.id() == s.pending_step_id && s.due_at == due && newly.empty()) return;
  AddScheduled(s, em, step, due, newly, std::nullopt, d);
}

// Resume for `cause`: removes it; when it was the last one continues the delay clock.
void AddResumed(const EnrollmentState& s, const SequenceState& seq, const Emitter& em,
                v1::PauseCause cause, absl::string_view by, absl::Time now, Decision* d) {
  v1::Envelope e = em.New(s.enrollment_id, absl::StrCat("resumed-", cause));
  v1::EnrollmentResumed* p = e.mutable_enrollment_resumed();
  *p->mutable_ref() = Ref(s);
  *p->mutable_resumed_at() = ToProto(now);
  p->set_cause(cause);
  p->set_resumed_by(std::string(by));
  const bool last = s.pause_causes.size() == 1 && s.pause_causes.count(cause) == 1;
  bool complete = false;
  if (last) {
    const absl::Duration paused_for = s.paused_at.has_value()
                                          ? std::max(absl::ZeroDuration(), now - *s.paused_at)
                                          : absl::ZeroDuration();
    *p->mutable_paused_for() = ToProtoDuration(paused_for);
    if (s.waiting_task_id.empty()) {
      const int idx = NextStepIndex(s.passed_step_ids, seq.steps, nullptr);
      if (idx < 0) {
        complete = true;
      } else {
        const v1::Step& step = seq.steps[idx];
        p->set_next_step_id(step.id());
        *p->mutable_next_due_at() = ToProto(
            StepDueAt(s.anchor, step, CalendarFor(s, seq), now, s.paused_total + paused_for));
      }
    }
  }
  d->executor_events.push_back(std::move(e));
  if (complete) AddCompleted(s, em, v1::EXIT_REASON_ALL_STEPS_DONE, now, d);
}

// ---- enroll ----

struct Refusal {
  v1::RejectionReason reason;
  absl::Status status;
};

std::optional<Refusal> EnrollRefusal(const EnrollmentState& state, const v1::EnrollRequested& r,
                                     const SequenceState& seq) {
  absl::Status valid = ValidateEnrollRequested(r);
  if (!valid.ok()) return Refusal{v1::REJECTION_REASON_INVALID_REQUEST, valid};
  if (!seq.exists) {
    return Refusal{v1::REJECTION_REASON_SEQUENCE_NOT_FOUND,
                   absl::NotFoundError(absl::StrCat("sequence ", r.sequence_id(), " not found"))};
  }
  if (seq.deleted) {
    return Refusal{
        v1::REJECTION_REASON_SEQUENCE_DELETED,
        absl::FailedPreconditionError(absl::StrCat("sequence ", r.sequence_id(), " is deleted"))};
  }
  absl::StatusOr<ItemKey> key = ParseItemKey(r.item_key());
  if (key->company_id != seq.company_id) {
    // Another company's sequence does not exist for this item (tenancy by construction).
    return Refusal{v1::REJECTION_REASON_SEQUENCE_NOT_FOUND,
                   absl::NotFoundError(absl::StrCat("sequence ", r.sequence_id(), " not found"))};
  }
  if (EntityKindOf(*key) != seq.entity_kind) {
    return Refusal{v1::REJECTION_REASON_WRONG_ENTITY_KIND,
                   absl::FailedPreconditionError(
                       absl::StrCat("sequence ", r.sequence_id(), " is for ",
                                    seq.entity_kind == v1::ENTITY_KIND_DEAL ? "deals" : "leads",
                                    ", not ", key->entity, "s"))};
  }
  if (state.IsActive()) {
    return Refusal{v1::REJECTION_REASON_ALREADY_ENROLLED,
                   absl::AlreadyExistsError(absl::StrCat(
                       r.item_key(), " is already enrolled in sequence ", r.sequence_id()))};
  }
  if (state.enrollment_count > 0 &&
      seq.settings.reenrollment() != v1::REENROLLMENT_RULE_WHEN_NOT_ACTIVE) {
    return Refusal{v1::REJECTION_REASON_REENROLLMENT_NOT_ALLOWED,
                   absl::FailedPreconditionError(
                       absl::StrCat(r.item_key(), " was enrolled in sequence ", r.sequence_id(),
                                    " before and the sequence does not allow re-enrollment"))};
  }
  return std::nullopt;
}

absl::StatusOr<Decision> DecideEnroll(const EnrollmentState& state, const v1::Envelope& input,
                                      const SequenceState& seq, absl::Time now) {
  const v1::EnrollRequested& r = input.enroll_requested();
  if (r.request_id().empty()) return InvalidField("request_id", "is required");
  if (r.sequence_id().empty()) return InvalidField("sequence_id", "is required");
  absl::StatusOr<ItemKey> key = ParseItemKey(r.item_key());
  if (!key.ok()) return key.status();
  if ((!state.item_key.empty() && state.item_key != r.item_key()) ||
      (!state.sequence_id.empty() && state.sequence_id != r.sequence_id())) {
    return absl::InvalidArgumentError("enroll request routed to another enrollment key");
  }
  Decision d;
  if (state.request_ids.count(r.request_id()) > 0) return d;  // idempotent repeat

  const std::string enrollment_key = EnrollmentKey(r.item_key(), r.sequence_id());
  const Emitter em(input.event_id(),
                   input.correlation_id().empty() ? r.request_id() : input.correlation_id(),
                   key->company_id, now);
  if (std::optional<Refusal> refusal = EnrollRefusal(state, r, seq); refusal.has_value()) {
    v1::Envelope e = em.New(enrollment_key, "rejected");
    v1::EnrollmentRejected* p = e.mutable_enrollment_rejected();
    p->set_item_key(r.item_key());
    p->set_sequence_id(r.sequence_id());
    p->set_request_id(r.request_id());
    p->set_reason(refusal->reason);
    p->set_detail(std::string(refusal->status.message()));
    d.executor_events.push_back(std::move(e));
    return d;
  }

  EnrollmentState next;
  next.item_key = r.item_key();
  next.sequence_id = r.sequence_id();
  next.enrollment_id = absl::StrCat(enrollment_key, "#", state.enrollment_count + 1);
  absl::TimeZone tz;
  const std::string tz_name =
      ResolveTimeZone(r.time_zones(), seq.settings.default_time_zone(), &tz);

  v1::Envelope e = em.New(next.enrollment_id, "started");
  v1::EnrollmentStarted* p = e.mutable_enrollment_started();
  *p->mutable_ref() = Ref(next);
  p->set_request_id(r.request_id());
  p->set_sequence_version(seq.version);
  p->set_entity_kind(seq.entity_kind);
  p->set_owner_id(r.owner_id());
  *p->mutable_recipient() = r.recipient();
  p->set_time_zone(tz_name);
  *p->mutable_merge_data() = r.merge_data();
  *p->mutable_started_at() = ToProto(now);
  p->set_requested_by(r.requested_by());
  if (!seq.steps.empty()) {
    const Calendar cal = MakeCalendar(seq.settings, tz);
    p->set_first_step_id(seq.steps[0].id());
    *p->mutable_first_due_at() = ToProto(StepDueAt(now, seq.steps[0], cal, now));
  }
  d.executor_events.push_back(std::move(e));
  if (seq.steps.empty()) {
    AddCompleted(next, em, v1::EXIT_REASON_ALL_STEPS_DONE, now, &d);
  } else if (seq.paused) {
    AddPaused(next, em, v1::PAUSE_CAUSE_SEQUENCE, "", now, &d);
  }
  return d;
}

// ---- firing a step ----

std::string ResolveUser(const v1::UserChoice& choice, const EnrollmentState& s) {
  if (choice.choice_case() == v1::UserChoice::kUserId && !choice.user_id().empty()) {
    return choice.user_id();
  }
  return s.owner_id;  // item owner (also the fallback for an unset choice)
}

void Execute(const EnrollmentState& s, const SequenceState& seq, int idx,
             const std::vector<std::string>& newly, absl::Time due_at, absl::Time now,
             const Emitter& em, Decision* d) {
  const v1::Step& step = seq.steps[idx];
  const Calendar cal = CalendarFor(s, seq);
  const std::string effect_prefix = absl::StrCat(s.enrollment_id, "/", step.id());
  std::string effect_id;
  std::string variant_id;  // an email step's A/B variant, recorded in StepExecuted
  v1::EmailMode email_mode = v1::EMAIL_MODE_UNSPECIFIED;
  bool wait = false;
  if (step.has_activity()) {
    const v1::ActivityStep& a = step.activity();
    const std::string assignee = ResolveUser(a.assignee(), s);
    if (assignee.empty()) {
      AddFailed(s, em, v1::FAILURE_REASON_USER_MISSING, step.id(), "",
                "no assignee: the step names no user and the item has no owner", now, d);
      return;
    }
    effect_id = absl::StrCat(effect_prefix, "/task");
    v1::Envelope e = em.WithId(effect_id);
    v1::TaskCreated* t = e.mutable_task_created();
    t->set_task_id(effect_id);
    t->set_enrollment_id(s.enrollment_id);
    t->set_item_key(s.item_key);
    t->set_sequence_id(s.sequence_id);
    t->set_step_id(step.id());
    t->set_activity_type(a.activity_type());
    // Merge fields in an activity's subject and note are filled like a draft's: a field without
    // a value stays as written for the assignee to see (an activity is never refused for it).
    auto filled = [&](const std::string& text) {
      absl::StatusOr<Rendered> r = Render(text, s.merge_data, Escape::kNone);
      return r.ok() ? r->text : text;
    };
    t->set_subject(filled(a.subject()));
    t->set_assignee_user_id(assignee);
    t->set_priority(a.priority());
    t->set_note(filled(a.note()));
    const absl::CivilDay day(cal.tz.At(now).cs);
    absl::Time task_due = now;
    if (a.has_due_time()) {
      task_due = FromLocal(absl::CivilSecond(day.year(), day.month(), day.day(),
                                             a.due_time().hours(), a.due_time().minutes(), 0),
                           cal.tz);
      *t->mutable_due_time() = a.due_time();
    }
    *t->mutable_due_at() = ToProto(task_due);
    t->mutable_due_date()->set_year(static_cast<int32_t>(day.year()));
    t->mutable_due_date()->set_month(day.month());
    t->mutable_due_date()->set_day(day.day());
    t->set_time_zone(s.time_zone);
    t->set_wait_for_completion(a.wait_for_completion());
    wait = a.wait_for_completion();
    d->task_events.push_back(std::move(e));
  } else if (step.has_email()) {
    const v1::EmailStep& m = step.email();
    const std::string sender = ResolveUser(m.sender(), s);
    if (sender.empty()) {
      AddFailed(s, em, v1::FAILURE_REASON_USER_MISSING, step.id(), "",
                "no sender: the step names no user and the item has no owner", now, d);
      return;
    }
    if (s.recipient.email().empty()) {
      AddFailed(s, em, v1::FAILURE_REASON_RECIPIENT_MISSING, step.id(), "",
                "the enrollment has no recipient email address", now, d);
      return;
    }
    const bool automatic = m.send_automatically();
    if (automatic && !seq.automated_sending) {
      AddFailed(s, em, v1::FAILURE_REASON_AUTOMATED_SENDING_OFF, step.id(), "",
                "automated email sending is switched off for the sequence", now, d);
      return;
    }
    if (automatic && !seq.HasConsent(sender)) {
      AddFailed(
          s, em, v1::FAILURE_REASON_CONSENT_MISSING, step.id(), "",
          absl::StrCat("user ", sender, " has not authorized automated sending for this sequence"),
          now, d);
      return;
    }
    const int variant = ChooseVariant(s.enrollment_id, step.id(), m.variants());
    if (variant >= 0) variant_id = m.variants(variant).id();
    const std::string& subject_text = variant >= 0 ? m.variants(variant).subject() : m.subject();
    const std::string& body_text = variant >= 0 ? m.variants(variant).body() : m.body();
    absl::StatusOr<Rendered> subject = Render(subject_text, s.merge_data, Escape::kNone);
    absl::StatusOr<Rendered> body =
        Render(body_text, s.merge_data, m.body_is_html() ? Escape::kHtml : Escape::kNone);
    if (!subject.ok() || !body.ok()) {
      AddFailed(s, em, v1::FAILURE_REASON_TEMPLATE_INVALID, step.id(), "",
                !subject.ok() ? subject.status().message() : body.status().message(), now, d);
      return;
    }
    if (automatic) {
      std::vector<std::string> missing = subject->missing_fields;
      missing.insert(missing.end(), body->missing_fields.begin(), body->missing_fields.end());
      if (!missing.empty()) {
        AddFailed(s, em, v1::FAILURE_REASON_MISSING_MERGE_FIELD, step.id(), missing[0],
                  absl::StrCat("merge field ", missing[0], " has no value"), now, d);
        return;
      }
    }
    effect_id = absl::StrCat(effect_prefix, "/email");
    v1::Envelope e = em.WithId(effect_id);
    v1::EmailSend* p = e.mutable_email_send();
    p->set_idempotency_key(effect_id);
    p->set_enrollment_id(s.enrollment_id);
    p->set_item_key(s.item_key);
    p->set_sequence_id(s.sequence_id);
    p->set_step_id(step.id());
    p->set_sender_user_id(sender);
    *p->mutable_recipient() = s.recipient;
    p->set_subject(subject->text);
    p->set_body(body->text);
    p->set_body_is_html(m.body_is_html());
    p->set_mode(automatic ? v1::EMAIL_MODE_AUTOMATIC : v1::EMAIL_MODE_DRAFT_FOR_REVIEW);
    p->set_variant_id(variant_id);
    email_mode = p->mode();
    *p->mutable_scheduled_at() = ToProto(now);
    d->email_events.push_back(std::move(e));
  }

  // The step after this one (under the current definition).
  std::set<std::string> passed = s.passed_step_ids;
  passed.insert(newly.begin(), newly.end());
  passed.insert(step.id());
  int next = -1;
  if (!wait) next = NextStepIndex(passed, seq.steps, nullptr);

  v1::Envelope e = em.WithId(absl::StrCat(effect_prefix, "/executed"));
  v1::StepExecuted* p = e.mutable_step_executed();
  *p->mutable_ref() = Ref(s);
  p->set_step_id(step.id());
  p->set_step_index(idx);
  *p->mutable_due_at() = ToProto(due_at);
  *p->mutable_executed_at() = ToProto(now);
  p->set_effect_id(effect_id);
  p->set_variant_id(variant_id);
  p->set_email_mode(email_mode);
  for (const std::string& id : newly) p->add_passed_step_ids(id);
  if (next >= 0) {
    p->set_next_step_id(seq.steps[next].id());
    *p->mutable_next_due_at() = ToProto(StepDueAt(now, seq.steps[next], cal, now));
  }
  d->executor_events.push_back(std::move(e));
  if (wait) {
    v1::Envelope w = em.WithId(absl::StrCat(effect_prefix, "/waiting"));
    v1::WaitingForActivity* wp = w.mutable_waiting_for_activity();
    *wp->mutable_ref() = Ref(s);
    wp->set_step_id(step.id());
    wp->set_task_id(effect_id);
    d->executor_events.push_back(std::move(w));
  } else if (next < 0) {
    AddCompleted(s, em, v1::EXIT_REASON_ALL_STEPS_DONE, now, d);
  }
}

}  // namespace

bool IsActive(v1::EnrollmentStatus status) {
  return status == v1::ENROLLMENT_STATUS_IN_PROGRESS || status == v1::ENROLLMENT_STATUS_PAUSED;
}

bool EnrollmentState::IsActive() const { return domain::IsActive(status); }

int NextStepIndex(const std::set<std::string>& passed, absl::Span<const v1::Step> steps,
                  std::vector<std::string>* newly_passed) {
  int last = -1;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (passed.count(steps[i].id()) > 0) last = static_cast<int>(i);
  }
  if (newly_passed != nullptr) {
    newly_passed->clear();
    for (int i = 0; i < last; ++i) {
      if (passed.count(steps[i].id()) == 0) newly_passed->push_back(steps[i].id());
    }
  }
  for (size_t i = static_cast<size_t>(last + 1); i < steps.size(); ++i) {
    if (passed.count(steps[i].id()) == 0) return static_cast<int>(i);
  }
  return -1;
}

absl::Status CheckEnroll(const EnrollmentState& state, const v1::EnrollRequested& request,
                         const SequenceState& sequence) {
  if (state.request_ids.count(request.request_id()) > 0) return absl::OkStatus();
  std::optional<Refusal> refusal = EnrollRefusal(state, request, sequence);
  return refusal.has_value() ? refusal->status : absl::OkStatus();
}

absl::StatusOr<Decision> DecideEnrollment(const EnrollmentState& state, const v1::Envelope& input,
                                          const SequenceState& sequence, absl::Time now) {
  if (input.has_enroll_requested()) return DecideEnroll(state, input, sequence, now);

  Decision d;
  if (input.has_send_outcome()) {
    const v1::SendOutcome& o = input.send_outcome();
    if (state.enrollment_id.empty() || o.ref().enrollment_id() != state.enrollment_id) return d;
    const Emitter em(input.event_id(), state.correlation_id, state.company_id, now);
    if (o.kind() == v1::SendOutcome::KIND_DEFERRED) {
      v1::Envelope e = em.New(state.enrollment_id, "email_deferred");
      v1::EmailDeferred* p = e.mutable_email_deferred();
      *p->mutable_ref() = Ref(state);
      p->set_step_id(o.step_id());
      p->set_email_id(o.email_id());
      *p->mutable_deferred_until() = o.at();
      p->set_reason(o.reason());
      p->set_detail(o.detail());
      p->set_sender_user_id(o.sender_user_id());
      p->set_person_key(o.person_key());
      d.executor_events.push_back(std::move(e));
      // It ended before it learned of the wait: cancel now.
      if (EndedEarly(state))
        AddSendCancelled(EvolveEnrollment(state, d.executor_events.back()), em, &d);
    } else if (o.kind() == v1::SendOutcome::KIND_SENT) {
      v1::Envelope e = em.New(state.enrollment_id, "email_released");
      v1::EmailReleased* p = e.mutable_email_released();
      *p->mutable_ref() = Ref(state);
      p->set_step_id(o.step_id());
      p->set_email_id(o.email_id());
      *p->mutable_sent_at() = o.at();
      d.executor_events.push_back(std::move(e));
    } else if (o.kind() == v1::SendOutcome::KIND_CANCELLED) {
      v1::Envelope e = em.New(state.enrollment_id, "email_cancelled");
      v1::EmailCancelled* p = e.mutable_email_cancelled();
      *p->mutable_ref() = Ref(state);
      p->set_step_id(o.step_id());
      p->set_email_id(o.email_id());
      *p->mutable_cancelled_at() = o.at();
      p->set_reason(o.reason());
      p->set_detail(o.detail());
      d.executor_events.push_back(std::move(e));
    } else {
      return InvalidField("send_outcome.kind", "must be deferred, sent or cancelled");
    }
    return d;
  }
  // A failed enrollment can still be repaired (merge data, recipient), retried and removed.
  const bool failed = state.status == v1::ENROLLMENT_STATUS_FAILED;
  const bool applies_to_failed =
      input.has_retry_requested() || input.has_remove_requested() || input.has_merge_data_updated();
  if (!state.IsActive() && !(failed && applies_to_failed)) return d;
  const Emitter em(input.event_id(),
                   input.correlation_id().empty() ? state.correlation_id : input.correlation_id(),
                   state.company_id, now);
  const auto has_cause = [&](v1::PauseCause c) { return state.pause_causes.count(c) > 0; };

  switch (input.payload_case()) {
    case v1::Envelope::kRemoveRequested: {
      const v1::RemoveRequested& r = input.remove_requested();
      if (r.target().item_key().empty() || r.target().sequence_id().empty()) {
        return InvalidField("target", "item_key and sequence_id are required");
      }
      if (!Matches(state, r.target().item_key(), r.target().sequence_id())) return d;
      AddRemoved(state, em, v1::REMOVAL_REASON_REQUESTED, r.requested_by(), now, &d);
      break;
    }
    case v1::Envelope::kPauseRequested:
    case v1::Envelope::kResumeRequested: {
      const bool pause = input.has_pause_requested();
      const v1::EnrollmentTarget& t =
          pause ? input.pause_requested().target() : input.resume_requested().target();
      const std::string& by =
          pause ? input.pause_requested().requested_by() : input.resume_requested().requested_by();
      v1::PauseCause cause;
      if (t.has_item_in_sequence()) {
        if (!Matches(state, t.item_in_sequence().item_key(), t.item_in_sequence().sequence_id()))
          return d;
        cause = v1::PAUSE_CAUSE_ENROLLMENT;
      } else if (t.target_case() == v1::EnrollmentTarget::kOwnerId && !t.owner_id().empty()) {
        // An owner is a user of one company: another company's request never matches.
        absl::StatusOr<ItemKey> item = ParseItemKey(state.item_key);
        if (state.owner_id != t.owner_id() || !item.ok() || item->company_id != input.company_id())
          return d;
        cause = v1::PAUSE_CAUSE_OWNER;
      } else {
        return InvalidField("target", "must name an item in a sequence or an owner");
      }
      if (pause && !has_cause(cause)) AddPaused(state, em, cause, by, now, &d);
      if (!pause && has_cause(cause)) AddResumed(state, sequence, em, cause, by, now, &d);
      break;
    }
    case v1::Envelope::kRetryRequested: {
      const v1::RetryRequested& r = input.retry_requested();
      if (state.status != v1::ENROLLMENT_STATUS_FAILED ||
          !Matches(state, r.target().item_key(), r.target().sequence_id())) {
        return d;
      }
      if (!sequence.exists) return absl::UnavailableError("sequence state not loaded yet");
      if (sequence.deleted) return d;
      // Continue from the failed step (or whatever follows the position if it was deleted).
      std::set<std::string> passed = state.passed_step_ids;
      if (std::find(state.executed_step_ids.begin(), state.executed_step_ids.end(),
                    state.failed_step_id) == state.executed_step_ids.end()) {
        passed.erase(state.failed_step_id);  // never re-runs an executed step
      }
      const int idx = NextStepIndex(passed, sequence.steps, nullptr);
      v1::Envelope e = em.New(state.enrollment_id, "retried");
      v1::EnrollmentRetried* p = e.mutable_enrollment_retried();
      *p->mutable_ref() = Ref(state);
      p->set_requested_by(r.requested_by());
      if (idx >= 0) {
        p->set_step_id(sequence.steps[idx].id());
        // The failed step's delay has already elapsed: due now (re-aligned to the window).
        *p->mutable_due_at() =
            ToProto(StepDueAt(state.anchor, sequence.steps[idx], CalendarFor(state, sequence), now,
                              state.paused_total));
      }
      d.executor_events.push_back(std::move(e));
      if (idx < 0) AddCompleted(state, em, v1::EXIT_REASON_ALL_STEPS_DONE, now, &d);
      break;
    }
    case v1::Envelope::kActivityCompleted: {
      const v1::ActivityCompleted& a = input.activity_completed();
      if (state.waiting_task_id.empty() || a.task_id() != state.waiting_task_id) return d;
      if (!sequence.exists) return absl::UnavailableError("sequence state not loaded yet");
      absl::Time anchor = now;
      if (a.has_completed_at()) anchor = std::min(now, FromProto(a.completed_at()));
      anchor = std::max(anchor, state.anchor);
      ScheduleNextOrComplete(state, sequence, em, anchor, now, &d);
      break;
    }
    case v1::Envelope::kMergeDataUpdated: {
      const v1::MergeDataUpdated& m = input.merge_data_updated();
      if (!Matches(state, m.item_key(), m.sequence_id())) return d;
      const bool recipient_changes = m.has_recipient() && m.recipient().SerializeAsString() !=
                                                              state.recipient.SerializeAsString();
      const bool changes =
          recipient_changes ||
          std::any_of(m.merge_data().begin(), m.merge_data().end(), [&](const auto& kv) {
            auto it = state.merge_data.find(kv.first);
            return it == state.merge_data.end() || it->second != kv.second;
          });
      if (!changes) return d;  // nothing new: idempotent
      v1::Envelope e = em.New(state.enrollment_id, "merge-data");
      v1::EnrollmentMergeDataUpdated* p = e.mutable_enrollment_merge_data_updated();
      *p->mutable_ref() = Ref(state);
      *p->mutable_merge_data() = m.merge_data();
      if (recipient_changes) *p->mutable_recipient() = m.recipient();
      d.executor_events.push_back(std::move(e));
      break;
    }
    case v1::Envelope::kItemOutcome: {
      const v1::ItemOutcome& o = input.item_outcome();
      if (!Matches(state, o.item_key(), "")) return d;
      switch (o.kind()) {
        case v1::ITEM_OUTCOME_KIND_DEAL_WON:
          AddCompleted(state, em, v1::EXIT_REASON_DEAL_WON, now, &d);
          break;
        case v1::ITEM_OUTCOME_KIND_DEAL_LOST:
          AddCompleted(state, em, v1::EXIT_REASON_DEAL_LOST, now, &d);
          break;
        case v1::ITEM_OUTCOME_KIND_LEAD_CONVERTED:
          AddCompleted(state, em, v1::EXIT_REASON_LEAD_CONVERTED, now, &d);
          break;
        case v1::ITEM_OUTCOME_KIND_ITEM_DELETED:
          AddRemoved(state, em, v1::REMOVAL_REASON_ITEM_DELETED, "", now, &d);
          break;
        default:
          return InvalidField("item_outcome.kind", "must be won, lost, converted or deleted");
      }
      break;
    }
    case v1::Envelope::kEmailReplied: {
      const v1::EmailReplied& r = input.email_replied();
      if (!Matches(state, r.item_key(), r.sequence_id())) return d;
      AddCompleted(state, em, v1::EXIT_REASON_REPLIED, now, &d);
      break;
    }
    case v1::Envelope::kEmailBounced: {
      const v1::EmailBounced& b = input.email_bounced();
      if (!Matches(state, b.item_key(), b.sequence_id())) return d;
      AddFailed(state, em, v1::FAILURE_REASON_BOUNCED, state.pending_step_id, "",
                b.detail().empty() ? std::string("email bounced") : b.detail(), now, &d);
      break;
    }
    case v1::Envelope::kSequenceDeleted:
      if (input.sequence_deleted().sequence_id() != state.sequence_id) return d;
      AddRemoved(state, em, v1::REMOVAL_REASON_SEQUENCE_DELETED, "", now, &d);
      break;
    case v1::Envelope::kSequencePaused:
      if (input.sequence_paused().sequence_id() != state.sequence_id) return d;
      if (!has_cause(v1::PAUSE_CAUSE_SEQUENCE)) {
        AddPaused(state, em, v1::PAUSE_CAUSE_SEQUENCE, input.sequence_paused().paused_by(), now,
                  &d);
      }
      break;
    case v1::Envelope::kSequenceResumed:
      if (input.sequence_resumed().sequence_id() != state.sequence_id) return d;
      if (has_cause(v1::PAUSE_CAUSE_SEQUENCE)) {
        if (!sequence.exists) return absl::UnavailableError("sequence state not loaded yet");
        AddResumed(state, EvolveSequence(sequence, input), em, v1::PAUSE_CAUSE_SEQUENCE,
                   input.sequence_resumed().resumed_by(), now, &d);
      }
      break;
    case v1::Envelope::kSequenceStepsReplaced:
    case v1::Envelope::kSequenceSettingsChanged: {
      std::string id;
      GetSequenceEventKey(input, &id, nullptr);
      if (id != state.sequence_id) return d;
      if (!sequence.exists) return absl::UnavailableError("sequence state not loaded yet");
      Reschedule(state, EvolveSequence(sequence, input), em, now, &d);
      break;
    }
    default:
      break;
  }
  return d;
}

absl::StatusOr<Decision> DecideStepDue(const EnrollmentState& state, absl::Time due_at,
                                       const SequenceState& sequence, absl::Time now) {
  Decision d;
  if (state.status != v1::ENROLLMENT_STATUS_IN_PROGRESS || !state.due_at.has_value() ||
      *state.due_at != due_at || now < due_at || state.pending_step_id.empty()) {
    return d;  // stale trigger
  }
  if (!sequence.exists) return absl::UnavailableError("sequence state not loaded yet");
  const Emitter em(absl::StrCat(state.enrollment_id, "/", state.pending_step_id, "/due@",
                                absl::ToUnixMicros(due_at)),
                   state.correlation_id, state.company_id, now);
  if (sequence.deleted) {
    AddRemoved(state, em, v1::REMOVAL_REASON_SEQUENCE_DELETED, "", now, &d);
    return d;
  }
  if (sequence.paused) {
    AddPaused(state, em, v1::PAUSE_CAUSE_SEQUENCE, "", now, &d);
    return d;
  }
  std::vector<std::string> newly;
  const int idx = NextStepIndex(state.passed_step_ids, sequence.steps, &newly);
  if (idx < 0) {
    AddCompleted(state, em, v1::EXIT_REASON_ALL_STEPS_DONE, now, &d);
    return d;
  }
  const v1::Step& step = sequence.steps[idx];
  const absl::Time recomputed = StepDueAt(state.anchor, step, CalendarFor(state, sequence),
                                          state.not_before, state.paused_total);
  if (step.id() != state.pending_step_id || recomputed > now) {
    AddScheduled(state, em, step, recomputed, newly, std::nullopt, &d);
    return d;
  }
  Execute(state, sequence, idx, newly, due_at, now, em, &d);
  return d;
}

EnrollmentState EvolveEnrollment(EnrollmentState s, const v1::Envelope& event) {
  const absl::Time at = FromProto(event.occurred_at());
  if (event.has_enrollment_rejected()) {
    const v1::EnrollmentRejected& p = event.enrollment_rejected();
    if ((!s.item_key.empty() && s.item_key != p.item_key()) ||
        (!s.sequence_id.empty() && s.sequence_id != p.sequence_id())) {
      return s;
    }
    s.item_key = p.item_key();
    s.sequence_id = p.sequence_id();
    if (s.company_id.empty()) s.company_id = CompanyOf(p.item_key());
    s.request_ids.insert(p.request_id());
    return s;
  }
  if (event.has_enrollment_started()) {
    const v1::EnrollmentStarted& p = event.enrollment_started();
    if ((!s.item_key.empty() && s.item_key != p.ref().item_key()) ||
        (!s.sequence_id.empty() && s.sequence_id != p.ref().sequence_id()) ||
        s.enrollment_id == p.ref().enrollment_id()) {
      return s;  // another key, or a duplicate
    }
    EnrollmentState n;
    n.item_key = p.ref().item_key();
    n.sequence_id = p.ref().sequence_id();
    n.company_id = CompanyOf(n.item_key);
    n.enrollment_count = s.enrollment_count + 1;
    n.request_ids = std::move(s.request_ids);
    n.request_ids.insert(p.request_id());
    n.enrollment_id = p.ref().enrollment_id();
    n.status = v1::ENROLLMENT_STATUS_IN_PROGRESS;
    n.request_id = p.request_id();
    n.correlation_id = event.correlation_id();
    n.sequence_version = p.sequence_version();
    n.entity_kind = p.entity_kind();
    n.owner_id = p.owner_id();
    n.recipient = p.recipient();
    n.time_zone = p.time_zone();
    n.merge_data = MergeData(p.merge_data().begin(), p.merge_data().end());
    n.started_at = FromProto(p.started_at());
    n.anchor = n.started_at;
    n.not_before = n.started_at;
    n.pending_step_id = p.first_step_id();
    if (!p.first_step_id().empty()) n.due_at = FromProto(p.first_due_at());
    return n;
  }

  // Every other executor event names the current enrollment.
  const v1::EnrollmentRef* ref = ExecutorEventRef(event);
  if (ref == nullptr) return s;
  if (s.enrollment_id.empty() || ref->enrollment_id() != s.enrollment_id) return s;

  auto end = [&](v1::EnrollmentStatus status, absl::Time when) {
    // A pause in force until now still counts as stopped time (a retry resumes the clock).
    if (s.paused_at.has_value())
      s.paused_total += std::max(absl::ZeroDuration(), when - *s.paused_at);
    s.status = status;
    s.due_at.reset();
    s.pause_causes.clear();
    s.paused_at.reset();
    s.waiting_task_id.clear();
    s.waiting_step_id.clear();
    s.ended_at = when;
  };

  switch (event.payload_case()) {
    case v1::Envelope::kStepExecuted: {
      const v1::StepExecuted& p = event.step_executed();
      if (std::find(s.executed_step_ids.begin(), s.executed_step_ids.end(), p.step_id()) ==
          s.executed_step_ids.end()) {
        s.executed_step_ids.push_back(p.step_id());
      }
      s.passed_step_ids.insert(p.step_id());
      s.passed_step_ids.insert(p.passed_step_ids().begin(), p.passed_step_ids().end());
      if (p.email_mode() != v1::EMAIL_MODE_UNSPECIFIED) {
        s.last_email_step_id = p.step_id();
        s.last_email_variant_id = p.variant_id();
        if (!p.variant_id().empty()) s.email_variant_ids[p.step_id()] = p.variant_id();
      }
      s.anchor = FromProto(p.executed_at());
      s.not_before = s.anchor;
      s.paused_total = absl::ZeroDuration();
      s.ended_pauses.clear();
      s.pending_step_id = p.next_step_id();
      if (p.next_step_id().empty()) {
        s.due_at.reset();
      } else {
        s.due_at = FromProto(p.next_due_at());
      }
      break;
    }
    case v1::Envelope::kWaitingForActivity:
      s.waiting_task_id = event.waiting_for_activity().task_id();
      s.waiting_step_id = event.waiting_for_activity().step_id();
      s.pending_step_id.clear();
      s.due_at.reset();
      break;
    case v1::Envelope::kStepScheduled: {
      const v1::StepScheduled& p = event.step_scheduled();
      s.pending_step_id = p.step_id();
      s.due_at = FromProto(p.due_at());
      s.passed_step_ids.insert(p.passed_step_ids().begin(), p.passed_step_ids().end());
      if (p.has_anchor_at()) {
        s.anchor = FromProto(p.anchor_at());
        // A completion reported late: the pauses that ended after it stopped this delay's clock.
        const Clock clock = ClockAfter(s, s.anchor);
        s.not_before = clock.not_before;
        s.paused_total = clock.paused;
        // Completion during a pause: the resume adds the whole pause, of which only the part
        // after the anchor stopped this delay's clock.
        if (s.paused_at.has_value() && s.anchor > *s.paused_at) {
          s.paused_total -= s.anchor - *s.paused_at;
        }
      }
      s.waiting_task_id.clear();
      s.waiting_step_id.clear();
      break;
    }
    case v1::Envelope::kEnrollmentPaused: {
      const v1::EnrollmentPaused& p = event.enrollment_paused();
      if (!s.IsActive()) break;
      if (s.pause_causes.empty()) s.paused_at = FromProto(p.paused_at());
      s.pause_causes.insert(p.cause());
      s.status = v1::ENROLLMENT_STATUS_PAUSED;
      break;
    }
    case v1::Envelope::kEnrollmentResumed: {
      const v1::EnrollmentResumed& p = event.enrollment_resumed();
      if (s.pause_causes.erase(p.cause()) == 0 || !s.pause_causes.empty()) break;
      const absl::Time resumed_at = FromProto(p.resumed_at());
      const absl::Duration paused_for = FromProtoDuration(p.paused_for());
      s.paused_total += paused_for;
      s.not_before = std::max(s.not_before, resumed_at);
      if (s.paused_at.has_value()) s.ended_pauses.emplace_back(*s.paused_at, resumed_at);
      s.paused_at.reset();
      s.status = v1::ENROLLMENT_STATUS_IN_PROGRESS;
      if (!p.next_step_id().empty()) {
        s.pending_step_id = p.next_step_id();
        s.due_at = FromProto(p.next_due_at());
      } else if (s.waiting_task_id.empty()) {
        s.pending_step_id.clear();
        s.due_at.reset();
      }
      break;
    }
    case v1::Envelope::kEnrollmentCompleted:
      s.exit_reason = event.enrollment_completed().exit_reason();
      end(v1::ENROLLMENT_STATUS_COMPLETED, FromProto(event.enrollment_completed().completed_at()));
      s.pending_step_id.clear();
      break;
    case v1::Envelope::kEnrollmentFailed: {
      const v1::EnrollmentFailed& p = event.enrollment_failed();
      s.failure_reason = p.reason();
      s.failed_step_id = p.step_id();
      s.missing_merge_field = p.missing_merge_field();
      end(v1::ENROLLMENT_STATUS_FAILED, FromProto(p.failed_at()));
      break;
    }
    case v1::Envelope::kEnrollmentRetried: {
      const v1::EnrollmentRetried& p = event.enrollment_retried();
      if (s.status != v1::ENROLLMENT_STATUS_FAILED) break;
      s.status = v1::ENROLLMENT_STATUS_IN_PROGRESS;
      s.failure_reason = v1::FAILURE_REASON_UNSPECIFIED;
      s.missing_merge_field.clear();
      s.failed_step_id.clear();
      s.pending_step_id = p.step_id();
      if (p.step_id().empty()) {
        s.due_at.reset();
      } else {
        s.due_at = FromProto(p.due_at());
      }
      s.not_before = at;  // the anchor stays: the failed step's delay has elapsed already
      break;
    }
    case v1::Envelope::kEnrollmentRemoved:
      s.removal_reason = event.enrollment_removed().reason();
      end(v1::ENROLLMENT_STATUS_REMOVED, FromProto(event.enrollment_removed().removed_at()));
      s.pending_step_id.clear();
      break;
    case v1::Envelope::kEmailDeferred: {
      const v1::EmailDeferred& p = event.email_deferred();
      s.deferred_email_id = p.email_id();
      s.deferred_step_id = p.step_id();
      s.deferred_until = FromProto(p.deferred_until());
      s.deferred_reason = p.reason();
      s.deferred_detail = p.detail();
      s.waiting_emails[p.email_id()] = p;
      break;
    }
    case v1::Envelope::kEmailReleased:
    case v1::Envelope::kEmailCancelled: {
      const std::string& email_id = event.has_email_released() ? event.email_released().email_id()
                                                               : event.email_cancelled().email_id();
      s.waiting_emails.erase(email_id);
      if (email_id == s.deferred_email_id) {
        s.deferred_email_id.clear();
        s.deferred_step_id.clear();
        s.deferred_until = absl::UnixEpoch();
        s.deferred_reason.clear();
        s.deferred_detail.clear();
      }
      break;
    }
    case v1::Envelope::kEnrollmentMergeDataUpdated:
      for (const auto& [k, v] : event.enrollment_merge_data_updated().merge_data()) {
        s.merge_data[k] = v;
      }
      if (event.enrollment_merge_data_updated().has_recipient()) {
        s.recipient = event.enrollment_merge_data_updated().recipient();
      }
      break;
    default:
      break;
  }
  return s;
}

std::optional<absl::Time> NextDueAt(const EnrollmentState& state) {
  if (state.status != v1::ENROLLMENT_STATUS_IN_PROGRESS || state.pending_step_id.empty() ||
      !state.waiting_task_id.empty()) {
    return std::nullopt;
  }
  return state.due_at;
}

v1::EditImpact PreviewEdit(const EnrollmentState& state, const SequenceState& sequence,
                           absl::Span<const v1::Step> new_steps, absl::Time now) {
  v1::EditImpact impact;
  impact.set_enrollment_id(state.enrollment_id);
  if (!state.IsActive()) return impact;
  impact.set_pending_step_id_before(state.pending_step_id);
  if (state.due_at.has_value()) *impact.mutable_due_at_before() = ToProto(*state.due_at);

  std::set<std::string> new_ids;
  for (const v1::Step& s : new_steps) new_ids.insert(s.id());
  for (const v1::Step& s : sequence.steps) {
    if (new_ids.count(s.id()) == 0 && state.passed_step_ids.count(s.id()) == 0) {
      impact.add_skipped_step_ids(s.id());
    }
  }
  std::vector<std::string> newly;
  const int idx = NextStepIndex(state.passed_step_ids, new_steps, &newly);
  for (const std::string& id : newly) impact.add_not_run_step_ids(id);
  if (idx < 0) {
    impact.set_completes(true);
    return impact;
  }
  const Calendar cal = CalendarFor(state, sequence);
  absl::Time anchor = state.anchor;
  absl::Time not_before = state.not_before;
  absl::Duration paused = state.paused_total;
  // An edit never ends a wait for an activity (the executor does not reschedule a waiting
  // enrollment): it still has no pending step afterwards. Its upcoming steps assume the activity
  // is completed now.
  const bool waiting = !state.waiting_task_id.empty();
  if (waiting) {
    anchor = not_before = now;
    paused = absl::ZeroDuration();
  } else if (state.paused_at.has_value()) {
    paused += std::max(absl::ZeroDuration(), now - *state.paused_at);  // assumes resume now
    not_before = now;
  }
  for (size_t i = static_cast<size_t>(idx); i < new_steps.size(); ++i) {
    const absl::Time due = StepDueAt(anchor, new_steps[i], cal, not_before, paused);
    *impact.add_upcoming() = ScheduledAt(new_steps[i], static_cast<int>(i), due, cal.tz);
    if (i == static_cast<size_t>(idx) && !waiting) {
      impact.set_pending_step_id_after(new_steps[i].id());
      *impact.mutable_due_at_after() = ToProto(due);
    }
    anchor = not_before = due;
    paused = absl::ZeroDuration();
  }
  return impact;
}

}  // namespace sequences::domain
