#ifndef SEQUENCES_LIBS_DOMAIN_SEQUENCE_H_
#define SEQUENCES_LIBS_DOMAIN_SEQUENCE_H_

// The Sequence aggregate: a decider over SequenceCommand and a fold over sequence events.
//
//   events = DecideSequence(state, command, now)   // refuses with a canonical status
//   state  = EvolveSequence(state, event)          // never fails
//
// Key: the sequence id (topic sequences.sequence-events). Each event carries version =
// previous + 1 (creation = 1); event ids are "<sequence_id>@<version>", so the same command
// decided again against the same state yields the same ids.
//
// Pure: no IO, no clock reads; thread-compatible value types.

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sequences/v1/commands.pb.h"
#include "sequences/v1/events.pb.h"
#include "sequences/v1/sequence.pb.h"

namespace sequences::domain {

struct SequenceState {
  // False until SequenceCreated was folded.
  bool exists = false;
  std::string sequence_id;
  std::string company_id;
  std::string name;
  std::string owner_id;
  std::string template_id;
  v1::EntityKind entity_kind = v1::ENTITY_KIND_UNSPECIFIED;
  std::vector<v1::Step> steps;
  v1::SequenceSettings settings;
  bool automated_sending = false;
  // Users who authorized automated and delegated sending for this sequence.
  std::set<std::string> consented_users;
  bool paused = false;
  bool deleted = false;
  // Version of the last folded event (0 = none).
  int64_t version = 0;
  absl::Time created_at = absl::UnixEpoch();
  absl::Time updated_at = absl::UnixEpoch();

  // Index of the step with `id`, or -1.
  int StepIndex(absl::string_view id) const;
  bool HasConsent(absl::string_view user_id) const {
    return consented_users.count(std::string(user_id)) > 0;
  }
};

// Decides a command against the current state. On success returns the events to append, in
// order, each with version state.version+1, +2, ... (empty when the command changes nothing, e.g.
// pausing a paused sequence: idempotent repeats are not errors).
//
// Errors:
//   INVALID_ARGUMENT  malformed command or definition (BadRequest payload, paths relative to the
//                     command, e.g. "create.steps[2].delay.amount", "template_id").
//   ALREADY_EXISTS    create of a sequence id that exists (deleted or not).
//   NOT_FOUND         any other command on a sequence that does not exist.
//   FAILED_PRECONDITION  command on a deleted sequence.
//   ABORTED           expected_version > 0 and != state.version (re-read and retry).
//   PERMISSION_DENIED grant_consent for another user than the actor (consent is personal).
[[nodiscard]] absl::StatusOr<std::vector<v1::Envelope>> DecideSequence(
    const SequenceState& state, const v1::SequenceCommand& command, absl::Time now);

// Folds one event. Events that are not sequence events, or are for another sequence id (when the
// state has one), leave the state unchanged. Versions: an event whose version is <= state.version
// is a duplicate or stale redelivery and is ignored; a gap (version > state.version + 1) is
// applied anyway, since the log is the truth, and state.version becomes the event's version.
SequenceState EvolveSequence(SequenceState state, const v1::Envelope& event);

// The sequence id and version of a sequence event; false if `event` is not one.
bool GetSequenceEventKey(const v1::Envelope& event, std::string* sequence_id, int64_t* version);

// "<sequence_id>@<version>": the id of the sequence event with that version.
std::string SequenceEventId(absl::string_view sequence_id, int64_t version);

}  // namespace sequences::domain

#endif  // SEQUENCES_LIBS_DOMAIN_SEQUENCE_H_
