#include "services/step-executor/processor.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/domain/contract.h"
#include "libs/domain/email_templates.h"
#include "libs/domain/envelope.h"
#include "libs/domain/history.h"
#include "libs/domain/routing.h"
#include "libs/domain/updates.h"

namespace sequences::executor {
namespace {

const domain::SequenceState& NoSequence() {
  static const domain::SequenceState* none = new domain::SequenceState();
  return *none;
}

// The item key of an enrollment key "<item_key>#<sequence_id>".
std::string ItemOf(absl::string_view enrollment_key) {
  size_t hash = enrollment_key.rfind('#');
  return std::string(hash == absl::string_view::npos ? enrollment_key
                                                     : enrollment_key.substr(0, hash));
}

// The sender stage's notice to the person stage a request came through (docs/min-gap.md): the
// email was sent at `at` (SENT) or dropped (CANCELLED).
v1::Envelope PersonNotice(const v1::SendRequested& r, v1::SendOutcome::Kind kind, absl::Time at,
                          const std::string& cause) {
  const std::string& id = r.email().idempotency_key();
  v1::Envelope o = domain::MakeEnvelope(
      absl::StrCat(id, kind == v1::SendOutcome::KIND_SENT ? "/sent" : "/cancelled", "/person"),
      domain::CompanyOfStageKey(r.person_key()), at, cause, "");
  v1::SendOutcome* p = o.mutable_send_outcome();
  *p->mutable_ref() = r.ref();
  p->set_step_id(r.email().step_id());
  p->set_email_id(id);
  p->set_kind(kind);
  *p->mutable_at() = domain::ToProto(at);
  p->set_sender_user_id(r.email().sender_user_id());
  p->set_person_key(r.person_key());
  p->set_to_person_stage(true);
  return o;
}

// A stage's queue (by EmailSend.idempotency_key) as the domain's rules see it.
std::vector<domain::QueuedSend> QueuedSends(
    const std::map<std::string, const v1::SendRequested*>& queue,
    const std::function<domain::Calendar(const v1::SendRequested&)>& calendar) {
  std::vector<domain::QueuedSend> sends;
  for (const auto& [id, r] : queue) {
    sends.push_back({id, r->email().sequence_id(), domain::FromProto(r->due_at()), calendar(*r)});
  }
  return sends;
}

// A future instant in whole microseconds, rounded up (the due index and the stale check are in
// microseconds); never `now` or before, or the timer would fire at once, forever.
std::optional<absl::Time> StoredNext(std::optional<absl::Time> next, absl::Time now) {
  if (next.has_value() && *next <= now) next = now + absl::Seconds(1);
  if (next.has_value()) {
    next = absl::FromUnixMicros(absl::ToUnixMicros(*next - absl::Nanoseconds(1)) + 1);
  }
  return next;
}

}  // namespace

absl::Status Processor::LoadSequences() {
  sequences_.clear();
  companies_.clear();
  company_events_.clear();
  absl::Status status =
      store_.raw().Scan(kSequencesCf, "", "", [&](absl::string_view k, absl::string_view v) {
        if (absl::StartsWith(k, "company:")) {  // a company's sending settings
          std::vector<std::string>& events = company_events_[std::string(k)];
          if (!DecodeEventList(v, &events)) return true;
          for (const std::string& b : events) {
            v1::Envelope e;
            if (!e.ParseFromString(b)) continue;
            if (std::optional<std::string> company = domain::CompanySettingsEventCompany(e)) {
              companies_[*company] = domain::EvolveCompanySending(companies_[*company], e);
            }
          }
          return true;
        }
        SequenceEntry entry;
        if (!DecodeEventList(v, &entry.events)) return true;
        for (const std::string& b : entry.events) {
          v1::Envelope e;
          if (e.ParseFromString(b)) entry.state = domain::EvolveSequence(std::move(entry.state), e);
        }
        sequences_.emplace(std::string(k), std::move(entry));
        return true;
      });
  return status;
}

const domain::SequenceState& Processor::Sequence(const std::string& id) const {
  auto it = sequences_.find(id);
  return it == sequences_.end() ? NoSequence() : it->second.state;
}

kafka::Record Processor::DeadLetter(const kafka::Message& m, absl::string_view reason) const {
  kafka::Record r;
  r.topic = topics_.dead_letter;
  r.key = m.key;
  r.value = m.value;
  r.headers = {{kHeaderReason, std::string(reason)},
               {kHeaderTopic, m.topic},
               {kHeaderPartition, absl::StrCat(m.partition)},
               {kHeaderOffset, absl::StrCat(m.offset)}};
  return r;
}

void Processor::Emit(const domain::Decision& decision, int32_t partition, Overlay& overlay,
                     BatchOutput& out) {
  for (const v1::Envelope& e : decision.executor_events) {
    std::string bytes = SerializeDeterministic(e);
    std::optional<std::string> key = EnrollmentKeyOfEvent(e);
    kafka::Record r;
    r.topic = topics_.executor_events;
    r.key = key.has_value() ? ItemOf(*key) : std::string();
    r.value = bytes;
    r.partition = partition;
    out.records.push_back(std::move(r));
    out.executor_partitions.insert(partition);
    if (!key.has_value()) continue;  // not an executor event: nothing to fold
    // Only fails on a store read error of this key, which Get already surfaced.
    auto after = overlay.ApplyToKey(*key, e, std::move(bytes), partition);
    if (!after.ok()) continue;
    // A status change also goes to the public enrollment-updates topic, in the same transaction.
    if (std::optional<v1::EnrollmentUpdate> u = domain::EnrollmentUpdateFor(e, (*after)->state)) {
      out.records.push_back({topics_.enrollment_updates, *key, SerializeDeterministic(*u), {}, -1});
    }
  }
  for (const v1::Envelope& e : decision.task_events) {
    out.records.push_back(
        {topics_.task_events, e.task_created().item_key(), SerializeDeterministic(e), {}, -1});
  }
  for (const v1::Envelope& e : decision.email_events) {
    const v1::EmailSend& email = e.email_send();
    if (email.mode() != v1::EMAIL_MODE_AUTOMATIC) {
      out.records.push_back(
          {topics_.email_events, email.item_key(), SerializeDeterministic(e), {}, -1});
      continue;
    }
    // An automatic email counts against its sender's limit: it goes to the sender stage, on the
    // partition of the sender key, which emits it when the limit allows (docs/send-limits.md).
    v1::Envelope req =
        domain::MakeEnvelope(absl::StrCat(email.idempotency_key(), "/send"), e.company_id(),
                             domain::FromProto(e.occurred_at()), e.event_id(), e.correlation_id());
    v1::SendRequested* r = req.mutable_send_requested();
    *r->mutable_email() = email;
    r->set_correlation_id(e.correlation_id());
    *r->mutable_due_at() = email.scheduled_at();
    const std::string key = domain::EnrollmentKey(email.item_key(), email.sequence_id());
    if (auto entry = overlay.Get(key); entry.ok()) r->set_time_zone((*entry)->state.time_zone);
    r->mutable_ref()->set_enrollment_id(email.enrollment_id());
    r->mutable_ref()->set_item_key(email.item_key());
    r->mutable_ref()->set_sequence_id(email.sequence_id());
    // With a minimum gap between emails to one person, it passes the person's stage first
    // (docs/min-gap.md); without one the path is exactly as before.
    const std::string address = domain::NormalizeAddress(email.recipient().email());
    if (domain::MinGapOf(SettingsFor(e.company_id())) > absl::ZeroDuration() && !address.empty()) {
      r->set_person_key(domain::PersonKey(e.company_id(), address));
    }
    const std::string stage_key = r->person_key().empty()
                                      ? domain::SenderKey(e.company_id(), email.sender_user_id())
                                      : r->person_key();
    ToStage(stage_key, std::move(req), out);
  }
  // The enrollment ended with an email in its sender's queue: tell the sender stage to drop it.
  // (To its person stage when it waits there, docs/min-gap.md.)
  for (const v1::Envelope& e : decision.sender_inputs) {
    const v1::SendCancelled& c = e.send_cancelled();
    out.records.push_back({topics_.enrollment_events,
                           c.person_key().empty()
                               ? domain::SenderKey(e.company_id(), c.sender_user_id())
                               : c.person_key(),
                           SerializeDeterministic(e),
                           {},
                           -1});
  }
}

const v1::CompanySendingSettings& Processor::SettingsFor(const std::string& company_id) const {
  static const v1::CompanySendingSettings* none = new v1::CompanySendingSettings();
  auto it = companies_.find(company_id);
  return it == companies_.end() ? *none : it->second.settings;
}

int64_t Processor::SettingsVersionOf(const std::string& company_id) const {
  auto it = companies_.find(company_id);
  return it == companies_.end() ? 0 : it->second.version;
}

domain::Calendar Processor::CalendarOf(const v1::SendRequested& r) const {
  return domain::MakeCalendar(Sequence(r.email().sequence_id()).settings,
                              domain::LoadZoneOrUtc(r.time_zone()));
}

domain::SendLimits Processor::LimitsFor(const std::string& company_id) const {
  auto it = companies_.find(company_id);
  return domain::LimitsOf(it == companies_.end() ? v1::CompanySendingSettings()
                                                 : it->second.settings);
}

void Processor::ToStage(const std::string& key, v1::Envelope e, BatchOutput& out) {
  const std::optional<int32_t> local = local_stage_ ? local_stage_(key) : std::optional<int32_t>();
  if (local.has_value()) {
    // Decided in this batch (FlushSenders), in the transaction that would write the record: its
    // ledger entry keeps the request (or the notice it settles), so the record is not written at
    // all (docs/send-limits.md, "Deciding in the writer's batch").
    Arrival a;
    if (e.has_send_outcome()) {
      a.notice = std::move(*e.mutable_send_outcome());
    } else {
      a.request = std::move(*e.mutable_send_requested());
    }
    a.cause_id = e.event_id();
    a.partition = *local;
    arrivals_[key].push_back(std::move(a));
    return;
  }
  out.records.push_back({topics_.enrollment_events, key, SerializeDeterministic(e), {}, -1});
}

absl::Status Processor::FlushSenders(absl::Time now, Overlay& overlay, BatchOutput& out) {
  // Each round decides what the previous one wrote to owned stages: a step's request to its person
  // stage, the forward to the sender stage, the notice back to the person stage, which forwards
  // nothing more now (the gap starts at the send; a dropped email's notice lets one more through).
  // The chain is short; the bound only guards against a loop.
  constexpr int kMaxRounds = 64;
  for (int round = 0; !arrivals_.empty(); ++round) {
    if (round == kMaxRounds) {
      return absl::InternalError("send stages: decisions in one batch do not settle");
    }
    std::map<std::string, std::vector<Arrival>> arrivals;
    arrivals.swap(arrivals_);
    for (const auto& [key, list] : arrivals) {
      absl::Status s = domain::IsPersonKey(key)
                           ? DecidePerson(key, list, list.front().cause_id, list.front().partition,
                                          now, overlay, out)
                           : DecideSender(key, list, list.front().cause_id, list.front().partition,
                                          now, overlay, out);
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status Processor::FireStage(const DueEntry& d, absl::Time now, Overlay& overlay,
                                  BatchOutput& out) {
  auto stage = overlay.GetSender(d.enrollment_key);
  if (!stage.ok()) return stage.status();
  const std::optional<absl::Time>& next = (*stage)->state.next_release;
  if (!next.has_value() || absl::ToUnixMicros(*next) != absl::ToUnixMicros(d.due)) {
    return absl::OkStatus();  // stale: the batch already changed this sender or person
  }
  const int64_t due = absl::ToUnixMicros(d.due);
  return domain::IsPersonKey(d.enrollment_key)
             ? DecidePerson(d.enrollment_key, {}, absl::StrCat(d.enrollment_key, "/look@", due),
                            d.partition, now, overlay, out)
             : DecideSender(d.enrollment_key, {}, absl::StrCat(d.enrollment_key, "/release@", due),
                            d.partition, now, overlay, out);
}

Processor::SenderPlan Processor::PlanSender(const domain::SenderState& state,
                                            std::vector<domain::SendRun> runs,
                                            const domain::SendLimits& limits, absl::Time now) {
  SenderPlan out;
  out.plan =
      domain::PlanReleasesInRuns(state.sent, std::move(runs), state.last_sequence_id, limits, now);
  out.next = StoredNext(out.plan.next_release, now);
  return out;
}

absl::Status Processor::DecideSender(const std::string& sender_key,
                                     const std::vector<Arrival>& arrivals,
                                     const std::string& cause_id, int32_t partition, absl::Time now,
                                     Overlay& overlay, BatchOutput& out) {
  auto sender = overlay.GetSender(sender_key);
  if (!sender.ok()) return sender.status();
  Overlay::SenderEntry& stage = **sender;
  // The queue stays in the store (Overlay::SenderRuns reads what the plan needs): only the ids
  // the arrivals name are looked up (to tell a request queued already, or one to cancel).
  std::vector<std::string> named;
  for (const Arrival& a : arrivals) {
    if (a.notice.has_value()) continue;
    named.push_back(a.cancel.has_value() ? a.cancel->email_id()
                                         : a.request.email().idempotency_key());
  }
  if (absl::Status s = overlay.LoadQueued(sender_key, stage, named); !s.ok()) return s;
  const domain::SenderState& state = stage.state;
  // The new requests (one queued already, or twice in the batch, was written twice: once).
  std::map<std::string, const v1::SendRequested*> arrived;
  for (const Arrival& a : arrivals) {
    if (a.cancel.has_value() || a.notice.has_value()) continue;
    const std::string& id = a.request.email().idempotency_key();
    if (state.queue.count(id) > 0 || arrived.count(id) > 0) continue;
    arrived[id] = &a.request;
  }
  // Cancelled requests still queued leave unsent (one already released: nothing to do). Also
  // one that arrived in this batch: a person stage forwards a request and, later, its cancel to
  // the same partition (docs/min-gap.md), and one batch may hold both.
  std::map<std::string, const v1::SendRequested*> cancelled_requests;
  std::set<std::string> cancelled;
  for (const Arrival& a : arrivals) {
    if (!a.cancel.has_value()) continue;
    const std::string& id = a.cancel->email_id();
    if (cancelled.count(id) > 0) continue;
    if (auto q = state.queue.find(id); q != state.queue.end()) {
      cancelled.insert(id);
      cancelled_requests[id] = &q->second;
    } else if (auto r = arrived.find(id); r != arrived.end()) {
      cancelled.insert(id);
      cancelled_requests[id] = r->second;
    }
  }
  if (!arrivals.empty() && arrived.empty() && cancelled.empty()) return absl::OkStatus();
  auto calendar = [&](const v1::SendRequested& r) { return CalendarOf(r); };
  const std::string company = domain::CompanyOfStageKey(sender_key);
  const std::string user = sender_key.substr(sender_key.find("/sender/") + 8);
  auto plan_now = [&]() -> absl::StatusOr<SenderPlan> {
    absl::Status read;
    SenderPlan p =
        PlanSender(state,
                   overlay.SenderRuns(
                       sender_key, stage, arrived, cancelled,
                       [&](const std::string& sequence_id, const std::string& time_zone) {
                         return domain::MakeCalendar(Sequence(sequence_id).settings,
                                                     domain::LoadZoneOrUtc(time_zone));
                       },
                       &read),
                   LimitsFor(company), now);
    if (!read.ok()) return read;
    // The released requests that waited in the store (the others arrived now).
    if (absl::Status s = overlay.LoadQueued(sender_key, stage, p.plan.released); !s.ok()) return s;
    return p;
  };
  auto request = [&](const std::string& id) -> const v1::SendRequested& {
    auto a = arrived.find(id);
    return a != arrived.end() ? *a->second : state.queue.at(id);
  };
  absl::StatusOr<SenderPlan> decided = plan_now();
  if (!decided.ok()) return decided.status();
  // Checked again at the moment of sending (domain::WithheldAtSend): a release its sequence no
  // longer allows leaves the queue unsent, as a cancel does, and the plan is made again without
  // it (its room goes to the next email). Each round removes at least one request: it ends.
  std::map<std::string, domain::Withheld> withheld;
  for (;;) {
    bool again = false;
    for (const std::string& id : decided->plan.released) {
      const v1::SendRequested& r = request(id);
      std::optional<domain::Withheld> w =
          domain::WithheldAtSend(Sequence(r.email().sequence_id()), user);
      if (!w.has_value()) continue;
      withheld.emplace(id, *std::move(w));
      cancelled.insert(id);
      cancelled_requests[id] = &r;
      again = true;
    }
    if (!again) break;
    decided = plan_now();
    if (!decided.ok()) return decided.status();
  }
  const domain::ReleasePlan& plan = decided->plan;
  const std::optional<absl::Time>& next = decided->next;

  v1::Envelope ledger = domain::MakeEnvelope(absl::StrCat(sender_key, "/ledger/", state.seq + 1),
                                             company, now, cause_id, "");
  v1::SendLedgerEntry* entry = ledger.mutable_send_ledger_entry();
  entry->set_sender_key(sender_key);
  entry->set_seq(state.seq + 1);
  *entry->mutable_at() = domain::ToProto(now);
  entry->set_settings_version(SettingsVersionOf(company));
  for (const auto& [id, r] : arrived) *entry->add_queued() = *r;
  for (const std::string& id : plan.released) entry->add_released(id);
  for (const std::string& id : cancelled) entry->add_cancelled(id);
  if (next.has_value()) *entry->mutable_next_release_at() = domain::ToProto(*next);

  // Records first (the fold below changes `state`).
  for (const std::string& id : plan.released) {
    const v1::SendRequested& r = request(id);
    v1::Envelope email =
        domain::MakeEnvelope(id, company, now, ledger.event_id(), r.correlation_id());
    *email.mutable_email_send() = r.email();
    out.records.push_back(
        {topics_.email_events, r.email().item_key(), SerializeDeterministic(email), {}, -1});
    // Passed a person stage: tell it the send time, the next gap counts from it.
    if (r.gap_cleared()) {
      ToStage(r.person_key(), PersonNotice(r, v1::SendOutcome::KIND_SENT, now, ledger.event_id()),
              out);
    }
    // Sent as it arrived: nothing to tell (unless it waited at its person stage).
    if (arrived.count(id) > 0 && !r.waited()) continue;
    // It waited: tell its enrollment it is sent now.
    v1::Envelope o =
        domain::MakeEnvelope(absl::StrCat(id, "/sent"), company, now, ledger.event_id(), "");
    v1::SendOutcome* p = o.mutable_send_outcome();
    *p->mutable_ref() = r.ref();
    p->set_step_id(r.email().step_id());
    p->set_email_id(id);
    p->set_kind(v1::SendOutcome::KIND_SENT);
    *p->mutable_at() = domain::ToProto(now);
    out.records.push_back(
        {topics_.enrollment_events, r.ref().item_key(), SerializeDeterministic(o), {}, -1});
    ++out.emails_released;
  }
  for (const std::string& id : cancelled) {
    const v1::SendRequested& r = *cancelled_requests.at(id);
    v1::Envelope o =
        domain::MakeEnvelope(absl::StrCat(id, "/cancelled"), company, now, ledger.event_id(), "");
    v1::SendOutcome* p = o.mutable_send_outcome();
    *p->mutable_ref() = r.ref();
    p->set_step_id(r.email().step_id());
    p->set_email_id(id);
    p->set_kind(v1::SendOutcome::KIND_CANCELLED);
    *p->mutable_at() = domain::ToProto(now);
    p->set_sender_user_id(user);
    if (auto w = withheld.find(id); w != withheld.end()) {
      p->set_reason(w->second.reason);
      p->set_detail(w->second.detail);
    }
    out.records.push_back(
        {topics_.enrollment_events, r.ref().item_key(), SerializeDeterministic(o), {}, -1});
    // Passed a person stage: it may forward the next one.
    if (r.gap_cleared()) {
      ToStage(r.person_key(),
              PersonNotice(r, v1::SendOutcome::KIND_CANCELLED, now, ledger.event_id()), out);
    }
  }
  const std::set<std::string> released(plan.released.begin(), plan.released.end());
  for (const auto& [id, r] : arrived) {
    if (released.count(id) > 0 || cancelled.count(id) > 0) continue;
    const absl::Time due = domain::FromProto(r->due_at());
    const absl::Time until = domain::AlignToWindow(std::max(next.value_or(now), due), calendar(*r));
    v1::Envelope o =
        domain::MakeEnvelope(absl::StrCat(id, "/deferred"), company, now, ledger.event_id(), "");
    v1::SendOutcome* p = o.mutable_send_outcome();
    *p->mutable_ref() = r->ref();
    p->set_step_id(r->email().step_id());
    p->set_email_id(id);
    p->set_kind(v1::SendOutcome::KIND_DEFERRED);
    *p->mutable_at() = domain::ToProto(until);
    p->set_sender_user_id(user);
    p->set_reason(plan.limit_reached.empty() ? "send_window" : domain::kDeferredSendLimit);
    p->set_detail(
        absl::StrCat("sender ", user, ": ",
                     plan.limit_reached.empty() ? "outside the send window" : plan.limit_reached));
    out.records.push_back(
        {topics_.enrollment_events, r->ref().item_key(), SerializeDeterministic(o), {}, -1});
    ++out.emails_deferred;
  }
  out.records.push_back(
      {topics_.executor_events, sender_key, SerializeDeterministic(ledger), {}, partition});
  out.executor_partitions.insert(partition);
  return overlay.ApplyLedger(*entry, partition);
}

// ---- the person stage (docs/min-gap.md) ----

Processor::PersonPlan Processor::PlanPerson(
    const std::optional<absl::Time>& last_sent, bool in_flight,
    const std::map<std::string, const v1::SendRequested*>& queue,
    const std::function<domain::Calendar(const v1::SendRequested&)>& calendar, absl::Duration gap,
    absl::Time now) {
  const std::vector<domain::QueuedSend> sends = QueuedSends(queue, calendar);
  PersonPlan out;
  out.plan = domain::PlanTouch(last_sent, in_flight, sends, gap, now);
  out.next = StoredNext(out.plan.next_look, now);
  return out;
}

absl::Status Processor::DecidePerson(const std::string& person_key,
                                     const std::vector<Arrival>& arrivals,
                                     const std::string& cause_id, int32_t partition, absl::Time now,
                                     Overlay& overlay, BatchOutput& out) {
  auto person = overlay.GetSender(person_key);
  if (!person.ok()) return person.status();
  const domain::SenderState& state = (*person)->state;
  const std::string company = domain::CompanyOfStageKey(person_key);
  std::map<std::string, const v1::SendRequested*> by_id;
  for (const auto& [id, r] : state.queue) by_id[id] = &r;
  // The new requests (one queued or in flight already: once).
  std::map<std::string, const v1::SendRequested*> arrived;
  for (const Arrival& a : arrivals) {
    if (a.cancel.has_value() || a.notice.has_value()) continue;
    const std::string& id = a.request.email().idempotency_key();
    if (by_id.count(id) > 0 || id == state.in_flight) continue;
    by_id[id] = &a.request;
    arrived[id] = &a.request;
  }
  // Cancels: one waiting here leaves unsent; the one in flight is the sender stage's to drop.
  std::set<std::string> cancelled;
  std::vector<const v1::SendCancelled*> to_sender;
  // The sender stage's notice about the one in flight: it is sent (at) or dropped.
  std::string settled;
  std::optional<absl::Time> sent_at;
  for (const Arrival& a : arrivals) {
    if (a.cancel.has_value()) {
      const std::string& id = a.cancel->email_id();
      if (by_id.count(id) > 0 && cancelled.insert(id).second) continue;
      // In flight, or passed on earlier with no gap in force: the sender stage's to drop.
      if (by_id.count(id) == 0 && !(id == state.in_flight && !settled.empty())) {
        to_sender.push_back(&*a.cancel);
      }
    } else if (a.notice.has_value()) {
      if (a.notice->email_id() != state.in_flight || !settled.empty()) continue;
      settled = a.notice->email_id();
      if (a.notice->kind() == v1::SendOutcome::KIND_SENT)
        sent_at = domain::FromProto(a.notice->at());
    }
  }
  for (const v1::SendCancelled* c : to_sender) {
    v1::Envelope e = domain::MakeEnvelope(absl::StrCat(c->email_id(), "/send-cancelled/sender"),
                                          company, now, cause_id, "");
    *e.mutable_send_cancelled() = *c;
    e.mutable_send_cancelled()->clear_person_key();
    out.records.push_back({topics_.enrollment_events,
                           domain::SenderKey(company, c->sender_user_id()),
                           SerializeDeterministic(e),
                           {},
                           -1});
  }
  if (!arrivals.empty() && arrived.empty() && cancelled.empty() && settled.empty()) {
    return absl::OkStatus();
  }
  std::map<std::string, const v1::SendRequested*> queue = by_id;
  for (const std::string& id : cancelled) queue.erase(id);
  const bool in_flight = !state.in_flight.empty() && settled.empty();
  const std::optional<absl::Time> last_sent = sent_at.has_value() ? sent_at : state.last_sent;
  const absl::Duration gap = domain::MinGapOf(SettingsFor(company));
  auto calendar = [&](const v1::SendRequested& r) { return CalendarOf(r); };
  const PersonPlan decided = PlanPerson(last_sent, in_flight, queue, calendar, gap, now);
  const domain::TouchPlan& plan = decided.plan;

  v1::Envelope ledger = domain::MakeEnvelope(absl::StrCat(person_key, "/ledger/", state.seq + 1),
                                             company, now, cause_id, "");
  v1::SendLedgerEntry* entry = ledger.mutable_send_ledger_entry();
  entry->set_sender_key(person_key);
  entry->set_seq(state.seq + 1);
  *entry->mutable_at() = domain::ToProto(now);
  entry->set_settings_version(SettingsVersionOf(company));
  for (const auto& [id, r] : arrived) *entry->add_queued() = *r;
  for (const std::string& id : cancelled) entry->add_cancelled(id);
  if (!settled.empty()) {
    entry->set_settled(settled);
    if (sent_at.has_value()) *entry->mutable_last_sent_at() = domain::ToProto(*sent_at);
  }
  if (plan.forward.has_value()) entry->set_forwarded(*plan.forward);
  for (const std::string& id : plan.passed) entry->add_passed(id);
  if (decided.next.has_value()) *entry->mutable_next_release_at() = domain::ToProto(*decided.next);

  // Records first (the fold below changes `state`).
  if (plan.forward.has_value()) {
    const v1::SendRequested& r = *queue.at(*plan.forward);
    v1::Envelope f = domain::MakeEnvelope(absl::StrCat(*plan.forward, "/send/gap-cleared"), company,
                                          now, ledger.event_id(), "");
    v1::SendRequested* fr = f.mutable_send_requested();
    *fr = r;
    fr->set_gap_cleared(true);
    fr->set_waited(arrived.count(*plan.forward) == 0);
    // Never due at the sender stage before the gap allows, on its own clock either.
    if (plan.allowed_from.has_value() && *plan.allowed_from > domain::FromProto(r.due_at())) {
      *fr->mutable_due_at() = domain::ToProto(*plan.allowed_from);
    }
    ToStage(domain::SenderKey(company, r.email().sender_user_id()), std::move(f), out);
  }
  // No gap in force: handed on as if they had gone straight to the sender (no notice back);
  // the enrollment is told when it is sent (it was told it waits, unless it arrived just now).
  for (const std::string& id : plan.passed) {
    v1::Envelope f =
        domain::MakeEnvelope(absl::StrCat(id, "/send/passed"), company, now, ledger.event_id(), "");
    v1::SendRequested* fr = f.mutable_send_requested();
    *fr = *queue.at(id);
    fr->clear_person_key();
    fr->set_waited(arrived.count(id) == 0);
    // Decided in this batch when this instance owns the sender stage, like a forward: else a new
    // email that skips the stage (gap 0) could reach the sender first and overtake these.
    const std::string sender_key = domain::SenderKey(company, fr->email().sender_user_id());
    ToStage(sender_key, std::move(f), out);
  }
  for (const std::string& id : cancelled) {
    const v1::SendRequested& r = *by_id.at(id);
    v1::Envelope o =
        domain::MakeEnvelope(absl::StrCat(id, "/cancelled"), company, now, ledger.event_id(), "");
    v1::SendOutcome* p = o.mutable_send_outcome();
    *p->mutable_ref() = r.ref();
    p->set_step_id(r.email().step_id());
    p->set_email_id(id);
    p->set_kind(v1::SendOutcome::KIND_CANCELLED);
    *p->mutable_at() = domain::ToProto(now);
    p->set_sender_user_id(r.email().sender_user_id());
    out.records.push_back(
        {topics_.enrollment_events, r.ref().item_key(), SerializeDeterministic(o), {}, -1});
  }
  // Why the new ones wait: the gap after the last send, or one ahead of them not sent yet.
  const bool busy = gap > absl::ZeroDuration() && (in_flight || plan.forward.has_value());
  const bool gap_open = !plan.allowed_from.has_value() || *plan.allowed_from <= now;
  const std::set<std::string> passed(plan.passed.begin(), plan.passed.end());
  for (const auto& [id, r] : arrived) {
    if (plan.forward.has_value() && *plan.forward == id) continue;
    if (cancelled.count(id) > 0 || passed.count(id) > 0) continue;
    const absl::Time due = domain::FromProto(r->due_at());
    const std::string address = domain::NormalizeAddress(r->email().recipient().email());
    absl::Time earliest = std::max(due, now);
    std::string reason = domain::kDeferredMinGap;
    std::string detail;
    if (!gap_open) {
      earliest = std::max(earliest, *plan.allowed_from);
      detail = absl::StrCat("last email to ", address, " sent ", domain::HistoryTime(*last_sent),
                            ", gap ", domain::FormatGap(gap));
    } else if (busy) {
      earliest = std::max(earliest, now + gap);
      detail = absl::StrCat("an earlier email to ", address, " is not sent yet, gap ",
                            domain::FormatGap(gap));
    } else {
      reason = "send_window";
      detail = "outside the send window";
    }
    const absl::Time until = domain::AlignToWindow(earliest, calendar(*r));
    v1::Envelope o = domain::MakeEnvelope(absl::StrCat(id, "/deferred/person"), company, now,
                                          ledger.event_id(), "");
    v1::SendOutcome* p = o.mutable_send_outcome();
    *p->mutable_ref() = r->ref();
    p->set_step_id(r->email().step_id());
    p->set_email_id(id);
    p->set_kind(v1::SendOutcome::KIND_DEFERRED);
    *p->mutable_at() = domain::ToProto(until);
    p->set_sender_user_id(r->email().sender_user_id());
    p->set_person_key(person_key);
    p->set_reason(reason);
    p->set_detail(detail);
    out.records.push_back(
        {topics_.enrollment_events, r->ref().item_key(), SerializeDeterministic(o), {}, -1});
    ++out.emails_deferred;
    if (reason == domain::kDeferredMinGap) ++out.emails_deferred_min_gap;
  }
  out.records.push_back(
      {topics_.executor_events, person_key, SerializeDeterministic(ledger), {}, partition});
  out.executor_partitions.insert(partition);
  return overlay.ApplyLedger(*entry, partition);
}

absl::Status Processor::ReplanPersons(const std::string& company_id, int64_t version,
                                      const OwnedFn& owned, absl::Time now, Overlay& overlay,
                                      BatchOutput& out) {
  const std::string prefix = absl::StrCat(company_id, "/person/");
  std::set<std::string> keys;
  // Only those with emails waiting (most people have none) are loaded into the batch.
  absl::Status s =
      store_.raw().ScanPrefix(kSendersCf, prefix, [&](absl::string_view k, absl::string_view v) {
        v1::SenderSnapshot snapshot;
        if (snapshot.ParseFromArray(v.data(), static_cast<int>(v.size())) &&
            snapshot.queue_size() > 0) {
          keys.emplace(k);
        }
        return true;
      });
  if (!s.ok()) return s;
  for (const auto& [key, entry] : overlay.senders()) {
    if (absl::StartsWith(key, prefix)) keys.insert(key);
  }
  for (const std::string& key : keys) {
    auto person = overlay.GetSender(key);
    if (!person.ok()) return person.status();
    const Overlay::SenderEntry& p = **person;
    if (p.state.queue.empty() || p.partition < 0 || !owned(p.partition)) continue;
    s = DecidePerson(key, {}, absl::StrCat(key, "/gap@", version), p.partition, now, overlay, out);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<Processor::InputResult> Processor::DecideForKeys(
    const v1::Envelope& input, const std::vector<std::string>& keys,
    const std::function<bool(const Overlay::Entry&)>& want, int32_t partition_if_new, bool force,
    absl::Time now, Overlay& overlay, BatchOutput& out, absl::Status* invalid) {
  struct Decided {
    domain::Decision decision;
    int32_t partition;
  };
  std::vector<Decided> decided;
  for (const std::string& key : keys) {
    auto entry = overlay.Get(key);
    if (!entry.ok()) return entry.status();
    const Overlay::Entry& e = **entry;
    if (!want(e)) continue;
    const int32_t partition = e.record.partition >= 0 ? e.record.partition : partition_if_new;
    std::string sequence_id = e.state.sequence_id;
    if (sequence_id.empty() && input.has_enroll_requested()) {
      sequence_id = input.enroll_requested().sequence_id();
    }
    auto d = domain::DecideEnrollment(e.state, input, Sequence(sequence_id), now);
    if (!d.ok()) {
      if (d.status().code() == absl::StatusCode::kUnavailable && !force) {
        return InputResult::kDeferred;
      }
      *invalid = d.status();
      return InputResult::kDone;
    }
    decided.push_back({std::move(*d), partition});
  }
  for (const Decided& d : decided) Emit(d.decision, d.partition, overlay, out);
  return InputResult::kDone;
}

absl::Status Processor::OnSequenceRecord(const kafka::Message& m, const OwnedFn& owned,
                                         absl::Time now, Overlay& overlay, BatchOutput& out) {
  v1::Envelope e;
  std::string id;
  int64_t version = 0;
  if (!e.ParseFromString(m.value)) {
    out.records.push_back(DeadLetter(m, "undecodable: not a sequence event envelope"));
    ++out.dead_lettered;
    return absl::OkStatus();
  }
  // Email templates share the topic; steps carry copies of them, so the executor has no use for
  // them (docs/email-templates.md).
  if (domain::IsEmailTemplateEvent(e)) return absl::OkStatus();
  if (std::optional<std::string> company = domain::CompanySettingsEventCompany(e)) {
    domain::CompanySendingState& st = companies_[*company];
    const int64_t before = st.version;
    const absl::Duration gap_before = domain::MinGapOf(st.settings);
    st = domain::EvolveCompanySending(std::move(st), e);
    if (st.version != before) {
      const std::string key = domain::CompanySettingsKey(*company);
      std::vector<std::string>& events = company_events_[key];
      events.push_back(SerializeDeterministic(e));
      overlay.PutSequence(key, events);
    }
    // A shorter gap (or none): the emails waiting at this company's person stages may go sooner
    // than their stored next look, and new ones may now skip the stage; look at them now, so the
    // waiting ones are not overtaken (docs/min-gap.md).
    if (domain::MinGapOf(st.settings) < gap_before) {
      return ReplanPersons(*company, st.version, owned, now, overlay, out);
    }
    return absl::OkStatus();
  }
  if (!domain::GetSequenceEventKey(e, &id, &version)) {
    out.records.push_back(DeadLetter(m, "undecodable: not a sequence event envelope"));
    ++out.dead_lettered;
    return absl::OkStatus();
  }
  SequenceEntry& entry = sequences_[id];
  if (version <= entry.state.version) return absl::OkStatus();  // redelivered
  entry.state = domain::EvolveSequence(std::move(entry.state), e);
  entry.events.push_back(SerializeDeterministic(e));
  overlay.PutSequence(id, entry.events);

  const domain::InputRoute route = domain::RouteInput(e);
  if (route.scope != domain::InputRoute::Scope::kSequence) return absl::OkStatus();
  auto keys = store_.KeysOfSequence(id);
  if (!keys.ok()) return keys.status();
  std::set<std::string> all(keys->begin(), keys->end());
  for (const auto& [key, entry_state] : overlay.entries()) {
    if (entry_state.state.sequence_id == id) all.insert(key);
  }
  absl::Status invalid;
  auto result = DecideForKeys(
      e, std::vector<std::string>(all.begin(), all.end()),
      [&](const Overlay::Entry& en) {
        return en.record.partition >= 0 && owned(en.record.partition);
      },
      -1, /*force=*/true, now, overlay, out, &invalid);
  if (!result.ok()) return result.status();
  if (!invalid.ok()) {
    out.records.push_back(DeadLetter(m, absl::StrCat("invalid: ", invalid.ToString())));
    ++out.dead_lettered;
  }
  return absl::OkStatus();
}

absl::StatusOr<Processor::InputResult> Processor::OnInputRecord(const kafka::Message& m, bool force,
                                                                absl::Time now, Overlay& overlay,
                                                                BatchOutput& out) {
  auto dead = [&](absl::string_view reason) {
    out.records.push_back(DeadLetter(m, reason));
    ++out.dead_lettered;
    return InputResult::kDone;
  };
  v1::Envelope input;
  if (!input.ParseFromString(m.value)) return dead("undecodable: not an Envelope");
  if (input.payload_case() == v1::Envelope::kPing) return InputResult::kDone;
  // Headers, item key, record key and company: nothing that breaks the contract is decided.
  if (absl::Status c = domain::CheckEnrollmentInputContract(input, m.key); !c.ok()) {
    return dead(c.message());
  }
  const domain::InputRoute route = domain::RouteInput(input);
  using Scope = domain::InputRoute::Scope;
  std::vector<std::string> keys;
  std::function<bool(const Overlay::Entry&)> want = [](const Overlay::Entry&) { return true; };
  switch (route.scope) {
    case Scope::kItemInSequence:
    case Scope::kItem: {
      if (route.scope == Scope::kItemInSequence) {
        if (route.sequence_id.empty()) return dead("invalid: sequence_id is required");
        keys.push_back(domain::EnrollmentKey(route.item_key, route.sequence_id));
      } else {
        const std::string prefix = absl::StrCat(route.item_key, "#");
        auto stored = store_.KeysWithPrefix(prefix);
        if (!stored.ok()) return stored.status();
        std::set<std::string> all(stored->begin(), stored->end());
        for (const auto& [key, e] : overlay.entries()) {
          if (absl::StartsWith(key, prefix)) all.insert(key);
        }
        keys.assign(all.begin(), all.end());
      }
      break;
    }
    case Scope::kOwner: {
      if (route.owner_id.empty()) return dead("invalid: owner_id is required");
      // Owners are users of one company: only that company's enrollments are addressed.
      auto stored = store_.KeysOfOwner(input.company_id(), route.owner_id);
      if (!stored.ok()) return stored.status();
      std::set<std::string> all(stored->begin(), stored->end());
      const std::string company_prefix = absl::StrCat(input.company_id(), "/");
      for (const auto& [key, e] : overlay.entries()) {
        if (e.state.owner_id == route.owner_id && absl::StartsWith(key, company_prefix)) {
          all.insert(key);
        }
      }
      keys.assign(all.begin(), all.end());
      // Only this partition's enrollments: the publisher writes one record per partition.
      want = [p = m.partition](const Overlay::Entry& e) { return e.record.partition == p; };
      break;
    }
    case Scope::kSender:
      // Decided already, in the transaction that wrote it: an executor before 2026-11-30 wrote
      // the records it decided in the writer's batch, marked; its stage's ledger holds them.
      if ((input.has_send_requested() && input.send_requested().decided()) ||
          (input.has_send_outcome() && input.send_outcome().decided())) {
        return InputResult::kDone;
      }
      // Planned once per sender after the batch's inputs (FlushSenders).
      if (input.has_send_cancelled()) {
        arrivals_[route.sender_key].push_back(
            {{}, input.send_cancelled(), std::nullopt, input.event_id(), m.partition});
      } else if (input.has_send_outcome()) {  // the sender stage's notice to a person stage
        arrivals_[route.sender_key].push_back(
            {{}, std::nullopt, input.send_outcome(), input.event_id(), m.partition});
      } else {
        arrivals_[route.sender_key].push_back(
            {input.send_requested(), std::nullopt, std::nullopt, input.event_id(), m.partition});
      }
      return InputResult::kDone;
    default:
      return dead(absl::StrCat("contract: payload ", domain::PayloadName(input),
                               " addresses no enrollment"));
  }
  if (input.has_enroll_requested() && !force) {
    if (!domain::SequenceReadyFor(Sequence(input.enroll_requested().sequence_id()), input)) {
      return InputResult::kDeferred;
    }
  }
  absl::Status invalid;
  auto result = DecideForKeys(input, keys, want, m.partition, force, now, overlay, out, &invalid);
  if (!result.ok()) return result.status();
  if (*result == InputResult::kDone && !invalid.ok()) {
    return dead(absl::StrCat(
        invalid.code() == absl::StatusCode::kInvalidArgument ? "invalid: " : "undecidable: ",
        invalid.message()));
  }
  return *result;
}

absl::Status Processor::FireDue(absl::Time now, const OwnedFn& owned, int max,
                                DuePosition* scan_from, Overlay& overlay, BatchOutput& out) {
  std::vector<DueEntry> due;
  absl::Status s = store_.ScanDue(*scan_from, now, max, [&](const DueEntry& e) {
    due.push_back(e);
    return true;
  });
  if (!s.ok()) return s;
  out.due_visited += static_cast<int>(due.size());
  std::optional<DuePosition> retry_from;  // earliest entry that could not be decided yet
  for (const DueEntry& d : due) {
    if (!owned(d.partition)) continue;
    if (domain::IsSenderKey(d.enrollment_key) || domain::IsPersonKey(d.enrollment_key)) {
      if (absl::Status st = FireStage(d, now, overlay, out); !st.ok()) return st;
      continue;
    }
    auto entry = overlay.Get(d.enrollment_key);
    if (!entry.ok()) return entry.status();
    Overlay::Entry& e = **entry;
    // The index keeps microseconds; the state may hold a finer time. Same microsecond: same
    // trigger (the timer id is built from microseconds too).
    const std::optional<absl::Time> state_due = domain::NextDueAt(e.state);
    if (!state_due.has_value() || absl::ToUnixMicros(*state_due) != absl::ToUnixMicros(d.due)) {
      continue;  // stale entry: the batch already changed this enrollment
    }
    // Not decidable: the sequence is not folded yet; try again on a later batch.
    if (!FireStep(e, *state_due, now, overlay, out) && !retry_from.has_value()) {
      retry_from = DuePosition::Of(d);
    }
  }
  DuePosition next =
      static_cast<int>(due.size()) >= max ? DuePosition::After(due.back()) : DuePosition::At(now);
  if (retry_from.has_value()) next = std::min(next, *retry_from);
  *scan_from = std::max(*scan_from, next);
  return absl::OkStatus();
}

bool Processor::FireStep(Overlay::Entry& e, absl::Time due, absl::Time now, Overlay& overlay,
                         BatchOutput& out) {
  auto decision = domain::DecideStepDue(e.state, due, Sequence(e.state.sequence_id), now);
  if (!decision.ok()) return false;  // UNAVAILABLE: the sequence is not folded yet
  const char* kind = !decision->task_events.empty()    ? "task"
                     : !decision->email_events.empty() ? "email"
                                                       : "none";
  for (const v1::Envelope& ev : decision->executor_events) {
    if (ev.has_step_executed()) {
      ++out.steps_fired;
      ++out.steps_fired_by_kind[kind];
      out.lateness.push_back(now - due);
    }
  }
  Emit(*decision, e.record.partition, overlay, out);
  return true;
}

absl::Status Processor::FireStaged(absl::Time now, const OwnedFn& owned, Overlay& overlay,
                                   BatchOutput& out) {
  // The keys first: firing stages more (Emit may load other enrollments).
  std::vector<std::pair<std::string, absl::Time>> due;
  for (const auto& [key, e] : overlay.entries()) {
    if (!e.dirty || !owned(e.record.partition)) continue;
    const std::optional<absl::Time> next = domain::NextDueAt(e.state);
    // Unchanged since it was stored: the index holds it, FireDue fires it from there.
    if (!next.has_value() || next == e.stored_due || *next > now) continue;
    due.emplace_back(key, *next);
  }
  for (const auto& [key, at] : due) {
    auto entry = overlay.Get(key);
    if (!entry.ok()) return entry.status();
    // Not decidable yet: Flush writes its index entry, and FireDue retries it from there.
    FireStep(**entry, at, now, overlay, out);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<absl::Time>> Processor::NextDue(const DuePosition& from,
                                                             const OwnedFn& owned, int max) {
  std::optional<absl::Time> next;
  std::optional<absl::Time> last_visited;
  int visited = 0;
  absl::Status s = store_.ScanDue(from, absl::InfiniteFuture(), max, [&](const DueEntry& e) {
    ++visited;
    last_visited = e.due;
    if (!owned(e.partition)) return true;
    next = e.due;
    return false;
  });
  if (!s.ok()) return s;
  // `max` entries of partitions owned by others: an owned one may come right after them, so the
  // caller must look again (FireDue moves the scan position past them) by the last one's time.
  if (!next.has_value() && visited >= max) return last_visited;
  return next;
}

}  // namespace sequences::executor
