// Envelope and event decoding: bytes -> sequences.v1.Envelope (what the executor and the read model
// consume from every topic), then what they run on it: routing, event keys, the folds, and the
// enrollment decider against a new, a live and the folded state; for enrollment inputs, the
// publisher contract check (CheckEnrollmentInputContract) first.
//
// Properties: nothing crashes; refusals are bounded errors; every event or side effect decided
// from an input is decodable again, names a company and has an id.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "libs/domain/contract.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/envelope.h"
#include "libs/domain/routing.h"
#include "libs/domain/sequence.h"
#include "sequences/v1/events.pb.h"
#include "tests/fuzz/checks.h"

namespace sequences::fuzz {
namespace {

void CheckDecision(const absl::StatusOr<domain::Decision>& d) {
  CheckBoundedError(d.status(), BadRequest::kOptional);
  if (!d.ok()) return;
  for (const auto* list : {&d->executor_events, &d->task_events, &d->email_events}) {
    for (const v1::Envelope& e : *list) {
      CheckDecodable(e);
      FUZZ_CHECK(!e.event_id().empty(), "a decided event without an id");
      FUZZ_CHECK(!e.company_id().empty(), "a decided event without a company");
    }
  }
}

// Whether the executor would decide `input` for `state` (enrollment.h, "Routing"): a state of a
// key the route addresses, or a new key for an enroll request.
bool Addresses(const domain::InputRoute& route, const domain::EnrollmentState& state) {
  using Scope = domain::InputRoute::Scope;
  if (state.item_key.empty()) return route.scope == Scope::kItemInSequence;
  switch (route.scope) {
    case Scope::kNone:
      return false;
    case Scope::kItemInSequence:
      return route.item_key == state.item_key && route.sequence_id == state.sequence_id;
    case Scope::kItem:
      return route.item_key == state.item_key;
    case Scope::kSequence:
      return route.sequence_id == state.sequence_id;
    case Scope::kOwner:
      return route.owner_id == state.owner_id;
  }
  return false;
}

// The executor's path for one input on one enrollment state: decide, fold, fire what is due.
void DecideAndFold(const domain::EnrollmentState& state, const v1::Envelope& input,
                   const domain::SequenceState& sequence) {
  if (!Addresses(domain::RouteInput(input), state)) return;
  absl::StatusOr<domain::Decision> d = domain::DecideEnrollment(state, input, sequence, Now());
  CheckDecision(d);
  if (!d.ok()) return;
  domain::EnrollmentState next = state;
  for (const v1::Envelope& e : d->executor_events) {
    next = domain::EvolveEnrollment(std::move(next), e);
  }
  if (const std::optional<absl::Time> due = domain::NextDueAt(next); due.has_value()) {
    CheckDecision(domain::DecideStepDue(next, *due, sequence, std::max(*due, Now())));
  }
}

}  // namespace
}  // namespace sequences::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sequences;  // NOLINT: a fuzzer's entry point
  using namespace sequences::fuzz;
  v1::Envelope e;
  if (!e.ParseFromArray(data, static_cast<int>(size))) return 0;

  (void)domain::PayloadName(e);
  (void)domain::FromProto(e.occurred_at());
  const domain::InputRoute route = domain::RouteInput(e);
  if (route.scope == domain::InputRoute::Scope::kItem ||
      route.scope == domain::InputRoute::Scope::kItemInSequence) {
    (void)domain::ParseItemKey(route.item_key);
  }
  // The executor's gate for enrollment-events records: keyed by the item key as the contract
  // asks, and by another key (the correlation id stands in for whatever a publisher sent). A
  // refusal becomes a dead-letter reason header, so it must stay short whatever the record holds.
  if (e.payload_case() != v1::Envelope::kPing) {
    const absl::Status keyed = domain::CheckEnrollmentInputContract(e, route.item_key);
    CheckBoundedError(keyed, BadRequest::kOptional);
    CheckBoundedError(domain::CheckEnrollmentInputContract(e, e.correlation_id()),
                      BadRequest::kOptional);
    FUZZ_CHECK(
        !keyed.ok() || (!e.event_id().empty() && !e.company_id().empty() && e.has_occurred_at()),
        "an envelope without event_id, company_id or occurred_at passes the contract");
  }
  (void)domain::RequiredSequenceVersion(e);
  (void)domain::ExecutorEventRef(e);
  if (std::optional<std::string> key = domain::ExecutorEventKey(e); key.has_value()) {
    FUZZ_CHECK(key->find('#') != std::string::npos, "an executor event key without '#'");
  }
  std::string sequence_id;
  int64_t version = 0;
  (void)domain::GetSequenceEventKey(e, &sequence_id, &version);

  // The read model and the executor fold every record, from nothing and onto live state.
  const domain::SequenceState folded = domain::EvolveSequence(domain::SequenceState{}, e);
  const domain::SequenceState live = domain::EvolveSequence(LiveSequence(), e);
  (void)domain::SequenceReadyFor(live, e);
  const domain::EnrollmentState started = domain::EvolveEnrollment(domain::EnrollmentState{}, e);
  (void)domain::NextDueAt(started);
  const domain::EnrollmentState active = domain::EvolveEnrollment(ActiveEnrollment(), e);
  (void)domain::NextDueAt(active);
  (void)started.IsActive();

  // Decide it as an input.
  DecideAndFold(domain::EnrollmentState{}, e, domain::SequenceState{});
  DecideAndFold(domain::EnrollmentState{}, e, folded);
  DecideAndFold(domain::EnrollmentState{}, e, live);
  DecideAndFold(ActiveEnrollment(), e, live);
  DecideAndFold(active, e, live);
  DecideAndFold(started, e, folded);
  return 0;
}
