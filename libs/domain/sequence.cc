#include "libs/domain/sequence.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/domain/envelope.h"
#include "libs/domain/errors.h"
#include "libs/domain/templates.h"
#include "libs/domain/validation.h"

namespace sequences::domain {
namespace {

std::vector<v1::Step> ToVector(const google::protobuf::RepeatedPtrField<v1::Step>& steps) {
  return std::vector<v1::Step>(steps.begin(), steps.end());
}

// Builds the envelope of the sequence event with `version`.
v1::Envelope NewEvent(const SequenceState& state, const v1::SequenceCommand& command,
                      int64_t version, absl::Time now) {
  const std::string& company =
      command.company_id().empty() ? state.company_id : command.company_id();
  return MakeEnvelope(SequenceEventId(command.sequence_id(), version), company, now, "",
                      command.request_id());
}

absl::StatusOr<std::vector<v1::Envelope>> DecideCreate(const SequenceState& state,
                                                       const v1::SequenceCommand& command,
                                                       absl::Time now) {
  if (state.exists) {
    return absl::AlreadyExistsError(
        absl::StrCat("sequence ", command.sequence_id(), " already exists"));
  }
  const v1::CreateSequence& create = command.create();
  FieldViolations header;
  if (command.company_id().empty()) header.Add("company_id", "is required");
  if (create.owner_id().empty()) header.Add("create.owner_id", "is required");

  std::string name = create.name();
  v1::EntityKind kind = create.entity_kind();
  std::vector<v1::Step> steps = ToVector(create.steps());
  v1::SequenceSettings settings = create.settings();
  if (!create.template_id().empty()) {
    const v1::SequenceTemplate* t = FindTemplate(create.template_id());
    if (t == nullptr) {
      header.Add("create.template_id", "is not a template of the catalog");
    } else {
      if (name.empty()) name = t->name();
      if (kind == v1::ENTITY_KIND_UNSPECIFIED) kind = t->entity_kind();
      if (steps.empty()) steps = ToVector(t->steps());
      // Field by field: what the caller sets overrides, the rest is the template's.
      settings = t->settings();
      const v1::SequenceSettings& o = create.settings();
      if (o.has_send_window()) *settings.mutable_send_window() = o.send_window();
      if (!o.holidays().empty()) *settings.mutable_holidays() = o.holidays();
      if (!o.default_time_zone().empty()) settings.set_default_time_zone(o.default_time_zone());
      if (o.reenrollment() != v1::REENROLLMENT_RULE_UNSPECIFIED) {
        settings.set_reenrollment(o.reenrollment());
      }
    }
  }
  absl::Status definition = ValidateSequenceDefinition(name, kind, steps, settings);
  header.AddAllFrom("create", definition);
  if (!header.empty()) return header.ToStatus("invalid create sequence");

  v1::Envelope e = NewEvent(state, command, 1, now);
  v1::SequenceCreated* created = e.mutable_sequence_created();
  created->set_sequence_id(command.sequence_id());
  created->set_version(1);
  created->set_name(name);
  created->set_owner_id(create.owner_id());
  created->set_entity_kind(kind);
  for (v1::Step& s : steps) *created->add_steps() = std::move(s);
  *created->mutable_settings() = std::move(settings);
  created->set_template_id(create.template_id());
  created->set_created_by(command.actor_user_id());
  return std::vector<v1::Envelope>{std::move(e)};
}

}  // namespace

int SequenceState::StepIndex(absl::string_view id) const {
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].id() == id) return static_cast<int>(i);
  }
  return -1;
}

std::string SequenceEventId(absl::string_view sequence_id, int64_t version) {
  return absl::StrCat(sequence_id, "@", version);
}

absl::StatusOr<std::vector<v1::Envelope>> DecideSequence(const SequenceState& state,
                                                         const v1::SequenceCommand& command,
                                                         absl::Time now) {
  if (command.sequence_id().empty()) return InvalidField("sequence_id", "is required");
  if (!state.sequence_id.empty() && state.sequence_id != command.sequence_id()) {
    return absl::InvalidArgumentError("command is for another sequence than the state");
  }
  if (command.command_case() == v1::SequenceCommand::COMMAND_NOT_SET) {
    return InvalidField("command", "one command must be set");
  }
  if (command.command_case() == v1::SequenceCommand::kCreate) {
    return DecideCreate(state, command, now);
  }
  if (!state.exists) {
    return absl::NotFoundError(absl::StrCat("sequence ", command.sequence_id(), " not found"));
  }
  if (state.deleted) {
    return absl::FailedPreconditionError(
        absl::StrCat("sequence ", command.sequence_id(), " is deleted"));
  }
  if (command.expected_version() > 0 && command.expected_version() != state.version) {
    return absl::AbortedError(absl::StrCat("sequence ", command.sequence_id(), " is at version ",
                                           state.version, ", not ", command.expected_version()));
  }
  const int64_t version = state.version + 1;
  v1::Envelope e = NewEvent(state, command, version, now);
  const std::string& id = command.sequence_id();
  const std::string& actor = command.actor_user_id();
  switch (command.command_case()) {
    case v1::SequenceCommand::kReplaceSteps: {
      const std::vector<v1::Step> steps = ToVector(command.replace_steps().steps());
      FieldViolations v;
      v.AddAllFrom("replace_steps", ValidateSteps(steps));
      if (!v.empty()) return v.ToStatus("invalid steps");
      v1::SequenceStepsReplaced* p = e.mutable_sequence_steps_replaced();
      p->set_sequence_id(id);
      p->set_version(version);
      *p->mutable_steps() = command.replace_steps().steps();
      p->set_changed_by(actor);
      break;
    }
    case v1::SequenceCommand::kChangeSettings: {
      const v1::ChangeSettings& c = command.change_settings();
      FieldViolations v;
      const std::string name = c.name().empty() ? state.name : c.name();
      if (name.size() > static_cast<size_t>(kMaxNameLength)) {
        v.Add("change_settings.name", absl::StrCat("must be 1 to ", kMaxNameLength, " bytes"));
      }
      v.AddAllFrom("change_settings", ValidateSettings(c.settings()));
      if (!v.empty()) return v.ToStatus("invalid settings");
      v1::SequenceSettingsChanged* p = e.mutable_sequence_settings_changed();
      p->set_sequence_id(id);
      p->set_version(version);
      p->set_name(name);
      *p->mutable_settings() = c.settings();
      p->set_changed_by(actor);
      break;
    }
    case v1::SequenceCommand::kDelete: {
      v1::SequenceDeleted* p = e.mutable_sequence_deleted();
      p->set_sequence_id(id);
      p->set_version(version);
      p->set_deleted_by(actor);
      break;
    }
    case v1::SequenceCommand::kSwitchAutomatedSending: {
      const bool enabled = command.switch_automated_sending().enabled();
      if (enabled == state.automated_sending) return std::vector<v1::Envelope>{};
      v1::AutomatedSendingSwitched* p = e.mutable_automated_sending_switched();
      p->set_sequence_id(id);
      p->set_version(version);
      p->set_enabled(enabled);
      p->set_changed_by(actor);
      break;
    }
    case v1::SequenceCommand::kGrantConsent: {
      const std::string& user = command.grant_consent().user_id();
      if (user.empty()) return InvalidField("grant_consent.user_id", "is required");
      if (!actor.empty() && actor != user) {
        return absl::PermissionDeniedError("a user can only grant sending consent for themselves");
      }
      if (state.HasConsent(user)) return std::vector<v1::Envelope>{};
      v1::SendingConsentGranted* p = e.mutable_sending_consent_granted();
      p->set_sequence_id(id);
      p->set_version(version);
      p->set_user_id(user);
      break;
    }
    case v1::SequenceCommand::kRevokeConsent: {
      const std::string& user = command.revoke_consent().user_id();
      if (user.empty()) return InvalidField("revoke_consent.user_id", "is required");
      if (!state.HasConsent(user)) return std::vector<v1::Envelope>{};
      v1::SendingConsentRevoked* p = e.mutable_sending_consent_revoked();
      p->set_sequence_id(id);
      p->set_version(version);
      p->set_user_id(user);
      break;
    }
    case v1::SequenceCommand::kPause: {
      if (state.paused) return std::vector<v1::Envelope>{};
      v1::SequencePaused* p = e.mutable_sequence_paused();
      p->set_sequence_id(id);
      p->set_version(version);
      p->set_paused_by(actor);
      break;
    }
    case v1::SequenceCommand::kResume: {
      if (!state.paused) return std::vector<v1::Envelope>{};
      v1::SequenceResumed* p = e.mutable_sequence_resumed();
      p->set_sequence_id(id);
      p->set_version(version);
      p->set_resumed_by(actor);
      break;
    }
    default:
      return InvalidField("command", "unknown command");
  }
  return std::vector<v1::Envelope>{std::move(e)};
}

bool GetSequenceEventKey(const v1::Envelope& event, std::string* sequence_id, int64_t* version) {
  auto set = [&](const auto& p) {
    if (sequence_id != nullptr) *sequence_id = p.sequence_id();
    if (version != nullptr) *version = p.version();
    return true;
  };
  switch (event.payload_case()) {
    case v1::Envelope::kSequenceCreated:
      return set(event.sequence_created());
    case v1::Envelope::kSequenceStepsReplaced:
      return set(event.sequence_steps_replaced());
    case v1::Envelope::kSequenceSettingsChanged:
      return set(event.sequence_settings_changed());
    case v1::Envelope::kSequenceDeleted:
      return set(event.sequence_deleted());
    case v1::Envelope::kAutomatedSendingSwitched:
      return set(event.automated_sending_switched());
    case v1::Envelope::kSendingConsentGranted:
      return set(event.sending_consent_granted());
    case v1::Envelope::kSendingConsentRevoked:
      return set(event.sending_consent_revoked());
    case v1::Envelope::kSequencePaused:
      return set(event.sequence_paused());
    case v1::Envelope::kSequenceResumed:
      return set(event.sequence_resumed());
    default:
      return false;
  }
}

SequenceState EvolveSequence(SequenceState state, const v1::Envelope& event) {
  std::string id;
  int64_t version = 0;
  if (!GetSequenceEventKey(event, &id, &version)) return state;
  if (!state.sequence_id.empty() && state.sequence_id != id) return state;
  if (version <= state.version) return state;  // duplicate or stale redelivery
  const absl::Time at = FromProto(event.occurred_at());
  state.version = version;
  state.updated_at = at;
  switch (event.payload_case()) {
    case v1::Envelope::kSequenceCreated: {
      const v1::SequenceCreated& p = event.sequence_created();
      state.exists = true;
      state.sequence_id = p.sequence_id();
      state.company_id = event.company_id();
      state.name = p.name();
      state.owner_id = p.owner_id();
      state.entity_kind = p.entity_kind();
      state.steps = ToVector(p.steps());
      state.settings = p.settings();
      state.template_id = p.template_id();
      state.created_at = at;
      break;
    }
    case v1::Envelope::kSequenceStepsReplaced:
      state.steps = ToVector(event.sequence_steps_replaced().steps());
      break;
    case v1::Envelope::kSequenceSettingsChanged:
      state.name = event.sequence_settings_changed().name();
      state.settings = event.sequence_settings_changed().settings();
      break;
    case v1::Envelope::kSequenceDeleted:
      state.deleted = true;
      break;
    case v1::Envelope::kAutomatedSendingSwitched:
      state.automated_sending = event.automated_sending_switched().enabled();
      break;
    case v1::Envelope::kSendingConsentGranted:
      state.consented_users.insert(event.sending_consent_granted().user_id());
      break;
    case v1::Envelope::kSendingConsentRevoked:
      state.consented_users.erase(event.sending_consent_revoked().user_id());
      break;
    case v1::Envelope::kSequencePaused:
      state.paused = true;
      break;
    case v1::Envelope::kSequenceResumed:
      state.paused = false;
      break;
    default:
      break;
  }
  if (state.sequence_id.empty()) state.sequence_id = id;
  return state;
}

}  // namespace sequences::domain
