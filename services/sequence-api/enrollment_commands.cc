#include "services/sequence-api/enrollment_commands.h"

#include <map>
#include <optional>
#include <set>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/enrollment_preview.h"
#include "libs/domain/envelope.h"
#include "libs/domain/errors.h"
#include "libs/domain/routing.h"
#include "libs/domain/validation.h"
#include "services/sequence-api/call_checks.h"
#include "services/sequence-api/names.h"
#include "services/sequence-api/rpc_status.h"

namespace sequences::api {
namespace {

// How far a reported completion time may be ahead of this server's clock (the reporter's clock
// may run a little ahead).
constexpr absl::Duration kCompletionClockSkew = absl::Minutes(5);

// The domain's enroll request for one API item; INVALID_ARGUMENT paths under `prefix`.
absl::StatusOr<v1::EnrollRequested> BuildEnrollRequested(const CallContext& ctx,
                                                         const std::string& sequence_id,
                                                         const v1::EnrollItem& item,
                                                         const std::string& prefix) {
  domain::FieldViolations v;
  const std::string entity = EntityName(item.entity_kind());
  if (entity.empty()) v.Add(absl::StrCat(prefix, ".entity_kind"), "must be DEAL or LEAD");
  if (!IsValidId(item.item_id())) v.Add(absl::StrCat(prefix, ".item_id"), kIdRule);
  if (!item.owner_id().empty() && !IsValidUserId(item.owner_id())) {
    v.Add(absl::StrCat(prefix, ".owner_id"), kUserIdRule);
  }
  if (absl::Status s = CheckRequestId(item.request_id(), "request_id"); !s.ok()) {
    v.AddAllFrom(prefix, s);
  }
  if (!v.empty()) return v.ToStatus("invalid enroll request");
  v1::EnrollRequested r;
  r.set_request_id(item.request_id());
  r.set_sequence_id(sequence_id);
  r.set_item_key(absl::StrCat(ctx.company_id, "/", entity, "/", item.item_id()));
  r.set_entity_kind(item.entity_kind());
  r.set_owner_id(item.owner_id().empty() ? ctx.user_id : item.owner_id());
  *r.mutable_recipient() = item.recipient();
  *r.mutable_time_zones() = item.time_zones();
  *r.mutable_merge_data() = item.merge_data();
  r.set_requested_by(ctx.user_id);
  if (absl::Status s = domain::ValidateEnrollRequested(r); !s.ok()) {
    return RemapFieldPaths(s, {{"item_key", prefix + ".item_id"},
                               {"entity_kind", prefix + ".entity_kind"},
                               {"", prefix}});
  }
  return r;
}

v1::Envelope EnrollEvent(const CallContext& ctx, v1::EnrollRequested r, absl::Time now,
                         const std::string& request_digest) {
  v1::Envelope e = domain::MakeEnvelope(
      absl::StrCat("api/enroll/", domain::EnrollmentKey(r.item_key(), r.sequence_id()), "/",
                   r.request_id()),
      ctx.company_id, now, "", r.request_id());
  e.set_request_digest(request_digest);
  *e.mutable_enroll_requested() = std::move(r);
  return e;
}

// The digest of one item of a batch: that of the Enroll of the item (api.h), so a batch item and
// a single Enroll with the same request id and fields are one request, and another item under the
// request id is refused.
std::string EnrollItemDigest(const std::string& parent, const v1::EnrollItem& item) {
  v1::EnrollRequest single;
  single.set_parent(parent);
  *single.mutable_item() = item;
  return RequestDigest("Enroll", single);
}

// The view of an enrollment right after its enroll request was written.
v1::Enrollment PendingView(const std::optional<EnrollmentRecord>& rec, const v1::EnrollRequested& r,
                           absl::Time now) {
  v1::Enrollment v;
  if (rec.has_value()) v = rec->view;
  v.set_name(EnrollmentResourceName(r.item_key(), r.sequence_id()));
  v.set_item_key(r.item_key());
  v.set_pending(true);
  if (!domain::IsActive(v.status())) {
    v.set_owner_id(r.owner_id());
    *v.mutable_request_time() = domain::ToProto(now);
  }
  return v;
}

// What the enrollment is certain to fail on as the sequence stands (an email step and no recipient,
// a merge field an automatic email needs): refused, unless the caller will supply it later.
absl::Status CheckComplete(const v1::EnrollItem& item, const v1::EnrollRequested& r,
                           const domain::SequenceState& seq) {
  if (item.allow_incomplete()) return absl::OkStatus();
  return domain::CheckEnrollmentComplete(r, seq.steps);
}

// CheckEnroll plus the read model's pending requests: a second request while one is pending
// would be rejected as already enrolled once the first starts.
absl::Status CheckEnrollWithPending(const std::optional<EnrollmentRecord>& rec,
                                    const v1::EnrollRequested& r,
                                    const domain::SequenceState& seq) {
  if (rec.has_value() && !rec->pending_request_ids.empty() &&
      rec->pending_request_ids.count(r.request_id()) == 0 && seq.exists && !seq.deleted) {
    return absl::AlreadyExistsError(
        absl::StrCat(r.item_key(), " has an enroll request pending in sequence ", r.sequence_id()));
  }
  domain::EnrollmentState empty;
  return domain::CheckEnroll(rec.has_value() ? rec->state : empty, r, seq);
}

// The enrollment as the executor's decision on `input` will leave it: the domain's decider run on
// the read model's state (the executor runs the same decider on its own state, so they differ only
// if another input about the enrollment arrives first). Unchanged if the decision is empty.
v1::Enrollment ProjectedView(const EnrollmentRecord& rec, const v1::Envelope& input,
                             const domain::SequenceState& seq, absl::Time now) {
  absl::StatusOr<domain::Decision> d = domain::DecideEnrollment(rec.state, input, seq, now);
  if (!d.ok() || d->executor_events.empty()) return rec.view;
  domain::EnrollmentState state = rec.state;
  for (const v1::Envelope& e : d->executor_events) {
    state = domain::EvolveEnrollment(std::move(state), e);
  }
  v1::Enrollment view = rec.view;
  FillEnrollmentView(state, &view);
  return view;
}

// One enrollment as a mutation about it sees it: waits for this process's own writes about the
// mutation's keys and the sequence, then loads the record; if `request_id` was already applied,
// `repeated` is the answer to give again (nothing is written).
struct EnrollmentLookup {
  std::optional<EnrollmentRecord> record;
  std::optional<v1::EnrollmentResponse> repeated;
};
absl::StatusOr<EnrollmentLookup> LookupEnrollment(const Ports& ports, const CallContext& ctx,
                                                  OwnWrites::Mutation& m,
                                                  const std::string& item_key,
                                                  const std::string& sequence_id,
                                                  const std::string& request_id,
                                                  absl::string_view request_id_field) {
  if (absl::Status s = m.AwaitOwnWrites({sequence_id}); !s.ok()) return s;
  absl::StatusOr<std::optional<RequestRecord>> seen =
      m.PriorRequest(request_id, EnrollmentResourceName(item_key, sequence_id), request_id_field);
  if (!seen.ok()) return seen.status();
  absl::StatusOr<std::optional<EnrollmentRecord>> rec =
      ports.read_model.LoadEnrollment(item_key, sequence_id);
  if (!rec.ok()) return rec.status();
  EnrollmentLookup out{std::move(*rec), std::nullopt};
  if (seen->has_value()) {
    v1::EnrollmentResponse reply;
    if (out.record.has_value()) *reply.mutable_enrollment() = out.record->view;
    reply.set_consistency_token(ports.ConsistencyToken(ctx, **seen));
    out.repeated = std::move(reply);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<LogPosition>> EnrollmentCommands::AppendInput(
    OwnWrites::Mutation& m, const std::string& item_key, const v1::Envelope& input) {
  return m.Append({{.topic = ports_.options.topics.enrollment_events,
                    .key = item_key,
                    .value = input.SerializeAsString()}});
}

// ---------------------------------------------------------------- enroll

absl::StatusOr<v1::EnrollmentResponse> EnrollmentCommands::Enroll(const Ctx& ctx,
                                                                  const v1::EnrollRequest& req) {
  absl::StatusOr<SequenceName> n = ParseOwnSequence(ctx, req.parent(), "parent");
  if (!n.ok()) return n.status();
  absl::StatusOr<v1::EnrollRequested> r =
      BuildEnrollRequested(ctx, n->sequence_id, req.item(), "item");
  if (!r.ok()) return r.status();
  OwnWrites::Mutation m(own_writes_, ctx, {domain::EnrollmentKey(r->item_key(), r->sequence_id())},
                        {r->request_id()});
  absl::StatusOr<EnrollmentLookup> lookup = LookupEnrollment(
      ports_, ctx, m, r->item_key(), r->sequence_id(), r->request_id(), "item.request_id");
  if (!lookup.ok()) return lookup.status();
  if (lookup->repeated.has_value()) return *std::move(lookup->repeated);
  const std::optional<EnrollmentRecord>& rec = lookup->record;
  absl::StatusOr<domain::SequenceState> seq =
      LoadOwnSequence(ports_.read_model, ctx, n->sequence_id);
  if (!seq.ok()) return seq.status();
  r->set_sequence_version(seq->version);
  if (absl::Status s = CheckEnrollWithPending(rec, *r, *seq); !s.ok()) {
    return RemapFieldPaths(s, {{"item_key", "item.item_id"}, {"", "item"}});
  }
  if (absl::Status s = CheckComplete(req.item(), *r, *seq); !s.ok()) {
    return RemapFieldPaths(s, {{"", "item"}});
  }
  const absl::Time now = ports_.clock.Now();
  absl::StatusOr<std::vector<LogPosition>> positions =
      AppendInput(m, r->item_key(), EnrollEvent(ctx, *r, now, ctx.request_digest));
  if (!positions.ok()) return positions.status();
  v1::EnrollmentResponse reply;
  *reply.mutable_enrollment() = PendingView(rec, *r, now);
  reply.set_consistency_token(ports_.ConsistencyToken(ctx, *positions));
  return reply;
}

absl::StatusOr<v1::BatchEnrollResponse> EnrollmentCommands::BatchEnroll(
    const Ctx& ctx, const v1::BatchEnrollRequest& req) {
  absl::StatusOr<SequenceName> n = ParseOwnSequence(ctx, req.parent(), "parent");
  if (!n.ok()) return n.status();
  if (req.items_size() == 0) return domain::InvalidField("items", "must not be empty");
  if (req.items_size() > ports_.options.max_batch_enroll) {
    return domain::InvalidField(
        "items", absl::StrCat("at most ", ports_.options.max_batch_enroll, " per call"));
  }
  // Build every item first: their enrollment keys and request ids are what this call locks, so
  // concurrent retries of the batch (or of single Enrolls of its items) decide one at a time.
  std::vector<absl::StatusOr<v1::EnrollRequested>> built;
  built.reserve(req.items_size());
  std::vector<std::string> keys = {n->sequence_id};
  keys.reserve(req.items_size() + 1);
  std::vector<std::string> request_ids;
  request_ids.reserve(req.items_size());
  for (int i = 0; i < req.items_size(); ++i) {
    built.push_back(
        BuildEnrollRequested(ctx, n->sequence_id, req.items(i), absl::StrCat("items[", i, "]")));
    if (built.back().ok()) {
      keys.push_back(domain::EnrollmentKey(built.back()->item_key(), n->sequence_id));
      request_ids.push_back(built.back()->request_id());
    }
  }
  const size_t built_ok = request_ids.size();
  OwnWrites::Mutation m(own_writes_, ctx, std::move(keys), request_ids);
  // Read our own earlier writes about the sequence, every item and every request id.
  if (absl::Status s = m.AwaitOwnWrites(); !s.ok()) return s;
  absl::StatusOr<domain::SequenceState> seq =
      LoadOwnSequence(ports_.read_model, ctx, n->sequence_id);
  if (!seq.ok()) return seq.status();
  // The k-th item that was built: enrollment key m.keys()[1 + k], request key
  // m.keys()[1 + built_ok + k] (own_writes.h). Its request record and enrollment are read for
  // all items at once; a failed read refuses every item with its error, as a read per item would.
  const std::vector<std::string>& locked = m.keys();
  const absl::Span<const std::string> enrollment_keys(locked.data() + 1, built_ok);
  absl::StatusOr<std::vector<std::optional<RequestRecord>>> seen_all = m.PriorRequests(request_ids);
  absl::StatusOr<std::vector<std::optional<EnrollmentRecord>>> rec_all =
      ports_.read_model.LoadEnrollments(enrollment_keys);

  v1::BatchEnrollResponse out;
  out.mutable_results()->Reserve(req.items_size());
  const absl::Time now = ports_.clock.Now();
  std::vector<kafka::Record> records;
  records.reserve(built_ok);
  std::vector<int> record_item;  // records[i] enrolls results[record_item[i]]
  record_item.reserve(built_ok);
  std::vector<OwnWrites::Mutation::RecordKeys> record_keys;  // and is about these keys
  record_keys.reserve(built_ok);
  absl::flat_hash_set<absl::string_view> keys_in_batch;
  absl::flat_hash_map<absl::string_view, absl::string_view> request_ids_in_batch;  // -> key
  keys_in_batch.reserve(built_ok);
  request_ids_in_batch.reserve(built_ok);
  size_t k = 0;                              // built items so far
  std::vector<LogPosition> prior_positions;  // the first writes of items that are retries
  for (int i = 0; i < req.items_size(); ++i) {
    v1::BatchEnrollResult* result = out.add_results();
    result->set_index(i);
    auto refuse = [&](const absl::Status& s) { *result->mutable_status() = ToRpcStatus(s); };
    absl::StatusOr<v1::EnrollRequested>& r = built[i];
    if (!r.ok()) {
      refuse(r.status());
      continue;
    }
    const size_t item = k++;
    r->set_sequence_version(seq->version);
    const std::string& key = enrollment_keys[item];
    auto request_id_field = [i] { return absl::StrCat("items[", i, "].request_id"); };
    auto [in_batch, first_use] = request_ids_in_batch.try_emplace(request_ids[item], key);
    if (!first_use && in_batch->second != key) {
      refuse(domain::InvalidField(request_id_field(), "is used for another item of this batch"));
      continue;
    }
    if (!seen_all.ok()) {
      refuse(seen_all.status());
      continue;
    }
    const std::string digest = EnrollItemDigest(req.parent(), req.items(i));
    const std::optional<RequestRecord>& seen = (*seen_all)[item];
    if (seen.has_value()) {
      if (absl::Status s =
              MatchPriorRequest(*seen, EnrollmentResourceName(r->item_key(), r->sequence_id()),
                                digest, request_id_field);
          !s.ok()) {
        refuse(std::move(s));
        continue;
      }
    }
    if (!rec_all.ok()) {
      refuse(rec_all.status());
      continue;
    }
    const std::optional<EnrollmentRecord>& rec = (*rec_all)[item];
    if (seen.has_value()) {
      if (rec.has_value()) *result->mutable_enrollment() = rec->view;
      // A retry of this item: answered as a retried Enroll is, its token covering the first write.
      absl::StatusOr<std::vector<LogPosition>> first = DecodePositions(seen->positions);
      if (first.ok()) prior_positions.insert(prior_positions.end(), first->begin(), first->end());
      continue;
    }
    if (!keys_in_batch.insert(key).second) {
      refuse(absl::AlreadyExistsError(
          absl::StrCat(r->item_key(), " appears more than once in this batch")));
      continue;
    }
    if (absl::Status s = CheckEnrollWithPending(rec, *r, *seq); !s.ok()) {
      refuse(RemapFieldPaths(s, {{"item_key", absl::StrCat("items[", i, "].item_id")},
                                 {"", absl::StrCat("items[", i, "]")}}));
      continue;
    }
    if (absl::Status s = CheckComplete(req.items(i), *r, *seq); !s.ok()) {
      refuse(RemapFieldPaths(s, {{"", absl::StrCat("items[", i, "]")}}));
      continue;
    }
    *result->mutable_enrollment() = PendingView(rec, *r, now);
    records.push_back({.topic = ports_.options.topics.enrollment_events,
                       .key = r->item_key(),
                       .value = EnrollEvent(ctx, *std::move(r), now, digest).SerializeAsString()});
    record_item.push_back(i);
    record_keys.push_back({key, locked[1 + built_ok + item]});
  }
  std::vector<absl::StatusOr<LogPosition>> written = m.AppendEach(records, record_keys);
  std::vector<LogPosition> positions = std::move(prior_positions);
  positions.reserve(positions.size() + written.size());
  for (size_t w = 0; w < written.size(); ++w) {
    v1::BatchEnrollResult* result = out.mutable_results(record_item[w]);
    if (!written[w].ok()) {
      result->clear_enrollment();
      *result->mutable_status() = ToRpcStatus(written[w].status());
      continue;
    }
    positions.push_back(*written[w]);
  }
  int accepted = 0;
  for (const v1::BatchEnrollResult& r : out.results()) accepted += r.status().code() == 0;
  out.set_accepted_count(accepted);
  out.set_consistency_token(ports_.ConsistencyToken(ctx, positions));
  return out;
}

// ---------------------------------------------------------------- actions on one enrollment

absl::StatusOr<v1::EnrollmentResponse> EnrollmentCommands::RunAction(
    const Ctx& ctx, Action action, const std::string& name, const std::string& request_id,
    const std::string& note, const std::string& task_id,
    const google::protobuf::Timestamp* complete_time, const v1::UpdateEnrollmentDataRequest* data) {
  absl::StatusOr<EnrollmentName> n = ParseEnrollmentName(name, "name");
  if (!n.ok()) return n.status();
  if (n->company_id != ctx.company_id) {
    return absl::NotFoundError(absl::StrCat("enrollment ", name, " not found"));
  }
  if (absl::Status s = CheckRequestId(request_id, "request_id"); !s.ok()) return s;
  if (action == Action::kActivityCompleted && task_id.empty()) {
    return domain::InvalidField("task_id", "is required");
  }
  if (action == Action::kActivityCompleted && complete_time != nullptr &&
      (complete_time->seconds() != 0 || complete_time->nanos() != 0)) {
    // The next step is due a delay after this time: one beyond the representable range would
    // never come due, one in the future would report a task done before it was. A clock a
    // little ahead of ours is allowed for.
    if (absl::Status s = CheckTimestamp(*complete_time, "complete_time",
                                        ports_.clock.Now() + kCompletionClockSkew);
        !s.ok()) {
      return s;
    }
    if (complete_time->seconds() < 0) {
      return domain::InvalidField("complete_time", "must not be before 1970-01-01");
    }
  }
  if (action == Action::kUpdateData) {
    if (data->merge_data().empty() && !data->has_recipient()) {
      return domain::InvalidField("merge_data", "is required unless a recipient is given");
    }
    for (const auto& [field, value] : data->merge_data()) {
      if (field.empty()) return domain::InvalidField("merge_data", "keys must not be empty");
    }
  }
  const std::string item_key = n->ItemKey();
  OwnWrites::Mutation m(own_writes_, ctx, {domain::EnrollmentKey(item_key, n->sequence_id)},
                        {request_id});
  absl::StatusOr<EnrollmentLookup> lookup =
      LookupEnrollment(ports_, ctx, m, item_key, n->sequence_id, request_id, "request_id");
  if (!lookup.ok()) return lookup.status();
  if (lookup->repeated.has_value()) return *std::move(lookup->repeated);
  const std::optional<EnrollmentRecord>& rec = lookup->record;
  absl::StatusOr<domain::SequenceState> seq =
      LoadOwnSequence(ports_.read_model, ctx, n->sequence_id);
  if (!seq.ok()) return seq.status();
  if (!rec.has_value() || (rec->state.enrollment_id.empty() && rec->pending_request_ids.empty())) {
    return absl::NotFoundError(absl::StrCat("enrollment ", name, " not found"));
  }
  const EnrollmentRecord& r = *rec;
  const bool pending = !r.pending_request_ids.empty();
  const bool active = r.state.IsActive();
  v1::ItemInSequence target;
  target.set_item_key(item_key);
  target.set_sequence_id(n->sequence_id);
  const absl::Time now = ports_.clock.Now();
  v1::Envelope e;
  auto refuse = [&](absl::string_view what) {
    return absl::FailedPreconditionError(absl::StrCat(
        "enrollment ", name, " is ", v1::EnrollmentStatus_Name(r.state.status), ": ", what));
  };
  switch (action) {
    case Action::kRemove:
      if (!active && !pending && r.state.status != v1::ENROLLMENT_STATUS_FAILED) {
        return refuse("only an active or failed enrollment can be removed");
      }
      *e.mutable_remove_requested()->mutable_target() = target;
      e.mutable_remove_requested()->set_requested_by(ctx.user_id);
      break;
    case Action::kPause:
      if (!active && !pending) return refuse("only an active enrollment can be paused");
      *e.mutable_pause_requested()->mutable_target()->mutable_item_in_sequence() = target;
      e.mutable_pause_requested()->set_requested_by(ctx.user_id);
      e.mutable_pause_requested()->set_note(note);
      break;
    case Action::kResume:
      if (!active && !pending) return refuse("only an active enrollment can be resumed");
      *e.mutable_resume_requested()->mutable_target()->mutable_item_in_sequence() = target;
      e.mutable_resume_requested()->set_requested_by(ctx.user_id);
      break;
    case Action::kRetry:
      if (r.state.status != v1::ENROLLMENT_STATUS_FAILED) {
        return refuse("only a failed enrollment can be retried");
      }
      *e.mutable_retry_requested()->mutable_target() = target;
      e.mutable_retry_requested()->set_requested_by(ctx.user_id);
      break;
    case Action::kActivityCompleted: {
      if (!active || r.state.waiting_task_id != task_id) {
        return absl::FailedPreconditionError(
            absl::StrCat("enrollment ", name, " is not waiting for task ", task_id,
                         r.state.waiting_task_id.empty()
                             ? std::string()
                             : absl::StrCat(" (it waits for ", r.state.waiting_task_id, ")")));
      }
      v1::ActivityCompleted* a = e.mutable_activity_completed();
      a->set_task_id(task_id);
      a->set_item_key(item_key);
      a->set_sequence_id(n->sequence_id);
      a->set_enrollment_id(r.state.enrollment_id);
      a->set_step_id(r.state.waiting_step_id);
      *a->mutable_completed_at() =
          complete_time != nullptr && (complete_time->seconds() != 0 || complete_time->nanos() != 0)
              ? *complete_time
              : domain::ToProto(now);
      break;
    }
    case Action::kUpdateData: {
      if (!active && r.state.status != v1::ENROLLMENT_STATUS_FAILED) {
        return refuse("only an in-progress, paused or failed enrollment can be updated");
      }
      v1::MergeDataUpdated* md = e.mutable_merge_data_updated();
      md->set_item_key(item_key);
      md->set_sequence_id(n->sequence_id);
      *md->mutable_merge_data() = data->merge_data();
      if (data->has_recipient()) *md->mutable_recipient() = data->recipient();
      break;
    }
  }
  v1::Envelope header = domain::MakeEnvelope(
      absl::StrCat("api/", domain::PayloadName(e), "/",
                   domain::EnrollmentKey(item_key, n->sequence_id), "/", request_id),
      ctx.company_id, now, "", request_id);
  header.set_request_digest(ctx.request_digest);
  header.MergeFrom(e);
  absl::StatusOr<std::vector<LogPosition>> positions = AppendInput(m, item_key, header);
  if (!positions.ok()) return positions.status();
  v1::EnrollmentResponse reply;
  *reply.mutable_enrollment() = ProjectedView(r, header, *seq, now);
  reply.set_consistency_token(ports_.ConsistencyToken(ctx, *positions));
  return reply;
}

absl::StatusOr<v1::EnrollmentResponse> EnrollmentCommands::Remove(
    const Ctx& ctx, const v1::EnrollmentActionRequest& req) {
  return RunAction(ctx, Action::kRemove, req.name(), req.request_id(), "", "", nullptr);
}
absl::StatusOr<v1::EnrollmentResponse> EnrollmentCommands::Pause(
    const Ctx& ctx, const v1::EnrollmentActionRequest& req) {
  return RunAction(ctx, Action::kPause, req.name(), req.request_id(), req.note(), "", nullptr);
}
absl::StatusOr<v1::EnrollmentResponse> EnrollmentCommands::Resume(
    const Ctx& ctx, const v1::EnrollmentActionRequest& req) {
  return RunAction(ctx, Action::kResume, req.name(), req.request_id(), "", "", nullptr);
}
absl::StatusOr<v1::EnrollmentResponse> EnrollmentCommands::Retry(
    const Ctx& ctx, const v1::EnrollmentActionRequest& req) {
  return RunAction(ctx, Action::kRetry, req.name(), req.request_id(), "", "", nullptr);
}
absl::StatusOr<v1::EnrollmentResponse> EnrollmentCommands::ReportActivityCompleted(
    const Ctx& ctx, const v1::ReportActivityCompletedRequest& req) {
  return RunAction(ctx, Action::kActivityCompleted, req.name(), req.request_id(), "", req.task_id(),
                   &req.complete_time());
}
absl::StatusOr<v1::EnrollmentResponse> EnrollmentCommands::UpdateData(
    const Ctx& ctx, const v1::UpdateEnrollmentDataRequest& req) {
  return RunAction(ctx, Action::kUpdateData, req.name(), req.request_id(), "", "", nullptr, &req);
}

// ---------------------------------------------------------------- every enrollment of a user

absl::StatusOr<v1::UserEnrollmentsResponse> EnrollmentCommands::UserEnrollments(
    const Ctx& ctx, bool pause, const v1::UserEnrollmentsRequest& req) {
  absl::StatusOr<std::string> c = ParseOwnCompany(ctx, req.parent(), "parent");
  if (!c.ok()) return c.status();
  if (!IsValidUserId(req.user_id())) return domain::InvalidField("user_id", kUserIdRule);
  if (absl::Status s = CheckRequestId(req.request_id(), "request_id"); !s.ok()) return s;
  const std::string resource = absl::StrCat("companies/", *c, "/users/", req.user_id());
  OwnWrites::Mutation m(own_writes_, ctx, {resource}, {req.request_id()});
  if (absl::Status s = m.AwaitOwnWrites(); !s.ok()) return s;
  absl::StatusOr<std::optional<RequestRecord>> seen =
      m.PriorRequest(req.request_id(), resource, "request_id");
  if (!seen.ok()) return seen.status();
  if (seen->has_value()) {
    v1::UserEnrollmentsResponse reply;
    reply.set_consistency_token(ports_.ConsistencyToken(ctx, **seen));
    return reply;
  }
  const int partitions = ports_.read_model.PartitionCount(ports_.options.topics.enrollment_events);
  if (partitions <= 0) return absl::UnavailableError("enrollment-events partitions unknown");
  const absl::Time now = ports_.clock.Now();
  std::vector<kafka::Record> records;
  // One record per partition: every executor instance sees it for the enrollments it owns.
  for (int32_t p = 0; p < partitions; ++p) {
    v1::Envelope e = domain::MakeEnvelope(absl::StrCat("api/", pause ? "pause" : "resume", "-user/",
                                                       resource, "/", req.request_id(), "/", p),
                                          ctx.company_id, now, "", req.request_id());
    e.set_request_digest(ctx.request_digest);
    if (pause) {
      e.mutable_pause_requested()->mutable_target()->set_owner_id(req.user_id());
      e.mutable_pause_requested()->set_requested_by(ctx.user_id);
      e.mutable_pause_requested()->set_note(req.note());
    } else {
      e.mutable_resume_requested()->mutable_target()->set_owner_id(req.user_id());
      e.mutable_resume_requested()->set_requested_by(ctx.user_id);
    }
    records.push_back({.topic = ports_.options.topics.enrollment_events,
                       .key = absl::StrCat(*c, "/user/", req.user_id()),
                       .value = e.SerializeAsString(),
                       .partition = p});
  }
  absl::StatusOr<std::vector<LogPosition>> positions = m.Append(records);
  if (!positions.ok()) return positions.status();
  v1::UserEnrollmentsResponse reply;
  reply.set_consistency_token(ports_.ConsistencyToken(ctx, *positions));
  return reply;
}

absl::StatusOr<v1::UserEnrollmentsResponse> EnrollmentCommands::PauseUser(
    const Ctx& ctx, const v1::UserEnrollmentsRequest& req) {
  return UserEnrollments(ctx, true, req);
}
absl::StatusOr<v1::UserEnrollmentsResponse> EnrollmentCommands::ResumeUser(
    const Ctx& ctx, const v1::UserEnrollmentsRequest& req) {
  return UserEnrollments(ctx, false, req);
}

// ---------------------------------------------------------------- item inputs (CRM, mailer)

absl::StatusOr<v1::ItemInputResponse> EnrollmentCommands::AppendItemInput(
    const Ctx& ctx, const std::string& item_key, const std::string& sequence_id,
    const std::string& request_id, const v1::Envelope& input) {
  const std::string resource = sequence_id.empty() ? ItemResourceName(item_key)
                                                   : EnrollmentResourceName(item_key, sequence_id);
  const std::string key = sequence_id.empty() ? absl::StrCat("item\x1f", item_key)
                                              : domain::EnrollmentKey(item_key, sequence_id);
  OwnWrites::Mutation m(own_writes_, ctx, {key}, {request_id});
  if (absl::Status s = m.AwaitOwnWrites(); !s.ok()) return s;
  v1::ItemInputResponse reply;
  reply.set_item(ItemResourceName(item_key));
  absl::StatusOr<std::optional<RequestRecord>> seen =
      m.PriorRequest(request_id, resource, "request_id");
  if (!seen.ok()) return seen.status();
  if (seen->has_value()) {
    reply.set_consistency_token(ports_.ConsistencyToken(ctx, **seen));
    return reply;
  }
  if (!sequence_id.empty()) {
    absl::StatusOr<domain::SequenceState> seq =
        LoadOwnSequence(ports_.read_model, ctx, sequence_id);
    if (!seq.ok()) return seq.status();
  }
  const absl::Time now = ports_.clock.Now();
  v1::Envelope e = domain::MakeEnvelope(
      absl::StrCat("api/", domain::PayloadName(input), "/",
                   sequence_id.empty() ? item_key : domain::EnrollmentKey(item_key, sequence_id),
                   "/", request_id),
      ctx.company_id, now, "", request_id);
  e.set_request_digest(ctx.request_digest);
  e.MergeFrom(input);
  absl::StatusOr<std::vector<LogPosition>> positions = AppendInput(m, item_key, e);
  if (!positions.ok()) return positions.status();
  reply.set_consistency_token(ports_.ConsistencyToken(ctx, *positions));
  return reply;
}

absl::StatusOr<v1::ItemInputResponse> EnrollmentCommands::ReportItemOutcome(
    const Ctx& ctx, const v1::ReportItemOutcomeRequest& req) {
  domain::FieldViolations v;
  absl::StatusOr<std::string> item_key =
      OwnItemKey(ctx, req.parent(), req.entity_kind(), req.item_id(), v);
  if (!item_key.ok()) return item_key.status();
  switch (req.outcome()) {
    case v1::ITEM_OUTCOME_KIND_DEAL_WON:
    case v1::ITEM_OUTCOME_KIND_DEAL_LOST:
      if (req.entity_kind() == v1::ENTITY_KIND_LEAD) v.Add("outcome", "is an outcome of deals");
      break;
    case v1::ITEM_OUTCOME_KIND_LEAD_CONVERTED:
      if (req.entity_kind() == v1::ENTITY_KIND_DEAL) v.Add("outcome", "is an outcome of leads");
      break;
    case v1::ITEM_OUTCOME_KIND_ITEM_DELETED:
      break;
    default:
      v.Add("outcome", "must be DEAL_WON, DEAL_LOST, LEAD_CONVERTED or ITEM_DELETED");
  }
  v.AddAllFrom("", CheckRequestId(req.request_id(), "request_id"));
  if (!v.empty()) return v.ToStatus("invalid outcome report");
  v1::Envelope e;
  e.mutable_item_outcome()->set_item_key(*item_key);
  e.mutable_item_outcome()->set_kind(req.outcome());
  return AppendItemInput(ctx, *item_key, "", req.request_id(), e);
}

absl::StatusOr<v1::ItemInputResponse> EnrollmentCommands::ReportEmailEvent(
    const Ctx& ctx, bool bounced, const v1::ReportEmailEventRequest& req) {
  domain::FieldViolations v;
  absl::StatusOr<std::string> item_key =
      OwnItemKey(ctx, req.parent(), req.entity_kind(), req.item_id(), v);
  if (!item_key.ok()) return item_key.status();
  std::string sequence_id;
  if (!req.sequence().empty()) {
    absl::StatusOr<SequenceName> n = ParseOwnSequence(ctx, req.sequence(), "sequence");
    if (!n.ok()) return n.status();
    sequence_id = n->sequence_id;
  }
  if (!bounced && !req.detail().empty()) v.Add("detail", "is for bounces only");
  v.AddAllFrom("", CheckRequestId(req.request_id(), "request_id"));
  if (!v.empty()) return v.ToStatus("invalid email report");
  v1::Envelope e;
  if (bounced) {
    v1::EmailBounced* b = e.mutable_email_bounced();
    b->set_item_key(*item_key);
    b->set_sequence_id(sequence_id);
    b->set_idempotency_key(req.email_idempotency_key());
    b->set_detail(req.detail());
  } else {
    v1::EmailReplied* r = e.mutable_email_replied();
    r->set_item_key(*item_key);
    r->set_sequence_id(sequence_id);
    r->set_idempotency_key(req.email_idempotency_key());
  }
  return AppendItemInput(ctx, *item_key, sequence_id, req.request_id(), e);
}

absl::StatusOr<v1::ItemInputResponse> EnrollmentCommands::ReportEmailReplied(
    const Ctx& ctx, const v1::ReportEmailEventRequest& req) {
  return ReportEmailEvent(ctx, false, req);
}
absl::StatusOr<v1::ItemInputResponse> EnrollmentCommands::ReportEmailBounced(
    const Ctx& ctx, const v1::ReportEmailEventRequest& req) {
  return ReportEmailEvent(ctx, true, req);
}

}  // namespace sequences::api
