#ifndef SEQUENCES_SERVICES_SEQUENCE_API_READ_MODEL_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_READ_MODEL_H_

// The API's read model: a RocksDB projection of sequence-events, enrollment-events and
// executor-events, folded with the domain's Evolve functions.
//
// What it stores (column families of libs/store):
//   seq_events   "<sequence_id>\0<be64 version>"      -> Envelope   (folded into SequenceState)
//   sequences    "<sequence_id>"                      -> v1::Sequence (the API view)
//                (seq_events also holds email template events: "<template_id>\0<be64 version>")
//   email_templates "<template_id>"                   -> v1::EmailTemplate (the API view)
//   enr_events   "<enrollment_key>\0<be64 offset>"    -> Envelope   (executor events of the key)
//   enrollments  "<enrollment_key>"                   -> v1::Enrollment (the API view)
//   pending      "<enrollment_key>"                   -> enroll request ids not yet decided
//   index        "sq\0<company>\0<sequence_id>"                      list sequences
//                "es\0<sequence_id>\0<status>\0<item_key>"           list/count by sequence+status
//                "eo\0<company>\0<owner>\0<sequence_id>\0<item_key>" list by owner
//                "et\0<company>\0<template_id>"                     list email templates
//   requests     "<company>\0<request_id>"            -> "<resource>\n<EncodePositions text>"
//   stats        "c\0<sequence_id>\0<day|all>\0<step_id>\0<variant_id>" -> v1::StepStatistics
//                "t\0<task_id>"                       -> "" (a completed task already counted)
//   meta         "off\0<topic>\0<partition>"          -> next offset to apply
//                "chf\0<partition>"                   -> change-log floor (below: pruned)
//   changes      "<be32 partition><be64 offset>"      -> v1::EnrollmentUpdate (the change log)
// Each batch of records is applied in ONE WriteBatch together with the offsets it reaches, so a
// batch delivered again after a crash is recognised (offset below the stored one) and skipped.
// An empty directory rebuilds everything from the beginning of the topics.
//
// Enrollment state is the fold of executor events (domain rule). On top, the read model keeps the
// enroll requests that are durable but not decided by the executor yet ("pending"), so the API
// can list them and refuse a second enroll of the same item meanwhile.
//
// The change log (WatchEnrollments): every status change folded from executor-events (the
// update domain::EnrollmentUpdateFor computes, as the executor publishes on enrollment-updates),
// keyed by the executor-events record it came from, written in the same batch. It keeps the
// changes of the last `watch_history` offsets of each executor-events partition; the floor of a
// partition is the offset below which changes are pruned (or were never folded: a rebuilt store
// starts at the topic's oldest record). After each batch is durable, its changes are published
// to the watch hub (watch_hub.h).
//
// Threading: one folding thread (Start/Stop) calls Apply; every query may run concurrently with
// it from any thread. Lifetime: Stop (or the destructor) joins the thread.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "libs/domain/email_templates.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/send_limits.h"
#include "libs/domain/sequence.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/types.h"
#include "libs/service/topics.h"
#include "libs/store/store.h"
#include "sequences/v1/enrollment_service.pb.h"
#include "sequences/v1/sequence_service.pb.h"
#include "services/sequence-api/names.h"
#include "services/sequence-api/watch_hub.h"

namespace sequences::api {

struct ReadModelOptions {
  std::string data_dir;
  kafka::ClientConfig kafka;
  service::Topics topics;
  // Change-log retention (see above): executor-events offsets per partition. >= 1.
  int64_t watch_history = 100000;
  // Added to the folding thread's nice value (0..19): on busy cores the threads answering calls
  // run first and folding waits (tests/bench/README.md, "API latency"). Folding still gets the
  // idle CPU; a mutation that needs its own earlier write folded waits for it as before.
  int fold_nice = 0;
};

// Everything the read model knows about one item in one sequence.
struct EnrollmentRecord {
  domain::EnrollmentState state;
  // Enroll request ids on enrollment-events that the executor has not decided yet.
  std::set<std::string> pending_request_ids;
  v1::Enrollment view;
};

// A mutating request already applied: what it named and where it was written.
struct RequestRecord {
  std::string resource;
  // The positions written for it (names.h EncodePositions); the API signs them into a token.
  std::string positions;
  // Envelope.request_digest of its events: which request it was (empty: not known).
  std::string digest;
};

struct EnrollmentFilter {
  std::string company_id;
  // Empty: every sequence of the company (then owner_id is required).
  std::string sequence_id;
  v1::EnrollmentStatus status = v1::ENROLLMENT_STATUS_UNSPECIFIED;
  std::string owner_id;
  bool pending_only = false;
};

class ReadModel {
 public:
  // Opens (creating) the store. Does not touch Kafka.
  static absl::StatusOr<std::unique_ptr<ReadModel>> Open(const ReadModelOptions& options);
  ~ReadModel();

  // Assigns every partition of the three topics at the stored offsets (the beginning for an empty
  // store), notes their current end, and starts the folding thread. Unavailable if the broker
  // does not answer.
  [[nodiscard]] absl::Status Start();
  // Stops and joins the folding thread. Idempotent.
  void Stop();
  // Instead of Start, for a log in this process (unit tests' loopback log): notes the partition
  // count of each topic, as Start learns them from the broker; no consumer and no folding thread
  // (the log calls Apply).
  void StartInProcess(const std::map<std::string, int>& partition_counts);

  // Folds consumed records (the folding thread calls this; unit tests call it directly). Records
  // below the stored offset of their partition are skipped; eof markers advance the offset.
  [[nodiscard]] absl::Status Apply(absl::Span<const kafka::Message> messages);

  // Waits until every position has been applied (true), or until `deadline` (false).
  bool WaitFor(absl::Span<const LogPosition> positions, absl::Time deadline);
  // Waits until the partitions reached the end they had when Start ran (true) or `deadline`.
  bool WaitCaughtUp(absl::Time deadline);
  // The next offset to apply per topic/partition (metrics). offset field = next offset.
  std::vector<LogPosition> AppliedPositions();
  int64_t folded_records();
  // Partition count of `topic` as found by Start (0 if unknown).
  int PartitionCount(const std::string& topic);

  // ---- queries (consistent snapshots per key) ----
  // The folded state; exists == false if the sequence is unknown.
  // A company's sending settings as folded (version 0: never set; the defaults apply).
  absl::StatusOr<domain::CompanySendingState> LoadCompanySending(const std::string& company_id);
  absl::StatusOr<domain::SequenceState> LoadSequenceState(const std::string& sequence_id);
  absl::StatusOr<std::optional<v1::Sequence>> GetSequence(const std::string& sequence_id);
  // The sequence event the fold accepted as `version` (its record value, byte for byte), or
  // nullopt. The first event of a version in log order wins; a later one is ignored.
  absl::StatusOr<std::optional<std::string>> SequenceEventAt(const std::string& sequence_id,
                                                             int64_t version);
  // Sequences of `company_id` with id > after (ordered by id), at most `limit`.
  absl::StatusOr<std::vector<v1::Sequence>> ListSequences(const std::string& company_id,
                                                          const std::string& after, int limit,
                                                          bool show_deleted);
  // The folded email template; exists == false if unknown.
  absl::StatusOr<domain::EmailTemplateState> LoadEmailTemplateState(const std::string& template_id);
  absl::StatusOr<std::optional<v1::EmailTemplate>> GetEmailTemplate(const std::string& template_id);
  // The email template event the fold accepted as `version` (as SequenceEventAt).
  absl::StatusOr<std::optional<std::string>> EmailTemplateEventAt(const std::string& template_id,
                                                                  int64_t version) {
    return SequenceEventAt(template_id, version);
  }
  // Email templates of `company_id` with id > after (ordered by id), at most `limit`.
  absl::StatusOr<std::vector<v1::EmailTemplate>> ListEmailTemplates(const std::string& company_id,
                                                                    const std::string& after,
                                                                    int limit, bool show_deleted);
  // nullopt if the read model never saw the key. View, state and pending request ids are read
  // through one store snapshot: they always come from the same fold batch.
  absl::StatusOr<std::optional<EnrollmentRecord>> LoadEnrollment(const std::string& item_key,
                                                                 const std::string& sequence_id);
  // LoadEnrollment of each enrollment key (domain::EnrollmentKey) of `keys`, in order, all
  // through one store snapshot: one store lookup per column family for all of them instead of a
  // snapshot and reads per key (a batch's items).
  absl::StatusOr<std::vector<std::optional<EnrollmentRecord>>> LoadEnrollments(
      absl::Span<const std::string> enrollment_keys);
  // Listed enrollments (pending ones or started ones; rejected-only keys are not listed) of
  // items of the filter's company only, in index order, starting after the index key `after`;
  // *last_key receives the last key visited.
  absl::StatusOr<std::vector<v1::Enrollment>> ListEnrollments(const EnrollmentFilter& filter,
                                                              const std::string& after, int limit,
                                                              std::string* last_key);
  // Counts per listing status of one sequence of `company_id`: its own items only (an input of
  // another company naming the sequence id is not counted, whatever the index holds).
  absl::StatusOr<v1::EnrollmentOverview> Overview(const std::string& company_id,
                                                  const std::string& sequence_id);
  // Active (in progress or paused) enrollment states of a sequence of `company_id` (its items
  // only), at most `limit`; *more is set when there are others.
  absl::StatusOr<std::vector<domain::EnrollmentState>> ActiveEnrollments(
      const std::string& company_id, const std::string& sequence_id, int limit, bool* more);
  absl::StatusOr<std::optional<RequestRecord>> LookupRequest(const std::string& company_id,
                                                             const std::string& request_id);
  // LookupRequest of each of `request_ids` of `company_id`, in order, with one store lookup.
  absl::StatusOr<std::vector<std::optional<RequestRecord>>> LookupRequests(
      const std::string& company_id, absl::Span<const std::string> request_ids);
  // The executor events of one item in one sequence (every enrollment of it), in log order,
  // those after offset `after` (-1: from the first), at most `limit`.
  absl::StatusOr<std::vector<std::pair<int64_t, v1::Envelope>>> EnrollmentEvents(
      const std::string& item_key, const std::string& sequence_id, int64_t after, int limit);
  // The statistics of a sequence over all time (day empty) or one UTC day ("YYYY-MM-DD"), with
  // steps ordered by `step_order` (the sequence's current steps) and then by id.
  absl::StatusOr<v1::SequenceStatistics> Statistics(const std::string& sequence_id,
                                                    const std::string& day,
                                                    const std::vector<std::string>& step_order);

  // ---- change log (WatchEnrollments) ----
  // The hub that folded batches' changes are published to.
  WatchHub& watch_hub() { return watch_hub_; }
  // The changes `filter` matches at or after `from` (per partition; a partition not named: from
  // offset 0), partition by partition, each in log order, and up to the positions the store holds.
  // FAILED_PRECONDITION when some change of the range is no longer retained (`from` is below a
  // partition's floor).
  absl::StatusOr<std::vector<WatchChange>> ChangesSince(const WatchFilter& filter,
                                                        const WatchCursor& from);

 private:
  // LoadEnrollment of an enrollment key through `at` (a snapshot of store_).
  absl::StatusOr<std::optional<EnrollmentRecord>> LoadEnrollmentAt(const std::string& key,
                                                                   const store::Snapshot* at);
  // The record of enrollment `key` from its stored view and pending request ids, its state folded
  // from its executor events read through `at`.
  absl::StatusOr<EnrollmentRecord> RecordAt(const std::string& key, const std::string& view,
                                            const std::optional<std::string>& pending,
                                            const store::Snapshot* at);
  // The request records stored under `keys` ("<company>\0<request id>"), in order.
  absl::StatusOr<std::vector<std::optional<RequestRecord>>> RequestsAt(
      absl::Span<const std::string> keys);
  struct Batch;
  ReadModel(ReadModelOptions options, std::unique_ptr<store::Store> store);
  void Run();
  absl::Status LoadOffsets();
  bool AppliedLocked(const LogPosition& p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ReadModelOptions options_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<kafka::Consumer> consumer_;
  std::thread thread_;

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // (topic, partition) -> next offset to apply.
  std::map<std::pair<std::string, int32_t>, int64_t> applied_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, int32_t>, int64_t> start_end_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> partitions_ ABSL_GUARDED_BY(mu_);
  int64_t folded_ ABSL_GUARDED_BY(mu_) = 0;
  // executor-events partition -> change-log floor.
  std::map<int32_t, int64_t> change_floor_ ABSL_GUARDED_BY(mu_);
  WatchHub watch_hub_;
};

// The API view of a folded email template.
v1::EmailTemplate EmailTemplateView(const domain::EmailTemplateState& state);
// The API view of a folded sequence.
v1::Sequence SequenceView(const domain::SequenceState& state);
// Sets the fields of an enrollment's API view that the executor decides, from its folded state
// (nothing for a key never started). REQUIRES: view->pending() is already set.
void FillEnrollmentView(const domain::EnrollmentState& state, v1::Enrollment* view);

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_READ_MODEL_H_
