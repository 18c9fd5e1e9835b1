#include "services/sequence-api/email_template_commands.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/domain/email_templates.h"
#include "libs/domain/errors.h"
#include "services/sequence-api/call_checks.h"
#include "services/sequence-api/rpc_status.h"

namespace sequences::api {
namespace {

absl::Status TemplateNotFound(const std::string& template_id) {
  return absl::NotFoundError(absl::StrCat("email template ", template_id, " not found"));
}

// The template named by `name`, or INVALID_ARGUMENT naming `field`; NOT_FOUND unless it is of
// the caller's company.
absl::StatusOr<EmailTemplateName> ParseOwnTemplate(const CallContext& ctx, const std::string& name,
                                                   absl::string_view field) {
  absl::StatusOr<EmailTemplateName> n = ParseEmailTemplateName(name, field);
  if (!n.ok()) return n.status();
  if (n->company_id != ctx.company_id) return TemplateNotFound(n->template_id);
  return n;
}

v1::EmailTemplateContent ContentOf(const v1::EmailTemplate& t) {
  v1::EmailTemplateContent c;
  c.set_name(t.display_name());
  c.set_subject(t.subject());
  c.set_body(t.body());
  c.set_body_is_html(t.body_is_html());
  return c;
}

bool Has(const std::vector<std::string>& paths, const std::string& path) {
  return std::find(paths.begin(), paths.end(), path) != paths.end();
}

}  // namespace

absl::StatusOr<v1::EmailTemplateResponse> EmailTemplateCommands::Run(
    const Ctx& ctx, const std::string& template_id, const std::string& request_id,
    v1::EmailTemplateCommand command, const std::vector<std::string>& update_paths) {
  OwnWrites::Mutation m(own_writes_, ctx, {template_id}, {request_id});
  if (absl::Status s = m.AwaitOwnWrites(); !s.ok()) return s;
  absl::StatusOr<std::optional<RequestRecord>> seen = m.PriorRequest(
      request_id, EmailTemplateResourceName(ctx.company_id, template_id), "request_id");
  if (!seen.ok()) return seen.status();
  absl::StatusOr<domain::EmailTemplateState> loaded =
      ports_.read_model.LoadEmailTemplateState(template_id);
  if (!loaded.ok()) return loaded.status();
  domain::EmailTemplateState state = std::move(*loaded);
  if (seen->has_value()) {
    if (!state.exists) return absl::InternalError("request seen but email template missing");
    v1::EmailTemplateResponse reply;
    *reply.mutable_email_template() = EmailTemplateView(state);
    reply.set_consistency_token(ports_.ConsistencyToken(ctx, **seen));
    return reply;
  }
  const bool create = command.has_create();
  if (!create && (!state.exists || state.company_id != ctx.company_id)) {
    return TemplateNotFound(template_id);
  }
  if (command.has_update() && !update_paths.empty()) {
    // The fields the mask leaves out keep the template's current values.
    v1::EmailTemplateContent* c = command.mutable_update();
    if (!Has(update_paths, "display_name")) c->set_name(state.content.name());
    if (!Has(update_paths, "subject")) c->set_subject(state.content.subject());
    if (!Has(update_paths, "body")) c->set_body(state.content.body());
    if (!Has(update_paths, "body_is_html")) c->set_body_is_html(state.content.body_is_html());
  }
  command.set_company_id(ctx.company_id);
  command.set_template_id(template_id);
  command.set_request_id(request_id);
  command.set_actor_user_id(ctx.user_id);
  absl::StatusOr<std::vector<v1::Envelope>> decided =
      domain::DecideEmailTemplate(state, command, ports_.clock.Now());
  if (!decided.ok()) {
    return RemapFieldPaths(decided.status(), {{"create.name", "email_template.display_name"},
                                              {"update.name", "email_template.display_name"},
                                              {"create", "email_template"},
                                              {"update", "email_template"}});
  }
  v1::EmailTemplateResponse reply;
  if (!decided->empty()) {
    std::vector<kafka::Record> records;
    for (v1::Envelope& e : *decided) {
      e.set_request_digest(ctx.request_digest);
      state = domain::EvolveEmailTemplate(std::move(state), e);
      records.push_back({.topic = ports_.options.topics.sequence_events,
                         .key = template_id,
                         .value = e.SerializeAsString()});
    }
    absl::StatusOr<std::vector<LogPosition>> positions = m.Append(records);
    if (!positions.ok()) return positions.status();
    // Another API instance may have written the same version first: the fold keeps the first
    // event of a version, so the write is acknowledged only once the read model shows it kept
    // this one (as sequence_commands.cc does).
    if (!ports_.read_model.WaitFor(*positions, ports_.ReadDeadline(ctx))) {
      return absl::UnavailableError(
          "the update is durable but the read model has not confirmed it yet; retry with the "
          "same request_id");
    }
    for (size_t i = 0; i < decided->size(); ++i) {
      int64_t version = 0;
      domain::GetEmailTemplateEventKey((*decided)[i], nullptr, &version);
      absl::StatusOr<std::optional<std::string>> kept =
          ports_.read_model.EmailTemplateEventAt(template_id, version);
      if (!kept.ok()) return kept.status();
      if (!kept->has_value() || **kept != records[i].value) {
        return absl::AbortedError(absl::StrCat("email template ", template_id,
                                               " was changed by another writer at the same "
                                               "time; read it again and retry"));
      }
    }
    reply.set_consistency_token(ports_.ConsistencyToken(ctx, *positions));
  }
  *reply.mutable_email_template() = EmailTemplateView(state);
  return reply;
}

absl::StatusOr<v1::EmailTemplateResponse> EmailTemplateCommands::Create(
    const Ctx& ctx, const v1::CreateEmailTemplateRequest& req) {
  absl::StatusOr<std::string> company = ParseOwnCompany(ctx, req.parent(), "parent");
  if (!company.ok()) return company.status();
  if (absl::Status s = CheckRequestId(req.request_id(), "request_id"); !s.ok()) return s;
  v1::EmailTemplateCommand command;
  *command.mutable_create() = ContentOf(req.email_template());
  return Run(ctx, DeriveEmailTemplateId(ctx.company_id, req.request_id()), req.request_id(),
             std::move(command));
}

absl::StatusOr<v1::EmailTemplateResponse> EmailTemplateCommands::Update(
    const Ctx& ctx, const v1::UpdateEmailTemplateRequest& req) {
  absl::StatusOr<EmailTemplateName> name =
      ParseOwnTemplate(ctx, req.email_template().name(), "email_template.name");
  if (!name.ok()) return name.status();
  if (absl::Status s = CheckRequestId(req.request_id(), "request_id"); !s.ok()) return s;
  std::vector<std::string> paths;
  for (const std::string& path : req.update_mask().paths()) {
    if (path != "display_name" && path != "subject" && path != "body" && path != "body_is_html") {
      return domain::InvalidField(
          "update_mask", absl::StrCat("unknown or immutable field \"", path,
                                      "\" (allowed: display_name, subject, body, body_is_html)"));
    }
    paths.push_back(path);
  }
  v1::EmailTemplateCommand command;
  *command.mutable_update() = ContentOf(req.email_template());
  command.set_expected_version(req.expected_version());
  return Run(ctx, name->template_id, req.request_id(), std::move(command), paths);
}

absl::StatusOr<v1::EmailTemplateResponse> EmailTemplateCommands::Delete(
    const Ctx& ctx, const v1::DeleteEmailTemplateRequest& req) {
  absl::StatusOr<EmailTemplateName> name = ParseOwnTemplate(ctx, req.name(), "name");
  if (!name.ok()) return name.status();
  if (absl::Status s = CheckRequestId(req.request_id(), "request_id"); !s.ok()) return s;
  v1::EmailTemplateCommand command;
  command.mutable_delete_();
  command.set_expected_version(req.expected_version());
  return Run(ctx, name->template_id, req.request_id(), std::move(command));
}

absl::StatusOr<v1::EmailTemplate> EmailTemplateCommands::Get(
    const Ctx& ctx, const v1::GetEmailTemplateRequest& req) {
  absl::StatusOr<EmailTemplateName> name = ParseOwnTemplate(ctx, req.name(), "name");
  if (!name.ok()) return name.status();
  if (absl::Status s = ports_.WaitForConsistencyToken(ctx, req.consistency_token()); !s.ok())
    return s;
  absl::StatusOr<std::optional<v1::EmailTemplate>> t =
      ports_.read_model.GetEmailTemplate(name->template_id);
  if (!t.ok()) return t.status();
  // The stored view names its own company: an id of another company's template is NOT_FOUND.
  if (!t->has_value() || (*t)->name() != req.name()) return TemplateNotFound(name->template_id);
  return **t;
}

absl::StatusOr<v1::ListEmailTemplatesResponse> EmailTemplateCommands::List(
    const Ctx& ctx, const v1::ListEmailTemplatesRequest& req) {
  absl::StatusOr<std::string> company = ParseOwnCompany(ctx, req.parent(), "parent");
  if (!company.ok()) return company.status();
  if (absl::Status s = CheckPageSize(req.page_size()); !s.ok()) return s;
  const std::string listing = absl::StrCat("email-templates/", *company, "/", req.show_deleted());
  absl::StatusOr<std::string> page_start = ports_.PageStart(ctx, listing, req.page_token());
  if (!page_start.ok()) return page_start.status();
  const std::string& after = *page_start;
  if (absl::Status s = ports_.WaitForConsistencyToken(ctx, req.consistency_token()); !s.ok())
    return s;
  const int limit = PageSize(req.page_size(), 50, 500);
  absl::StatusOr<std::vector<v1::EmailTemplate>> found =
      ports_.read_model.ListEmailTemplates(*company, after, limit + 1, req.show_deleted());
  if (!found.ok()) return found.status();
  v1::ListEmailTemplatesResponse out;
  for (int i = 0; i < static_cast<int>(found->size()) && i < limit; ++i) {
    *out.add_email_templates() = (*found)[i];
  }
  if (static_cast<int>(found->size()) > limit) {
    absl::StatusOr<EmailTemplateName> last =
        ParseEmailTemplateName((*found)[limit - 1].name(), "name");
    if (last.ok()) {
      out.set_next_page_token(ports_.signer.Sign(ctx.company_id, listing, last->template_id));
    }
  }
  return out;
}

}  // namespace sequences::api
