#ifndef SEQUENCES_SERVICES_STEP_EXECUTOR_STATE_H_
#define SEQUENCES_SERVICES_STEP_EXECUTOR_STATE_H_

// The executor's RocksDB projection: what it keeps, how it is keyed, and the staging area a batch
// writes into before it is committed as one WriteBatch.
//
// Column families (all values are ours; none is shared with another service):
//   enrollments  key EnrollmentKey ("<item_key>#<sequence_id>") -> EnrollmentRecord: the
//                executor-events partition and every executor event of that key, in log order
//                (state = EvolveEnrollment folded over them; the events ARE the state).
//   sequences    key sequence id -> every sequence event of that id, in log order.
//   due          key DueKey(due_at, enrollment key) -> 4-byte big-endian partition.
//   by_sequence  key "<sequence_id>\0<enrollment key>" -> "" (enrollments of a sequence).
//   by_owner     key "<owner_id>\0<enrollment key>" -> "" (enrollments of an owner).
//   senders      key SenderKey ("<company>/sender/<user>") -> v1::SenderSnapshot: one sender's send
//                counters and queue (docs/send-limits.md), the fold of its SendLedgerEntry
//                executor events; its next release is in `due` under the sender key. A sender's
//                waiting requests are in `send_queue`, not in this value (so a batch reads and
//                writes only what it decides on, however long the queue). Person stages
//                (PersonKey, docs/min-gap.md) are kept here too, their queue (one person's
//                emails: short) in the value.
//   send_queue   a sender's waiting requests, keyed (docs/send-limits.md, "Cost"): in runs of one
//                sequence and enrollment time zone, ordered by due time then id,
//                "<sender key>\0o<sequence id>\0<time zone>\0<due: 12 bytes>\<id>" -> the
//                v1::SendRequested; "<sender key>\0i<id>" -> that key (lookup by id);
//                "<sender key>\0g<sequence id>\0<time zone>" -> 8-byte count of the run.
//   offsets      "exec/<p>": executor-events offset of partition p to fold from (every event
//                before it is folded; events after it may be too: folding is idempotent);
//                "seq/<p>": next sequence-events offset to fold.
// Every write of a batch (events, due-index changes, offsets) is one atomic WriteBatch.
//
// Thread-compatible: one loop thread owns a StateStore and its Overlay.

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/send_limits.h"
#include "libs/domain/sequence.h"
#include "libs/store/store.h"
#include "sequences/v1/events.pb.h"

namespace sequences::executor {

inline constexpr char kEnrollmentsCf[] = "enrollments";
inline constexpr char kSequencesCf[] = "sequences";
inline constexpr char kDueCf[] = "due";
inline constexpr char kBySequenceCf[] = "by_sequence";
inline constexpr char kByOwnerCf[] = "by_owner";
inline constexpr char kOffsetsCf[] = "offsets";
inline constexpr char kSendersCf[] = "senders";
inline constexpr char kSendQueueCf[] = "send_queue";

// Deterministic protobuf serialization (map fields in key order), so the same event always has
// the same bytes: the state digest depends on it.
std::string SerializeDeterministic(const google::protobuf::MessageLite& message);

// The enrollment key an executor event belongs to ("<item_key>#<sequence_id>"), or nullopt if
// `event` is not an executor event.
std::optional<std::string> EnrollmentKeyOfEvent(const v1::Envelope& event);

// Length-prefixed list of serialized envelopes (the value format of enrollments and sequences).
std::string EncodeEventList(const std::vector<std::string>& events);
bool DecodeEventList(absl::string_view in, std::vector<std::string>* events);

// One enrollment key's stored record.
struct EnrollmentRecord {
  int32_t partition = -1;
  std::vector<std::string> events;  // serialized envelopes, log order
  std::string Encode() const;
  static bool Decode(absl::string_view in, EnrollmentRecord* out);
};

// Folds a record's events. Events that do not parse (they were written by us: a damaged store)
// are skipped and counted in `*undecodable` (if not null).
domain::EnrollmentState FoldRecord(const EnrollmentRecord& record, int* undecodable = nullptr);

// A due-index entry.
struct DueEntry {
  absl::Time due;
  std::string enrollment_key;
  int32_t partition = -1;
};

// Where a scan of the due index starts: a point in the index's order (due time, then enrollment
// key). A position can lie between two entries of the same microsecond, so a scan resumes past
// the entries it has visited instead of seeking over them (and over their tombstones) again.
class DuePosition {
 public:
  // Before every entry.
  DuePosition() = default;
  // The first entry due at or after `t`.
  static DuePosition At(absl::Time t);
  // `e` itself (inclusive).
  static DuePosition Of(const DueEntry& e);
  // Just past `e`.
  static DuePosition After(const DueEntry& e);

  const std::string& key() const { return key_; }
  friend auto operator<=>(const DuePosition&, const DuePosition&) = default;

 private:
  explicit DuePosition(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

// The store's memory (README "Memory"): one RocksDB cache holds both budgets, so the store
// stays within their sum (plus what readers pin) however many enrollments it holds.
struct StoreMemory {
  // Data, index and filter blocks.
  int64_t block_cache_bytes = 64 << 20;
  // Memtables of every column family together (charged to the same cache).
  int64_t write_buffer_bytes = 64 << 20;
};

// The store with the executor's layout.
class StateStore {
 public:
  static absl::StatusOr<std::unique_ptr<StateStore>> Open(const std::string& path,
                                                          const StoreMemory& memory = {});
  // Opens an empty directory to be rebuilt from the log (replay): writes skip RocksDB's
  // write-ahead log and larger memtables take them (store::StoreOptions::bulk_load). Nothing
  // written is durable until Persist() returns OK.
  static absl::StatusOr<std::unique_ptr<StateStore>> OpenForRebuild(const std::string& path);
  // Makes everything written so far durable (memtables to synced SST files).
  [[nodiscard]] absl::Status Persist() { return store_->Flush(); }
  // Removes the directory (replay rebuilds it from the log).
  static absl::Status Destroy(const std::string& path);

  store::Store& raw() { return *store_; }

  absl::StatusOr<std::optional<EnrollmentRecord>> LoadEnrollment(absl::string_view key);
  // Stored offset under `key` ("exec/3"), or nullopt.
  absl::StatusOr<std::optional<int64_t>> GetOffset(absl::string_view key);

  // Due entries from `from` up to due time `to` (inclusive), in index order, at most `max` of
  // them (visited in order; `visit` returns false to stop).
  absl::Status ScanDue(const DuePosition& from, absl::Time to, int max,
                       const std::function<bool(const DueEntry&)>& visit);
  // Enrollment keys of a sequence / an owner / with a key prefix ("<item_key>#"), in key order.
  absl::StatusOr<std::vector<std::string>> KeysOfSequence(absl::string_view sequence_id);
  // Enrollments of `owner_id` among the items of `company_id` only (owners are per company).
  absl::StatusOr<std::vector<std::string>> KeysOfOwner(absl::string_view company_id,
                                                       absl::string_view owner_id);
  absl::StatusOr<std::vector<std::string>> KeysWithPrefix(absl::string_view prefix);

  // 64-bit FNV-1a over every (column family, key, value) of the enrollments and sequences column
  // families, in key order, as 16 hex digits; also counts the keys.
  absl::StatusOr<std::string> Digest(int64_t* enrollments = nullptr, int64_t* sequences = nullptr);

  static std::string ExecOffsetKey(int32_t partition);
  static std::string SeqOffsetKey(int32_t partition);

 private:
  explicit StateStore(std::unique_ptr<store::Store> s) : store_(std::move(s)) {}
  std::unique_ptr<store::Store> store_;
};

// The staging area of one batch: enrollment records and sequences changed by the batch, the
// offsets it moves, and the due-index changes they imply. Nothing reaches RocksDB until Flush.
// Discard() forgets everything (a batch that was aborted).
class Overlay {
 public:
  explicit Overlay(StateStore& store) : store_(store) {}

  struct Entry {
    EnrollmentRecord record;
    domain::EnrollmentState state;
    // The due-index time stored in RocksDB for this key (before the batch).
    std::optional<absl::Time> stored_due;
    // The sequence and owner the stored record's index keys name (before the batch).
    std::string stored_sequence_id;
    std::string stored_owner_id;
    bool existed = false;
    bool dirty = false;
    // The caller's stamp, e.g. when it last used the entry (replay writes the least recently used
    // entries first: FlushSome). The overlay never reads it.
    uint64_t last_used = 0;
  };

  // The staged entry for `key` (loaded on first use; a new empty entry if the key has none).
  absl::StatusOr<Entry*> Get(const std::string& key);
  // Get for a key the caller knows the store holds no record of (replay's folders: they rebuild
  // an empty store and each owns its keys): stages a new empty entry without looking it up.
  Entry* GetNew(const std::string& key);
  // Folds one executor event into its key's entry. `bytes` is its serialized form.
  // `partition`: the executor-events partition (used for a new key). An event whose bytes the
  // entry already holds is skipped, so folding the log again from an earlier offset, or folding
  // a duplicate, changes nothing.
  [[nodiscard]] absl::Status Apply(const v1::Envelope& event, std::string bytes, int32_t partition);
  // Apply for an event whose enrollment key the caller knows (EnrollmentKeyOfEvent): returns the
  // entry after the fold.
  absl::StatusOr<Entry*> ApplyToKey(const std::string& key, const v1::Envelope& event,
                                    std::string bytes, int32_t partition);
  // A sender's staged state (loaded on first use; empty if the store has none).
  // A person stage's `state.queue` is its whole queue. A sender stage's (`keyed`) holds only the
  // requests this batch loaded (LoadQueued) or added; the rest stay in send_queue, counted per
  // run in `runs`.
  using RunKey = std::pair<std::string, std::string>;  // sequence id, time zone
  struct SenderEntry {
    domain::SenderState state;
    int32_t partition = -1;
    std::optional<absl::Time> stored_due;
    bool dirty = false;
    bool keyed = false;
    // Waiting requests per run (stored ones and this batch's).
    std::map<RunKey, int64_t> runs;
    std::set<RunKey> runs_changed;
    // The runs the store held when loaded (only those have requests there).
    std::set<RunKey> stored_runs;
    // Of state.queue: ids added by this batch (not stored yet) / loaded from the store (-> key).
    std::set<std::string> added;
    std::map<std::string, std::string> stored;
    // Stored requests this batch removed (id -> ordered key), deleted by Flush.
    std::map<std::string, std::string> removed;
    // The number of requests waiting.
    int64_t waiting() const;
  };
  absl::StatusOr<SenderEntry*> GetSender(const std::string& sender_key);
  // Loads into a sender's state.queue those of `ids` that wait in the store (a lookup each, none
  // when nothing waits in the store). Person stages hold their queue already: no-op.
  [[nodiscard]] absl::Status LoadQueued(const std::string& sender_key, SenderEntry& e,
                                        const std::vector<std::string>& ids);
  // A sender's waiting requests as runs for domain::PlanReleasesInRuns: the stored ones and
  // state.queue's, plus `extra` (not waiting yet: this batch's arrivals), less `excluded`; each
  // run read from the store on demand. `calendar` gives a run's send window. A store error
  // ends the run it occurs in and is kept in *error.
  std::vector<domain::SendRun> SenderRuns(
      const std::string& sender_key, const SenderEntry& e,
      const std::map<std::string, const v1::SendRequested*>& extra,
      const std::set<std::string>& excluded,
      const std::function<domain::Calendar(const std::string& sequence_id,
                                           const std::string& time_zone)>& calendar,
      absl::Status* error);
  // Folds one ledger entry into its sender (EvolveSender: only the next seq changes anything).
  [[nodiscard]] absl::Status ApplyLedger(const v1::SendLedgerEntry& entry, int32_t partition);
  const std::map<std::string, SenderEntry>& senders() const { return senders_; }

  // Stages a sequence's event list (after folding an event).
  void PutSequence(const std::string& sequence_id, const std::vector<std::string>& events);
  void SetOffset(const std::string& key, int64_t value);

  // Keys staged in this batch (new or changed), in key order.
  const std::map<std::string, Entry>& entries() const { return entries_; }
  bool empty() const {
    return entries_.empty() && sequences_.empty() && offsets_.empty() && senders_.empty();
  }

  // Writes everything staged in one atomic WriteBatch and clears the overlay. The earliest due
  // time written to the index, if any, is stored in `*earliest_new_due`.
  [[nodiscard]] absl::Status Flush(std::optional<absl::Time>* earliest_new_due = nullptr);
  // Flush of the enrollment entries `evict` selects only (and of every staged sender, sequence
  // and offset): the other entries stay staged, unwritten, as they were. On an error nothing is
  // forgotten.
  [[nodiscard]] absl::Status FlushSome(
      const std::function<bool(const std::string& key, const Entry&)>& evict);
  void Discard();

 private:
  StateStore& store_;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::vector<std::string>> sequences_;
  std::map<std::string, int64_t> offsets_;
  std::map<std::string, SenderEntry> senders_;
};

}  // namespace sequences::executor

#endif  // SEQUENCES_SERVICES_STEP_EXECUTOR_STATE_H_
