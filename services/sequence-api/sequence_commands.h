#ifndef SEQUENCES_SERVICES_SEQUENCE_API_SEQUENCE_COMMANDS_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_SEQUENCE_COMMANDS_H_

// The sequence commands of the API (create, update, delete, automated sending, consent, pause,
// resume): email steps that name an email template get its text copied in first (create, and
// update of steps: docs/email-templates.md); each becomes domain SequenceCommands, decided with
// domain::DecideSequence against the read model's state of the sequence under the sequence's lock
// (own_writes.h), appended to sequence-events and answered once durable AND kept by the read
// model's fold.
//
// Concurrent writers of one sequence in other API instances: the fold keeps the first event of
// each version in log order, so a write that lost the race is ABORTED (the caller got no OK,
// nothing acknowledged is lost) and the caller reads again and retries.
//
// Errors: as api.h; INVALID_ARGUMENT field paths are those of the API request.
// Thread-safety: all methods may be called concurrently.

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/domain/sequence.h"
#include "sequences/v1/sequence_service.pb.h"
#include "services/sequence-api/call_context.h"
#include "services/sequence-api/own_writes.h"

namespace sequences::api {

class SequenceCommands {
 public:
  // REQUIRES: both outlive this.
  SequenceCommands(const Ports& ports, OwnWrites& own_writes)
      : ports_(ports), own_writes_(own_writes) {}

  using Ctx = CallContext;
  absl::StatusOr<v1::SequenceResponse> Create(const Ctx&, const v1::CreateSequenceRequest&);
  absl::StatusOr<v1::SequenceResponse> Update(const Ctx&, const v1::UpdateSequenceRequest&);
  absl::StatusOr<v1::SequenceResponse> Delete(const Ctx&, const v1::DeleteSequenceRequest&);
  absl::StatusOr<v1::SequenceResponse> SwitchAutomatedSending(
      const Ctx&, const v1::SwitchAutomatedSendingRequest&);
  absl::StatusOr<v1::SequenceResponse> GrantSendingConsent(const Ctx&,
                                                           const v1::GrantSendingConsentRequest&);
  absl::StatusOr<v1::SequenceResponse> RevokeSendingConsent(const Ctx&,
                                                            const v1::RevokeSendingConsentRequest&);
  absl::StatusOr<v1::SequenceResponse> Pause(const Ctx&, const v1::PauseSequenceRequest&);
  absl::StatusOr<v1::SequenceResponse> Resume(const Ctx&, const v1::ResumeSequenceRequest&);
  // The company's sending settings (docs/send-limits.md): one CompanySendingSettingsChanged on
  // sequence-events, key "company:<c>", the next version; a lost race for the version is ABORTED.
  absl::StatusOr<v1::CompanySendingSettingsResponse> SetCompanySendingSettings(
      const Ctx&, const v1::SetCompanySendingSettingsRequest&);

 private:
  using PathMap = std::vector<std::pair<std::string, std::string>>;
  // Fills what a command takes from the current state, under the sequence's lock (and after a
  // retried request id was answered); an error refuses the call (paths as the domain's).
  using CompleteCommands =
      std::function<absl::Status(const domain::SequenceState&, std::vector<v1::SequenceCommand>&)>;
  // Runs the commands (create included) as one mutation of the sequence and answers with the
  // sequence after them; a request id seen before answers the current sequence again.
  // `path_map` rewrites the domain's field paths to the request's.
  absl::StatusOr<v1::SequenceResponse> Run(const Ctx& ctx, const std::string& sequence_id,
                                           const std::string& request_id,
                                           std::vector<v1::SequenceCommand> commands,
                                           const PathMap& path_map,
                                           const CompleteCommands& complete = {});
  // One command on a named sequence of the caller's company (name field "name").
  absl::StatusOr<v1::SequenceResponse> RunOnNamed(const Ctx& ctx, const std::string& name,
                                                  const std::string& request_id,
                                                  v1::SequenceCommand command,
                                                  const PathMap& path_map = {});
  // OK if the read model kept these appended sequence events (records[i] is events[i]) as their
  // versions; ABORTED if another writer's events of the same versions came first; UNAVAILABLE if
  // the read model did not confirm in time.
  absl::Status CheckAppendsWon(const Ctx& ctx, const std::string& sequence_id,
                               const std::vector<v1::Envelope>& events,
                               const std::vector<kafka::Record>& records,
                               const std::vector<LogPosition>& positions);

  const Ports& ports_;
  OwnWrites& own_writes_;
};

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_SEQUENCE_COMMANDS_H_
