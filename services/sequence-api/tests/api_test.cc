// The API's application layer in one process (tier "unit"): the real Api, read model and RocksDB
// store, with a loopback event log in place of the broker (loopback_event_log.h) and a simulated
// clock. Refusals, idempotency, concurrent retries and tenancy are decided here; the e2e tier keeps
// what only the wire shows (authentication, rich error details in trailers, the broker's faults).
#include "services/sequence-api/api.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "google/protobuf/any.pb.h"
#include "google/rpc/error_details.pb.h"
#include "libs/domain/envelope.h"
#include "libs/domain/errors.h"
#include "libs/domain/tests/builders.h"
#include "services/sequence-api/own_writes.h"
#include "services/sequence-api/tests/api_harness.h"
#include "services/sequence-api/tests/loopback_event_log.h"
#include "tests/support/process.h"
#include "tests/support/requests.h"

namespace sequences::api {
namespace {

using ::sequences::testing::CreateRequest;
using ::sequences::testing::EnrollRequest;
using ::sequences::testing::Item;

using unit::As;
using unit::CreateSequence;
using unit::kEnrollmentPartitions;
using unit::kT0;
using unit::kTopics;
using unit::OpenReadModel;
constexpr char kA[] = "acme";
constexpr char kB[] = "globex";

ApiOptions Options() { return unit::DefaultOptions(); }

// The shared harness, and what these tests count.
struct Harness : unit::ApiHarness {
  using ApiHarness::ApiHarness;

  // Records of `topic` carrying `payload`.
  int Count(const std::string& topic, v1::Envelope::PayloadCase payload) const {
    return static_cast<int>(log.Records(topic,
                                        [payload](const kafka::Message& m) {
                                          v1::Envelope e;
                                          return e.ParseFromString(m.value) &&
                                                 e.payload_case() == payload;
                                        })
                                .size());
  }
  int Written() const {
    int n = 0;
    for (const std::string& t : kTopics.All()) n += static_cast<int>(log.Records(t).size());
    return n;
  }
};

std::string SequenceIdOf(const std::string& name) { return unit::IdOf(name); }

// What the step executor writes when it starts the enrollment of `item_id` (a deal).
void StartEnrollment(Harness& h, const std::string& company, const std::string& sequence_name,
                     const std::string& item_id, const std::string& request_id) {
  const std::string item_key = absl::StrCat(company, "/deal/", item_id);
  const std::string sequence_id = SequenceIdOf(sequence_name);
  const std::string enrollment_id = absl::StrCat(item_key, "#", sequence_id, "#1");
  v1::Envelope e = domain::MakeEnvelope(absl::StrCat(enrollment_id, "/started"), company,
                                        h.clock.Now(), "", request_id);
  v1::EnrollmentStarted* s = e.mutable_enrollment_started();
  s->mutable_ref()->set_enrollment_id(enrollment_id);
  s->mutable_ref()->set_item_key(item_key);
  s->mutable_ref()->set_sequence_id(sequence_id);
  s->set_request_id(request_id);
  s->set_sequence_version(1);
  s->set_entity_kind(v1::ENTITY_KIND_DEAL);
  s->set_owner_id("owner-7");
  s->set_time_zone("UTC");
  *s->mutable_started_at() = e.occurred_at();
  s->set_first_step_id("call-1");
  *s->mutable_first_due_at() = e.occurred_at();
  std::vector<absl::StatusOr<LogPosition>> written = h.log.Append(
      {{.topic = kTopics.executor_events, .key = item_key, .value = e.SerializeAsString()}},
      absl::InfiniteFuture());
  REQUIRE(written.size() == 1);
  REQUIRE(written[0].ok());
  REQUIRE(h.log.ApplyError().ok());
}

std::vector<std::string> ViolatedFields(const absl::Status& s) {
  std::vector<std::string> fields;
  for (const domain::FieldViolation& v : domain::GetFieldViolations(s)) fields.push_back(v.field);
  return fields;
}

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// The field-violation paths of a batch item's status (its google.rpc.BadRequest details).
std::vector<std::string> ViolatedFields(const google::rpc::Status& s) {
  std::vector<std::string> fields;
  for (const google::protobuf::Any& detail : s.details()) {
    google::rpc::BadRequest bad;
    if (!detail.UnpackTo(&bad)) continue;
    for (const auto& v : bad.field_violations()) fields.push_back(v.field());
  }
  return fields;
}

// Runs `call` on `n` threads at once and returns what each got (Catch2 is not thread-safe: the
// caller asserts after the join).
template <typename Call>
auto OnThreads(int n, Call call) -> std::vector<decltype(call(0))> {
  std::vector<std::optional<decltype(call(0))>> results(n);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < n) std::this_thread::yield();
      results[i].emplace(call(i));
    });
  }
  for (std::thread& t : threads) t.join();
  std::vector<decltype(call(0))> out;
  for (auto& r : results) out.push_back(std::move(*r));
  return out;
}

constexpr int kThreads = 24;
// A broker round trip, so that concurrent calls overlap between deciding and appending.
constexpr absl::Duration kAppendLatency = absl::Milliseconds(2);

v1::UpdateSequenceRequest Rename(const std::string& name, const std::string& display_name,
                                 const std::string& request_id) {
  v1::UpdateSequenceRequest update;
  update.mutable_sequence()->set_name(name);
  update.mutable_sequence()->set_display_name(display_name);
  update.mutable_update_mask()->add_paths("display_name");
  update.set_request_id(request_id);
  return update;
}

v1::EnrollmentActionRequest Action(const std::string& enrollment, const std::string& request_id) {
  v1::EnrollmentActionRequest req;
  req.set_name(enrollment);
  req.set_request_id(request_id);
  return req;
}

// ---------------------------------------------------------------- refusals

TEST_CASE(
    "given invalid fields, when creating or enrolling, then INVALID_ARGUMENT names the "
    "request's fields and nothing is written") {
  Harness h;
  v1::CreateSequenceRequest bad = CreateRequest(kA, "create-bad");
  bad.mutable_sequence()->clear_display_name();
  bad.mutable_sequence()->mutable_steps(1)->mutable_delay()->set_amount(100000);
  absl::StatusOr<v1::SequenceResponse> created = h.api.CreateSequence(As(kA), bad);
  CHECK(absl::IsInvalidArgument(created.status()));
  CHECK(Contains(ViolatedFields(created.status()), "sequence.display_name"));
  CHECK(Contains(ViolatedFields(created.status()), "sequence.steps[1].delay.amount"));

  absl::StatusOr<v1::SequenceResponse> no_id = h.api.CreateSequence(As(kA), CreateRequest(kA, ""));
  CHECK(Contains(ViolatedFields(no_id.status()), "request_id"));
  CHECK(h.Written() == 0);

  const std::string name = CreateSequence(h, kA, "create-ok");
  absl::StatusOr<v1::EnrollmentResponse> enrolled =
      h.api.Enroll(As(kA), EnrollRequest(name, "7", ""));
  CHECK(Contains(ViolatedFields(enrolled.status()), "item.request_id"));
  v1::BatchEnrollRequest batch;
  batch.set_parent(name);
  *batch.add_items() = Item("8", "b-8");
  *batch.add_items() = Item("", "b-empty");
  absl::StatusOr<v1::BatchEnrollResponse> b = h.api.BatchEnroll(As(kA), batch);
  REQUIRE(b.ok());
  CHECK(b->accepted_count() == 1);
  CHECK(b->results(1).status().code() == static_cast<int>(absl::StatusCode::kInvalidArgument));
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kEnrollRequested) == 1);
}

TEST_CASE("given an unknown sequence or enrollment, then reads and commands are NOT_FOUND") {
  Harness h;
  const std::string name = CreateSequence(h, kA, "create-1");
  v1::GetSequenceRequest get;
  get.set_name("companies/acme/sequences/nope");
  CHECK(absl::IsNotFound(h.api.GetSequence(As(kA), get).status()));
  CHECK(absl::IsNotFound(
      h.api.Enroll(As(kA), EnrollRequest("companies/acme/sequences/nope", "1", "e-nf")).status()));
  v1::EnrollmentActionRequest remove;
  remove.set_name(name + "/enrollments/deal:never-enrolled");
  remove.set_request_id("rm-nf");
  CHECK(absl::IsNotFound(h.api.RemoveEnrollment(As(kA), remove).status()));
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kRemoveRequested) == 0);
}

TEST_CASE(
    "given a pending enroll of an item, when it is enrolled again with another request id, "
    "then ALREADY_EXISTS") {
  Harness h;
  const std::string name = CreateSequence(h, kA, "create-1");
  REQUIRE(h.api.Enroll(As(kA), EnrollRequest(name, "42", "e-1")).ok());
  CHECK(absl::IsAlreadyExists(h.api.Enroll(As(kA), EnrollRequest(name, "42", "e-2")).status()));
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kEnrollRequested) == 1);
}

TEST_CASE(
    "given a deal sequence, a lead enroll is FAILED_PRECONDITION, and given a deleted sequence, "
    "a change or an enroll is FAILED_PRECONDITION") {
  Harness h;
  const std::string name = CreateSequence(h, kA, "create-1");
  CHECK(absl::IsFailedPrecondition(
      h.api.Enroll(As(kA), EnrollRequest(name, "9", "e-lead", v1::ENTITY_KIND_LEAD)).status()));
  v1::DeleteSequenceRequest del;
  del.set_name(name);
  del.set_request_id("delete-1");
  absl::StatusOr<v1::SequenceResponse> deleted = h.api.DeleteSequence(As(kA), del);
  REQUIRE(deleted.ok());
  CHECK(deleted->sequence().deleted());
  v1::PauseSequenceRequest pause;
  pause.set_name(name);
  pause.set_request_id("pause-after-delete");
  CHECK(absl::IsFailedPrecondition(h.api.PauseSequence(As(kA), pause).status()));
  CHECK(absl::IsFailedPrecondition(
      h.api.Enroll(As(kA), EnrollRequest(name, "10", "e-deleted")).status()));
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kEnrollRequested) == 0);
}

TEST_CASE(
    "given a stale expected_version, an update is ABORTED and writes nothing, and the current "
    "version updates") {
  Harness h;
  const std::string name = CreateSequence(h, kA, "create-1");
  v1::UpdateSequenceRequest update;
  update.mutable_sequence()->set_name(name);
  update.mutable_sequence()->set_display_name("Renamed");
  update.mutable_update_mask()->add_paths("display_name");
  update.set_expected_version(7);
  update.set_request_id("update-stale");
  CHECK(absl::IsAborted(h.api.UpdateSequence(As(kA), update).status()));
  CHECK(h.log.Records(kTopics.sequence_events).size() == 1);
  update.set_expected_version(1);
  update.set_request_id("update-fresh");
  absl::StatusOr<v1::SequenceResponse> updated = h.api.UpdateSequence(As(kA), update);
  REQUIRE(updated.ok());
  CHECK(updated->sequence().display_name() == "Renamed");
  CHECK(updated->sequence().version() == 2);
}

TEST_CASE("given an enrollment's status, an action it does not allow is FAILED_PRECONDITION") {
  Harness h;
  const std::string name = CreateSequence(h, kA, "create-1");
  REQUIRE(h.api.Enroll(As(kA), EnrollRequest(name, "42", "e-1")).ok());
  StartEnrollment(h, kA, name, "42", "e-1");
  v1::EnrollmentActionRequest retry;
  retry.set_name(name + "/enrollments/deal:42");
  retry.set_request_id("retry-1");
  CHECK(absl::IsFailedPrecondition(h.api.RetryEnrollment(As(kA), retry).status()));
  v1::ReportActivityCompletedRequest done;
  done.set_name(name + "/enrollments/deal:42");
  done.set_request_id("done-1");
  done.set_task_id("no-such-task");
  CHECK(absl::IsFailedPrecondition(h.api.ReportActivityCompleted(As(kA), done).status()));
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kRetryRequested) == 0);
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kActivityCompleted) == 0);
}

TEST_CASE(
    "given a request whose event would exceed max_record_bytes, it is INVALID_ARGUMENT "
    "and nothing is written") {
  ApiOptions options = Options();
  options.max_record_bytes = 1000;
  Harness h(options);
  v1::CreateSequenceRequest big = CreateRequest(kA, "create-big");
  for (int i = 0; i < 40; ++i)
    *big.mutable_sequence()->add_steps() =
        domain::testing::ActivityStep(absl::StrCat("s", i), v1::DELAY_UNIT_DAYS, 1);
  absl::StatusOr<v1::SequenceResponse> r = h.api.CreateSequence(As(kA), big);
  CHECK(absl::IsInvalidArgument(r.status()));
  CHECK(Contains(ViolatedFields(r.status()), "request"));
  CHECK(h.Written() == 0);
}

TEST_CASE(
    "given a log that cannot make a write durable, the command is UNAVAILABLE, and its "
    "retry with the same request id writes once") {
  Harness h;
  const std::string name = CreateSequence(h, kA, "create-1");
  h.log.FailNextAppends(1, absl::UnavailableError("not durable"));
  CHECK(absl::IsUnavailable(h.api.Enroll(As(kA), EnrollRequest(name, "42", "e-1")).status()));
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kEnrollRequested) == 0);
  absl::StatusOr<v1::EnrollmentResponse> retried =
      h.api.Enroll(As(kA), EnrollRequest(name, "42", "e-1"));
  REQUIRE(retried.ok());
  CHECK(retried->enrollment().pending());
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kEnrollRequested) == 1);
}

TEST_CASE(
    "given a write acknowledged only after its call's deadline (DEADLINE_EXCEEDED), when the "
    "call is retried with its request id at once, then it is not written again: the retry waits "
    "for the first write's outcome, and once it is known answers it") {
  Harness h;
  const std::string name = CreateSequence(h, kA, "create-1");
  h.log.AckLateNext(1);
  CHECK(absl::IsDeadlineExceeded(h.api.Enroll(As(kA), EnrollRequest(name, "42", "e-1")).status()));
  // The caller retries, as it is told to; the first write is still on its way to the broker.
  absl::StatusOr<v1::EnrollmentResponse> early =
      h.api.Enroll(As(kA), EnrollRequest(name, "42", "e-1"));
  INFO(early.status().ToString());
  CHECK((absl::IsUnavailable(early.status()) || absl::IsDeadlineExceeded(early.status())));
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kEnrollRequested) == 1);
  h.log.DeliverLate();
  absl::StatusOr<v1::EnrollmentResponse> retried =
      h.api.Enroll(As(kA), EnrollRequest(name, "42", "e-1"));
  INFO(retried.status().ToString());
  REQUIRE(retried.ok());
  CHECK(retried->enrollment().pending());
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kEnrollRequested) == 1);
  // The same for a rename: one event, whatever the retries.
  h.log.AckLateNext(1);
  CHECK(absl::IsDeadlineExceeded(
      h.api.UpdateSequence(As(kA), Rename(name, "Late", "rename-late")).status()));
  CHECK_FALSE(h.api.UpdateSequence(As(kA), Rename(name, "Late", "rename-late")).ok());
  h.log.DeliverLate();
  absl::StatusOr<v1::SequenceResponse> renamed =
      h.api.UpdateSequence(As(kA), Rename(name, "Late", "rename-late"));
  REQUIRE(renamed.ok());
  CHECK(renamed->sequence().display_name() == "Late");
  CHECK(h.log.Records(kTopics.sequence_events).size() == 2);
}

TEST_CASE(
    "given the read model has not applied this process's earlier write, a command about the "
    "same sequence is UNAVAILABLE rather than decided on stale state") {
  Harness h;
  const std::string name = CreateSequence(h, kA, "create-1");
  h.log.Hold();
  REQUIRE(h.api.Enroll(As(kA), EnrollRequest(name, "42", "e-1")).ok());
  // The same item again with another request id: deciding now would miss the pending request.
  CHECK(absl::IsUnavailable(h.api.Enroll(As(kA), EnrollRequest(name, "42", "e-2")).status()));
  h.log.Release();
  CHECK(absl::IsAlreadyExists(h.api.Enroll(As(kA), EnrollRequest(name, "42", "e-2")).status()));
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kEnrollRequested) == 1);
}

// ---------------------------------------------------------------- idempotency

TEST_CASE(
    "given a created sequence, when the same create is sent again, then the first answer "
    "comes back and one event is written") {
  Harness h;
  absl::StatusOr<v1::SequenceResponse> first =
      h.api.CreateSequence(As(kA), CreateRequest(kA, "create-once"));
  absl::StatusOr<v1::SequenceResponse> again =
      h.api.CreateSequence(As(kA), CreateRequest(kA, "create-once"));
  REQUIRE(first.ok());
  REQUIRE(again.ok());
  CHECK(again->sequence().name() == first->sequence().name());
  CHECK(again->sequence().version() == 1);
  CHECK(again->consistency_token() == first->consistency_token());
  CHECK(h.Count(kTopics.sequence_events, v1::Envelope::kSequenceCreated) == 1);
}

TEST_CASE(
    "given an enroll, an enrollment action, an outcome and a user-wide pause, when each is "
    "retried, then each answers the same token and is written once") {
  Harness h;
  const std::string name = CreateSequence(h, kA, "create-1");
  absl::StatusOr<v1::EnrollmentResponse> e1 =
      h.api.Enroll(As(kA), EnrollRequest(name, "42", "enroll-once"));
  absl::StatusOr<v1::EnrollmentResponse> e2 =
      h.api.Enroll(As(kA), EnrollRequest(name, "42", "enroll-once"));
  REQUIRE(e1.ok());
  REQUIRE(e2.ok());
  CHECK(e2->consistency_token() == e1->consistency_token());
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kEnrollRequested) == 1);

  StartEnrollment(h, kA, name, "42", "enroll-once");
  v1::EnrollmentActionRequest pause;
  pause.set_name(name + "/enrollments/deal:42");
  pause.set_request_id("pause-once");
  absl::StatusOr<v1::EnrollmentResponse> p1 = h.api.PauseEnrollment(As(kA), pause);
  absl::StatusOr<v1::EnrollmentResponse> p2 = h.api.PauseEnrollment(As(kA), pause);
  REQUIRE(p1.ok());
  REQUIRE(p2.ok());
  CHECK(p1->enrollment().status() == v1::ENROLLMENT_STATUS_PAUSED);
  CHECK(p2->consistency_token() == p1->consistency_token());
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kPauseRequested) == 1);

  v1::ReportItemOutcomeRequest won;
  won.set_parent("companies/acme");
  won.set_entity_kind(v1::ENTITY_KIND_DEAL);
  won.set_item_id("42");
  won.set_outcome(v1::ITEM_OUTCOME_KIND_DEAL_WON);
  won.set_request_id("won-once");
  absl::StatusOr<v1::ItemInputResponse> o1 = h.api.ReportItemOutcome(As(kA), won);
  absl::StatusOr<v1::ItemInputResponse> o2 = h.api.ReportItemOutcome(As(kA), won);
  REQUIRE(o1.ok());
  REQUIRE(o2.ok());
  CHECK(o2->consistency_token() == o1->consistency_token());
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kItemOutcome) == 1);

  v1::UserEnrollmentsRequest user;
  user.set_parent("companies/acme");
  user.set_user_id("owner-7");
  user.set_request_id("pause-user-once");
  absl::StatusOr<v1::UserEnrollmentsResponse> u1 = h.api.PauseUserEnrollments(As(kA), user);
  absl::StatusOr<v1::UserEnrollmentsResponse> u2 = h.api.PauseUserEnrollments(As(kA), user);
  REQUIRE(u1.ok());
  REQUIRE(u2.ok());
  CHECK(u2->consistency_token() == u1->consistency_token());
  // One record per partition, so every executor instance sees it; once.
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kPauseRequested) ==
        1 + kEnrollmentPartitions);
}

TEST_CASE(
    "given a request id used for one resource, when it is used for another, then "
    "INVALID_ARGUMENT names the request id and nothing is written") {
  Harness h;
  const std::string name = CreateSequence(h, kA, "shared-id");
  absl::StatusOr<v1::EnrollmentResponse> reused =
      h.api.Enroll(As(kA), EnrollRequest(name, "42", "shared-id"));
  CHECK(Contains(ViolatedFields(reused.status()), "item.request_id"));
  REQUIRE(h.api.Enroll(As(kA), EnrollRequest(name, "42", "e-42")).ok());
  absl::StatusOr<v1::EnrollmentResponse> other_item =
      h.api.Enroll(As(kA), EnrollRequest(name, "43", "e-42"));
  CHECK(Contains(ViolatedFields(other_item.status()), "item.request_id"));
  v1::BatchEnrollRequest batch;
  batch.set_parent(name);
  *batch.add_items() = Item("44", "e-42");
  absl::StatusOr<v1::BatchEnrollResponse> b = h.api.BatchEnroll(As(kA), batch);
  REQUIRE(b.ok());
  CHECK(b->accepted_count() == 0);
  CHECK(b->results(0).status().code() == static_cast<int>(absl::StatusCode::kInvalidArgument));
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kEnrollRequested) == 1);
}

// A request id names one request: the same one again is a retry; anything else under that id
// (other fields, another RPC about the same resource) must be refused, never answered with the
// first request's result as if the second had been applied.
TEST_CASE(
    "given a request id applied once, when it comes again with other fields or for another RPC "
    "about the same resource, then INVALID_ARGUMENT names the request id, nothing is written "
    "and the first request's effect stands") {
  Harness h;
  const std::string name = CreateSequence(h, kA, "create-1");
  const int written = h.Written();

  // A delete under the create's request id: before, OK with the sequence not deleted.
  v1::DeleteSequenceRequest del;
  del.set_name(name);
  del.set_request_id("create-1");
  absl::StatusOr<v1::SequenceResponse> deleted = h.api.DeleteSequence(As(kA), del);
  INFO(deleted.status().ToString());
  CHECK(deleted.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(Contains(ViolatedFields(deleted.status()), "request_id"));

  // Another display name under a rename's request id.
  REQUIRE(h.api.UpdateSequence(As(kA), Rename(name, "First", "rename-1")).ok());
  absl::StatusOr<v1::SequenceResponse> other_name =
      h.api.UpdateSequence(As(kA), Rename(name, "Second", "rename-1"));
  CHECK(Contains(ViolatedFields(other_name.status()), "request_id"));
  absl::StatusOr<v1::SequenceResponse> same =
      h.api.UpdateSequence(As(kA), Rename(name, "First", "rename-1"));
  REQUIRE(same.ok());
  CHECK(same->sequence().display_name() == "First");

  // Other merge data under an enroll's request id; the same again is a retry.
  REQUIRE(h.api.Enroll(As(kA), EnrollRequest(name, "42", "enroll-42")).ok());
  v1::EnrollRequest other_data = EnrollRequest(name, "42", "enroll-42");
  (*other_data.mutable_item()->mutable_merge_data())["person.first_name"] = "Bob";
  CHECK(Contains(ViolatedFields(h.api.Enroll(As(kA), other_data).status()), "item.request_id"));
  CHECK(h.api.Enroll(As(kA), EnrollRequest(name, "42", "enroll-42")).ok());
  // A batch whose item says the same under that request id is refused for that item alone.
  v1::BatchEnrollRequest batch;
  batch.set_parent(name);
  *batch.add_items() = Item("43", "enroll-43");
  *batch.add_items() = other_data.item();
  absl::StatusOr<v1::BatchEnrollResponse> b = h.api.BatchEnroll(As(kA), batch);
  REQUIRE(b.ok());
  CHECK(b->results(0).status().code() == 0);
  CHECK(b->results(1).status().code() == static_cast<int>(absl::StatusCode::kInvalidArgument));
  CHECK(b->accepted_count() == 1);

  // A resume under a pause's request id: before, OK and still paused.
  StartEnrollment(h, kA, name, "42", "enroll-42");
  const std::string enrollment = name + "/enrollments/deal:42";
  absl::StatusOr<v1::EnrollmentResponse> paused =
      h.api.PauseEnrollment(As(kA), Action(enrollment, "act-1"));
  REQUIRE(paused.ok());
  CHECK(paused->enrollment().status() == v1::ENROLLMENT_STATUS_PAUSED);
  absl::StatusOr<v1::EnrollmentResponse> resumed =
      h.api.ResumeEnrollment(As(kA), Action(enrollment, "act-1"));
  CHECK(Contains(ViolatedFields(resumed.status()), "request_id"));
  CHECK(
      Contains(ViolatedFields(h.api.RemoveEnrollment(As(kA), Action(enrollment, "act-1")).status()),
               "request_id"));

  // Lost after won under one request id of the item.
  v1::ReportItemOutcomeRequest outcome;
  outcome.set_parent("companies/acme");
  outcome.set_entity_kind(v1::ENTITY_KIND_DEAL);
  outcome.set_item_id("42");
  outcome.set_outcome(v1::ITEM_OUTCOME_KIND_DEAL_WON);
  outcome.set_request_id("outcome-42");
  REQUIRE(h.api.ReportItemOutcome(As(kA), outcome).ok());
  outcome.set_outcome(v1::ITEM_OUTCOME_KIND_DEAL_LOST);
  CHECK(Contains(ViolatedFields(h.api.ReportItemOutcome(As(kA), outcome).status()), "request_id"));

  // Written: the rename, two enrolls, the executor's start, the pause and the outcome; nothing
  // for the refusals.
  CHECK(h.Written() == written + 6);
  CHECK(h.Count(kTopics.sequence_events, v1::Envelope::kSequenceDeleted) == 0);
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kResumeRequested) == 0);
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kRemoveRequested) == 0);
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kItemOutcome) == 1);
}

TEST_CASE(
    "given many threads sending one request id with two different renames at once, then one "
    "rename is written, its senders get it and every sender of the other is refused") {
  Harness h;
  h.log.SetAppendLatency(kAppendLatency);
  const std::string name = CreateSequence(h, kA, "create-1");
  auto results = OnThreads(kThreads, [&](int i) {
    return h.api.UpdateSequence(As(kA), Rename(name, i % 2 == 0 ? "Even" : "Odd", "rename-race"));
  });
  std::set<std::string> applied;
  int refused = 0;
  for (const auto& r : results) {
    if (r.ok()) {
      applied.insert(r->sequence().display_name());
    } else {
      INFO(r.status().ToString());
      CHECK(Contains(ViolatedFields(r.status()), "request_id"));
      ++refused;
    }
  }
  // Every OK names the one rename that was written, and that rename's senders are all OK.
  REQUIRE(applied.size() == 1);
  CHECK(refused == kThreads / 2);
  CHECK(h.log.Records(kTopics.sequence_events).size() == 2);
}

TEST_CASE(
    "given a read model rebuilt from the log, a request id is still refused for another "
    "request and still answered for the same one, writing nothing") {
  Harness h;
  const std::string name = CreateSequence(h, kA, "create-1");
  REQUIRE(h.api.Enroll(As(kA), EnrollRequest(name, "42", "enroll-42")).ok());
  // A restarted API: an empty read model folds everything the log holds.
  std::unique_ptr<ReadModel> rebuilt = OpenReadModel();
  LoopbackEventLog log(*rebuilt, {{kTopics.enrollment_events, kEnrollmentPartitions}});
  for (const std::string& topic : kTopics.All()) REQUIRE(rebuilt->Apply(h.log.Records(topic)).ok());
  Api api(Options(), log, *rebuilt, h.clock, h.signer);

  v1::DeleteSequenceRequest del;
  del.set_name(name);
  del.set_request_id("create-1");
  CHECK(Contains(ViolatedFields(api.DeleteSequence(As(kA), del).status()), "request_id"));
  v1::EnrollRequest other_data = EnrollRequest(name, "42", "enroll-42");
  other_data.mutable_item()->set_owner_id("someone-else");
  CHECK(Contains(ViolatedFields(api.Enroll(As(kA), other_data).status()), "item.request_id"));
  v1::BatchEnrollRequest batch;
  batch.set_parent(name);
  *batch.add_items() = other_data.item();
  absl::StatusOr<v1::BatchEnrollResponse> b = api.BatchEnroll(As(kA), batch);
  REQUIRE(b.ok());
  CHECK(b->results(0).status().code() == static_cast<int>(absl::StatusCode::kInvalidArgument));

  absl::StatusOr<v1::SequenceResponse> again =
      api.CreateSequence(As(kA), CreateRequest(kA, "create-1"));
  REQUIRE(again.ok());
  CHECK(again->sequence().name() == name);
  CHECK(api.Enroll(As(kA), EnrollRequest(name, "42", "enroll-42")).ok());
  int written = 0;
  for (const std::string& t : kTopics.All()) written += static_cast<int>(log.Records(t).size());
  CHECK(written == 0);
}

TEST_CASE(
    "given a batch enroll, when it is retried (also with its items reordered), then every item "
    "is answered again and nothing new is written, nor for an item enrolled alone with the same "
    "request id too") {
  Harness h;
  const std::string name = CreateSequence(h, kA, "create-1");
  REQUIRE(h.api.Enroll(As(kA), EnrollRequest(name, "1", "item-1")).ok());
  v1::BatchEnrollRequest batch;
  batch.set_parent(name);
  for (int i = 1; i <= 5; ++i) *batch.add_items() = Item(absl::StrCat(i), absl::StrCat("item-", i));
  absl::StatusOr<v1::BatchEnrollResponse> first = h.api.BatchEnroll(As(kA), batch);
  absl::StatusOr<v1::BatchEnrollResponse> again = h.api.BatchEnroll(As(kA), batch);
  REQUIRE(first.ok());
  REQUIRE(again.ok());
  CHECK(first->accepted_count() == 5);
  CHECK(again->accepted_count() == 5);
  for (const v1::BatchEnrollResult& r : again->results()) {
    CHECK(r.status().code() == 0);
    CHECK(r.enrollment().pending());
  }
  // Retried with its items in another order: each item is still the same request.
  v1::BatchEnrollRequest reordered;
  reordered.set_parent(name);
  for (int i = batch.items_size() - 1; i >= 0; --i) *reordered.add_items() = batch.items(i);
  absl::StatusOr<v1::BatchEnrollResponse> shuffled = h.api.BatchEnroll(As(kA), reordered);
  REQUIRE(shuffled.ok());
  CHECK(shuffled->accepted_count() == 5);
  for (const v1::BatchEnrollResult& r : shuffled->results()) {
    CHECK(r.status().code() == 0);
    CHECK(r.enrollment().item_key() ==
          absl::StrCat(kA, "/deal/", reordered.items(r.index()).item_id()));
  }
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kEnrollRequested) == 5);
}

// The batch path reads its items' request records with one lookup for the whole batch; each item
// must still be compared with its record as an Enroll is (resource and request digest), or a
// changed item would be answered as if it had been applied.
TEST_CASE(
    "given an applied batch enroll, when it is retried with one item changed under its request "
    "id, then that item alone is INVALID_ARGUMENT naming its request id, the others are answered "
    "as retries, and nothing is written") {
  Harness h;
  const std::string name = CreateSequence(h, kA, "create-1");
  v1::BatchEnrollRequest batch;
  batch.set_parent(name);
  for (int i = 1; i <= 4; ++i) *batch.add_items() = Item(absl::StrCat(i), absl::StrCat("item-", i));
  absl::StatusOr<v1::BatchEnrollResponse> first = h.api.BatchEnroll(As(kA), batch);
  REQUIRE(first.ok());
  REQUIRE(first->accepted_count() == 4);
  const int written = h.Written();

  // Item 3 with other merge data, and the batch reordered: only the changed item is refused.
  v1::BatchEnrollRequest changed;
  changed.set_parent(name);
  for (int i : {3, 0, 2, 1}) *changed.add_items() = batch.items(i);
  (*changed.mutable_items(2)->mutable_merge_data())["person.first_name"] = "Bob";
  absl::StatusOr<v1::BatchEnrollResponse> again = h.api.BatchEnroll(As(kA), changed);
  REQUIRE(again.ok());
  CHECK(again->accepted_count() == 3);
  for (const v1::BatchEnrollResult& r : again->results()) {
    INFO("item " << r.index() << ": " << r.status().message());
    if (r.index() == 2) {
      CHECK(r.status().code() == static_cast<int>(absl::StatusCode::kInvalidArgument));
      CHECK(Contains(ViolatedFields(r.status()), "items[2].request_id"));
      CHECK_FALSE(r.has_enrollment());
    } else {
      CHECK(r.status().code() == 0);
      CHECK(r.enrollment().pending());
      CHECK(r.enrollment().item_key() ==
            absl::StrCat(kA, "/deal/", changed.items(r.index()).item_id()));
    }
  }
  // An Enroll of the changed item under that request id is refused too: it is the same request.
  v1::EnrollRequest single;
  single.set_parent(name);
  *single.mutable_item() = changed.items(2);
  CHECK(Contains(ViolatedFields(h.api.Enroll(As(kA), single).status()), "item.request_id"));
  CHECK(h.Written() == written);
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kEnrollRequested) == 4);
}

// ---------------------------------------------------------------- concurrency

TEST_CASE(
    "given many threads retrying one create at once, then one event is written and every "
    "answer names the same sequence with the same token") {
  Harness h;
  h.log.SetAppendLatency(kAppendLatency);
  auto results = OnThreads(kThreads, [&](int) {
    return h.api.CreateSequence(As(kA), CreateRequest(kA, "create-race"));
  });
  for (const auto& r : results) {
    REQUIRE(r.ok());
    CHECK(r->sequence().name() == results[0]->sequence().name());
    CHECK(r->consistency_token() == results[0]->consistency_token());
  }
  CHECK(h.Count(kTopics.sequence_events, v1::Envelope::kSequenceCreated) == 1);
}

TEST_CASE(
    "given many threads retrying one enroll and one batch with the same request ids at "
    "once, then each item is written once and every answer is OK") {
  Harness h;
  h.log.SetAppendLatency(kAppendLatency);
  const std::string name = CreateSequence(h, kA, "create-1");
  v1::BatchEnrollRequest batch;
  batch.set_parent(name);
  for (int i = 1; i <= 3; ++i) *batch.add_items() = Item(absl::StrCat(i), absl::StrCat("item-", i));
  // Even threads enroll item 1 alone, odd threads send the whole batch: one request id per item.
  auto results = OnThreads(kThreads, [&](int i) -> absl::Status {
    if (i % 2 == 0) return h.api.Enroll(As(kA), EnrollRequest(name, "1", "item-1")).status();
    absl::StatusOr<v1::BatchEnrollResponse> b = h.api.BatchEnroll(As(kA), batch);
    if (!b.ok()) return b.status();
    if (b->accepted_count() != 3) return absl::InternalError(b->DebugString());
    return absl::OkStatus();
  });
  for (const absl::Status& s : results) CHECK(s.ok());
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kEnrollRequested) == 3);
}

TEST_CASE(
    "given two companies with the same item ids and request ids, when many threads retry "
    "overlapping BatchEnrolls of both at once, then each item is written once per company and "
    "every answer names only the caller's own enrollments") {
  Harness h;
  h.log.SetAppendLatency(kAppendLatency);
  const std::map<std::string, std::string> sequence = {{kA, CreateSequence(h, kA, "create-1")},
                                                       {kB, CreateSequence(h, kB, "create-1")}};
  // Items 1-4 and 3-6: the overlap carries the same request ids in both batches.
  auto batch = [&](const std::string& company, int first) {
    v1::BatchEnrollRequest b;
    b.set_parent(sequence.at(company));
    for (int i = first; i < first + 4; ++i) {
      *b.add_items() = Item(absl::StrCat(i), absl::StrCat("item-", i));
    }
    return b;
  };
  // What a caller checks in its answer: every item accepted, each named in its own sequence.
  auto answered_own = [&](const std::string& company, const v1::BatchEnrollRequest& req,
                          const absl::StatusOr<v1::BatchEnrollResponse>& r) -> absl::Status {
    if (!r.ok()) return r.status();
    if (r->accepted_count() != req.items_size() || r->results_size() != req.items_size()) {
      return absl::InternalError(r->DebugString());
    }
    for (int i = 0; i < r->results_size(); ++i) {
      const std::string want =
          absl::StrCat(sequence.at(company), "/enrollments/deal:", req.items(i).item_id());
      if (r->results(i).enrollment().name() != want ||
          r->results(i).enrollment().item_key() !=
              absl::StrCat(company, "/deal/", req.items(i).item_id())) {
        return absl::InternalError(absl::StrCat(company, " got ", r->DebugString()));
      }
    }
    return absl::OkStatus();
  };
  auto results = OnThreads(kThreads, [&](int i) -> absl::Status {
    const std::string company = (i / 2) % 2 == 0 ? kA : kB;
    const v1::BatchEnrollRequest req = batch(company, i % 2 == 0 ? 1 : 3);
    return answered_own(company, req, h.api.BatchEnroll(As(company), req));
  });
  for (const absl::Status& s : results) CHECK(s.ok());
  std::map<std::string, std::multiset<std::string>> written;  // company -> item keys
  for (const kafka::Message& m : h.log.Records(kTopics.enrollment_events)) {
    v1::Envelope e;
    REQUIRE(e.ParseFromString(m.value));
    REQUIRE(e.has_enroll_requested());
    CHECK(absl::StartsWith(e.enroll_requested().item_key(), e.company_id() + "/"));
    written[e.company_id()].insert(e.enroll_requested().item_key());
  }
  for (const char* company : {kA, kB}) {
    std::multiset<std::string> once;
    for (int i = 1; i <= 6; ++i) once.insert(absl::StrCat(company, "/deal/", i));
    CHECK(written[company] == once);
    // Retried once everything is folded: answered again from each company's own records.
    const v1::BatchEnrollRequest again = batch(company, 3);
    CHECK(answered_own(company, again, h.api.BatchEnroll(As(company), again)).ok());
  }
  CHECK(h.log.Records(kTopics.enrollment_events).size() == 12);

  // Request ids are per company: B may use one only A used; A may not reuse it for another item.
  REQUIRE(h.api.Enroll(As(kA), EnrollRequest(sequence.at(kA), "a-only", "only-a")).ok());
  v1::BatchEnrollRequest b_reuses;
  b_reuses.set_parent(sequence.at(kB));
  *b_reuses.add_items() = Item("7", "only-a");
  absl::StatusOr<v1::BatchEnrollResponse> b = h.api.BatchEnroll(As(kB), b_reuses);
  REQUIRE(b.ok());
  CHECK(b->accepted_count() == 1);
  CHECK(b->results(0).enrollment().name() == sequence.at(kB) + "/enrollments/deal:7");
  v1::BatchEnrollRequest a_reuses;
  a_reuses.set_parent(sequence.at(kA));
  *a_reuses.add_items() = Item("8", "only-a");
  absl::StatusOr<v1::BatchEnrollResponse> a = h.api.BatchEnroll(As(kA), a_reuses);
  REQUIRE(a.ok());
  CHECK(a->accepted_count() == 0);
  CHECK(a->results(0).status().code() == static_cast<int>(absl::StatusCode::kInvalidArgument));
  CHECK(a->results(0).status().message().find("already used") != std::string::npos);
}

TEST_CASE("given many threads retrying one enrollment action at once, then it is written once") {
  Harness h;
  h.log.SetAppendLatency(kAppendLatency);
  const std::string name = CreateSequence(h, kA, "create-1");
  REQUIRE(h.api.Enroll(As(kA), EnrollRequest(name, "42", "e-1")).ok());
  StartEnrollment(h, kA, name, "42", "e-1");
  v1::EnrollmentActionRequest remove;
  remove.set_name(name + "/enrollments/deal:42");
  remove.set_request_id("remove-race");
  auto results = OnThreads(kThreads, [&](int) { return h.api.RemoveEnrollment(As(kA), remove); });
  for (const auto& r : results) {
    REQUIRE(r.ok());
    CHECK(r->consistency_token() == results[0]->consistency_token());
  }
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kRemoveRequested) == 1);
}

TEST_CASE(
    "given a mutation in progress about one item, when a mutation about other items starts, "
    "then it does not wait for the first (only mutations sharing a key are serialized)") {
  Harness h;
  const Ports ports{.options = {},
                    .log = h.log,
                    .read_model = *h.read_model,
                    .clock = h.clock,
                    .signer = h.signer};
  OwnWrites own(ports);
  const CallContext ctx = As(kA);
  // Many other keys, so that no grouping of keys into shared locks lets all of them through.
  constexpr int kOthers = 200;
  absl::Notification others_done;
  std::atomic<int> ran{0};
  std::optional<std::thread> other;
  {
    OwnWrites::Mutation first(own, ctx, {"enrollment-1"}, {"request-1"});
    other.emplace([&] {
      for (int i = 0; i < kOthers; ++i) {
        OwnWrites::Mutation m(own, ctx, {absl::StrCat("enrollment-other-", i)},
                              {absl::StrCat("request-other-", i)});
        ++ran;
      }
      others_done.Notify();
    });
    // Generous: the others need microseconds; they would never finish if they waited for
    // `first`, which is held until they did.
    others_done.WaitForNotificationWithTimeout(absl::Seconds(30));
    CHECK(ran.load() == kOthers);
  }
  other->join();
}

TEST_CASE(
    "given many threads each renaming one sequence with its own request id, then each is "
    "decided on the state the previous one left: consecutive versions, none ABORTED") {
  Harness h;
  h.log.SetAppendLatency(kAppendLatency);
  const std::string name = CreateSequence(h, kA, "create-1");
  auto results = OnThreads(kThreads, [&](int i) {
    v1::UpdateSequenceRequest update;
    update.mutable_sequence()->set_name(name);
    update.mutable_sequence()->set_display_name(absl::StrCat("Name ", i));
    update.mutable_update_mask()->add_paths("display_name");
    update.set_request_id(absl::StrCat("rename-", i));
    return h.api.UpdateSequence(As(kA), update);
  });
  std::set<int64_t> versions;
  for (const auto& r : results) {
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    versions.insert(r->sequence().version());
  }
  CHECK(versions.size() == static_cast<size_t>(kThreads));
  CHECK(*versions.begin() == 2);
  CHECK(*versions.rbegin() == kThreads + 1);
  CHECK(h.log.Records(kTopics.sequence_events).size() == static_cast<size_t>(kThreads + 1));
}

// ---------------------------------------------------------------- tenancy

TEST_CASE(
    "given company A's sequence and enrollment, company B can neither read nor change them, "
    "and gets NOT_FOUND as for a name that does not exist") {
  Harness h;
  const std::string name = CreateSequence(h, kA, "create-a");
  REQUIRE(h.api.Enroll(As(kA), EnrollRequest(name, "1", "e-a")).ok());
  StartEnrollment(h, kA, name, "1", "e-a");
  const int written = h.Written();
  const std::string enrollment = name + "/enrollments/deal:1";

  v1::GetSequenceRequest get;
  get.set_name(name);
  CHECK(absl::IsNotFound(h.api.GetSequence(As(kB), get).status()));
  v1::UpdateSequenceRequest update;
  update.mutable_sequence()->set_name(name);
  update.mutable_sequence()->set_display_name("Mine now");
  update.mutable_update_mask()->add_paths("display_name");
  update.set_request_id("u-b");
  CHECK(absl::IsNotFound(h.api.UpdateSequence(As(kB), update).status()));
  v1::PauseSequenceRequest pause;
  pause.set_name(name);
  pause.set_request_id("p-b");
  CHECK(absl::IsNotFound(h.api.PauseSequence(As(kB), pause).status()));
  v1::PreviewScheduleRequest preview;
  preview.set_name(name);
  CHECK(absl::IsNotFound(h.api.PreviewSchedule(As(kB), preview).status()));
  v1::ListSequencesRequest theirs;
  theirs.set_parent("companies/acme");
  CHECK(absl::IsNotFound(h.api.ListSequences(As(kB), theirs).status()));
  v1::ListSequencesRequest own;
  own.set_parent("companies/globex");
  absl::StatusOr<v1::ListSequencesResponse> listed = h.api.ListSequences(As(kB), own);
  REQUIRE(listed.ok());
  CHECK(listed->sequences_size() == 0);

  CHECK(absl::IsNotFound(h.api.Enroll(As(kB), EnrollRequest(name, "1", "e-b")).status()));
  v1::GetEnrollmentRequest ge;
  ge.set_name(enrollment);
  CHECK(absl::IsNotFound(h.api.GetEnrollment(As(kB), ge).status()));
  v1::ListEnrollmentsRequest le;
  le.set_parent(name);
  CHECK(absl::IsNotFound(h.api.ListEnrollments(As(kB), le).status()));
  v1::GetEnrollmentOverviewRequest overview;
  overview.set_parent(name);
  CHECK(absl::IsNotFound(h.api.GetEnrollmentOverview(As(kB), overview).status()));
  v1::EnrollmentActionRequest remove;
  remove.set_name(enrollment);
  remove.set_request_id("rm-b");
  CHECK(absl::IsNotFound(h.api.RemoveEnrollment(As(kB), remove).status()));
  v1::ReportItemOutcomeRequest won;
  won.set_parent("companies/acme");
  won.set_entity_kind(v1::ENTITY_KIND_DEAL);
  won.set_item_id("1");
  won.set_outcome(v1::ITEM_OUTCOME_KIND_DEAL_WON);
  won.set_request_id("won-b");
  CHECK(absl::IsNotFound(h.api.ReportItemOutcome(As(kB), won).status()));
  v1::ReportEmailEventRequest replied;
  replied.set_parent("companies/globex");
  replied.set_entity_kind(v1::ENTITY_KIND_DEAL);
  replied.set_item_id("1");
  replied.set_sequence(name);
  replied.set_request_id("reply-b");
  CHECK(absl::IsNotFound(h.api.ReportEmailReplied(As(kB), replied).status()));
  v1::UserEnrollmentsRequest user;
  user.set_parent("companies/acme");
  user.set_user_id("owner-7");
  user.set_request_id("pause-user-b");
  CHECK(absl::IsNotFound(h.api.PauseUserEnrollments(As(kB), user).status()));
  CHECK(h.Written() == written);

  absl::StatusOr<v1::Enrollment> still = h.api.GetEnrollment(As(kA), ge);
  REQUIRE(still.ok());
  CHECK(still->status() == v1::ENROLLMENT_STATUS_IN_PROGRESS);
}

TEST_CASE("given tokens company A was given, company B's calls refuse them") {
  Harness h;
  absl::StatusOr<v1::SequenceResponse> created =
      h.api.CreateSequence(As(kA), CreateRequest(kA, "create-a1"));
  REQUIRE(created.ok());
  CreateSequence(h, kA, "create-a2");
  CreateSequence(h, kB, "create-b1");
  CreateSequence(h, kB, "create-b2");
  v1::ListSequencesRequest a_list;
  a_list.set_parent("companies/acme");
  a_list.set_page_size(1);
  absl::StatusOr<v1::ListSequencesResponse> a_page = h.api.ListSequences(As(kA), a_list);
  REQUIRE(a_page.ok());
  REQUIRE(!a_page->next_page_token().empty());

  v1::ListSequencesRequest b_list;
  b_list.set_parent("companies/globex");
  b_list.set_page_size(1);
  b_list.set_page_token(a_page->next_page_token());
  absl::StatusOr<v1::ListSequencesResponse> b_page = h.api.ListSequences(As(kB), b_list);
  CHECK(absl::IsInvalidArgument(b_page.status()));
  CHECK(Contains(ViolatedFields(b_page.status()), "page_token"));
  // The token still works for A, and B's own first page works without it.
  a_list.set_page_token(a_page->next_page_token());
  CHECK(h.api.ListSequences(As(kA), a_list).ok());
  b_list.clear_page_token();
  CHECK(h.api.ListSequences(As(kB), b_list).ok());

  b_list.set_consistency_token(created->consistency_token());
  absl::StatusOr<v1::ListSequencesResponse> b_consistent = h.api.ListSequences(As(kB), b_list);
  CHECK(absl::IsInvalidArgument(b_consistent.status()));
  CHECK(Contains(ViolatedFields(b_consistent.status()), "consistency_token"));
}

TEST_CASE("given the same request id in two companies, each company gets its own sequence") {
  Harness h;
  const std::string a = CreateSequence(h, kA, "same-id");
  const std::string b = CreateSequence(h, kB, "same-id");
  CHECK(a != b);
  CHECK(a.rfind("companies/acme/", 0) == 0);
  CHECK(b.rfind("companies/globex/", 0) == 0);
  CHECK(h.Count(kTopics.sequence_events, v1::Envelope::kSequenceCreated) == 2);
}

// A sequence of `company` whose only step is an email (automatic or a draft) with `subject`.
std::string CreateEmailSequence(Harness& h, const std::string& company,
                                const std::string& request_id, bool automatic,
                                const std::string& subject) {
  v1::CreateSequenceRequest req = CreateRequest(company, request_id);
  req.mutable_sequence()->clear_steps();
  *req.mutable_sequence()->add_steps() =
      domain::testing::EmailStep("email-1", v1::DELAY_UNIT_DAYS, 1, automatic, subject, "Hi");
  absl::StatusOr<v1::SequenceResponse> r = h.api.CreateSequence(As(company), req);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return r->sequence().name();
}

TEST_CASE(
    "given a sequence with email steps, when an item is certain to fail at one (no recipient, a "
    "merge field an automatic email needs), then Enroll refuses naming the field and writes "
    "nothing, unless the caller allows an incomplete item") {
  Harness h;
  const std::string drafts = CreateEmailSequence(h, kA, "create-draft", false, "Hello");
  absl::StatusOr<v1::EnrollmentResponse> r =
      h.api.Enroll(As(kA), EnrollRequest(drafts, "1", "e-1"));
  CHECK(absl::IsInvalidArgument(r.status()));
  CHECK(ViolatedFields(r.status()) == std::vector<std::string>{"item.recipient.email"});
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kEnrollRequested) == 0);

  v1::EnrollRequest later = EnrollRequest(drafts, "1", "e-1");
  later.mutable_item()->set_allow_incomplete(true);
  CHECK(h.api.Enroll(As(kA), later).ok());
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kEnrollRequested) == 1);

  const std::string automatic = CreateEmailSequence(h, kA, "create-auto", true,
                                                    "Dear {{person.title}} {{person.first_name}}");
  v1::EnrollRequest no_title = EnrollRequest(automatic, "2", "e-2");
  no_title.mutable_item()->mutable_recipient()->set_email("ada@example.com");
  r = h.api.Enroll(As(kA), no_title);
  CHECK(ViolatedFields(r.status()) ==
        std::vector<std::string>{"item.merge_data[\"person.title\"]"});
  (*no_title.mutable_item()->mutable_merge_data())["person.title"] = "Dr";
  CHECK(h.api.Enroll(As(kA), no_title).ok());

  v1::BatchEnrollRequest batch;
  batch.set_parent(automatic);
  *batch.add_items() = no_title.item();   // the same request again: accepted, idempotent
  *batch.add_items() = Item("3", "b-3");  // no recipient, no title
  absl::StatusOr<v1::BatchEnrollResponse> b = h.api.BatchEnroll(As(kA), batch);
  REQUIRE(b.ok());
  CHECK(b->accepted_count() == 1);
  CHECK(b->results(1).status().code() == static_cast<int>(absl::StatusCode::kInvalidArgument));
  CHECK(h.Count(kTopics.enrollment_events, v1::Envelope::kEnrollRequested) == 2);
}

TEST_CASE(
    "given sequence statistics, a malformed day is INVALID_ARGUMENT naming it and another "
    "company's sequence is NOT_FOUND") {
  Harness h;
  const std::string name = CreateSequence(h, kA, "create-1");
  v1::GetSequenceStatisticsRequest req;
  req.set_name(name);
  absl::StatusOr<v1::SequenceStatistics> all = h.api.GetSequenceStatistics(As(kA), req);
  REQUIRE(all.ok());
  CHECK(all->sequence() == name);
  CHECK(all->total().enrolled() == 0);
  for (const char* day : {"2026-2-30", "2026-02-30", "yesterday", "2026-11-30T00:00"}) {
    INFO(day);
    req.set_day(day);
    CHECK(ViolatedFields(h.api.GetSequenceStatistics(As(kA), req).status()) ==
          std::vector<std::string>{"day"});
  }
  req.set_day("2026-11-30");
  CHECK(h.api.GetSequenceStatistics(As(kA), req).ok());
  CHECK(absl::IsNotFound(h.api.GetSequenceStatistics(As(kB), req).status()));
}

// A sequence of `company` with one A/B draft step "mail" (variants a and b, weights 1 and 1).
std::string CreateAbSequence(Harness& h, const std::string& company,
                             const std::string& request_id) {
  v1::CreateSequenceRequest req = CreateRequest(company, request_id);
  req.mutable_sequence()->clear_steps();
  *req.mutable_sequence()->add_steps() =
      domain::testing::DraftAbStep("mail", v1::DELAY_UNIT_DAYS, 1);
  absl::StatusOr<v1::SequenceResponse> r = h.api.CreateSequence(As(company), req);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return r->sequence().name();
}

// An update of the A/B step's weights to (a, b), with `request_id`.
v1::UpdateSequenceRequest WeightsUpdate(const std::string& name, int a, int b,
                                        const std::string& request_id) {
  v1::UpdateSequenceRequest req;
  req.mutable_sequence()->set_name(name);
  v1::Step mail = domain::testing::DraftAbStep("mail", v1::DELAY_UNIT_DAYS, 1);
  mail.mutable_email()->mutable_variants(0)->set_weight(a);
  mail.mutable_email()->mutable_variants(1)->set_weight(b);
  *req.mutable_sequence()->add_steps() = mail;
  req.mutable_update_mask()->add_paths("steps");
  req.set_request_id(request_id);
  return req;
}

TEST_CASE(
    "given many threads retrying one UpdateSequence that edits an A/B step's weights with the "
    "same request id at once, then the edit is written once, every answer is the same version "
    "with the new weights, and the request id sent again with other weights is refused and "
    "changes nothing") {
  Harness h;
  h.log.SetAppendLatency(kAppendLatency);
  const std::string name = CreateAbSequence(h, kA, "create-ab");
  auto results = OnThreads(kThreads, [&](int) {
    return h.api.UpdateSequence(As(kA), WeightsUpdate(name, 7, 3, "weights-1"));
  });
  for (const auto& r : results) {
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    CHECK(r->sequence().version() == 2);
    CHECK(r->consistency_token() == results[0]->consistency_token());
    REQUIRE(r->sequence().steps_size() == 1);
    CHECK(r->sequence().steps(0).email().variants(0).weight() == 7);
    CHECK(r->sequence().steps(0).email().variants(1).weight() == 3);
  }
  CHECK(h.Count(kTopics.sequence_events, v1::Envelope::kSequenceStepsReplaced) == 1);

  // The same request id with other weights (a client that rebuilt its request): refused, naming
  // the request id, rather than answered with the first result as if 1:1000 had been applied.
  absl::StatusOr<v1::SequenceResponse> again =
      h.api.UpdateSequence(As(kA), WeightsUpdate(name, 1, 1000, "weights-1"));
  CHECK(absl::IsInvalidArgument(again.status()));
  CHECK(Contains(ViolatedFields(again.status()), "request_id"));
  CHECK(h.Count(kTopics.sequence_events, v1::Envelope::kSequenceStepsReplaced) == 1);
  v1::GetSequenceRequest get;
  get.set_name(name);
  absl::StatusOr<v1::Sequence> now = h.api.GetSequence(As(kA), get);
  REQUIRE(now.ok());
  CHECK(now->version() == 2);
  CHECK(now->steps(0).email().variants(0).weight() == 7);
}

TEST_CASE(
    "given two companies with the same request ids, step ids, variant ids, item ids and user, "
    "when B asks for statistics and the overview, then it sees only its own counts, and A's "
    "sequence id under B's name or A's consistency token are refused") {
  Harness h;
  const std::string a = CreateAbSequence(h, kA, "same-request");
  const std::string b = CreateAbSequence(h, kB, "same-request");
  REQUIRE(a != b);
  for (const char* item : {"1", "2", "3"}) {
    StartEnrollment(h, kA, a, item, absl::StrCat("enroll-", item));
  }
  StartEnrollment(h, kB, b, "1", "enroll-1");
  const std::string day = absl::FormatTime("%Y-%m-%d", h.clock.Now(), absl::UTCTimeZone());

  auto stats = [&](const std::string& company, const std::string& name,
                   const std::string& on_day = "", const std::string& token = "") {
    v1::GetSequenceStatisticsRequest req;
    req.set_name(name);
    req.set_day(on_day);
    req.set_consistency_token(token);
    return h.api.GetSequenceStatistics(As(company, "u1"), req);
  };
  for (const std::string& on_day : {std::string(), day}) {
    INFO("day '" << on_day << "'");
    absl::StatusOr<v1::SequenceStatistics> sa = stats(kA, a, on_day);
    absl::StatusOr<v1::SequenceStatistics> sb = stats(kB, b, on_day);
    REQUIRE(sa.ok());
    REQUIRE(sb.ok());
    CHECK(sa->total().enrolled() == 3);
    CHECK(sb->total().enrolled() == 1);
  }
  v1::GetEnrollmentOverviewRequest overview;
  overview.set_parent(b);
  absl::StatusOr<v1::EnrollmentOverview> ob = h.api.GetEnrollmentOverview(As(kB, "u1"), overview);
  REQUIRE(ob.ok());
  CHECK(ob->total() == 1);

  // A's sequence id under B's own company name, and A's own name: not found for B.
  const std::string a_id = SequenceIdOf(a);
  CHECK(absl::IsNotFound(stats(kB, absl::StrCat("companies/", kB, "/sequences/", a_id)).status()));
  CHECK(absl::IsNotFound(stats(kB, a).status()));
  overview.set_parent(absl::StrCat("companies/", kB, "/sequences/", a_id));
  CHECK(absl::IsNotFound(h.api.GetEnrollmentOverview(As(kB, "u1"), overview).status()));
  // A consistency token A was given does not pass for B.
  absl::StatusOr<v1::SequenceResponse> a_write =
      h.api.UpdateSequence(As(kA), WeightsUpdate(a, 2, 1, "weights-a"));
  REQUIRE(a_write.ok());
  absl::StatusOr<v1::SequenceStatistics> forged = stats(kB, b, "", a_write->consistency_token());
  CHECK(absl::IsInvalidArgument(forged.status()));
  CHECK(Contains(ViolatedFields(forged.status()), "consistency_token"));
}

// ---------------------------------------------------------------- email templates

v1::CreateEmailTemplateRequest TemplateRequest(
    const std::string& company, const std::string& request_id,
    const std::string& subject = "Hi {{person.first_name}}", const std::string& body = "Body v1") {
  v1::CreateEmailTemplateRequest r;
  r.set_parent(absl::StrCat("companies/", company));
  r.set_request_id(request_id);
  r.mutable_email_template()->set_display_name("Intro");
  r.mutable_email_template()->set_subject(subject);
  r.mutable_email_template()->set_body(body);
  return r;
}

std::string CreateTemplate(Harness& h, const std::string& company, const std::string& request_id) {
  absl::StatusOr<v1::EmailTemplateResponse> r =
      h.api.CreateEmailTemplate(As(company), TemplateRequest(company, request_id));
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return r->email_template().name();
}

std::string TemplateIdOf(const std::string& name) { return name.substr(name.rfind('/') + 1); }

// A sequence whose second step is an automatic email taking its text from `template_id`.
v1::CreateSequenceRequest WithTemplateStep(const std::string& company,
                                           const std::string& request_id,
                                           const std::string& template_id) {
  v1::CreateSequenceRequest req = CreateRequest(company, request_id);
  v1::Step mail = domain::testing::EmailStep("mail", v1::DELAY_UNIT_DAYS, 1, true, "", "");
  mail.mutable_email()->set_email_template_id(template_id);
  *req.mutable_sequence()->add_steps() = mail;
  return req;
}

v1::Sequence Get(Harness& h, const std::string& company, const std::string& name) {
  v1::GetSequenceRequest get;
  get.set_name(name);
  absl::StatusOr<v1::Sequence> s = h.api.GetSequence(As(company), get);
  REQUIRE(s.ok());
  return *s;
}

TEST_CASE(
    "given an email template, when a step names it, then the sequence shows the copied text with "
    "the template's id and version, and a template edit reaches it only when its steps are saved "
    "again") {
  Harness h;
  const std::string tname = CreateTemplate(h, kA, "tpl-1");
  const std::string tid = TemplateIdOf(tname);
  absl::StatusOr<v1::SequenceResponse> created =
      h.api.CreateSequence(As(kA), WithTemplateStep(kA, "seq-1", tid));
  INFO(created.status().ToString());
  REQUIRE(created.ok());
  const std::string name = created->sequence().name();
  const v1::Sequence shown = Get(h, kA, name);
  const v1::EmailStep& copied = shown.steps(2).email();
  CHECK(copied.subject() == "Hi {{person.first_name}}");
  CHECK(copied.body() == "Body v1");
  CHECK(copied.email_template_id() == tid);
  CHECK(copied.email_template_version() == 1);
  // The event on the log carries the copy: the executor never needs the template.
  bool event_has_copy = false;
  for (const kafka::Message& m : h.log.Records(kTopics.sequence_events)) {
    v1::Envelope e;
    REQUIRE(e.ParseFromString(m.value));
    if (e.has_sequence_created()) {
      event_has_copy = e.sequence_created().steps(2).email().body() == "Body v1";
    }
  }
  CHECK(event_has_copy);
  // A preview of proposed steps that name the template sees them as a save would.
  v1::PreviewScheduleRequest preview;
  preview.set_name(name);
  preview.set_has_proposed_steps(true);
  *preview.mutable_proposed_steps() = WithTemplateStep(kA, "unused", tid).sequence().steps();
  absl::StatusOr<v1::PreviewScheduleResponse> previewed = h.api.PreviewSchedule(As(kA), preview);
  INFO(previewed.status().ToString());
  CHECK(previewed.ok());

  // The template changes: the sequence keeps version 1's text.
  v1::UpdateEmailTemplateRequest edit;
  edit.mutable_email_template()->set_name(tname);
  edit.mutable_email_template()->set_body("Body v2");
  edit.mutable_update_mask()->add_paths("body");
  edit.set_expected_version(1);
  edit.set_request_id("tpl-edit");
  absl::StatusOr<v1::EmailTemplateResponse> edited = h.api.UpdateEmailTemplate(As(kA), edit);
  REQUIRE(edited.ok());
  CHECK(edited->email_template().version() == 2);
  CHECK(edited->email_template().subject() == "Hi {{person.first_name}}");  // not in the mask
  CHECK(Get(h, kA, name).steps(2).email().body() == "Body v1");

  // Saving the steps as GetSequence showed them copies version 2.
  v1::UpdateSequenceRequest save;
  *save.mutable_sequence() = Get(h, kA, name);
  save.mutable_update_mask()->add_paths("steps");
  save.set_request_id("seq-save");
  absl::StatusOr<v1::SequenceResponse> saved = h.api.UpdateSequence(As(kA), save);
  INFO(saved.status().ToString());
  REQUIRE(saved.ok());
  CHECK(saved->sequence().steps(2).email().body() == "Body v2");
  CHECK(saved->sequence().steps(2).email().email_template_version() == 2);

  // A hand edit of the copied text with the template id still set is refused, naming the field.
  v1::UpdateSequenceRequest hand = save;
  hand.set_request_id("seq-hand");
  hand.mutable_sequence()->mutable_steps(2)->mutable_email()->set_body("my words");
  absl::Status refused = h.api.UpdateSequence(As(kA), hand).status();
  CHECK(absl::IsInvalidArgument(refused));
  CHECK(ViolatedFields(refused) == std::vector<std::string>{"sequence.steps[2].email.body"});
}

TEST_CASE(
    "given company A's template, company B can neither read, list, change, delete nor reference "
    "it") {
  Harness h;
  const std::string tname = CreateTemplate(h, kA, "tpl-a");
  const std::string tid = TemplateIdOf(tname);
  v1::GetEmailTemplateRequest get;
  get.set_name(tname);
  CHECK(absl::IsNotFound(h.api.GetEmailTemplate(As(kB), get).status()));
  get.set_name(absl::StrCat("companies/", kB, "/emailTemplates/", tid));
  CHECK(absl::IsNotFound(h.api.GetEmailTemplate(As(kB), get).status()));
  v1::ListEmailTemplatesRequest list;
  list.set_parent(absl::StrCat("companies/", kA));
  CHECK(absl::IsNotFound(h.api.ListEmailTemplates(As(kB), list).status()));
  list.set_parent(absl::StrCat("companies/", kB));
  absl::StatusOr<v1::ListEmailTemplatesResponse> own = h.api.ListEmailTemplates(As(kB), list);
  REQUIRE(own.ok());
  CHECK(own->email_templates().empty());
  v1::UpdateEmailTemplateRequest update;
  update.mutable_email_template()->set_name(
      absl::StrCat("companies/", kB, "/emailTemplates/", tid));
  update.mutable_email_template()->set_subject("pwned");
  update.mutable_update_mask()->add_paths("subject");
  update.set_request_id("x-update");
  CHECK(absl::IsNotFound(h.api.UpdateEmailTemplate(As(kB), update).status()));
  v1::DeleteEmailTemplateRequest del;
  del.set_name(absl::StrCat("companies/", kB, "/emailTemplates/", tid));
  del.set_request_id("x-delete");
  CHECK(absl::IsNotFound(h.api.DeleteEmailTemplate(As(kB), del).status()));
  absl::Status referenced =
      h.api.CreateSequence(As(kB), WithTemplateStep(kB, "b-seq", tid)).status();
  CHECK(absl::IsNotFound(referenced));
  CHECK(ViolatedFields(referenced) ==
        std::vector<std::string>{"sequence.steps[2].email.email_template_id"});
  // Only A's own writes are on the log.
  CHECK(h.log.Records(kTopics.sequence_events).size() == 1);
}

TEST_CASE(
    "given a template in use, when it is deleted, then sequences keep their copy, new references "
    "are NOT_FOUND and a retried delete writes once") {
  Harness h;
  const std::string tname = CreateTemplate(h, kA, "tpl-1");
  const std::string tid = TemplateIdOf(tname);
  absl::StatusOr<v1::SequenceResponse> created =
      h.api.CreateSequence(As(kA), WithTemplateStep(kA, "seq-1", tid));
  REQUIRE(created.ok());
  v1::DeleteEmailTemplateRequest del;
  del.set_name(tname);
  del.set_request_id("tpl-del");
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<v1::EmailTemplateResponse> deleted = h.api.DeleteEmailTemplate(As(kA), del);
    REQUIRE(deleted.ok());
    CHECK(deleted->email_template().deleted());
  }
  CHECK(h.Count(kTopics.sequence_events, v1::Envelope::kEmailTemplateDeleted) == 1);
  CHECK(Get(h, kA, created->sequence().name()).steps(2).email().body() == "Body v1");
  absl::Status again = h.api.CreateSequence(As(kA), WithTemplateStep(kA, "seq-2", tid)).status();
  CHECK(absl::IsNotFound(again));
  CHECK(Contains(ViolatedFields(again), "sequence.steps[2].email.email_template_id"));
  // Listed only with show_deleted.
  v1::ListEmailTemplatesRequest list;
  list.set_parent(absl::StrCat("companies/", kA));
  CHECK(h.api.ListEmailTemplates(As(kA), list)->email_templates().empty());
  list.set_show_deleted(true);
  CHECK(h.api.ListEmailTemplates(As(kA), list)->email_templates_size() == 1);
}

TEST_CASE(
    "given template requests, then bad merge fields are INVALID_ARGUMENT naming the field, a "
    "retried create writes once, a stale expected version is ABORTED, and listing pages") {
  Harness h;
  absl::Status bad =
      h.api.CreateEmailTemplate(As(kA), TemplateRequest(kA, "tpl-bad", "Hi {{person.first_name"))
          .status();
  CHECK(absl::IsInvalidArgument(bad));
  CHECK(ViolatedFields(bad) == std::vector<std::string>{"email_template.subject"});
  absl::Status unnamed = [&] {
    v1::CreateEmailTemplateRequest r = TemplateRequest(kA, "tpl-unnamed");
    r.mutable_email_template()->clear_display_name();
    return h.api.CreateEmailTemplate(As(kA), r).status();
  }();
  CHECK(ViolatedFields(unnamed) == std::vector<std::string>{"email_template.display_name"});
  CHECK(h.Written() == 0);

  const std::string first = CreateTemplate(h, kA, "tpl-1");
  CHECK(CreateTemplate(h, kA, "tpl-1") == first);
  CHECK(h.Count(kTopics.sequence_events, v1::Envelope::kEmailTemplateCreated) == 1);
  v1::UpdateEmailTemplateRequest stale;
  stale.mutable_email_template()->set_name(first);
  stale.mutable_email_template()->set_subject("New");
  stale.mutable_update_mask()->add_paths("subject");
  stale.set_expected_version(5);
  stale.set_request_id("tpl-stale");
  CHECK(absl::IsAborted(h.api.UpdateEmailTemplate(As(kA), stale).status()));
  stale.mutable_update_mask()->add_paths("sender");
  CHECK(Contains(ViolatedFields(h.api.UpdateEmailTemplate(As(kA), stale).status()), "update_mask"));

  CreateTemplate(h, kA, "tpl-2");
  CreateTemplate(h, kA, "tpl-3");
  v1::ListEmailTemplatesRequest list;
  list.set_parent(absl::StrCat("companies/", kA));
  list.set_page_size(2);
  absl::StatusOr<v1::ListEmailTemplatesResponse> page1 = h.api.ListEmailTemplates(As(kA), list);
  REQUIRE(page1.ok());
  CHECK(page1->email_templates_size() == 2);
  REQUIRE_FALSE(page1->next_page_token().empty());
  list.set_page_token(page1->next_page_token());
  absl::StatusOr<v1::ListEmailTemplatesResponse> page2 = h.api.ListEmailTemplates(As(kA), list);
  REQUIRE(page2.ok());
  CHECK(page2->email_templates_size() == 1);
  CHECK(page2->next_page_token().empty());
  // The page token is A's: B cannot use it.
  list.set_parent(absl::StrCat("companies/", kB));
  CHECK_FALSE(h.api.ListEmailTemplates(As(kB), list).ok());
}

TEST_CASE(
    "given company sending settings, when set, then get answers them (defaults before), a retry "
    "with the same request id writes nothing, bad limits are INVALID_ARGUMENT and another "
    "company is NOT_FOUND") {
  Harness h;
  v1::GetCompanySendingSettingsRequest get;
  get.set_parent(absl::StrCat("companies/", kA));
  absl::StatusOr<v1::CompanySendingSettingsResponse> before =
      h.api.GetCompanySendingSettings(As(kA), get);
  REQUIRE(before.ok());
  CHECK(before->version() == 0);
  CHECK(before->settings().daily_limit_per_sender() == domain::kDefaultDailySendLimit);
  CHECK(before->settings().time_zone() == "UTC");

  v1::SetCompanySendingSettingsRequest set;
  set.set_parent(absl::StrCat("companies/", kA));
  set.set_request_id("limits-1");
  set.mutable_settings()->set_daily_limit_per_sender(100);
  set.mutable_settings()->set_hourly_limit_per_sender(20);
  set.mutable_settings()->set_time_zone("Europe/Berlin");
  absl::StatusOr<v1::CompanySendingSettingsResponse> r =
      h.api.SetCompanySendingSettings(As(kA), set);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  CHECK(r->version() == 1);
  const int written = h.Written();
  REQUIRE(h.api.SetCompanySendingSettings(As(kA), set).ok());  // a retry
  CHECK(h.Written() == written);

  absl::StatusOr<v1::CompanySendingSettingsResponse> after =
      h.api.GetCompanySendingSettings(As(kA), get);
  REQUIRE(after.ok());
  CHECK(after->version() == 1);
  CHECK(after->settings().daily_limit_per_sender() == 100);
  CHECK(after->settings().hourly_limit_per_sender() == 20);
  CHECK(after->settings().time_zone() == "Europe/Berlin");

  set.set_request_id("limits-2");
  set.mutable_settings()->set_hourly_limit_per_sender(101);
  CHECK(ViolatedFields(h.api.SetCompanySendingSettings(As(kA), set).status()) ==
        std::vector<std::string>{"settings.hourly_limit_per_sender"});
  CHECK(absl::IsNotFound(h.api.SetCompanySendingSettings(As(kB), set).status()));
  CHECK(absl::IsNotFound(h.api.GetCompanySendingSettings(As(kB), get).status()));
}

}  // namespace
}  // namespace sequences::api
