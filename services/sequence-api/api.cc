#include "services/sequence-api/api.h"

#include <algorithm>
#include <set>

#include "absl/hash/hash.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/domain/envelope.h"
#include "libs/domain/errors.h"
#include "libs/domain/schedule.h"
#include "libs/domain/templates.h"
#include "libs/domain/validation.h"
#include "libs/kafka/types.h"

namespace sequences::api {
namespace {

constexpr int kMaxRequestIdLength = 128;

absl::Status CheckRequestId(const std::string& request_id, absl::string_view field) {
  if (request_id.empty()) return domain::InvalidField(field, "is required (idempotency key)");
  if (request_id.size() > kMaxRequestIdLength || !IsValidId(request_id)) {
    return domain::InvalidField(field, kIdRule);
  }
  return absl::OkStatus();
}

absl::Status SequenceNotFound(const std::string& sequence_id) {
  return absl::NotFoundError(absl::StrCat("sequence ", sequence_id, " not found"));
}

int PageSize(int requested, int def, int max) {
  if (requested <= 0) return def;
  return std::min(requested, max);
}

absl::Status CheckPageSize(int page_size) {
  if (page_size < 0) return domain::InvalidField("page_size", "must not be negative");
  return absl::OkStatus();
}

std::string EntityName(v1::EntityKind kind) {
  switch (kind) {
    case v1::ENTITY_KIND_DEAL:
      return "deal";
    case v1::ENTITY_KIND_LEAD:
      return "lead";
    default:
      return "";
  }
}

bool IsActive(v1::EnrollmentStatus s) {
  return s == v1::ENROLLMENT_STATUS_IN_PROGRESS || s == v1::ENROLLMENT_STATUS_PAUSED;
}

}  // namespace

google::rpc::Status ToRpcStatus(const absl::Status& s) {
  google::rpc::Status out;
  out.set_code(static_cast<int>(s.code()));
  out.set_message(std::string(s.message()));
  for (const char* type_url : {domain::kBadRequestTypeUrl, kRetryInfoTypeUrl}) {
    absl::optional<absl::Cord> detail = s.GetPayload(type_url);
    if (!detail.has_value()) continue;
    google::protobuf::Any* any = out.add_details();
    any->set_type_url(type_url);
    any->set_value(std::string(*detail));
  }
  return out;
}

absl::Status RemapFieldPaths(const absl::Status& status,
                             const std::vector<std::pair<std::string, std::string>>& map) {
  std::vector<domain::FieldViolation> violations = domain::GetFieldViolations(status);
  if (violations.empty()) return status;
  domain::FieldViolations out;
  for (const domain::FieldViolation& v : violations) {
    std::string field = v.field;
    for (const auto& [from, to] : map) {
      if (field == from) {
        field = to;
        break;
      }
      if (from.empty()) {
        field = absl::StrCat(to, field[0] == '[' ? "" : ".", field);
        break;
      }
      if (absl::StartsWith(field, from) &&
          (field[from.size()] == '.' || field[from.size()] == '[')) {
        field = absl::StrCat(to, field.substr(from.size()));
        break;
      }
    }
    out.Add(field, v.description);
  }
  absl::Status remapped = out.ToStatus("invalid argument");
  if (absl::IsInvalidArgument(status)) return remapped;
  absl::Status r(status.code(), status.message());
  r.SetPayload(domain::kBadRequestTypeUrl, *remapped.GetPayload(domain::kBadRequestTypeUrl));
  return r;
}

std::string Api::RequestKey(const Ctx& ctx, const std::string& request_id) {
  return absl::StrCat("request\x1f", ctx.company_id, "\x1f", request_id);
}

Api::StripeLocks::StripeLocks(Api& api, const std::vector<std::string>& keys) {
  std::set<size_t> stripes;
  for (const std::string& key : keys) stripes.insert(absl::HashOf(key) % api.stripes_.size());
  // Always in index order, so two calls locking overlapping sets cannot deadlock.
  for (size_t i : stripes) {
    api.stripes_[i].Lock();
    locked_.push_back(&api.stripes_[i]);
  }
}

Api::StripeLocks::~StripeLocks() {
  for (auto it = locked_.rbegin(); it != locked_.rend(); ++it) (*it)->Unlock();
}

std::string Api::ConsistencyToken(const Ctx& ctx, absl::Span<const LogPosition> positions) const {
  if (positions.empty()) return "";
  return signer_.Sign(ctx.company_id, "consistency", EncodePositions(positions));
}

std::string Api::ConsistencyToken(const Ctx& ctx, const RequestRecord& seen) const {
  absl::StatusOr<std::vector<LogPosition>> positions = DecodePositions(seen.positions);
  return positions.ok() ? ConsistencyToken(ctx, *positions) : "";
}

absl::Time Api::ReadDeadline(const Ctx& ctx) {
  return std::min(ctx.deadline, clock_.Now() + options_.max_read_wait);
}

absl::Status Api::WaitForToken(const Ctx& ctx, const std::string& token) {
  if (token.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> text =
      signer_.Verify(ctx.company_id, "consistency", token, "consistency_token");
  if (!text.ok()) return text.status();
  absl::StatusOr<std::vector<LogPosition>> positions = DecodePositions(*text);
  if (!positions.ok()) return positions.status();
  if (positions->empty()) return absl::OkStatus();
  if (read_model_.WaitFor(*positions, ReadDeadline(ctx))) return absl::OkStatus();
  if (clock_.Now() >= ctx.deadline) {
    return absl::DeadlineExceededError(
        "the read model did not reach the consistency token in time");
  }
  return absl::UnavailableError("the read model has not reached the consistency token yet; retry");
}

absl::Status Api::WaitForOwnWrites(const Ctx& ctx, const std::vector<std::string>& keys) {
  std::vector<LogPosition> positions;
  {
    absl::MutexLock lock(&own_mu_);
    for (const std::string& key : keys) {
      auto it = own_writes_.find(key);
      if (it != own_writes_.end())
        positions.insert(positions.end(), it->second.begin(), it->second.end());
    }
  }
  if (positions.empty()) return absl::OkStatus();
  if (read_model_.WaitFor(positions, ReadDeadline(ctx))) return absl::OkStatus();
  if (clock_.Now() >= ctx.deadline) {
    return absl::DeadlineExceededError("the read model did not catch up in time");
  }
  return absl::UnavailableError("the read model is behind the log; retry");
}

void Api::NoteOwnWriteLocked(const std::string& key, const LogPosition& position) {
  constexpr size_t kPruneAbove = 100000;
  if (own_writes_.size() > kPruneAbove) {
    // Forget keys whose writes the read model has applied: waiting for them is a no-op.
    std::vector<LogPosition> applied = read_model_.AppliedPositions();  // offset = next to apply
    auto is_applied = [&](const LogPosition& p) {
      for (const LogPosition& a : applied) {
        if (a.topic == p.topic && a.partition == p.partition) return p.offset < a.offset;
      }
      return false;
    };
    absl::erase_if(own_writes_, [&](const auto& entry) {
      return std::all_of(entry.second.begin(), entry.second.end(), is_applied);
    });
  }
  std::vector<LogPosition>& positions = own_writes_[key];
  for (LogPosition& p : positions) {
    if (p.topic == position.topic && p.partition == position.partition) {
      p.offset = std::max(p.offset, position.offset);
      return;
    }
  }
  positions.push_back(position);
}

std::vector<absl::StatusOr<LogPosition>> Api::AppendEach(
    const Ctx& ctx, const std::vector<kafka::Record>& records,
    const std::vector<std::vector<std::string>>& keys_of_record) {
  // What is written must be readable: every reader decodes an Envelope from the value.
  std::vector<absl::StatusOr<LogPosition>> results(records.size());
  std::vector<kafka::Record> writable;
  std::vector<size_t> writable_index;
  for (size_t i = 0; i < records.size(); ++i) {
    v1::Envelope decoded;
    if (records[i].value.size() > options_.max_record_bytes) {
      results[i] = domain::InvalidField(
          "request",
          absl::StrCat("is too large: the event it writes would be ", records[i].value.size(),
                       " bytes, at most ", options_.max_record_bytes));
    } else if (!decoded.ParseFromString(records[i].value)) {
      results[i] = absl::InternalError("refusing to write an event that readers cannot decode");
    } else {
      writable.push_back(records[i]);
      writable_index.push_back(i);
      continue;
    }
  }
  std::vector<absl::StatusOr<LogPosition>> written;
  if (!writable.empty()) written = log_.Append(writable, ctx.deadline);
  absl::MutexLock lock(&own_mu_);
  for (size_t k = 0; k < written.size(); ++k) {
    const size_t i = writable_index[k];
    results[i] = std::move(written[k]);
    if (!results[i].ok()) continue;
    for (const std::string& key : keys_of_record[i]) NoteOwnWriteLocked(key, *results[i]);
  }
  return results;
}

absl::StatusOr<std::vector<LogPosition>> Api::Append(const Ctx& ctx,
                                                     const std::vector<std::string>& keys,
                                                     const std::vector<kafka::Record>& records) {
  std::vector<absl::StatusOr<LogPosition>> results =
      AppendEach(ctx, records, std::vector<std::vector<std::string>>(records.size(), keys));
  std::vector<LogPosition> positions;
  for (auto& r : results) {
    if (!r.ok()) return r.status();
    positions.push_back(*r);
  }
  return positions;
}

absl::StatusOr<Api::EnrollmentLookup> Api::LookupEnrollmentForMutation(
    const Ctx& ctx, const std::string& item_key, const std::string& sequence_id,
    const std::string& request_id, const std::string& resource,
    const std::string& request_id_field) {
  if (absl::Status s = WaitForOwnWrites(ctx, {domain::EnrollmentKey(item_key, sequence_id),
                                              sequence_id, RequestKey(ctx, request_id)});
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::optional<RequestRecord>> seen =
      read_model_.LookupRequest(ctx.company_id, request_id);
  if (!seen.ok()) return seen.status();
  absl::StatusOr<std::optional<EnrollmentRecord>> rec =
      read_model_.LoadEnrollment(item_key, sequence_id);
  if (!rec.ok()) return rec.status();
  EnrollmentLookup out{std::move(*rec), std::nullopt};
  if (seen->has_value()) {
    if ((*seen)->resource != resource) {
      return domain::InvalidField(request_id_field, "was already used for another request");
    }
    v1::EnrollmentResponse reply;
    if (out.record.has_value()) *reply.mutable_enrollment() = out.record->view;
    reply.set_consistency_token(ConsistencyToken(ctx, **seen));
    out.repeated = std::move(reply);
  }
  return out;
}

absl::StatusOr<domain::SequenceState> Api::LoadOwnSequence(const Ctx& ctx,
                                                           const std::string& sequence_id) {
  absl::StatusOr<domain::SequenceState> state = read_model_.LoadSequenceState(sequence_id);
  if (!state.ok()) return state.status();
  if (!state->exists || state->company_id != ctx.company_id) return SequenceNotFound(sequence_id);
  return state;
}

// ---------------------------------------------------------------- sequences

absl::StatusOr<v1::SequenceResponse> Api::RunSequenceCommands(
    const Ctx& ctx, const std::string& resource_field, const std::string& sequence_id,
    const std::string& request_id, std::vector<v1::SequenceCommand> commands,
    const std::vector<std::pair<std::string, std::string>>& path_map,
    const CompleteCommands& complete) {
  const std::string resource = SequenceResourceName(ctx.company_id, sequence_id);
  const std::vector<std::string> keys = {sequence_id, RequestKey(ctx, request_id)};
  StripeLocks locks(*this, keys);
  if (absl::Status s = WaitForOwnWrites(ctx, keys); !s.ok()) return s;

  absl::StatusOr<std::optional<RequestRecord>> seen =
      read_model_.LookupRequest(ctx.company_id, request_id);
  if (!seen.ok()) return seen.status();
  absl::StatusOr<domain::SequenceState> loaded = read_model_.LoadSequenceState(sequence_id);
  if (!loaded.ok()) return loaded.status();
  domain::SequenceState state = std::move(*loaded);
  const bool create = commands.front().has_create();
  if (seen->has_value()) {
    if ((*seen)->resource != resource) {
      return domain::InvalidField("request_id", "was already used for another request");
    }
    if (!state.exists) return absl::InternalError("request seen but sequence missing");
    v1::SequenceResponse reply;
    *reply.mutable_sequence() = SequenceView(state);
    reply.set_consistency_token(ConsistencyToken(ctx, **seen));
    return reply;
  }
  if (!create && (!state.exists || state.company_id != ctx.company_id)) {
    return SequenceNotFound(sequence_id);
  }
  (void)resource_field;
  if (complete) complete(state, commands);

  const absl::Time now = clock_.Now();
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
      if (e.company_id().empty()) e.set_company_id(ctx.company_id);
      state = domain::EvolveSequence(std::move(state), e);
      events.push_back(std::move(e));
    }
  }
  v1::SequenceResponse reply;
  if (!events.empty()) {
    std::vector<kafka::Record> records;
    for (const v1::Envelope& e : events) {
      records.push_back({.topic = options_.topics.sequence_events,
                         .key = sequence_id,
                         .value = e.SerializeAsString()});
    }
    absl::StatusOr<std::vector<LogPosition>> positions = Append(ctx, keys, records);
    if (!positions.ok()) return positions.status();
    if (absl::Status s = CheckAppendsWon(ctx, sequence_id, events, records, *positions); !s.ok()) {
      return s;
    }
    reply.set_consistency_token(ConsistencyToken(ctx, *positions));
  }
  *reply.mutable_sequence() = SequenceView(state);
  return reply;
}

absl::Status Api::CheckAppendsWon(const Ctx& ctx, const std::string& sequence_id,
                                  const std::vector<v1::Envelope>& events,
                                  const std::vector<kafka::Record>& records,
                                  const std::vector<LogPosition>& positions) {
  // Another API instance may have appended the same versions first: the fold keeps the first
  // event of each version in log order and ignores the rest, so a write is acknowledged only
  // once the read model shows that it is the one kept (a conditional append, checked after).
  if (!read_model_.WaitFor(positions, ReadDeadline(ctx))) {
    return absl::UnavailableError(
        "the update is durable but the read model has not confirmed it yet; retry with the same "
        "request_id");
  }
  for (size_t i = 0; i < events.size(); ++i) {
    std::string id;
    int64_t version = 0;
    if (!domain::GetSequenceEventKey(events[i], &id, &version)) continue;
    absl::StatusOr<std::optional<std::string>> kept = read_model_.SequenceEventAt(id, version);
    if (!kept.ok()) return kept.status();
    if (!kept->has_value() || **kept != records[i].value) {
      return absl::AbortedError(absl::StrCat("sequence ", sequence_id,
                                             " was changed by another writer at the same time; "
                                             "read it again and retry"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::SequenceResponse> Api::CreateSequence(const Ctx& ctx,
                                                         const v1::CreateSequenceRequest& req) {
  absl::StatusOr<std::string> company = ParseCompanyName(req.parent(), "parent");
  if (!company.ok()) return company.status();
  if (*company != ctx.company_id) {
    return absl::NotFoundError(absl::StrCat("company ", *company, " not found"));
  }
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
  return RunSequenceCommands(ctx, "parent", DeriveSequenceId(ctx.company_id, req.request_id()),
                             req.request_id(), {command},
                             {{"create.name", "sequence.display_name"},
                              {"create.template_id", "template_id"},
                              {"create", "sequence"}});
}

absl::StatusOr<v1::Sequence> Api::GetSequence(const Ctx& ctx, const v1::GetSequenceRequest& req) {
  absl::StatusOr<SequenceName> name = ParseSequenceName(req.name(), "name");
  if (!name.ok()) return name.status();
  if (name->company_id != ctx.company_id) return SequenceNotFound(name->sequence_id);
  if (absl::Status s = WaitForToken(ctx, req.consistency_token()); !s.ok()) return s;
  absl::StatusOr<std::optional<v1::Sequence>> seq = read_model_.GetSequence(name->sequence_id);
  if (!seq.ok()) return seq.status();
  if (!seq->has_value() || (*seq)->name() != req.name()) {
    return SequenceNotFound(name->sequence_id);
  }
  return **seq;
}

absl::StatusOr<v1::ListSequencesResponse> Api::ListSequences(const Ctx& ctx,
                                                             const v1::ListSequencesRequest& req) {
  absl::StatusOr<std::string> company = ParseCompanyName(req.parent(), "parent");
  if (!company.ok()) return company.status();
  if (*company != ctx.company_id) {
    return absl::NotFoundError(absl::StrCat("company ", *company, " not found"));
  }
  if (absl::Status s = CheckPageSize(req.page_size()); !s.ok()) return s;
  if (req.entity_kind() != v1::ENTITY_KIND_UNSPECIFIED && EntityName(req.entity_kind()).empty()) {
    return domain::InvalidField("entity_kind", "must be DEAL or LEAD when set");
  }
  if (!req.owner_id().empty() && !IsValidUserId(req.owner_id())) {
    return domain::InvalidField("owner_id", kUserIdRule);
  }
  std::string after;
  // The filters are part of the listing a page token is bound to.
  const std::string listing = absl::StrCat("sequences/", *company, "/", req.show_deleted(), "/",
                                           req.entity_kind(), "/", req.owner_id());
  if (!req.page_token().empty()) {
    absl::StatusOr<std::string> t =
        signer_.Verify(ctx.company_id, listing, req.page_token(), "page_token");
    if (!t.ok()) return t.status();
    after = *t;
  }
  if (absl::Status s = WaitForToken(ctx, req.consistency_token()); !s.ok()) return s;
  const int limit = PageSize(req.page_size(), 50, 500);
  auto matches = [&](const v1::Sequence& s) {
    return (req.entity_kind() == v1::ENTITY_KIND_UNSPECIFIED ||
            s.entity_kind() == req.entity_kind()) &&
           (req.owner_id().empty() || s.owner_id() == req.owner_id());
  };
  // Scans in chunks until limit + 1 sequences match (one more than a page says whether another
  // page exists) or the company's sequences end.
  std::vector<v1::Sequence> matched;
  absl::StatusOr<std::vector<v1::Sequence>> seqs = std::vector<v1::Sequence>();
  for (std::string cursor = after; static_cast<int>(matched.size()) <= limit;) {
    absl::StatusOr<std::vector<v1::Sequence>> chunk =
        read_model_.ListSequences(*company, cursor, limit + 1, req.show_deleted());
    if (!chunk.ok()) return chunk.status();
    for (v1::Sequence& s : *chunk) {
      if (static_cast<int>(matched.size()) > limit) break;
      if (matches(s)) matched.push_back(s);
    }
    if (static_cast<int>(chunk->size()) < limit + 1) break;
    absl::StatusOr<SequenceName> last = ParseSequenceName(chunk->back().name(), "name");
    if (!last.ok()) return last.status();
    cursor = last->sequence_id;
  }
  seqs = std::move(matched);
  v1::ListSequencesResponse out;
  for (int i = 0; i < static_cast<int>(seqs->size()) && i < limit; ++i) {
    *out.add_sequences() = (*seqs)[i];
  }
  if (static_cast<int>(seqs->size()) > limit) {
    absl::StatusOr<SequenceName> last = ParseSequenceName((*seqs)[limit - 1].name(), "name");
    if (last.ok()) {
      out.set_next_page_token(signer_.Sign(ctx.company_id, listing, last->sequence_id));
    }
  }
  return out;
}

absl::StatusOr<v1::SequenceResponse> Api::UpdateSequence(const Ctx& ctx,
                                                         const v1::UpdateSequenceRequest& req) {
  absl::StatusOr<SequenceName> name = ParseSequenceName(req.sequence().name(), "sequence.name");
  if (!name.ok()) return name.status();
  if (name->company_id != ctx.company_id) return SequenceNotFound(name->sequence_id);
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
  auto complete = [display_name, settings](const domain::SequenceState& current,
                                           std::vector<v1::SequenceCommand>& cs) {
    for (v1::SequenceCommand& c : cs) {
      if (!c.has_change_settings()) continue;
      if (!display_name) c.mutable_change_settings()->set_name(current.name);
      if (!settings) *c.mutable_change_settings()->mutable_settings() = current.settings;
    }
  };
  return RunSequenceCommands(ctx, "sequence.name", name->sequence_id, req.request_id(),
                             std::move(commands),
                             {{"replace_steps.steps", "sequence.steps"},
                              {"change_settings.name", "sequence.display_name"},
                              {"change_settings.settings", "sequence.settings"},
                              {"steps", "sequence.steps"},
                              {"settings", "sequence.settings"},
                              {"name", "sequence.display_name"}},
                             complete);
}

namespace {

// A command on a named sequence: parse, check tenancy and request id.
absl::StatusOr<SequenceName> ParseOwnSequence(const CallContext& ctx, const std::string& name,
                                              const std::string& request_id) {
  absl::StatusOr<SequenceName> n = ParseSequenceName(name, "name");
  if (!n.ok()) return n.status();
  if (n->company_id != ctx.company_id) return SequenceNotFound(n->sequence_id);
  if (absl::Status s = CheckRequestId(request_id, "request_id"); !s.ok()) return s;
  return n;
}

}  // namespace

absl::StatusOr<v1::SequenceResponse> Api::DeleteSequence(const Ctx& ctx,
                                                         const v1::DeleteSequenceRequest& req) {
  absl::StatusOr<SequenceName> n = ParseOwnSequence(ctx, req.name(), req.request_id());
  if (!n.ok()) return n.status();
  v1::SequenceCommand c;
  c.mutable_delete_();
  c.set_expected_version(req.expected_version());
  return RunSequenceCommands(ctx, "name", n->sequence_id, req.request_id(), {c}, {});
}

absl::StatusOr<v1::SequenceResponse> Api::SwitchAutomatedSending(
    const Ctx& ctx, const v1::SwitchAutomatedSendingRequest& req) {
  absl::StatusOr<SequenceName> n = ParseOwnSequence(ctx, req.name(), req.request_id());
  if (!n.ok()) return n.status();
  v1::SequenceCommand c;
  c.mutable_switch_automated_sending()->set_enabled(req.enabled());
  return RunSequenceCommands(ctx, "name", n->sequence_id, req.request_id(), {c}, {});
}

absl::StatusOr<v1::SequenceResponse> Api::GrantSendingConsent(
    const Ctx& ctx, const v1::GrantSendingConsentRequest& req) {
  absl::StatusOr<SequenceName> n = ParseOwnSequence(ctx, req.name(), req.request_id());
  if (!n.ok()) return n.status();
  v1::SequenceCommand c;
  c.mutable_grant_consent()->set_user_id(ctx.user_id);
  return RunSequenceCommands(ctx, "name", n->sequence_id, req.request_id(), {c}, {});
}

absl::StatusOr<v1::SequenceResponse> Api::RevokeSendingConsent(
    const Ctx& ctx, const v1::RevokeSendingConsentRequest& req) {
  absl::StatusOr<SequenceName> n = ParseOwnSequence(ctx, req.name(), req.request_id());
  if (!n.ok()) return n.status();
  // Consent is the sending user's own: only that user revokes it.
  if (!req.user_id().empty() && req.user_id() != ctx.user_id) {
    return absl::PermissionDeniedError(
        "user_id: only the user who granted sending consent can revoke it");
  }
  v1::SequenceCommand c;
  c.mutable_revoke_consent()->set_user_id(ctx.user_id);
  return RunSequenceCommands(ctx, "name", n->sequence_id, req.request_id(), {c},
                             {{"revoke_consent.user_id", "user_id"}});
}

absl::StatusOr<v1::SequenceResponse> Api::PauseSequence(const Ctx& ctx,
                                                        const v1::PauseSequenceRequest& req) {
  absl::StatusOr<SequenceName> n = ParseOwnSequence(ctx, req.name(), req.request_id());
  if (!n.ok()) return n.status();
  v1::SequenceCommand c;
  c.mutable_pause();
  return RunSequenceCommands(ctx, "name", n->sequence_id, req.request_id(), {c}, {});
}

absl::StatusOr<v1::SequenceResponse> Api::ResumeSequence(const Ctx& ctx,
                                                         const v1::ResumeSequenceRequest& req) {
  absl::StatusOr<SequenceName> n = ParseOwnSequence(ctx, req.name(), req.request_id());
  if (!n.ok()) return n.status();
  v1::SequenceCommand c;
  c.mutable_resume();
  return RunSequenceCommands(ctx, "name", n->sequence_id, req.request_id(), {c}, {});
}

absl::StatusOr<v1::ListSequenceTemplatesResponse> Api::ListSequenceTemplates(
    const Ctx& ctx, const v1::ListSequenceTemplatesRequest& req) {
  if (absl::Status s = CheckPageSize(req.page_size()); !s.ok()) return s;
  int start = 0;
  if (!req.page_token().empty()) {
    absl::StatusOr<std::string> t =
        signer_.Verify(ctx.company_id, "templates", req.page_token(), "page_token");
    if (!t.ok()) return t.status();
    if (!absl::SimpleAtoi(*t, &start) || start < 0) {
      return domain::InvalidField("page_token", "is not a token returned by this listing");
    }
  }
  absl::Span<const v1::SequenceTemplate> all = domain::TemplateCatalog();
  const int limit = PageSize(req.page_size(), 50, 500);
  v1::ListSequenceTemplatesResponse out;
  int i = start;
  for (; i < static_cast<int>(all.size()) && i < start + limit; ++i) *out.add_templates() = all[i];
  if (i < static_cast<int>(all.size())) {
    out.set_next_page_token(signer_.Sign(ctx.company_id, "templates", absl::StrCat(i)));
  }
  return out;
}

absl::StatusOr<v1::PreviewScheduleResponse> Api::PreviewSchedule(
    const Ctx& ctx, const v1::PreviewScheduleRequest& req) {
  absl::StatusOr<SequenceName> n = ParseSequenceName(req.name(), "name");
  if (!n.ok()) return n.status();
  if (n->company_id != ctx.company_id) return SequenceNotFound(n->sequence_id);
  if (req.max_impacts() < 0) return domain::InvalidField("max_impacts", "must not be negative");
  if (!req.time_zone().empty() && !domain::IsValidTimeZoneName(req.time_zone())) {
    return domain::InvalidField("time_zone", "is not an IANA time zone name");
  }
  if (absl::Status s = WaitForToken(ctx, req.consistency_token()); !s.ok()) return s;
  absl::StatusOr<domain::SequenceState> state = LoadOwnSequence(ctx, n->sequence_id);
  if (!state.ok()) return state.status();
  std::vector<v1::Step> steps = state->steps;
  if (req.has_proposed_steps()) {
    steps.assign(req.proposed_steps().begin(), req.proposed_steps().end());
    if (absl::Status s = domain::ValidateSteps(steps); !s.ok()) {
      return RemapFieldPaths(s, {{"steps", "proposed_steps"}});
    }
  }
  const std::string tz_name = !req.time_zone().empty() ? req.time_zone()
                              : state->settings.default_time_zone().empty()
                                  ? std::string("UTC")
                                  : state->settings.default_time_zone();
  // Microseconds, as the executor decides (its `now` and every due time are whole microseconds).
  const absl::Time now = absl::FromUnixMicros(absl::ToUnixMicros(clock_.Now()));
  const absl::Time start = req.has_start_time() ? domain::FromProto(req.start_time()) : now;
  v1::PreviewScheduleResponse out;
  *out.mutable_previewed_at() = domain::ToProto(now);
  for (v1::ScheduledStep& s :
       domain::PreviewSchedule(steps, state->settings, start, domain::LoadZoneOrUtc(tz_name))) {
    *out.add_schedule() = std::move(s);
  }
  if (req.has_proposed_steps()) {
    bool more = false;
    absl::StatusOr<std::vector<domain::EnrollmentState>> active = read_model_.ActiveEnrollments(
        n->sequence_id, PageSize(req.max_impacts(), 100, 1000), &more);
    if (!active.ok()) return active.status();
    for (const domain::EnrollmentState& e : *active) {
      *out.add_impacts() = domain::PreviewEdit(e, *state, steps, now);
    }
    out.set_impacts_truncated(more);
  }
  return out;
}

// ---------------------------------------------------------------- enrollments

namespace {

// The domain's enroll request for one API item; INVALID_ARGUMENT paths under `prefix`.
absl::StatusOr<v1::EnrollRequested> BuildEnrollRequested(const CallContext& ctx,
                                                         const std::string& sequence_id,
                                                         int64_t version,
                                                         const v1::EnrollItem& item,
                                                         const std::string& prefix) {
  domain::FieldViolations v;
  const std::string entity = EntityName(item.entity_kind());
  if (entity.empty()) v.Add(absl::StrCat(prefix, ".entity_kind"), "must be DEAL or LEAD");
  if (!IsValidId(item.item_id())) v.Add(absl::StrCat(prefix, ".item_id"), kIdRule);
  if (!item.owner_id().empty() && !IsValidUserId(item.owner_id())) {
    v.Add(absl::StrCat(prefix, ".owner_id"), kUserIdRule);
  }
  if (absl::Status s = CheckRequestId(item.request_id(), "request_id"); !s.ok()) {
    v.AddAllFrom(prefix, s);
  }
  if (!v.empty()) return v.ToStatus("invalid enroll request");
  v1::EnrollRequested r;
  r.set_request_id(item.request_id());
  r.set_sequence_id(sequence_id);
  r.set_sequence_version(version);
  r.set_item_key(absl::StrCat(ctx.company_id, "/", entity, "/", item.item_id()));
  r.set_entity_kind(item.entity_kind());
  r.set_owner_id(item.owner_id().empty() ? ctx.user_id : item.owner_id());
  *r.mutable_recipient() = item.recipient();
  *r.mutable_time_zones() = item.time_zones();
  *r.mutable_merge_data() = item.merge_data();
  r.set_requested_by(ctx.user_id);
  if (absl::Status s = domain::ValidateEnrollRequested(r); !s.ok()) {
    return RemapFieldPaths(s, {{"item_key", prefix + ".item_id"},
                               {"entity_kind", prefix + ".entity_kind"},
                               {"", prefix}});
  }
  return r;
}

std::string EnrollEventId(const v1::EnrollRequested& r) {
  return absl::StrCat("api/enroll/", domain::EnrollmentKey(r.item_key(), r.sequence_id()), "/",
                      r.request_id());
}

// The view of an enrollment right after its enroll request was written.
v1::Enrollment PendingView(const std::optional<EnrollmentRecord>& rec, const v1::EnrollRequested& r,
                           absl::Time now) {
  v1::Enrollment v;
  if (rec.has_value()) v = rec->view;
  v.set_name(EnrollmentResourceName(r.item_key(), r.sequence_id()));
  v.set_item_key(r.item_key());
  v.set_pending(true);
  if (!IsActive(v.status())) {
    v.set_owner_id(r.owner_id());
    *v.mutable_request_time() = domain::ToProto(now);
  }
  return v;
}

// CheckEnroll plus the read model's pending requests: a second request while one is pending
// would be rejected as already enrolled once the first starts.
absl::Status CheckEnrollWithPending(const std::optional<EnrollmentRecord>& rec,
                                    const v1::EnrollRequested& r,
                                    const domain::SequenceState& seq) {
  if (rec.has_value() && !rec->pending_request_ids.empty() &&
      rec->pending_request_ids.count(r.request_id()) == 0 && seq.exists && !seq.deleted) {
    return absl::AlreadyExistsError(
        absl::StrCat(r.item_key(), " has an enroll request pending in sequence ", r.sequence_id()));
  }
  domain::EnrollmentState empty;
  return domain::CheckEnroll(rec.has_value() ? rec->state : empty, r, seq);
}

// The enrollment as the executor's decision on `input` will leave it: the domain's decider run on
// the read model's state (the executor runs the same decider on its own state, so they differ only
// if another input about the enrollment arrives first). Unchanged if the decision is empty.
v1::Enrollment ProjectedView(const EnrollmentRecord& rec, const v1::Envelope& input,
                             const domain::SequenceState& seq, absl::Time now) {
  absl::StatusOr<domain::Decision> d = domain::DecideEnrollment(rec.state, input, seq, now);
  if (!d.ok() || d->executor_events.empty()) return rec.view;
  domain::EnrollmentState state = rec.state;
  for (const v1::Envelope& e : d->executor_events) {
    state = domain::EvolveEnrollment(std::move(state), e);
  }
  v1::Enrollment view = rec.view;
  FillEnrollmentView(state, &view);
  return view;
}

}  // namespace

absl::StatusOr<v1::EnrollmentResponse> Api::Enroll(const Ctx& ctx, const v1::EnrollRequest& req) {
  absl::StatusOr<SequenceName> n = ParseSequenceName(req.parent(), "parent");
  if (!n.ok()) return n.status();
  if (n->company_id != ctx.company_id) return SequenceNotFound(n->sequence_id);
  absl::StatusOr<v1::EnrollRequested> r =
      BuildEnrollRequested(ctx, n->sequence_id, 0, req.item(), "item");
  if (!r.ok()) return r.status();
  const std::string resource = EnrollmentResourceName(r->item_key(), r->sequence_id());

  const std::string key = domain::EnrollmentKey(r->item_key(), r->sequence_id());
  const std::vector<std::string> keys = {key, RequestKey(ctx, r->request_id())};
  StripeLocks locks(*this, keys);
  absl::StatusOr<EnrollmentLookup> lookup = LookupEnrollmentForMutation(
      ctx, r->item_key(), r->sequence_id(), r->request_id(), resource, "item.request_id");
  if (!lookup.ok()) return lookup.status();
  if (lookup->repeated.has_value()) return *std::move(lookup->repeated);
  const std::optional<EnrollmentRecord>* rec = &lookup->record;
  absl::StatusOr<domain::SequenceState> seq = LoadOwnSequence(ctx, n->sequence_id);
  if (!seq.ok()) return seq.status();
  r->set_sequence_version(seq->version);
  if (absl::Status s = CheckEnrollWithPending(*rec, *r, *seq); !s.ok()) {
    return RemapFieldPaths(s, {{"item_key", "item.item_id"}, {"", "item"}});
  }
  const absl::Time now = clock_.Now();
  v1::Envelope e =
      domain::MakeEnvelope(EnrollEventId(*r), ctx.company_id, now, "", r->request_id());
  *e.mutable_enroll_requested() = *r;
  absl::StatusOr<std::vector<LogPosition>> positions =
      Append(ctx, keys,
             {{.topic = options_.topics.enrollment_events,
               .key = r->item_key(),
               .value = e.SerializeAsString()}});
  if (!positions.ok()) return positions.status();
  v1::EnrollmentResponse reply;
  *reply.mutable_enrollment() = PendingView(*rec, *r, now);
  reply.set_consistency_token(ConsistencyToken(ctx, *positions));
  return reply;
}

absl::StatusOr<v1::BatchEnrollResponse> Api::BatchEnroll(const Ctx& ctx,
                                                         const v1::BatchEnrollRequest& req) {
  absl::StatusOr<SequenceName> n = ParseSequenceName(req.parent(), "parent");
  if (!n.ok()) return n.status();
  if (n->company_id != ctx.company_id) return SequenceNotFound(n->sequence_id);
  if (req.items_size() == 0) return domain::InvalidField("items", "must not be empty");
  if (req.items_size() > options_.max_batch_enroll) {
    return domain::InvalidField("items",
                                absl::StrCat("at most ", options_.max_batch_enroll, " per call"));
  }
  // Build every item first: their enrollment and request-id keys are what this call locks, so
  // concurrent retries of the batch (or of single Enrolls of its items) decide one at a time.
  std::vector<absl::StatusOr<v1::EnrollRequested>> built;
  std::vector<std::string> lock_keys = {n->sequence_id};
  for (int i = 0; i < req.items_size(); ++i) {
    built.push_back(
        BuildEnrollRequested(ctx, n->sequence_id, 0, req.items(i), absl::StrCat("items[", i, "]")));
    if (built.back().ok()) {
      lock_keys.push_back(domain::EnrollmentKey(built.back()->item_key(), n->sequence_id));
      lock_keys.push_back(RequestKey(ctx, built.back()->request_id()));
    }
  }
  StripeLocks locks(*this, lock_keys);
  // Read our own earlier writes about the sequence, every item and every request id.
  if (absl::Status s = WaitForOwnWrites(ctx, lock_keys); !s.ok()) return s;
  absl::StatusOr<domain::SequenceState> seq = LoadOwnSequence(ctx, n->sequence_id);
  if (!seq.ok()) return seq.status();

  v1::BatchEnrollResponse out;
  const absl::Time now = clock_.Now();
  std::vector<kafka::Record> records;
  std::vector<int> record_item;                       // records[i] enrolls results[record_item[i]]
  std::vector<std::vector<std::string>> record_keys;  // and is about these consistency keys
  std::set<std::string> keys_in_batch;
  std::map<std::string, std::string> request_ids_in_batch;  // request id -> enrollment key
  for (int i = 0; i < req.items_size(); ++i) {
    v1::BatchEnrollResult* result = out.add_results();
    result->set_index(i);
    auto refuse = [&](const absl::Status& s) { *result->mutable_status() = ToRpcStatus(s); };
    absl::StatusOr<v1::EnrollRequested>& r = built[i];
    if (!r.ok()) {
      refuse(r.status());
      continue;
    }
    r->set_sequence_version(seq->version);
    const std::string key = domain::EnrollmentKey(r->item_key(), r->sequence_id());
    const std::string resource = EnrollmentResourceName(r->item_key(), r->sequence_id());
    auto [in_batch, first_use] = request_ids_in_batch.try_emplace(r->request_id(), key);
    if (!first_use && in_batch->second != key) {
      refuse(domain::InvalidField(absl::StrCat("items[", i, "].request_id"),
                                  "is used for another item of this batch"));
      continue;
    }
    absl::StatusOr<std::optional<RequestRecord>> seen =
        read_model_.LookupRequest(ctx.company_id, r->request_id());
    absl::StatusOr<std::optional<EnrollmentRecord>> rec =
        read_model_.LoadEnrollment(r->item_key(), r->sequence_id());
    if (!seen.ok() || !rec.ok()) {
      refuse(!seen.ok() ? seen.status() : rec.status());
      continue;
    }
    if (seen->has_value()) {
      if ((*seen)->resource != resource) {
        refuse(domain::InvalidField(absl::StrCat("items[", i, "].request_id"),
                                    "was already used for another request"));
      } else if (rec->has_value()) {
        *result->mutable_enrollment() = (*rec)->view;
      }
      continue;
    }
    if (!keys_in_batch.insert(key).second) {
      refuse(absl::AlreadyExistsError(
          absl::StrCat(r->item_key(), " appears more than once in this batch")));
      continue;
    }
    if (absl::Status s = CheckEnrollWithPending(*rec, *r, *seq); !s.ok()) {
      refuse(RemapFieldPaths(s, {{"item_key", absl::StrCat("items[", i, "].item_id")},
                                 {"", absl::StrCat("items[", i, "]")}}));
      continue;
    }
    v1::Envelope e =
        domain::MakeEnvelope(EnrollEventId(*r), ctx.company_id, now, "", r->request_id());
    *e.mutable_enroll_requested() = *r;
    records.push_back({.topic = options_.topics.enrollment_events,
                       .key = r->item_key(),
                       .value = e.SerializeAsString()});
    record_item.push_back(i);
    record_keys.push_back({key, RequestKey(ctx, r->request_id())});
    *result->mutable_enrollment() = PendingView(*rec, *r, now);
  }
  std::vector<absl::StatusOr<LogPosition>> written = AppendEach(ctx, records, record_keys);
  std::vector<LogPosition> positions;
  for (size_t k = 0; k < written.size(); ++k) {
    v1::BatchEnrollResult* result = out.mutable_results(record_item[k]);
    if (!written[k].ok()) {
      result->clear_enrollment();
      *result->mutable_status() = ToRpcStatus(written[k].status());
      continue;
    }
    positions.push_back(*written[k]);
  }
  int accepted = 0;
  for (const v1::BatchEnrollResult& r : out.results()) accepted += r.status().code() == 0;
  out.set_accepted_count(accepted);
  out.set_consistency_token(ConsistencyToken(ctx, positions));
  return out;
}

absl::StatusOr<v1::EnrollmentResponse> Api::RunEnrollmentAction(
    const Ctx& ctx, EnrollmentAction action, const std::string& name, const std::string& request_id,
    const std::string& note, const std::string& task_id,
    const google::protobuf::Timestamp* complete_time, const v1::UpdateEnrollmentDataRequest* data) {
  absl::StatusOr<EnrollmentName> n = ParseEnrollmentName(name, "name");
  if (!n.ok()) return n.status();
  if (n->company_id != ctx.company_id) {
    return absl::NotFoundError(absl::StrCat("enrollment ", name, " not found"));
  }
  if (absl::Status s = CheckRequestId(request_id, "request_id"); !s.ok()) return s;
  if (action == EnrollmentAction::kActivityCompleted && task_id.empty()) {
    return domain::InvalidField("task_id", "is required");
  }
  if (action == EnrollmentAction::kUpdateData) {
    if (data->merge_data().empty() && !data->has_recipient()) {
      return domain::InvalidField("merge_data", "is required unless a recipient is given");
    }
    for (const auto& [field, value] : data->merge_data()) {
      if (field.empty()) return domain::InvalidField("merge_data", "keys must not be empty");
    }
  }
  const std::string item_key = n->ItemKey();
  const std::string resource = EnrollmentResourceName(item_key, n->sequence_id);
  const std::string key = domain::EnrollmentKey(item_key, n->sequence_id);
  const std::vector<std::string> keys = {key, RequestKey(ctx, request_id)};
  StripeLocks locks(*this, keys);
  absl::StatusOr<EnrollmentLookup> lookup = LookupEnrollmentForMutation(
      ctx, item_key, n->sequence_id, request_id, resource, "request_id");
  if (!lookup.ok()) return lookup.status();
  if (lookup->repeated.has_value()) return *std::move(lookup->repeated);
  const std::optional<EnrollmentRecord>* rec = &lookup->record;
  absl::StatusOr<domain::SequenceState> seq = LoadOwnSequence(ctx, n->sequence_id);
  if (!seq.ok()) return seq.status();
  if (!rec->has_value() ||
      ((*rec)->state.enrollment_id.empty() && (*rec)->pending_request_ids.empty())) {
    return absl::NotFoundError(absl::StrCat("enrollment ", name, " not found"));
  }
  const EnrollmentRecord& r = **rec;
  const bool pending = !r.pending_request_ids.empty();
  const bool active = IsActive(r.state.status);
  v1::ItemInSequence target;
  target.set_item_key(item_key);
  target.set_sequence_id(n->sequence_id);
  const absl::Time now = clock_.Now();
  v1::Envelope e;
  auto refuse = [&](absl::string_view what) {
    return absl::FailedPreconditionError(absl::StrCat(
        "enrollment ", name, " is ", v1::EnrollmentStatus_Name(r.state.status), ": ", what));
  };
  switch (action) {
    case EnrollmentAction::kRemove:
      if (!active && !pending && r.state.status != v1::ENROLLMENT_STATUS_FAILED) {
        return refuse("only an active or failed enrollment can be removed");
      }
      *e.mutable_remove_requested()->mutable_target() = target;
      e.mutable_remove_requested()->set_requested_by(ctx.user_id);
      break;
    case EnrollmentAction::kPause:
      if (!active && !pending) return refuse("only an active enrollment can be paused");
      *e.mutable_pause_requested()->mutable_target()->mutable_item_in_sequence() = target;
      e.mutable_pause_requested()->set_requested_by(ctx.user_id);
      e.mutable_pause_requested()->set_note(note);
      break;
    case EnrollmentAction::kResume:
      if (!active && !pending) return refuse("only an active enrollment can be resumed");
      *e.mutable_resume_requested()->mutable_target()->mutable_item_in_sequence() = target;
      e.mutable_resume_requested()->set_requested_by(ctx.user_id);
      break;
    case EnrollmentAction::kRetry:
      if (r.state.status != v1::ENROLLMENT_STATUS_FAILED) {
        return refuse("only a failed enrollment can be retried");
      }
      *e.mutable_retry_requested()->mutable_target() = target;
      e.mutable_retry_requested()->set_requested_by(ctx.user_id);
      break;
    case EnrollmentAction::kActivityCompleted: {
      if (!active || r.state.waiting_task_id != task_id) {
        return absl::FailedPreconditionError(
            absl::StrCat("enrollment ", name, " is not waiting for task ", task_id,
                         r.state.waiting_task_id.empty()
                             ? std::string()
                             : absl::StrCat(" (it waits for ", r.state.waiting_task_id, ")")));
      }
      v1::ActivityCompleted* a = e.mutable_activity_completed();
      a->set_task_id(task_id);
      a->set_item_key(item_key);
      a->set_sequence_id(n->sequence_id);
      a->set_enrollment_id(r.state.enrollment_id);
      a->set_step_id(r.state.waiting_step_id);
      *a->mutable_completed_at() = complete_time != nullptr && complete_time->seconds() > 0
                                       ? *complete_time
                                       : domain::ToProto(now);
      break;
    }
    case EnrollmentAction::kUpdateData: {
      if (!active && r.state.status != v1::ENROLLMENT_STATUS_FAILED) {
        return refuse("only an in-progress, paused or failed enrollment can be updated");
      }
      v1::MergeDataUpdated* m = e.mutable_merge_data_updated();
      m->set_item_key(item_key);
      m->set_sequence_id(n->sequence_id);
      *m->mutable_merge_data() = data->merge_data();
      if (data->has_recipient()) *m->mutable_recipient() = data->recipient();
      break;
    }
  }
  v1::Envelope header = domain::MakeEnvelope(
      absl::StrCat("api/", domain::PayloadName(e), "/",
                   domain::EnrollmentKey(item_key, n->sequence_id), "/", request_id),
      ctx.company_id, now, "", request_id);
  header.MergeFrom(e);
  absl::StatusOr<std::vector<LogPosition>> positions =
      Append(ctx, keys,
             {{.topic = options_.topics.enrollment_events,
               .key = item_key,
               .value = header.SerializeAsString()}});
  if (!positions.ok()) return positions.status();
  v1::EnrollmentResponse reply;
  *reply.mutable_enrollment() = ProjectedView(r, header, *seq, now);
  reply.set_consistency_token(ConsistencyToken(ctx, *positions));
  return reply;
}

absl::StatusOr<v1::EnrollmentResponse> Api::RemoveEnrollment(
    const Ctx& ctx, const v1::EnrollmentActionRequest& req) {
  return RunEnrollmentAction(ctx, EnrollmentAction::kRemove, req.name(), req.request_id(), "", "",
                             nullptr);
}
absl::StatusOr<v1::EnrollmentResponse> Api::PauseEnrollment(
    const Ctx& ctx, const v1::EnrollmentActionRequest& req) {
  return RunEnrollmentAction(ctx, EnrollmentAction::kPause, req.name(), req.request_id(),
                             req.note(), "", nullptr);
}
absl::StatusOr<v1::EnrollmentResponse> Api::ResumeEnrollment(
    const Ctx& ctx, const v1::EnrollmentActionRequest& req) {
  return RunEnrollmentAction(ctx, EnrollmentAction::kResume, req.name(), req.request_id(), "", "",
                             nullptr);
}
absl::StatusOr<v1::EnrollmentResponse> Api::RetryEnrollment(
    const Ctx& ctx, const v1::EnrollmentActionRequest& req) {
  return RunEnrollmentAction(ctx, EnrollmentAction::kRetry, req.name(), req.request_id(), "", "",
                             nullptr);
}
absl::StatusOr<v1::EnrollmentResponse> Api::ReportActivityCompleted(
    const Ctx& ctx, const v1::ReportActivityCompletedRequest& req) {
  return RunEnrollmentAction(ctx, EnrollmentAction::kActivityCompleted, req.name(),
                             req.request_id(), "", req.task_id(), &req.complete_time());
}

absl::StatusOr<v1::EnrollmentResponse> Api::UpdateEnrollmentData(
    const Ctx& ctx, const v1::UpdateEnrollmentDataRequest& req) {
  return RunEnrollmentAction(ctx, EnrollmentAction::kUpdateData, req.name(), req.request_id(), "",
                             "", nullptr, &req);
}

absl::StatusOr<v1::Enrollment> Api::GetEnrollment(const Ctx& ctx,
                                                  const v1::GetEnrollmentRequest& req) {
  absl::StatusOr<EnrollmentName> n = ParseEnrollmentName(req.name(), "name");
  if (!n.ok()) return n.status();
  const absl::Status not_found =
      absl::NotFoundError(absl::StrCat("enrollment ", req.name(), " not found"));
  if (n->company_id != ctx.company_id) return not_found;
  if (absl::Status s = WaitForToken(ctx, req.consistency_token()); !s.ok()) return s;
  absl::StatusOr<std::optional<EnrollmentRecord>> rec =
      read_model_.LoadEnrollment(n->ItemKey(), n->sequence_id);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value()) return not_found;
  return (*rec)->view;
}

absl::StatusOr<v1::ListEnrollmentsResponse> Api::ListEnrollments(
    const Ctx& ctx, const v1::ListEnrollmentsRequest& req) {
  EnrollmentFilter f;
  const std::string all_suffix = "/sequences/-";
  if (absl::EndsWith(req.parent(), all_suffix)) {
    absl::StatusOr<std::string> c =
        ParseCompanyName(req.parent().substr(0, req.parent().size() - all_suffix.size()), "parent");
    if (!c.ok()) return c.status();
    if (*c != ctx.company_id)
      return absl::NotFoundError(absl::StrCat("company ", *c, " not found"));
    if (req.owner_id().empty()) {
      return domain::InvalidField("owner_id", "is required when listing across sequences");
    }
    f.company_id = *c;
  } else {
    absl::StatusOr<SequenceName> n = ParseSequenceName(req.parent(), "parent");
    if (!n.ok()) return n.status();
    if (n->company_id != ctx.company_id) return SequenceNotFound(n->sequence_id);
    f.company_id = n->company_id;
    f.sequence_id = n->sequence_id;
  }
  if (absl::Status s = CheckPageSize(req.page_size()); !s.ok()) return s;
  f.status = req.status();
  f.owner_id = req.owner_id();
  f.pending_only = req.pending_only();
  const std::string listing = absl::StrCat("enrollments/", req.parent(), "/", req.status(), "/",
                                           req.owner_id(), "/", req.pending_only());
  std::string after;
  if (!req.page_token().empty()) {
    absl::StatusOr<std::string> t =
        signer_.Verify(ctx.company_id, listing, req.page_token(), "page_token");
    if (!t.ok()) return t.status();
    after = *t;
  }
  if (absl::Status s = WaitForToken(ctx, req.consistency_token()); !s.ok()) return s;
  if (!f.sequence_id.empty()) {
    absl::StatusOr<domain::SequenceState> seq = LoadOwnSequence(ctx, f.sequence_id);
    if (!seq.ok()) return seq.status();
  }
  const int limit = PageSize(req.page_size(), 50, 1000);
  std::string last_key;
  absl::StatusOr<std::vector<v1::Enrollment>> list =
      read_model_.ListEnrollments(f, after, limit, &last_key);
  if (!list.ok()) return list.status();
  v1::ListEnrollmentsResponse out;
  for (v1::Enrollment& e : *list) *out.add_enrollments() = std::move(e);
  if (static_cast<int>(out.enrollments_size()) == limit) {
    // Another page may exist; an empty last page is possible (as the design guide allows).
    out.set_next_page_token(signer_.Sign(ctx.company_id, listing, last_key));
  }
  return out;
}

absl::StatusOr<v1::EnrollmentOverview> Api::GetEnrollmentOverview(
    const Ctx& ctx, const v1::GetEnrollmentOverviewRequest& req) {
  absl::StatusOr<SequenceName> n = ParseSequenceName(req.parent(), "parent");
  if (!n.ok()) return n.status();
  if (n->company_id != ctx.company_id) return SequenceNotFound(n->sequence_id);
  if (absl::Status s = WaitForToken(ctx, req.consistency_token()); !s.ok()) return s;
  absl::StatusOr<domain::SequenceState> seq = LoadOwnSequence(ctx, n->sequence_id);
  if (!seq.ok()) return seq.status();
  absl::StatusOr<v1::EnrollmentOverview> o = read_model_.Overview(n->sequence_id);
  if (!o.ok()) return o.status();
  o->set_sequence(req.parent());
  return o;
}

absl::StatusOr<v1::UserEnrollmentsResponse> Api::UserEnrollments(
    const Ctx& ctx, bool pause, const v1::UserEnrollmentsRequest& req) {
  absl::StatusOr<std::string> c = ParseCompanyName(req.parent(), "parent");
  if (!c.ok()) return c.status();
  if (*c != ctx.company_id) return absl::NotFoundError(absl::StrCat("company ", *c, " not found"));
  if (!IsValidUserId(req.user_id())) return domain::InvalidField("user_id", kUserIdRule);
  if (absl::Status s = CheckRequestId(req.request_id(), "request_id"); !s.ok()) return s;
  const std::string resource = absl::StrCat("companies/", *c, "/users/", req.user_id());
  const std::vector<std::string> keys = {resource, RequestKey(ctx, req.request_id())};
  StripeLocks locks(*this, keys);
  if (absl::Status s = WaitForOwnWrites(ctx, keys); !s.ok()) return s;
  absl::StatusOr<std::optional<RequestRecord>> seen =
      read_model_.LookupRequest(ctx.company_id, req.request_id());
  if (!seen.ok()) return seen.status();
  if (seen->has_value()) {
    if ((*seen)->resource != resource) {
      return domain::InvalidField("request_id", "was already used for another request");
    }
    v1::UserEnrollmentsResponse reply;
    reply.set_consistency_token(ConsistencyToken(ctx, **seen));
    return reply;
  }
  const int partitions = read_model_.PartitionCount(options_.topics.enrollment_events);
  if (partitions <= 0) return absl::UnavailableError("enrollment-events partitions unknown");
  const absl::Time now = clock_.Now();
  std::vector<kafka::Record> records;
  // One record per partition: every executor instance sees it for the enrollments it owns.
  for (int32_t p = 0; p < partitions; ++p) {
    v1::Envelope e = domain::MakeEnvelope(absl::StrCat("api/", pause ? "pause" : "resume", "-user/",
                                                       resource, "/", req.request_id(), "/", p),
                                          ctx.company_id, now, "", req.request_id());
    if (pause) {
      e.mutable_pause_requested()->mutable_target()->set_owner_id(req.user_id());
      e.mutable_pause_requested()->set_requested_by(ctx.user_id);
      e.mutable_pause_requested()->set_note(req.note());
    } else {
      e.mutable_resume_requested()->mutable_target()->set_owner_id(req.user_id());
      e.mutable_resume_requested()->set_requested_by(ctx.user_id);
    }
    records.push_back({.topic = options_.topics.enrollment_events,
                       .key = absl::StrCat(*c, "/user/", req.user_id()),
                       .value = e.SerializeAsString(),
                       .partition = p});
  }
  absl::StatusOr<std::vector<LogPosition>> positions = Append(ctx, keys, records);
  if (!positions.ok()) return positions.status();
  v1::UserEnrollmentsResponse reply;
  reply.set_consistency_token(ConsistencyToken(ctx, *positions));
  return reply;
}

// ---------------------------------------------------------------- item inputs (CRM, mailer)

namespace {

// The item key of an item of the caller's company, named by `parent` ("companies/{c}"), entity
// kind and item id; violations are added to `v` (fields of the request).
absl::StatusOr<std::string> OwnItemKey(const CallContext& ctx, const std::string& parent,
                                       v1::EntityKind kind, const std::string& item_id,
                                       domain::FieldViolations& v) {
  absl::StatusOr<std::string> company = ParseCompanyName(parent, "parent");
  if (!company.ok()) return company.status();
  if (*company != ctx.company_id) {
    return absl::NotFoundError(absl::StrCat("company ", *company, " not found"));
  }
  const std::string entity = EntityName(kind);
  if (entity.empty()) v.Add("entity_kind", "must be DEAL or LEAD");
  if (!IsValidId(item_id)) v.Add("item_id", kIdRule);
  // Built from the caller's company, never from anything the caller names.
  return absl::StrCat(ctx.company_id, "/", entity, "/", item_id);
}

}  // namespace

absl::StatusOr<v1::ItemInputResponse> Api::AppendItemInput(const Ctx& ctx,
                                                           const std::string& item_key,
                                                           const std::string& sequence_id,
                                                           const std::string& request_id,
                                                           const v1::Envelope& input) {
  const std::string resource = sequence_id.empty() ? ItemResourceName(item_key)
                                                   : EnrollmentResourceName(item_key, sequence_id);
  const std::string key = sequence_id.empty() ? absl::StrCat("item\x1f", item_key)
                                              : domain::EnrollmentKey(item_key, sequence_id);
  const std::vector<std::string> keys = {key, RequestKey(ctx, request_id)};
  StripeLocks locks(*this, keys);
  if (absl::Status s = WaitForOwnWrites(ctx, keys); !s.ok()) return s;
  v1::ItemInputResponse reply;
  reply.set_item(ItemResourceName(item_key));
  absl::StatusOr<std::optional<RequestRecord>> seen =
      read_model_.LookupRequest(ctx.company_id, request_id);
  if (!seen.ok()) return seen.status();
  if (seen->has_value()) {
    if ((*seen)->resource != resource) {
      return domain::InvalidField("request_id", "was already used for another request");
    }
    reply.set_consistency_token(ConsistencyToken(ctx, **seen));
    return reply;
  }
  if (!sequence_id.empty()) {
    absl::StatusOr<domain::SequenceState> seq = LoadOwnSequence(ctx, sequence_id);
    if (!seq.ok()) return seq.status();
  }
  const absl::Time now = clock_.Now();
  v1::Envelope e = domain::MakeEnvelope(
      absl::StrCat("api/", domain::PayloadName(input), "/",
                   sequence_id.empty() ? item_key : domain::EnrollmentKey(item_key, sequence_id),
                   "/", request_id),
      ctx.company_id, now, "", request_id);
  e.MergeFrom(input);
  absl::StatusOr<std::vector<LogPosition>> positions =
      Append(ctx, keys,
             {{.topic = options_.topics.enrollment_events,
               .key = item_key,
               .value = e.SerializeAsString()}});
  if (!positions.ok()) return positions.status();
  reply.set_consistency_token(ConsistencyToken(ctx, *positions));
  return reply;
}

absl::StatusOr<v1::ItemInputResponse> Api::ReportItemOutcome(
    const Ctx& ctx, const v1::ReportItemOutcomeRequest& req) {
  domain::FieldViolations v;
  absl::StatusOr<std::string> item_key =
      OwnItemKey(ctx, req.parent(), req.entity_kind(), req.item_id(), v);
  if (!item_key.ok()) return item_key.status();
  switch (req.outcome()) {
    case v1::ITEM_OUTCOME_KIND_DEAL_WON:
    case v1::ITEM_OUTCOME_KIND_DEAL_LOST:
      if (req.entity_kind() == v1::ENTITY_KIND_LEAD) v.Add("outcome", "is an outcome of deals");
      break;
    case v1::ITEM_OUTCOME_KIND_LEAD_CONVERTED:
      if (req.entity_kind() == v1::ENTITY_KIND_DEAL) v.Add("outcome", "is an outcome of leads");
      break;
    case v1::ITEM_OUTCOME_KIND_ITEM_DELETED:
      break;
    default:
      v.Add("outcome", "must be DEAL_WON, DEAL_LOST, LEAD_CONVERTED or ITEM_DELETED");
  }
  v.AddAllFrom("", CheckRequestId(req.request_id(), "request_id"));
  if (!v.empty()) return v.ToStatus("invalid outcome report");
  v1::Envelope e;
  e.mutable_item_outcome()->set_item_key(*item_key);
  e.mutable_item_outcome()->set_kind(req.outcome());
  return AppendItemInput(ctx, *item_key, "", req.request_id(), e);
}

absl::StatusOr<v1::ItemInputResponse> Api::ReportEmailEvent(
    const Ctx& ctx, bool bounced, const v1::ReportEmailEventRequest& req) {
  domain::FieldViolations v;
  absl::StatusOr<std::string> item_key =
      OwnItemKey(ctx, req.parent(), req.entity_kind(), req.item_id(), v);
  if (!item_key.ok()) return item_key.status();
  std::string sequence_id;
  if (!req.sequence().empty()) {
    absl::StatusOr<SequenceName> n = ParseSequenceName(req.sequence(), "sequence");
    if (!n.ok()) return n.status();
    if (n->company_id != ctx.company_id) return SequenceNotFound(n->sequence_id);
    sequence_id = n->sequence_id;
  }
  if (!bounced && !req.detail().empty()) v.Add("detail", "is for bounces only");
  v.AddAllFrom("", CheckRequestId(req.request_id(), "request_id"));
  if (!v.empty()) return v.ToStatus("invalid email report");
  v1::Envelope e;
  if (bounced) {
    v1::EmailBounced* b = e.mutable_email_bounced();
    b->set_item_key(*item_key);
    b->set_sequence_id(sequence_id);
    b->set_idempotency_key(req.email_idempotency_key());
    b->set_detail(req.detail());
  } else {
    v1::EmailReplied* r = e.mutable_email_replied();
    r->set_item_key(*item_key);
    r->set_sequence_id(sequence_id);
    r->set_idempotency_key(req.email_idempotency_key());
  }
  return AppendItemInput(ctx, *item_key, sequence_id, req.request_id(), e);
}

absl::StatusOr<v1::ItemInputResponse> Api::ReportEmailReplied(
    const Ctx& ctx, const v1::ReportEmailEventRequest& req) {
  return ReportEmailEvent(ctx, false, req);
}
absl::StatusOr<v1::ItemInputResponse> Api::ReportEmailBounced(
    const Ctx& ctx, const v1::ReportEmailEventRequest& req) {
  return ReportEmailEvent(ctx, true, req);
}

absl::StatusOr<v1::UserEnrollmentsResponse> Api::PauseUserEnrollments(
    const Ctx& ctx, const v1::UserEnrollmentsRequest& req) {
  return UserEnrollments(ctx, true, req);
}
absl::StatusOr<v1::UserEnrollmentsResponse> Api::ResumeUserEnrollments(
    const Ctx& ctx, const v1::UserEnrollmentsRequest& req) {
  return UserEnrollments(ctx, false, req);
}

}  // namespace sequences::api
