#ifndef SEQUENCES_LIBS_DOMAIN_ROUTING_H_
#define SEQUENCES_LIBS_DOMAIN_ROUTING_H_

// Envelope classification and enrollment keys: what kind of event an envelope carries, and which
// enrollment (or enrollments) it is about. The one home for every reader of the topics: the
// executor (routing inputs to the enrollment states it owns), the API's read model (folding inputs
// and executor events per enrollment) and the publisher contract (contract.h).
//
// Payload ranges of v1::Envelope (events.proto), one topic each:
//   100       Ping
//   110..199  sequence events    (sequence-events)
//   200..299  enrollment inputs  (enrollment-events)
//   300..399  executor events    (executor-events; the fold of an enrollment's state)
//   400..499  effects            (task-events, email-events)
//
// Keys: EnrollmentKey(item_key, sequence_id) = "<item_key>#<sequence_id>". Item keys are
// "company/entity/item"; a prefix scan on "<item_key>#" finds every enrollment of an item.
// Enrollment ids are "<item_key>#<sequence_id>#<ordinal>" (ordinal from 1).
//
// Pure: no IO, no clock reads.

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "libs/domain/sequence.h"
#include "sequences/v1/events.pb.h"

namespace sequences::domain {

enum class EventKind { kNone, kPing, kSequenceEvent, kEnrollmentInput, kExecutorEvent, kEffect };
// By payload range (above); kNone for an envelope without a payload.
EventKind KindOf(const v1::Envelope& envelope);
inline bool IsSequenceEvent(const v1::Envelope& e) {
  return KindOf(e) == EventKind::kSequenceEvent;
}
inline bool IsEnrollmentInput(const v1::Envelope& e) {
  return KindOf(e) == EventKind::kEnrollmentInput;
}
inline bool IsExecutorEvent(const v1::Envelope& e) {
  return KindOf(e) == EventKind::kExecutorEvent;
}

// "<item_key>#<sequence_id>".
std::string EnrollmentKey(absl::string_view item_key, absl::string_view sequence_id);

// Which enrollment states an input record addresses.
struct InputRoute {
  enum class Scope {
    kNone,            // not an enrollment input: ignore (e.g. a Ping, an executor event)
    kItemInSequence,  // EnrollmentKey(item_key, sequence_id)
    kItem,            // every enrollment of item_key
    kSequence,        // every enrollment of sequence_id (sequence lifecycle events)
    kOwner,           // every enrollment whose owner_id is owner_id
    // No enrollment: the sender stage of sender_key (SendRequested/Cancelled, internal), or the
    // person stage when sender_key is a person key (min_gap.h: a SendRequested or SendCancelled
    // with person_key and not gap_cleared, or a SendOutcome to_person_stage).
    kSender,
  };
  Scope scope = Scope::kNone;
  std::string item_key;
  std::string sequence_id;
  std::string owner_id;
  std::string sender_key;
};
// How the executor calls the decider (enrollment.h) for one input record: once per addressed
// enrollment state it owns (for kItem: every "<item_key>#" key; for kSequence: every enrollment
// of the sequence; for kOwner: every enrollment whose owner_id matches), in key order, passing the
// state of that key (a default-constructed EnrollmentState when the key has none yet, for an
// enroll request).
InputRoute RouteInput(const v1::Envelope& input);

// The sequence version an input needs before it can be decided (EnrollRequested's
// sequence_version), or nullopt. If SequenceReadyFor is false the executor must defer the input
// (keep it and retry after folding more sequence events), not decide it: deciding early would
// reject a valid request.
std::optional<int64_t> RequiredSequenceVersion(const v1::Envelope& input);
bool SequenceReadyFor(const SequenceState& sequence, const v1::Envelope& input);

// The enrollment an executor event is about: its EnrollmentRef, or nullptr for EnrollmentRejected
// (which names item and sequence only) and for events that are not executor events.
const v1::EnrollmentRef* ExecutorEventRef(const v1::Envelope& event);
// The item and sequence of an executor event (EnrollmentRejected included), or nullopt for events
// that are not executor events.
struct ItemInSequence {
  std::string item_key;
  std::string sequence_id;
};
std::optional<ItemInSequence> ExecutorEventTarget(const v1::Envelope& event);
// EnrollmentKey of ExecutorEventTarget, or nullopt.
std::optional<std::string> ExecutorEventKey(const v1::Envelope& event);

}  // namespace sequences::domain

#endif  // SEQUENCES_LIBS_DOMAIN_ROUTING_H_
