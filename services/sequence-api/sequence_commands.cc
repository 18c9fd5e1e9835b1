#include "services/sequence-api/sequence_commands.h"

#include "absl/strings/str_cat.h"
#include "libs/domain/envelope.h"
#include "libs/domain/errors.h"
#include "libs/domain/send_limits.h"
#include "services/sequence-api/call_checks.h"
#include "services/sequence-api/rpc_status.h"

namespace sequences::api {
namespace {

// A command on a named sequence: parse, check tenancy and request id.
absl::StatusOr<SequenceName> ParseNamed(const CallContext& ctx, const std::string& name,
                                        const std::string& request_id) {
  absl::StatusOr<SequenceName> n = ParseOwnSequence(ctx, name, "name");
  if (!n.ok()) return n.status();
  if (absl::Status s = CheckRequestId(request_id, "request_id"); !s.ok()) return s;
  return n;
}

}  // namespace

absl::StatusOr<v1::SequenceResponse> SequenceCommands::Run(
    const Ctx& ctx, const std::string& sequence_id, const std::string& request_id,
    std::vector<v1::SequenceCommand> commands, const PathMap& path_map,
    const CompleteCommands& complete) {
  OwnWrites::Mutation m(own_writes_, ctx, {sequence_id}, {request_id});
  if (absl::Status s = m.AwaitOwnWrites(); !s.ok()) return s;
  absl::StatusOr<std::optional<RequestRecord>> seen =
      m.PriorRequest(request_id, SequenceResourceName(ctx.company_id, sequence_id), "request_id");
  if (!seen.ok()) return seen.status();
  absl::StatusOr<domain::SequenceState> loaded = ports_.read_model.LoadSequenceState(sequence_id);
  if (!loaded.ok()) return loaded.status();
  domain::SequenceState state = std::move(*loaded);
  if (seen->has_value()) {
    if (!state.exists) return absl::InternalError("request seen but sequence missing");
    v1::SequenceResponse reply;
    *reply.mutable_sequence() = SequenceView(state);
    reply.set_consistency_token(ports_.ConsistencyToken(ctx, **seen));
    return reply;
  }
  const bool create = commands.front().has_create();
  if (!create && (!state.exists || state.company_id != ctx.company_id)) {
    return SequenceNotFound(sequence_id);
  }
  if (complete) {
    if (absl::Status s = complete(state, commands); !s.ok()) return RemapFieldPaths(s, path_map);
  }

  const absl::Time now = ports_.clock.Now();
  std::vector<v1::Envelope> events;
  for (v1::SequenceCommand& command : commands) {
    command.set_company_id(ctx.company_id);
    command.set_sequence_id(sequence_id);
    command.set_request_id(request_id);
    command.set_actor_user_id(ctx.user_id);
    absl::StatusOr<std::vector<v1::Envelope>> decided = domain::DecideSequence(state, command, now);
    if (!decided.ok()) return RemapFieldPaths(decided.status(), path_map);
    for (v1::Envelope& e : *decided) {
      if (e.correlation_id().empty()) e.set_correlation_id(request_id);
      e.set_request_digest(ctx.request_digest);
      if (e.company_id().empty()) e.set_company_id(ctx.company_id);
      state = domain::EvolveSequence(std::move(state), e);
      events.push_back(std::move(e));
    }
  }
  v1::SequenceResponse reply;
  if (!events.empty()) {
    std::vector<kafka::Record> records;
    for (const v1::Envelope& e : events) {
      records.push_back({.topic = ports_.options.topics.sequence_events,
                         .key = sequence_id,
                         .value = e.SerializeAsString()});
    }
    absl::StatusOr<std::vector<LogPosition>> positions = m.Append(records);
    if (!positions.ok()) return positions.status();
    if (absl::Status s = CheckAppendsWon(ctx, sequence_id, events, records, *positions); !s.ok()) {
      return s;
    }
    reply.set_consistency_token(ports_.ConsistencyToken(ctx, *positions));
  }
  *reply.mutable_sequence() = SequenceView(state);
  return reply;
}

absl::StatusOr<v1::SequenceResponse> SequenceCommands::RunOnNamed(const Ctx& ctx,
                                                                  const std::string& name,
                                                                  const std::string& request_id,
                                                                  v1::SequenceCommand command,
                                                                  const PathMap& path_map) {
  absl::StatusOr<SequenceName> n = ParseNamed(ctx, name, request_id);
  if (!n.ok()) return n.status();
  return Run(ctx, n->sequence_id, request_id, {std::move(command)}, path_map);
}

absl::Status SequenceCommands::CheckAppendsWon(const Ctx& ctx, const std::string& sequence_id,
                                               const std::vector<v1::Envelope>& events,
                                               const std::vector<kafka::Record>& records,
                                               const std::vector<LogPosition>& positions) {
  // Another API instance may have appended the same versions first: the fold keeps the first
  // event of each version in log order and ignores the rest, so a write is acknowledged only
  // once the read model shows that it is the one kept (a conditional append, checked after).
  if (!ports_.read_model.WaitFor(positions, ports_.ReadDeadline(ctx))) {
    return absl::UnavailableError(
        "the update is durable but the read model has not confirmed it yet; retry with the same "
        "request_id");
  }
  for (size_t i = 0; i < events.size(); ++i) {
    std::string id;
    int64_t version = 0;
    if (!domain::GetSequenceEventKey(events[i], &id, &version)) continue;
    absl::StatusOr<std::optional<std::string>> kept =
        ports_.read_model.SequenceEventAt(id, version);
    if (!kept.ok()) return kept.status();
    if (!kept->has_value() || **kept != records[i].value) {
      return absl::AbortedError(absl::StrCat("sequence ", sequence_id,
                                             " was changed by another writer at the same time; "
                                             "read it again and retry"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::SequenceResponse> SequenceCommands::Create(
    const Ctx& ctx, const v1::CreateSequenceRequest& req) {
  absl::StatusOr<std::string> company = ParseOwnCompany(ctx, req.parent(), "parent");
  if (!company.ok()) return company.status();
  if (absl::Status s = CheckRequestId(req.request_id(), "request_id"); !s.ok()) return s;
  v1::SequenceCommand command;
  v1::CreateSequence* create = command.mutable_create();
  const v1::Sequence& s = req.sequence();
  create->set_name(s.display_name());
  create->set_owner_id(s.owner_id().empty() ? ctx.user_id : s.owner_id());
  create->set_entity_kind(s.entity_kind());
  *create->mutable_steps() = s.steps();
  if (s.has_settings()) *create->mutable_settings() = s.settings();
  create->set_template_id(req.template_id());
  auto complete = [this, &ctx](const domain::SequenceState&, std::vector<v1::SequenceCommand>& cs) {
    return CopyEmailTemplates(ports_.read_model, ctx, {},
                              cs.front().mutable_create()->mutable_steps());
  };
  return Run(ctx, DeriveSequenceId(ctx.company_id, req.request_id()), req.request_id(), {command},
             {{"create.name", "sequence.display_name"},
              {"create.template_id", "template_id"},
              {"create", "sequence"},
              {"steps", "sequence.steps"}},
             complete);
}

absl::StatusOr<v1::SequenceResponse> SequenceCommands::Update(
    const Ctx& ctx, const v1::UpdateSequenceRequest& req) {
  absl::StatusOr<SequenceName> name = ParseOwnSequence(ctx, req.sequence().name(), "sequence.name");
  if (!name.ok()) return name.status();
  if (absl::Status s = CheckRequestId(req.request_id(), "request_id"); !s.ok()) return s;
  bool steps = false, display_name = false, settings = false;
  if (req.update_mask().paths().empty()) {
    steps = display_name = settings = true;
  }
  for (const std::string& path : req.update_mask().paths()) {
    if (path == "steps") {
      steps = true;
    } else if (path == "display_name") {
      display_name = true;
    } else if (path == "settings") {
      settings = true;
    } else {
      return domain::InvalidField("update_mask",
                                  absl::StrCat("unknown or immutable field \"", path,
                                               "\" (allowed: display_name, settings, steps)"));
    }
  }
  std::vector<v1::SequenceCommand> commands;
  if (steps) {
    v1::SequenceCommand c;
    *c.mutable_replace_steps()->mutable_steps() = req.sequence().steps();
    commands.push_back(std::move(c));
  }
  if (display_name || settings) {
    v1::SequenceCommand c;
    if (display_name) c.mutable_change_settings()->set_name(req.sequence().display_name());
    if (settings) *c.mutable_change_settings()->mutable_settings() = req.sequence().settings();
    commands.push_back(std::move(c));
  }
  // Only a version the caller names is checked: without one, the update applies to whatever
  // version the lock finds (never ABORTED for a version the caller did not ask for).
  commands.front().set_expected_version(req.expected_version());
  // The unchanged half of ChangeSettings comes from the state read under the sequence's lock.
  auto complete = [this, &ctx, display_name, settings](const domain::SequenceState& current,
                                                       std::vector<v1::SequenceCommand>& cs) {
    for (v1::SequenceCommand& c : cs) {
      if (c.has_replace_steps()) {
        // Copy-at-save against the steps as stored (a copy sent back unchanged is refreshed).
        if (absl::Status s = CopyEmailTemplates(ports_.read_model, ctx, current.steps,
                                                c.mutable_replace_steps()->mutable_steps());
            !s.ok()) {
          return s;
        }
      }
      if (!c.has_change_settings()) continue;
      if (!display_name) c.mutable_change_settings()->set_name(current.name);
      if (!settings) *c.mutable_change_settings()->mutable_settings() = current.settings;
    }
    return absl::OkStatus();
  };
  return Run(ctx, name->sequence_id, req.request_id(), std::move(commands),
             {{"replace_steps.steps", "sequence.steps"},
              {"change_settings.name", "sequence.display_name"},
              {"change_settings.settings", "sequence.settings"},
              {"steps", "sequence.steps"},
              {"settings", "sequence.settings"},
              {"name", "sequence.display_name"}},
             complete);
}

absl::StatusOr<v1::SequenceResponse> SequenceCommands::Delete(
    const Ctx& ctx, const v1::DeleteSequenceRequest& req) {
  v1::SequenceCommand c;
  c.mutable_delete_();
  c.set_expected_version(req.expected_version());
  return RunOnNamed(ctx, req.name(), req.request_id(), std::move(c));
}

absl::StatusOr<v1::SequenceResponse> SequenceCommands::SwitchAutomatedSending(
    const Ctx& ctx, const v1::SwitchAutomatedSendingRequest& req) {
  v1::SequenceCommand c;
  c.mutable_switch_automated_sending()->set_enabled(req.enabled());
  return RunOnNamed(ctx, req.name(), req.request_id(), std::move(c));
}

absl::StatusOr<v1::SequenceResponse> SequenceCommands::GrantSendingConsent(
    const Ctx& ctx, const v1::GrantSendingConsentRequest& req) {
  v1::SequenceCommand c;
  c.mutable_grant_consent()->set_user_id(ctx.user_id);
  return RunOnNamed(ctx, req.name(), req.request_id(), std::move(c));
}

absl::StatusOr<v1::SequenceResponse> SequenceCommands::RevokeSendingConsent(
    const Ctx& ctx, const v1::RevokeSendingConsentRequest& req) {
  absl::StatusOr<SequenceName> n = ParseNamed(ctx, req.name(), req.request_id());
  if (!n.ok()) return n.status();
  // Consent is the sending user's own: only that user revokes it.
  if (!req.user_id().empty() && req.user_id() != ctx.user_id) {
    return absl::PermissionDeniedError(
        "user_id: only the user who granted sending consent can revoke it");
  }
  v1::SequenceCommand c;
  c.mutable_revoke_consent()->set_user_id(ctx.user_id);
  return Run(ctx, n->sequence_id, req.request_id(), {c}, {{"revoke_consent.user_id", "user_id"}});
}

absl::StatusOr<v1::SequenceResponse> SequenceCommands::Pause(const Ctx& ctx,
                                                             const v1::PauseSequenceRequest& req) {
  v1::SequenceCommand c;
  c.mutable_pause();
  return RunOnNamed(ctx, req.name(), req.request_id(), std::move(c));
}

absl::StatusOr<v1::SequenceResponse> SequenceCommands::Resume(
    const Ctx& ctx, const v1::ResumeSequenceRequest& req) {
  v1::SequenceCommand c;
  c.mutable_resume();
  return RunOnNamed(ctx, req.name(), req.request_id(), std::move(c));
}

absl::StatusOr<v1::CompanySendingSettingsResponse> SequenceCommands::SetCompanySendingSettings(
    const Ctx& ctx, const v1::SetCompanySendingSettingsRequest& req) {
  absl::StatusOr<std::string> company = ParseOwnCompany(ctx, req.parent(), "parent");
  if (!company.ok()) return company.status();
  if (absl::Status s = CheckRequestId(req.request_id(), "request_id"); !s.ok()) return s;
  if (absl::Status s = domain::ValidateSendingSettings(req.settings()); !s.ok()) return s;
  const std::string key = domain::CompanySettingsKey(*company);
  OwnWrites::Mutation m(own_writes_, ctx, {key}, {req.request_id()});
  if (absl::Status s = m.AwaitOwnWrites(); !s.ok()) return s;
  absl::StatusOr<std::optional<RequestRecord>> seen =
      m.PriorRequest(req.request_id(), CompanySendingSettingsResourceName(*company), "request_id");
  if (!seen.ok()) return seen.status();
  absl::StatusOr<domain::CompanySendingState> state =
      ports_.read_model.LoadCompanySending(*company);
  if (!state.ok()) return state.status();
  v1::CompanySendingSettingsResponse reply;
  if (seen->has_value()) {
    *reply.mutable_settings() = domain::EffectiveSendingSettings(state->settings);
    reply.set_version(state->version);
    reply.set_consistency_token(ports_.ConsistencyToken(ctx, **seen));
    return reply;
  }
  const int64_t version = state->version + 1;
  v1::Envelope e = domain::MakeEnvelope(absl::StrCat(key, "/v", version, "/", req.request_id()),
                                        *company, ports_.clock.Now(), "", req.request_id());
  e.set_request_digest(ctx.request_digest);
  v1::CompanySendingSettingsChanged* c = e.mutable_company_sending_settings_changed();
  c->set_company_id(*company);
  c->set_version(version);
  *c->mutable_settings() = req.settings();
  c->set_changed_by(ctx.user_id);
  std::vector<kafka::Record> records = {
      {.topic = ports_.options.topics.sequence_events, .key = key, .value = e.SerializeAsString()}};
  absl::StatusOr<std::vector<LogPosition>> positions = m.Append(records);
  if (!positions.ok()) return positions.status();
  if (!ports_.read_model.WaitFor(*positions, ports_.ReadDeadline(ctx))) {
    return absl::UnavailableError(
        "the update is durable but the read model has not confirmed it yet; retry with the same "
        "request_id");
  }
  absl::StatusOr<std::optional<std::string>> kept = ports_.read_model.SequenceEventAt(key, version);
  if (!kept.ok()) return kept.status();
  if (!kept->has_value() || **kept != records[0].value) {
    return absl::AbortedError(
        "the sending settings were changed by another writer at the same time; read them again "
        "and retry");
  }
  *reply.mutable_settings() = domain::EffectiveSendingSettings(req.settings());
  reply.set_version(version);
  reply.set_consistency_token(ports_.ConsistencyToken(ctx, *positions));
  return reply;
}

}  // namespace sequences::api
