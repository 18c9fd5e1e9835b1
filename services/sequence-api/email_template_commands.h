#ifndef SEQUENCES_SERVICES_SEQUENCE_API_EMAIL_TEMPLATE_COMMANDS_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_EMAIL_TEMPLATE_COMMANDS_H_

// The email templates of a company (create, get, list, update, delete): each mutation becomes a
// domain EmailTemplateCommand, decided with domain::DecideEmailTemplate against the read model's
// state of the template under the template's lock (own_writes.h), appended to sequence-events
// (key: the template id) and answered once durable AND kept by the read model's fold, exactly as
// sequence commands (sequence_commands.h): idempotent by request id, ABORTED on an
// expected_version mismatch or when another writer's event of the same version came first.
//
// Tenancy: a template of another company is NOT_FOUND, as an unknown one.
// Errors: as api.h; INVALID_ARGUMENT field paths are those of the API request
// ("email_template.subject", "update_mask").
// Thread-safety: all methods may be called concurrently.

#include <string>

#include "absl/status/statusor.h"
#include "sequences/v1/commands.pb.h"
#include "sequences/v1/sequence_service.pb.h"
#include "services/sequence-api/call_context.h"
#include "services/sequence-api/own_writes.h"

namespace sequences::api {

class EmailTemplateCommands {
 public:
  // REQUIRES: both outlive this.
  EmailTemplateCommands(const Ports& ports, OwnWrites& own_writes)
      : ports_(ports), own_writes_(own_writes) {}

  using Ctx = CallContext;
  absl::StatusOr<v1::EmailTemplateResponse> Create(const Ctx&,
                                                   const v1::CreateEmailTemplateRequest&);
  absl::StatusOr<v1::EmailTemplateResponse> Update(const Ctx&,
                                                   const v1::UpdateEmailTemplateRequest&);
  absl::StatusOr<v1::EmailTemplateResponse> Delete(const Ctx&,
                                                   const v1::DeleteEmailTemplateRequest&);
  absl::StatusOr<v1::EmailTemplate> Get(const Ctx&, const v1::GetEmailTemplateRequest&);
  absl::StatusOr<v1::ListEmailTemplatesResponse> List(const Ctx&,
                                                      const v1::ListEmailTemplatesRequest&);

 private:
  // Runs `command` on template `template_id` of the caller's company. `update_paths`: for an
  // update, which content fields the caller set (the rest come from the state under the lock).
  absl::StatusOr<v1::EmailTemplateResponse> Run(const Ctx& ctx, const std::string& template_id,
                                                const std::string& request_id,
                                                v1::EmailTemplateCommand command,
                                                const std::vector<std::string>& update_paths = {});

  const Ports& ports_;
  OwnWrites& own_writes_;
};

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_EMAIL_TEMPLATE_COMMANDS_H_
