// Request validation: bytes -> an API request (the first byte picks the message), then what the API
// runs on it before anything is written: CheckRequestLimits, the domain validators, and the
// deciders that turn a valid request into events.
//
// Properties: nothing crashes; every refusal is a bounded error (checks.h); every event a request
// that passed the limits decides is decodable again.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/enrollment_preview.h"
#include "libs/domain/envelope.h"
#include "libs/domain/schedule.h"
#include "libs/domain/sequence.h"
#include "libs/domain/validation.h"
#include "sequences/v1/enrollment_service.pb.h"
#include "sequences/v1/operations_service.pb.h"
#include "sequences/v1/sequence_service.pb.h"
#include "services/sequence-api/names.h"
#include "services/sequence-api/request_limits.h"
#include "tests/fuzz/checks.h"

namespace sequences::fuzz {
namespace {

// Batch items decided per input (the limit check still sees all of them).
constexpr int kMaxItemsDecided = 8;

std::vector<v1::Step> Steps(const google::protobuf::RepeatedPtrField<v1::Step>& steps) {
  return {steps.begin(), steps.end()};
}

// The events of an accepted command are readable and fold.
domain::SequenceState FoldAccepted(domain::SequenceState state,
                                   const absl::StatusOr<std::vector<v1::Envelope>>& events) {
  CheckBoundedError(events.status());
  if (!events.ok()) return state;
  for (const v1::Envelope& e : *events) {
    CheckDecodable(e);
    state = domain::EvolveSequence(std::move(state), e);
  }
  return state;
}

v1::SequenceCommand Command(const std::string& request_id) {
  v1::SequenceCommand c;
  c.set_company_id(kCompany);
  c.set_sequence_id(api::DeriveSequenceId(kCompany, request_id));
  c.set_request_id(request_id);
  c.set_actor_user_id(kUser);
  return c;
}

void Create(const v1::CreateSequenceRequest& req) {
  const v1::Sequence& s = req.sequence();
  CheckBoundedError(domain::ValidateSequenceDefinition(s.display_name(), s.entity_kind(),
                                                       Steps(s.steps()), s.settings()));
  // As the API builds it (api.cc CreateSequence).
  v1::SequenceCommand command = Command(req.request_id());
  v1::CreateSequence* create = command.mutable_create();
  create->set_name(s.display_name());
  create->set_owner_id(s.owner_id().empty() ? kUser : s.owner_id());
  create->set_entity_kind(s.entity_kind());
  *create->mutable_steps() = s.steps();
  if (s.has_settings()) *create->mutable_settings() = s.settings();
  create->set_template_id(req.template_id());
  const absl::StatusOr<std::vector<v1::Envelope>> events =
      domain::DecideSequence(domain::SequenceState{}, command, Now());
  const domain::SequenceState state = FoldAccepted(domain::SequenceState{}, events);
  FUZZ_CHECK(!events.ok() || state.exists, "an accepted create folds into no sequence");
}

void Update(const v1::UpdateSequenceRequest& req) {
  const v1::Sequence& s = req.sequence();
  CheckBoundedError(domain::ValidateSteps(Steps(s.steps())));
  CheckBoundedError(domain::ValidateSettings(s.settings()));
  const domain::SequenceState& live = LiveSequence();
  v1::SequenceCommand replace = Command(req.request_id());
  replace.set_sequence_id(live.sequence_id);
  replace.set_expected_version(live.version);
  *replace.mutable_replace_steps()->mutable_steps() = s.steps();
  domain::SequenceState state = FoldAccepted(live, domain::DecideSequence(live, replace, Now()));
  v1::SequenceCommand change = Command(req.request_id());
  change.set_sequence_id(live.sequence_id);
  change.mutable_change_settings()->set_name(s.display_name());
  *change.mutable_change_settings()->mutable_settings() = s.settings();
  state = FoldAccepted(state, domain::DecideSequence(state, change, Now()));
  // The executor re-decides the enrollments in progress against the edited sequence.
  v1::Envelope edit = domain::MakeEnvelope("edit", kCompany, Now(), "", "");
  *edit.mutable_sequence_steps_replaced()->mutable_steps() = s.steps();
  edit.mutable_sequence_steps_replaced()->set_sequence_id(live.sequence_id);
  edit.mutable_sequence_steps_replaced()->set_version(state.version);
  absl::StatusOr<domain::Decision> d =
      domain::DecideEnrollment(ActiveEnrollment(), edit, state, Now());
  CheckBoundedError(d.status(), BadRequest::kOptional);
}

// As the API's BuildEnrollRequested; then what the executor does with it.
void EnrollItem(const v1::EnrollItem& item) {
  const domain::SequenceState& live = LiveSequence();
  const std::string entity = item.entity_kind() == v1::ENTITY_KIND_DEAL   ? "deal"
                             : item.entity_kind() == v1::ENTITY_KIND_LEAD ? "lead"
                                                                          : "";
  v1::EnrollRequested r;
  r.set_request_id(item.request_id());
  r.set_sequence_id(live.sequence_id);
  r.set_sequence_version(live.version);
  r.set_item_key(absl::StrCat(kCompany, "/", entity, "/", item.item_id()));
  r.set_entity_kind(item.entity_kind());
  r.set_owner_id(item.owner_id().empty() ? kUser : item.owner_id());
  *r.mutable_recipient() = item.recipient();
  *r.mutable_time_zones() = item.time_zones();
  *r.mutable_merge_data() = item.merge_data();
  r.set_requested_by(kUser);
  const absl::Status valid = domain::ValidateEnrollRequested(r);
  CheckBoundedError(valid);
  CheckBoundedError(domain::CheckEnroll(domain::EnrollmentState{}, r, live));
  CheckBoundedError(domain::CheckEnroll(ActiveEnrollment(), r, live));
  if (!valid.ok() || entity.empty() || !api::IsValidId(item.item_id()) ||
      !api::IsValidId(item.request_id()) ||
      (!item.owner_id().empty() && !api::IsValidUserId(item.owner_id()))) {
    return;  // the API refuses it
  }
  v1::Envelope input = domain::MakeEnvelope("api/enroll", kCompany, Now(), "", item.request_id());
  *input.mutable_enroll_requested() = r;
  CheckDecodable(input);
  absl::StatusOr<domain::Decision> d =
      domain::DecideEnrollment(domain::EnrollmentState{}, input, live, Now());
  CheckBoundedError(d.status(), BadRequest::kOptional);
  if (!d.ok()) return;
  domain::EnrollmentState state;
  for (const v1::Envelope& e : d->executor_events) {
    CheckDecodable(e);
    state = domain::EvolveEnrollment(std::move(state), e);
  }
  // Fire every step as it comes due (merge data rendered into subjects and bodies).
  for (size_t i = 0; i <= live.steps.size(); ++i) {
    const std::optional<absl::Time> due = domain::NextDueAt(state);
    if (!due.has_value()) break;
    absl::StatusOr<domain::Decision> fired =
        domain::DecideStepDue(state, *due, live, std::max(*due, Now()));
    CheckBoundedError(fired.status(), BadRequest::kOptional);
    if (!fired.ok() || fired->empty()) break;
    for (const auto* list : {&fired->executor_events, &fired->task_events, &fired->email_events}) {
      for (const v1::Envelope& e : *list) CheckDecodable(e);
    }
    for (const v1::Envelope& e : fired->executor_events) {
      state = domain::EvolveEnrollment(std::move(state), e);
    }
  }
}

void Preview(const v1::PreviewScheduleRequest& req) {
  const domain::SequenceState& live = LiveSequence();
  std::vector<v1::Step> steps = live.steps;
  if (req.has_proposed_steps()) {
    steps = Steps(req.proposed_steps());
    const absl::Status s = domain::ValidateSteps(steps);
    CheckBoundedError(s);
    if (!s.ok()) return;  // the API refuses it
  }
  if (!req.time_zone().empty() && !domain::IsValidTimeZoneName(req.time_zone())) return;
  const std::string tz = req.time_zone().empty() ? "UTC" : req.time_zone();
  const absl::Time start = req.has_start_time() ? domain::FromProto(req.start_time()) : Now();
  for (const v1::ScheduledStep& s :
       domain::PreviewSchedule(steps, live.settings, start, domain::LoadZoneOrUtc(tz))) {
    CheckDecodable(s);
  }
  if (req.has_proposed_steps()) {
    CheckDecodable(domain::PreviewEdit(ActiveEnrollment(), live, steps, Now()));
  }
}

template <typename M>
bool Parse(const uint8_t* data, size_t size, M* m) {
  return m->ParseFromArray(data, static_cast<int>(size));
}

// Every other request: only the limits (their fields are names and tokens: names_fuzzer).
template <typename M>
void LimitsOnly(const uint8_t* data, size_t size) {
  M m;
  if (Parse(data, size, &m)) CheckBoundedError(api::CheckRequestLimits(m));
}

}  // namespace
}  // namespace sequences::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sequences;  // NOLINT: a fuzzer's entry point
  using namespace sequences::fuzz;
  if (size == 0) return 0;
  const uint8_t kind = data[0];
  ++data;
  --size;
  // Numbered as in make_seeds.cc; values beyond the list wrap around.
  switch (kind % 21) {
    case 0: {
      v1::CreateSequenceRequest m;
      if (!Parse(data, size, &m)) return 0;
      CheckBoundedError(api::CheckRequestLimits(m));
      Create(m);
      break;
    }
    case 1: {
      v1::UpdateSequenceRequest m;
      if (!Parse(data, size, &m)) return 0;
      CheckBoundedError(api::CheckRequestLimits(m));
      Update(m);
      break;
    }
    case 2: {
      v1::EnrollRequest m;
      if (!Parse(data, size, &m)) return 0;
      CheckBoundedError(api::CheckRequestLimits(m));
      EnrollItem(m.item());
      break;
    }
    case 3: {
      v1::BatchEnrollRequest m;
      if (!Parse(data, size, &m)) return 0;
      CheckBoundedError(api::CheckRequestLimits(m));
      for (int i = 0; i < m.items_size() && i < kMaxItemsDecided; ++i) EnrollItem(m.items(i));
      break;
    }
    case 4: {
      v1::PreviewScheduleRequest m;
      if (!Parse(data, size, &m)) return 0;
      CheckBoundedError(api::CheckRequestLimits(m));
      Preview(m);
      break;
    }
    case 5:
      LimitsOnly<v1::EnrollmentActionRequest>(data, size);
      break;
    case 6:
      LimitsOnly<v1::ReportActivityCompletedRequest>(data, size);
      break;
    case 7:
      LimitsOnly<v1::GetEnrollmentRequest>(data, size);
      break;
    case 8:
      LimitsOnly<v1::ListEnrollmentsRequest>(data, size);
      break;
    case 9:
      LimitsOnly<v1::GetEnrollmentOverviewRequest>(data, size);
      break;
    case 10:
      LimitsOnly<v1::UserEnrollmentsRequest>(data, size);
      break;
    case 11:
      LimitsOnly<v1::GetMetricsRequest>(data, size);
      break;
    case 12:
      LimitsOnly<v1::GetSequenceRequest>(data, size);
      break;
    case 13:
      LimitsOnly<v1::ListSequencesRequest>(data, size);
      break;
    case 14:
      LimitsOnly<v1::DeleteSequenceRequest>(data, size);
      break;
    case 15:
      LimitsOnly<v1::SwitchAutomatedSendingRequest>(data, size);
      break;
    case 16:
      LimitsOnly<v1::GrantSendingConsentRequest>(data, size);
      break;
    case 17:
      LimitsOnly<v1::RevokeSendingConsentRequest>(data, size);
      break;
    case 18:
      LimitsOnly<v1::PauseSequenceRequest>(data, size);
      break;
    case 19:
      LimitsOnly<v1::ResumeSequenceRequest>(data, size);
      break;
    case 20:
      LimitsOnly<v1::ListSequenceTemplatesRequest>(data, size);
      break;
  }
  return 0;
}
