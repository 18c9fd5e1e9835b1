#include "libs/domain/email_templates.h"

#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/domain/envelope.h"
#include "libs/domain/errors.h"
#include "libs/domain/validation.h"

namespace sequences::domain {
namespace {

constexpr size_t kMaxTemplateIdLength = 128;

std::string TemplateEventId(const std::string& template_id, int64_t version) {
  return absl::StrCat(template_id, "@", version);
}

// The NOT_FOUND status with the violations of `v` as its BadRequest payload.
absl::Status NotFoundWith(const FieldViolations& v, const std::string& message) {
  const absl::Status invalid = v.ToStatus(message);
  absl::Status s(absl::StatusCode::kNotFound, invalid.message());
  if (auto payload = invalid.GetPayload(kBadRequestTypeUrl)) {
    s.SetPayload(kBadRequestTypeUrl, *payload);
  }
  return s;
}

}  // namespace

bool GetEmailTemplateEventKey(const v1::Envelope& event, std::string* template_id,
                              int64_t* version) {
  auto set = [&](const auto& p) {
    if (template_id != nullptr) *template_id = p.template_id();
    if (version != nullptr) *version = p.version();
    return true;
  };
  switch (event.payload_case()) {
    case v1::Envelope::kEmailTemplateCreated:
      return set(event.email_template_created());
    case v1::Envelope::kEmailTemplateUpdated:
      return set(event.email_template_updated());
    case v1::Envelope::kEmailTemplateDeleted:
      return set(event.email_template_deleted());
    default:
      return false;
  }
}

absl::StatusOr<std::vector<v1::Envelope>> DecideEmailTemplate(
    const EmailTemplateState& state, const v1::EmailTemplateCommand& command, absl::Time now) {
  const std::string& id = command.template_id();
  if (id.empty()) return InvalidField("template_id", "is required");
  if (!state.template_id.empty() && state.template_id != id) {
    return absl::InvalidArgumentError("command is for another template than the state");
  }
  const bool create = command.command_case() == v1::EmailTemplateCommand::kCreate;
  if (command.command_case() == v1::EmailTemplateCommand::COMMAND_NOT_SET) {
    return InvalidField("command", "one command must be set");
  }
  if (create && state.exists) {
    return absl::AlreadyExistsError(absl::StrCat("email template ", id, " already exists"));
  }
  if (!create && (!state.exists || state.company_id != command.company_id())) {
    return absl::NotFoundError(absl::StrCat("email template ", id, " not found"));
  }
  if (!create && state.deleted) {
    return absl::FailedPreconditionError(absl::StrCat("email template ", id, " is deleted"));
  }
  if (command.expected_version() > 0 && command.expected_version() != state.version) {
    return absl::AbortedError(absl::StrCat("email template ", id, " is at version ", state.version,
                                           ", not ", command.expected_version()));
  }
  const int64_t version = state.version + 1;
  v1::Envelope e = MakeEnvelope(TemplateEventId(id, version), command.company_id(), now, "",
                                command.request_id());
  switch (command.command_case()) {
    case v1::EmailTemplateCommand::kCreate: {
      FieldViolations v;
      if (command.company_id().empty()) v.Add("company_id", "is required");
      v.AddAllFrom("create", ValidateEmailTemplateContent(command.create()));
      if (!v.empty()) return v.ToStatus("invalid email template");
      const v1::EmailTemplateContent& c = command.create();
      v1::EmailTemplateCreated* p = e.mutable_email_template_created();
      p->set_template_id(id);
      p->set_version(version);
      p->set_name(c.name());
      p->set_subject(c.subject());
      p->set_body(c.body());
      p->set_body_is_html(c.body_is_html());
      p->set_created_by(command.actor_user_id());
      break;
    }
    case v1::EmailTemplateCommand::kUpdate: {
      FieldViolations v;
      v.AddAllFrom("update", ValidateEmailTemplateContent(command.update()));
      if (!v.empty()) return v.ToStatus("invalid email template");
      const v1::EmailTemplateContent& c = command.update();
      if (c.SerializeAsString() == state.content.SerializeAsString()) {
        return std::vector<v1::Envelope>{};  // nothing changes: no new version
      }
      v1::EmailTemplateUpdated* p = e.mutable_email_template_updated();
      p->set_template_id(id);
      p->set_version(version);
      p->set_name(c.name());
      p->set_subject(c.subject());
      p->set_body(c.body());
      p->set_body_is_html(c.body_is_html());
      p->set_changed_by(command.actor_user_id());
      break;
    }
    case v1::EmailTemplateCommand::kDelete: {
      v1::EmailTemplateDeleted* p = e.mutable_email_template_deleted();
      p->set_template_id(id);
      p->set_version(version);
      p->set_deleted_by(command.actor_user_id());
      break;
    }
    default:
      return InvalidField("command", "unknown command");
  }
  return std::vector<v1::Envelope>{std::move(e)};
}

EmailTemplateState EvolveEmailTemplate(EmailTemplateState state, const v1::Envelope& event) {
  std::string id;
  int64_t version = 0;
  if (!GetEmailTemplateEventKey(event, &id, &version)) return state;
  if (!state.template_id.empty() && state.template_id != id) return state;
  if (version <= state.version) return state;  // duplicate or stale redelivery
  const absl::Time at = FromProto(event.occurred_at());
  state.version = version;
  state.updated_at = at;
  auto content = [](const auto& p) {
    v1::EmailTemplateContent c;
    c.set_name(p.name());
    c.set_subject(p.subject());
    c.set_body(p.body());
    c.set_body_is_html(p.body_is_html());
    return c;
  };
  switch (event.payload_case()) {
    case v1::Envelope::kEmailTemplateCreated:
      state.exists = true;
      state.template_id = id;
      state.company_id = event.company_id();
      state.content = content(event.email_template_created());
      state.created_at = at;
      break;
    case v1::Envelope::kEmailTemplateUpdated:
      state.content = content(event.email_template_updated());
      break;
    case v1::Envelope::kEmailTemplateDeleted:
      state.deleted = true;
      break;
    default:
      break;
  }
  return state;
}

std::vector<std::string> EmailTemplateIdsOf(absl::Span<const v1::Step> steps) {
  std::vector<std::string> ids;
  std::set<std::string> seen;
  for (const v1::Step& step : steps) {
    if (!step.has_email() || step.email().email_template_id().empty()) continue;
    if (seen.insert(step.email().email_template_id()).second) {
      ids.push_back(step.email().email_template_id());
    }
  }
  return ids;
}

absl::StatusOr<std::vector<v1::Step>> CopyEmailTemplatesIntoSteps(
    absl::Span<const v1::Step> steps, absl::Span<const v1::Step> current_steps,
    const std::map<std::string, EmailTemplateState>& templates, const std::string& company_id) {
  std::vector<v1::Step> out(steps.begin(), steps.end());
  FieldViolations not_found, invalid;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!out[i].has_email()) continue;
    v1::EmailStep* email = out[i].mutable_email();
    const std::string& id = email->email_template_id();
    if (id.empty()) {
      email->set_email_template_version(0);
      continue;
    }
    const std::string path = absl::StrCat("steps[", i, "].email");
    if (id.size() > kMaxTemplateIdLength) {
      invalid.Add(path + ".email_template_id",
                  absl::StrCat("must be 1 to ", kMaxTemplateIdLength, " bytes"));
      continue;
    }
    if (!email->variants().empty()) {
      invalid.Add(path + ".email_template_id",
                  "cannot be combined with variants (each variant has its own text)");
      continue;
    }
    auto it = templates.find(id);
    if (it == templates.end() || !it->second.exists || it->second.company_id != company_id ||
        it->second.deleted) {
      not_found.Add(path + ".email_template_id",
                    absl::StrCat("email template ", id, " not found (unknown or deleted)"));
      continue;
    }
    const v1::EmailTemplateContent& t = it->second.content;
    const v1::EmailStep* copy = nullptr;  // the stored copy of this step, if any
    for (const v1::Step& current : current_steps) {
      if (current.id() == out[i].id() && current.has_email() &&
          current.email().email_template_id() == id) {
        copy = &current.email();
      }
    }
    // Each text must be empty, the template's current one, or the stored copy's.
    auto hand_written = [](const std::string& sent, const std::string& from_template,
                           const std::string* from_copy) {
      return !sent.empty() && sent != from_template && (from_copy == nullptr || sent != *from_copy);
    };
    bool refused = false;
    for (const auto& [field, sent, from_template, from_copy] :
         {std::tuple<const char*, const std::string*, const std::string*, const std::string*>{
              ".subject", &email->subject(), &t.subject(),
              copy == nullptr ? nullptr : &copy->subject()},
          {".body", &email->body(), &t.body(), copy == nullptr ? nullptr : &copy->body()}}) {
      if (!hand_written(*sent, *from_template, from_copy)) continue;
      invalid.Add(path + field,
                  "must be empty when email_template_id is set: the template's text is copied in "
                  "(clear email_template_id to give the step its own text)");
      refused = true;
    }
    if (refused) continue;
    email->set_subject(t.subject());
    email->set_body(t.body());
    email->set_body_is_html(t.body_is_html());
    email->set_email_template_version(it->second.version);
  }
  if (!not_found.empty()) {
    return NotFoundWith(not_found, "a step references an email template that does not exist");
  }
  if (!invalid.empty()) return invalid.ToStatus("invalid email template reference");
  return out;
}

}  // namespace sequences::domain
