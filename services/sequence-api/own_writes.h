#ifndef SEQUENCES_SERVICES_SEQUENCE_API_OWN_WRITES_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_OWN_WRITES_H_

// Own writes and idempotency: the one path every mutation of the application layer takes.
//
//   OwnWrites::Mutation m(own_writes, ctx, {resource keys}, {request ids});  // serializes
//   m.AwaitOwnWrites()                                   // decide on state that has our writes
//   m.PriorRequest(request_id, resource, field)          // a retry? answer it again, write nothing
//   ... decide with the domain against the read model ...
//   m.Append(records)                                    // durable, remembered as our write
//
// Consistency keys name what a mutation is about: a sequence id, an enrollment key, a user or item
// resource, and the key of each request id it carries (RequestKey). Mutations that share a key are
// serialized in this process (a mutation takes all its keys at once, when none is held, and holds
// them from deciding until its writes are durable and remembered); mutations with no key in
// common do not wait for each other (keys are compared by 64-bit hash: two distinct keys with one
// hash would only serialize their mutations, never let them overlap; a mutation waiting for many
// keys may be overtaken by later mutations whose keys are all free). Before deciding, a
// mutation waits until the read model has applied every write this process made about its keys
// (and no unrelated write), so 50 concurrent retries of one call decide once, on fresh state, and
// write once.
//
// A write whose call ended DEADLINE_EXCEEDED (the broker had not acknowledged it yet) may still
// land: until the event log reports its outcome (EventLog::LateResult), a mutation about any of
// its keys waits for that (bounded like the wait for the read model), and a write that landed
// late is waited for like any other of this process's writes. So a retry sent at once after a
// DEADLINE_EXCEEDED never writes the request a second time: it is UNAVAILABLE (or
// DEADLINE_EXCEEDED) while the outcome is unknown, then answered as a retry, or decided afresh
// if the first write was lost.
//
// A request id is answered from the read model's request records (RequestRecord: the resource it
// named, the positions it wrote, the digest of the request): the same request id for the same
// resource and the same request (RPC and fields: RequestDigest) is a retry; for another resource,
// or for another request about the same resource (another RPC, or other fields), it is refused
// (INVALID_ARGUMENT naming the request-id field), never answered with the first request's result.
// The digest travels in the events (Envelope.request_digest), so this holds after a restart and
// a rebuilt read model; a request record without a digest (events of older versions) is compared
// by resource only.
//
// Thread-safety: OwnWrites may be used from any thread; a Mutation belongs to one thread.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "google/protobuf/message.h"
#include "libs/kafka/types.h"
#include "services/sequence-api/call_context.h"

namespace sequences::api {

// The consistency key of a request id of the caller's company.
std::string RequestKey(const CallContext& ctx, const std::string& request_id);

// The digest of one request: hex SHA-256 of `method` and the request's deterministic encoding
// (map entries in key order), request id included. Equal requests of one RPC have equal digests.
std::string RequestDigest(absl::string_view method, const google::protobuf::Message& request);

// Whether request record `seen` answers a request for `resource` with `digest` as a retry: OK if
// it does; INVALID_ARGUMENT naming field() if it was applied for another resource, or for another
// request about it (digests both known and different). The one comparison of a request id's
// record with a request: PriorRequest and the items of a batch (PriorRequests) both use it.
[[nodiscard]] absl::Status MatchPriorRequest(const RequestRecord& seen, absl::string_view resource,
                                             absl::string_view digest,
                                             absl::FunctionRef<std::string()> field);

class OwnWrites {
 public:
  // REQUIRES: `ports` outlives this.
  explicit OwnWrites(const Ports& ports) : ports_(ports) {}
  OwnWrites(const OwnWrites&) = delete;
  OwnWrites& operator=(const OwnWrites&) = delete;

  // One mutation: holds the locks of its keys from construction to destruction.
  class Mutation {
   public:
    // Takes `keys` and RequestKey(ctx, id) for each of `request_ids` once none of them is held by
    // another mutation (all at once: two mutations with overlapping keys cannot deadlock).
    Mutation(OwnWrites& own, const CallContext& ctx, std::vector<std::string> keys,
             const std::vector<std::string>& request_ids);
    ~Mutation();
    Mutation(const Mutation&) = delete;
    Mutation& operator=(const Mutation&) = delete;

    // Waits until the read model has applied this process's writes about the mutation's keys and
    // about `also` (keys read but not locked). UNAVAILABLE if it did not in time, or
    // DEADLINE_EXCEEDED once the call's deadline passed.
    [[nodiscard]] absl::Status AwaitOwnWrites(const std::vector<std::string>& also = {});

    // nullopt if `request_id` of the caller's company was never applied; its record if it was,
    // for `resource` and a request with `digest` (a retry: answer it again, write nothing);
    // INVALID_ARGUMENT naming `field` if it was applied for another resource or another request
    // (digests both known and different). The first form compares the call's digest.
    [[nodiscard]] absl::StatusOr<std::optional<RequestRecord>> PriorRequest(
        const std::string& request_id, const std::string& resource, absl::string_view field);
    [[nodiscard]] absl::StatusOr<std::optional<RequestRecord>> PriorRequest(
        const std::string& request_id, const std::string& resource, absl::string_view field,
        absl::string_view digest);
    // The records of `request_ids` of the caller's company as PriorRequest reads them (nullopt:
    // never applied), in order, with one read-model lookup; the caller matches each record with
    // its item's resource and digest (MatchPriorRequest) as PriorRequest does.
    [[nodiscard]] absl::StatusOr<std::vector<std::optional<RequestRecord>>> PriorRequests(
        absl::Span<const std::string> request_ids);

    // The mutation's consistency keys: the keys it was given, then RequestKey of each of its
    // request ids, in the order given.
    const std::vector<std::string>& keys() const { return keys_; }

    // Appends each record (one larger than max_record_bytes is INVALID_ARGUMENT, one readers
    // cannot decode INTERNAL, both before anything is written), remembering each written position
    // as this process's write about the consistency keys of its record (keys_of_record[i], views
    // of strings that outlive the call). Results in record order.
    // A record with a correlation id must carry its request's digest (Envelope.request_digest)
    // when the call has one (INTERNAL otherwise, before anything is written).
    using RecordKeys = absl::InlinedVector<absl::string_view, 2>;
    std::vector<absl::StatusOr<LogPosition>> AppendEach(
        const std::vector<kafka::Record>& records, const std::vector<RecordKeys>& keys_of_record);
    // AppendEach with the mutation's keys for every record: the positions, or the first error.
    [[nodiscard]] absl::StatusOr<std::vector<LogPosition>> Append(
        const std::vector<kafka::Record>& records);

   private:
    OwnWrites& own_;
    const CallContext& ctx_;
    std::vector<std::string> keys_;
    std::vector<size_t> locked_;  // hashes of keys_, distinct
  };

 private:
  // Waits until the read model has applied this process's latest writes about `keys`.
  absl::Status WaitFor(const CallContext& ctx, const std::vector<std::string>& keys);
  // Remembers that this process wrote `position` about `key`.
  void NoteLocked(absl::string_view key, const LogPosition& position)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Waits until none of `keys` (hashes, distinct) is held, then holds them all; Unlock releases.
  void Lock(const std::vector<size_t>& keys);
  void Unlock(const std::vector<size_t>& keys);

  // Writes whose outcome their call did not learn (DEADLINE_EXCEEDED), by consistency key: how
  // many are still unknown, and the positions of those that landed after all. Shared with the
  // event log's late callbacks, which may run after this is gone.
  struct Unsettled {
    absl::Mutex mu;
    absl::flat_hash_map<std::string, int> unknown ABSL_GUARDED_BY(mu);
    absl::flat_hash_map<std::string, std::vector<LogPosition>> landed ABSL_GUARDED_BY(mu);
    // The outcome of one record about `keys` is known; `landed_late`: its position if it was
    // acknowledged after its call's deadline, else null.
    void Settle(const std::vector<std::string>& keys, const LogPosition* landed_late)
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  };

  const Ports& ports_;
  const std::shared_ptr<Unsettled> unsettled_ = std::make_shared<Unsettled>();
  absl::Mutex locks_mu_;
  absl::CondVar released_;  // signalled when held_ loses keys
  absl::flat_hash_set<size_t> held_ ABSL_GUARDED_BY(locks_mu_);
  absl::Mutex mu_;
  // Latest positions this process wrote per consistency key (one per topic/partition). Entries the
  // read model has applied are pruned when the map grows.
  absl::flat_hash_map<std::string, std::vector<LogPosition>> written_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_OWN_WRITES_H_
