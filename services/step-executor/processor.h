#ifndef SEQUENCES_SERVICES_STEP_EXECUTOR_PROCESSOR_H_
#define SEQUENCES_SERVICES_STEP_EXECUTOR_PROCESSOR_H_

// The executor's deciding half, without Kafka: given input records, sequence events and the due
// index, call the domain deciders, stage the resulting executor events in an Overlay (so later
// decisions of the same batch see them) and collect every record the batch must produce.
// The Kafka loop (executor.h) wraps one Processor; unit tests drive it directly with a simulated
// clock's `now`.
//
// Thread-compatible: used by the loop thread only.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/min_gap.h"
#include "libs/domain/send_limits.h"
#include "libs/domain/sequence.h"
#include "libs/kafka/types.h"
#include "libs/service/topics.h"
#include "services/step-executor/state.h"

namespace sequences::executor {

// Everything one batch produces, in the order it must be produced.
struct BatchOutput {
  std::vector<kafka::Record> records;
  // executor-events partitions this batch writes to.
  std::set<int32_t> executor_partitions;
  int steps_fired = 0;
  // steps_fired by the effect the step had: "task", "email", or "none".
  std::map<std::string, int> steps_fired_by_kind;
  int dead_lettered = 0;
  // Automatic emails the sender stage deferred (send limit or window) / released after a wait.
  int emails_deferred = 0;
  int emails_released = 0;
  // Of emails_deferred: those the person stage deferred for the minimum gap (docs/min-gap.md).
  int emails_deferred_min_gap = 0;
  // Fire time minus due time of each step executed by the timer.
  std::vector<absl::Duration> lateness;
  // Due-index entries FireDue visited (at its `max`, more may be due: a backlog of timers).
  int due_visited = 0;
  bool empty() const { return records.empty(); }
  void Clear() { *this = BatchOutput(); }
};

// Dead-letter header names.
inline constexpr char kHeaderReason[] = "reason";
inline constexpr char kHeaderTopic[] = "topic";
inline constexpr char kHeaderPartition[] = "partition";
inline constexpr char kHeaderOffset[] = "offset";

class Processor {
 public:
  using OwnedFn = std::function<bool(int32_t partition)>;

  Processor(StateStore& store, service::Topics topics)
      : store_(store), topics_(std::move(topics)) {}

  // (Re)loads every sequence from the store, dropping unflushed folds (after an aborted batch).
  absl::Status LoadSequences();
  // The current state of a sequence (default: does not exist).
  const domain::SequenceState& Sequence(const std::string& id) const;
  int SequenceCount() const { return static_cast<int>(sequences_.size()); }

  // Folds one sequence-events record into the sequence it names and stages it in `overlay`.
  // When it is an event that concerns enrollments, decides it for every enrollment of the
  // sequence on an owned partition. A record that does not decode goes to dead-letter.
  absl::Status OnSequenceRecord(const kafka::Message& m, const OwnedFn& owned, absl::Time now,
                                Overlay& overlay, BatchOutput& out);

  enum class InputResult {
    kDone,      // decided (or dead-lettered): its offset may be committed
    kDeferred,  // its sequence (version) is not known yet: keep it and retry later
  };
  // Decides one enrollment-events record for every enrollment it addresses (all on partition
  // m.partition). `force`: decide even if the sequence is not ready (the defer timeout passed).
  absl::StatusOr<InputResult> OnInputRecord(const kafka::Message& m, bool force, absl::Time now,
                                            Overlay& overlay, BatchOutput& out);

  // Fires the due-index entries from *scan_from up to due time `now` on owned partitions, at most
  // `max` entries visited. Updates *scan_from to where the next scan may start: past the visited
  // entries, never past one that still has to fire.
  absl::Status FireDue(absl::Time now, const OwnedFn& owned, int max, DuePosition* scan_from,
                       Overlay& overlay, BatchOutput& out);
  // Fires the steps this batch made due at or before `now` (an enrollment whose first step has
  // no delay, say) on owned partitions, in the same batch: each enrollment staged in `overlay`
  // whose next due time changed in this batch (so FireDue's scan of the stored index cannot
  // see it) and is not later than `now` fires once, as FireDue would fire it from the index in
  // the next batch, without the index entry's write, its delete and a second load. Call after
  // FireDue. A step that cannot be decided yet stays staged for the index, where FireDue finds
  // it again.
  absl::Status FireStaged(absl::Time now, const OwnedFn& owned, Overlay& overlay, BatchOutput& out);

  // The earliest due time on an owned partition from `from` on, or nullopt if there is none.
  // Looks at up to `max` entries: if all of them are on partitions owned by others (state kept
  // from an earlier assignment), returns the last one's due time, when the caller must scan on.
  absl::StatusOr<std::optional<absl::Time>> NextDue(const DuePosition& from, const OwnedFn& owned,
                                                    int max);

  // Stages the events of `decision` for the enrollment on `partition`: folds the executor events
  // into `overlay` and appends every record to `out`.
  void Emit(const domain::Decision& decision, int32_t partition, Overlay& overlay,
            BatchOutput& out);

  // Plans every sender and person stage that received requests, cancels or notices in this batch
  // (OnInputRecord only queues them here; so does every record this batch writes to a stage this
  // instance owns, see SetLocalStage), once per stage and round, so requests that arrive together
  // are released fairly; again while the decisions write to owned stages (a person stage's
  // forward, the sender's notice back). Call after the batch's inputs and again after FireDue.
  absl::Status FlushSenders(absl::Time now, Overlay& overlay, BatchOutput& out);

  // Where a stage key's records may be decided in the batch that writes them (docs/send-limits.md,
  // "Deciding in the writer's batch"): the enrollment-events partition the key lands on, when this
  // instance owns it now (recovered, fenced with the batch's offsets); nullopt otherwise. Without
  // one (the default) every such record is decided when it is consumed, as before.
  using LocalStageFn = std::function<std::optional<int32_t>(const std::string& stage_key)>;
  void SetLocalStage(LocalStageFn local_stage) { local_stage_ = std::move(local_stage); }
  // Forgets the requests of a batch that was not flushed (an aborted batch).
  void DiscardPending() { arrivals_.clear(); }

  // The sender stage's decision for its queue with the new requests, as `runs`
  // (Overlay::SenderRuns), at `now`: which to release and the next release instant as stored
  // (in the future, whole microseconds). Reads the runs only as far as it decides
  // (domain::PlanReleasesInRuns). Replay's dry run decides recorded entries again with it.
  struct SenderPlan {
    domain::ReleasePlan plan;
    std::optional<absl::Time> next;
  };
  static SenderPlan PlanSender(const domain::SenderState& state, std::vector<domain::SendRun> runs,
                               const domain::SendLimits& limits, absl::Time now);

  // The company's send limits in force (the defaults when it never set them).
  domain::SendLimits LimitsFor(const std::string& company_id) const;
  // The company's sending settings as set (empty when it never set them).
  const v1::CompanySendingSettings& SettingsFor(const std::string& company_id) const;
  // The version of those settings (0: never set); recorded in each stage's ledger entry.
  int64_t SettingsVersionOf(const std::string& company_id) const;

  // The person stage's decision (docs/min-gap.md) for `queue` (the person's queue with the new
  // requests, less the cancelled) given the last send and whether one is in flight: which to
  // forward and the next look instant as stored (in the future, whole microseconds). Replay's
  // dry run decides recorded entries again with it.
  struct PersonPlan {
    domain::TouchPlan plan;
    std::optional<absl::Time> next;
  };
  static PersonPlan PlanPerson(
      const std::optional<absl::Time>& last_sent, bool in_flight,
      const std::map<std::string, const v1::SendRequested*>& queue,
      const std::function<domain::Calendar(const v1::SendRequested&)>& calendar, absl::Duration gap,
      absl::Time now);

  // A dead-letter record for `m` with `reason`.
  kafka::Record DeadLetter(const kafka::Message& m, absl::string_view reason) const;

 private:
  struct SequenceEntry {
    domain::SequenceState state;
    std::vector<std::string> events;
  };
  // Decides `input` for `keys`; all or nothing: UNAVAILABLE from any key defers the whole input.
  absl::StatusOr<InputResult> DecideForKeys(const v1::Envelope& input,
                                            const std::vector<std::string>& keys,
                                            const std::function<bool(const Overlay::Entry&)>& want,
                                            int32_t partition_if_new, bool force, absl::Time now,
                                            Overlay& overlay, BatchOutput& out,
                                            absl::Status* invalid);

  // ---- the sender stage (docs/send-limits.md) ----
  struct Arrival {
    v1::SendRequested request;
    std::optional<v1::SendCancelled> cancel;  // set: a SendCancelled (request unset)
    std::optional<v1::SendOutcome> notice;    // set: a sender stage's notice to a person stage
    std::string cause_id;
    int32_t partition = -1;
  };
  // SendRequested and SendCancelled inputs of this batch by sender key, in input order
  // (FlushSenders plans them).
  std::map<std::string, std::vector<Arrival>> arrivals_;
  // The due-index entry of a sender or person stage at `due` (unless the batch already moved it):
  // a sender releases what the limits allow now, a person forwards the next email if the gap
  // allows it now.
  absl::Status FireStage(const DueEntry& d, absl::Time now, Overlay& overlay, BatchOutput& out);
  // Fires `e`'s step due at `due` (its NextDueAt) at `now`. False: not decidable yet (its
  // sequence is not folded), nothing emitted.
  bool FireStep(Overlay::Entry& e, absl::Time due, absl::Time now, Overlay& overlay,
                BatchOutput& out);
  // Plans the sender's queue plus `arrived` (less the cancelled requests still queued) at `now`
  // and stages the ledger entry, the released emails and the outcomes for the enrollments.
  absl::Status DecideSender(const std::string& sender_key, const std::vector<Arrival>& arrived,
                            const std::string& cause_id, int32_t partition, absl::Time now,
                            Overlay& overlay, BatchOutput& out);
  // ---- the person stage (docs/min-gap.md) ----
  // Applies `arrived` (requests, cancels, the sender stage's notices) to the person's state, plans
  // it at `now` and stages the ledger entry, the forwarded request and the outcomes.
  absl::Status DecidePerson(const std::string& person_key, const std::vector<Arrival>& arrived,
                            const std::string& cause_id, int32_t partition, absl::Time now,
                            Overlay& overlay, BatchOutput& out);
  // The company's gap got shorter (or 0): decides again every person stage of the company on an
  // owned partition that has emails waiting, at `now` under the new gap.
  absl::Status ReplanPersons(const std::string& company_id, int64_t version, const OwnedFn& owned,
                             absl::Time now, Overlay& overlay, BatchOutput& out);
  domain::Calendar CalendarOf(const v1::SendRequested& r) const;
  // Sends `e` (a SendRequested or a notice to a person stage) to the stage of key `key`: when
  // this instance owns the key's partition, queues it for this batch's FlushSenders and writes
  // no record (its ledger entry keeps it); otherwise writes it to enrollment-events under `key`.
  void ToStage(const std::string& key, v1::Envelope e, BatchOutput& out);

  StateStore& store_;
  service::Topics topics_;
  LocalStageFn local_stage_;
  std::map<std::string, SequenceEntry> sequences_;
  // Company sending settings by company id (stored in the sequences column family under
  // "company:<id>", so they are reloaded and rebuilt like sequences).
  std::map<std::string, domain::CompanySendingState> companies_;
  std::map<std::string, std::vector<std::string>> company_events_;  // by "company:<id>"
};

}  // namespace sequences::executor

#endif  // SEQUENCES_SERVICES_STEP_EXECUTOR_PROCESSOR_H_
