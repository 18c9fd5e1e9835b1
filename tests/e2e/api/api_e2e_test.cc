// sequence-api end to end: the real binary, the real broker, a real gRPC channel (tier "e2e").
// The step executor is not started: tests that need an enrollment to be running write the
// executor's EnrollmentStarted event themselves.
#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "libs/domain/envelope.h"
#include "libs/kafka/producer.h"
#include "tests/e2e/api/api_process.h"
#include "tests/support/kafka_env.h"
#include "tests/support/process.h"
#include "tests/support/requests.h"
#include "tests/support/steps.h"

namespace sequences::testing {
namespace {

constexpr char kCompany[] = "acme";

v1::SequenceResponse CreateSequence(ApiProcess& api, const std::string& company,
                                    const std::string& request_id) {
  v1::SequenceResponse resp;
  grpc::Status s = api.sequences().CreateSequence(CallAs(company).get(),
                                                  CreateRequest(company, request_id), &resp);
  INFO(s.error_message());
  REQUIRE(s.ok());
  return resp;
}

// The field paths of the google.rpc.BadRequest in a status's details.
std::vector<std::string> ViolatedFields(const grpc::Status& s) {
  std::vector<std::string> fields;
  google::rpc::Status rich;
  if (!rich.ParseFromString(s.error_details())) return fields;
  for (const google::protobuf::Any& any : rich.details()) {
    google::rpc::BadRequest br;
    if (any.UnpackTo(&br)) {
      for (const auto& fv : br.field_violations()) fields.push_back(fv.field());
    }
  }
  return fields;
}

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// What the step executor would write when it starts the enrollment.
void WriteEnrollmentStarted(const std::string& topic_prefix, const std::string& company,
                            const std::string& item_key, const std::string& sequence_id,
                            const std::string& request_id) {
  auto producer = kafka::Producer::Create({.client = {.bootstrap_servers = Bootstrap()}});
  REQUIRE(producer.ok());
  const std::string enrollment_id = absl::StrCat(item_key, "#", sequence_id, "#1");
  v1::Envelope e = domain::MakeEnvelope(absl::StrCat(enrollment_id, "/started"), company,
                                        absl::Now(), "", request_id);
  v1::EnrollmentStarted* started = e.mutable_enrollment_started();
  started->mutable_ref()->set_enrollment_id(enrollment_id);
  started->mutable_ref()->set_item_key(item_key);
  started->mutable_ref()->set_sequence_id(sequence_id);
  started->set_request_id(request_id);
  started->set_sequence_version(1);
  started->set_entity_kind(v1::ENTITY_KIND_DEAL);
  started->set_owner_id("owner-7");
  started->set_time_zone("UTC");
  *started->mutable_started_at() = e.occurred_at();
  started->set_first_step_id("call-1");
  *started->mutable_first_due_at() = e.occurred_at();
  auto sent = (*producer)->Send(
      {.topic = topic_prefix + "executor-events", .key = item_key, .value = e.SerializeAsString()});
  INFO(sent.status().ToString());
  REQUIRE(sent.ok());
}

// Polls GetEnrollment until `pred` holds (the read model folds asynchronously); bounded.
template <typename Pred>
v1::Enrollment WaitForEnrollment(ApiProcess& api, const std::string& company,
                                 const std::string& name, Pred pred) {
  v1::Enrollment e;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    v1::GetEnrollmentRequest req;
    req.set_name(name);
    e.Clear();
    if (api.enrollments().GetEnrollment(CallAs(company).get(), req, &e).ok() && pred(e)) return e;
    absl::SleepFor(absl::Milliseconds(100));
  }
  FAIL("the enrollment never reached the expected state: " << e.DebugString());
  return e;
}

struct Env {
  std::string prefix = UniqueName("api") + ".";
  std::string dir = TempDir("sequence-api-e2e");
};

TEST_CASE(
    "a created sequence is listed, and an enrolled deal is pending until the executor "
    "starts it, then in progress") {
  Env env;
  ApiProcess api(env.prefix, env.dir + "/data");

  v1::SequenceResponse created = CreateSequence(api, kCompany, "create-1");
  const std::string name = created.sequence().name();
  CHECK(name.rfind("companies/acme/sequences/", 0) == 0);
  CHECK(created.sequence().version() == 1);
  CHECK(created.sequence().steps_size() == 2);
  CHECK_FALSE(created.consistency_token().empty());

  // Read-your-write with the token.
  v1::GetSequenceRequest get;
  get.set_name(name);
  get.set_consistency_token(created.consistency_token());
  v1::Sequence got;
  REQUIRE(api.sequences().GetSequence(CallAs(kCompany).get(), get, &got).ok());
  CHECK(got.display_name() == "Follow up after demo");
  CHECK(got.entity_kind() == v1::ENTITY_KIND_DEAL);

  v1::ListSequencesRequest list;
  list.set_parent("companies/acme");
  list.set_consistency_token(created.consistency_token());
  v1::ListSequencesResponse listed;
  REQUIRE(api.sequences().ListSequences(CallAs(kCompany).get(), list, &listed).ok());
  REQUIRE(listed.sequences_size() == 1);
  CHECK(listed.sequences(0).name() == name);

  v1::EnrollmentResponse enrolled;
  grpc::Status s = api.enrollments().Enroll(CallAs(kCompany).get(),
                                            EnrollRequest(name, "42", "enroll-42"), &enrolled);
  INFO(s.error_message());
  REQUIRE(s.ok());
  CHECK(enrolled.enrollment().name() == name + "/enrollments/deal:42");
  CHECK(enrolled.enrollment().pending());

  v1::ListEnrollmentsRequest le;
  le.set_parent(name);
  le.set_consistency_token(enrolled.consistency_token());
  v1::ListEnrollmentsResponse enrollments;
  REQUIRE(api.enrollments().ListEnrollments(CallAs(kCompany).get(), le, &enrollments).ok());
  REQUIRE(enrollments.enrollments_size() == 1);
  CHECK(enrollments.enrollments(0).item_key() == "acme/deal/42");
  CHECK(enrollments.enrollments(0).pending());
  CHECK(enrollments.enrollments(0).owner_id() == "owner-7");

  v1::GetEnrollmentOverviewRequest ov;
  ov.set_parent(name);
  ov.set_consistency_token(enrolled.consistency_token());
  v1::EnrollmentOverview overview;
  REQUIRE(api.enrollments().GetEnrollmentOverview(CallAs(kCompany).get(), ov, &overview).ok());
  CHECK(overview.pending() == 1);
  CHECK(overview.in_progress() == 0);
  CHECK(overview.total() == 1);

  // The executor starts it (written here by the test).
  const std::string sequence_id = name.substr(name.rfind('/') + 1);
  WriteEnrollmentStarted(env.prefix, kCompany, "acme/deal/42", sequence_id, "enroll-42");
  v1::Enrollment running = WaitForEnrollment(
      api, kCompany, name + "/enrollments/deal:42",
      [](const v1::Enrollment& e) { return e.status() == v1::ENROLLMENT_STATUS_IN_PROGRESS; });
  CHECK_FALSE(running.pending());
  CHECK(running.pending_step_id() == "call-1");

  overview.Clear();
  ov.clear_consistency_token();
  REQUIRE(api.enrollments().GetEnrollmentOverview(CallAs(kCompany).get(), ov, &overview).ok());
  CHECK(overview.pending() == 0);
  CHECK(overview.in_progress() == 1);

  le.clear_consistency_token();
  le.set_status(v1::ENROLLMENT_STATUS_IN_PROGRESS);
  le.set_owner_id("owner-7");
  enrollments.Clear();
  REQUIRE(api.enrollments().ListEnrollments(CallAs(kCompany).get(), le, &enrollments).ok());
  CHECK(enrollments.enrollments_size() == 1);
  le.set_owner_id("someone-else");
  enrollments.Clear();
  REQUIRE(api.enrollments().ListEnrollments(CallAs(kCompany).get(), le, &enrollments).ok());
  CHECK(enrollments.enrollments_size() == 0);

  // Metrics saw the calls.
  v1::Metrics metrics;
  auto ops = CallAs("", "");
  REQUIRE(api.operations().GetMetrics(ops.get(), v1::GetMetricsRequest(), &metrics).ok());
  CHECK(metrics.produced_records() >= 2);
  CHECK(metrics.prometheus_text().find("sequences_api_requests_total") != std::string::npos);
}

// NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION, ABORTED and tenancy are decided by the
// application layer and tested there (services/sequence-api/tests/api_test.cc); here what only the
// wire shows: field violations in the trailers, authentication.
TEST_CASE("every refusal carries its canonical code, and invalid arguments name the fields") {
  Env env;
  ApiProcess api(env.prefix, env.dir + "/data");
  v1::SequenceResponse created = CreateSequence(api, kCompany, "create-r");
  const std::string name = created.sequence().name();

  SECTION("INVALID_ARGUMENT with field violations") {
    v1::CreateSequenceRequest bad = CreateRequest(kCompany, "create-bad");
    bad.mutable_sequence()->clear_display_name();
    bad.mutable_sequence()->mutable_steps(1)->mutable_delay()->set_amount(100000);
    v1::SequenceResponse resp;
    grpc::Status s = api.sequences().CreateSequence(CallAs(kCompany).get(), bad, &resp);
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    const std::vector<std::string> fields = ViolatedFields(s);
    INFO(s.error_message());
    CHECK(Contains(fields, "sequence.display_name"));
    CHECK(Contains(fields, "sequence.steps[1].delay.amount"));

    v1::EnrollRequest no_request_id = EnrollRequest(name, "7", "");
    v1::EnrollmentResponse er;
    s = api.enrollments().Enroll(CallAs(kCompany).get(), no_request_id, &er);
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(Contains(ViolatedFields(s), "item.request_id"));

    v1::GetSequenceRequest malformed;
    malformed.set_name("sequences/x");
    v1::Sequence seq;
    s = api.sequences().GetSequence(CallAs(kCompany).get(), malformed, &seq);
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(Contains(ViolatedFields(s), "name"));
  }
  SECTION("UNAUTHENTICATED without identity or with a wrong token") {
    v1::ListSequencesRequest list;
    list.set_parent("companies/acme");
    v1::ListSequencesResponse resp;
    CHECK(api.sequences().ListSequences(CallAs("").get(), list, &resp).error_code() ==
          grpc::StatusCode::UNAUTHENTICATED);
    CHECK(api.sequences().ListSequences(CallAs(kCompany, "").get(), list, &resp).error_code() ==
          grpc::StatusCode::UNAUTHENTICATED);
    CHECK(api.sequences()
              .ListSequences(CallAs(kCompany, "u1", 20, "wrong").get(), list, &resp)
              .error_code() == grpc::StatusCode::UNAUTHENTICATED);
    CHECK(api.sequences()
              .ListSequences(CallAs(kCompany, "u1", 20, "").get(), list, &resp)
              .error_code() == grpc::StatusCode::UNAUTHENTICATED);
  }
  SECTION("an identity or a token given twice is refused, not served as either") {
    // A caller's own header followed by the one a gateway appends: which one was checked and
    // which one would be acted on may differ.
    v1::ListSequencesRequest list;
    list.set_parent(absl::StrCat("companies/", kCompany));
    v1::ListSequencesResponse resp;
    for (const char* header : {"x-sequences-company", "x-sequences-user"}) {
      std::unique_ptr<grpc::ClientContext> ctx = CallAs(kCompany);
      ctx->AddMetadata(header, "globex");
      grpc::Status s = api.sequences().ListSequences(ctx.get(), list, &resp);
      INFO(header << ": " << s.error_code() << " " << s.error_message());
      CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
      CHECK(Contains(ViolatedFields(s), header));
    }
    std::unique_ptr<grpc::ClientContext> ctx = CallAs(kCompany);
    ctx->AddMetadata("authorization", "Bearer wrong");
    CHECK(api.sequences().ListSequences(ctx.get(), list, &resp).error_code() ==
          grpc::StatusCode::UNAUTHENTICATED);
    // Once each, it is served.
    CHECK(api.sequences().ListSequences(CallAs(kCompany).get(), list, &resp).ok());
  }
}

TEST_CASE("a retry with the same request id answers the first result and writes nothing new") {
  Env env;
  ApiProcess api(env.prefix, env.dir + "/data");
  v1::SequenceResponse first = CreateSequence(api, kCompany, "create-once");
  v1::SequenceResponse again = CreateSequence(api, kCompany, "create-once");
  CHECK(again.sequence().name() == first.sequence().name());
  CHECK(again.sequence().version() == 1);
  CHECK(again.consistency_token() == first.consistency_token());

  const std::string name = first.sequence().name();
  v1::EnrollmentResponse e1, e2;
  REQUIRE(api.enrollments()
              .Enroll(CallAs(kCompany).get(), EnrollRequest(name, "42", "enroll-once"), &e1)
              .ok());
  REQUIRE(api.enrollments()
              .Enroll(CallAs(kCompany).get(), EnrollRequest(name, "42", "enroll-once"), &e2)
              .ok());
  CHECK(e2.consistency_token() == e1.consistency_token());
  // The request log names each call's request id, Enroll's (inside its item) too.
  CHECK(api.process().WaitForLog(
      "\"method\":\"/sequences.v1.EnrollmentService/Enroll\",\"code\":\"OK\"", absl::Seconds(5)));
  CHECK(api.process().WaitForLog("\"request_id\":\"enroll-once\"", absl::Seconds(5)));
  CHECK(api.process().WaitForLog("\"request_id\":\"create-once\"", absl::Seconds(5)));

  v1::ListSequencesRequest list;
  list.set_parent("companies/acme");
  v1::ListSequencesResponse listed;
  REQUIRE(api.sequences().ListSequences(CallAs(kCompany).get(), list, &listed).ok());
  CHECK(listed.sequences_size() == 1);

  v1::Metrics metrics;
  auto ops = CallAs("", "");
  REQUIRE(api.operations().GetMetrics(ops.get(), v1::GetMetricsRequest(), &metrics).ok());
  CHECK(metrics.produced_records() == 2);  // one create, one enroll request
}

TEST_CASE(
    "a request id sent again for another request (other fields, another RPC) is refused, also "
    "by concurrent senders and after a rebuild from the log, and only the first request is "
    "written") {
  Env env;
  const std::string data = env.dir + "/data";
  std::string name;
  auto rename = [&](const std::string& display_name) {
    v1::UpdateSequenceRequest update;
    update.mutable_sequence()->set_name(name);
    update.mutable_sequence()->set_display_name(display_name);
    update.mutable_update_mask()->add_paths("display_name");
    update.set_request_id("rename-race");
    return update;
  };
  auto delete_under_create_id = [&] {
    v1::DeleteSequenceRequest del;
    del.set_name(name);
    del.set_request_id("create-dup");
    return del;
  };
  {
    ApiProcess api(env.prefix, data);
    name = CreateSequence(api, kCompany, "create-dup").sequence().name();
    // Eight callers at once, one request id, two display names (each on its own channel's call).
    constexpr int kCallers = 8;
    std::vector<grpc::Status> statuses(kCallers);
    std::vector<v1::SequenceResponse> answers(kCallers);
    std::vector<std::thread> threads;
    for (int i = 0; i < kCallers; ++i) {
      threads.emplace_back([&, i] {
        statuses[i] = api.sequences().UpdateSequence(
            CallAs(kCompany).get(), rename(i % 2 == 0 ? "Even" : "Odd"), &answers[i]);
      });
    }
    for (std::thread& t : threads) t.join();
    std::set<std::string> applied;
    int refused = 0;
    for (int i = 0; i < kCallers; ++i) {
      INFO(i << ": " << statuses[i].error_code() << " " << statuses[i].error_message());
      if (statuses[i].ok()) {
        applied.insert(answers[i].sequence().display_name());
      } else {
        CHECK(statuses[i].error_code() == grpc::StatusCode::INVALID_ARGUMENT);
        CHECK(Contains(ViolatedFields(statuses[i]), "request_id"));
        ++refused;
      }
    }
    CHECK(applied.size() == 1);
    CHECK(refused == kCallers / 2);
    v1::SequenceResponse resp;
    grpc::Status s =
        api.sequences().DeleteSequence(CallAs(kCompany).get(), delete_under_create_id(), &resp);
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);

    v1::Metrics metrics;
    auto ops = CallAs("", "");
    REQUIRE(api.operations().GetMetrics(ops.get(), v1::GetMetricsRequest(), &metrics).ok());
    CHECK(metrics.produced_records() == 2);  // the create and one rename
    CHECK(api.process().Terminate() == 0);
  }
  // Rebuilt from the log: the same refusals, the same retries answered, nothing written.
  ApiProcess rebuilt(env.prefix, env.dir + "/rebuilt");
  v1::SequenceResponse resp;
  grpc::Status s =
      rebuilt.sequences().DeleteSequence(CallAs(kCompany).get(), delete_under_create_id(), &resp);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  v1::GetSequenceRequest get;
  get.set_name(name);
  v1::Sequence seq;
  REQUIRE(rebuilt.sequences().GetSequence(CallAs(kCompany).get(), get, &seq).ok());
  CHECK(!seq.deleted());
  const std::string other = seq.display_name() == "Even" ? "Odd" : "Even";
  s = rebuilt.sequences().UpdateSequence(CallAs(kCompany).get(), rename(other), &resp);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  s = rebuilt.sequences().UpdateSequence(CallAs(kCompany).get(), rename(seq.display_name()), &resp);
  CHECK(s.ok());
  CHECK(resp.sequence().version() == seq.version());
  v1::Metrics metrics;
  auto ops = CallAs("", "");
  REQUIRE(rebuilt.operations().GetMetrics(ops.get(), v1::GetMetricsRequest(), &metrics).ok());
  CHECK(metrics.produced_records() == 0);
}

TEST_CASE("a write the broker cannot make durable is UNAVAILABLE and never appears") {
  Env env;
  ApiProcess healthy(env.prefix, env.dir + "/healthy");
  // Same topics, but its producer talks to a port where no broker listens.
  ApiProcess cut_off(env.prefix, env.dir + "/cut-off",
                     {"--producer_bootstrap_servers=127.0.0.1:1", "--delivery_timeout_ms=2000"});

  v1::SequenceResponse resp;
  grpc::Status s = cut_off.sequences().CreateSequence(
      CallAs(kCompany).get(), CreateRequest(kCompany, "lost-create"), &resp);
  INFO(s.error_message());
  CHECK(s.error_code() == grpc::StatusCode::UNAVAILABLE);

  // A call whose deadline ends first is answered at its deadline, never OK.
  s = cut_off.sequences().CreateSequence(CallAs(kCompany, "u1", 0.5).get(),
                                         CreateRequest(kCompany, "lost-create-2"), &resp);
  CHECK(s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);

  // The healthy instance writes and reads; the lost writes are nowhere.
  v1::SequenceResponse ok = CreateSequence(healthy, kCompany, "kept-create");
  v1::ListSequencesRequest list;
  list.set_parent("companies/acme");
  list.set_consistency_token(ok.consistency_token());
  v1::ListSequencesResponse listed;
  REQUIRE(healthy.sequences().ListSequences(CallAs(kCompany).get(), list, &listed).ok());
  REQUIRE(listed.sequences_size() == 1);
  CHECK(listed.sequences(0).name() == ok.sequence().name());

  v1::Metrics metrics;
  auto ops = CallAs("", "");
  REQUIRE(cut_off.operations().GetMetrics(ops.get(), v1::GetMetricsRequest(), &metrics).ok());
  CHECK(metrics.produce_errors() >= 1);
  CHECK(metrics.produced_records() == 0);
}

TEST_CASE("a restart with an empty read-model directory rebuilds the same answers") {
  Env env;
  std::string before_seq, before_enrollments, before_overview, name;
  {
    ApiProcess api(env.prefix, env.dir + "/first");
    v1::SequenceResponse created = CreateSequence(api, kCompany, "create-rb");
    name = created.sequence().name();
    v1::EnrollmentResponse er;
    for (const std::string item : {"1", "2", "3"}) {
      REQUIRE(api.enrollments()
                  .Enroll(CallAs(kCompany).get(), EnrollRequest(name, item, "e-" + item), &er)
                  .ok());
    }
    v1::PauseSequenceRequest pause;
    pause.set_name(name);
    pause.set_request_id("pause-rb");
    v1::SequenceResponse paused;
    REQUIRE(api.sequences().PauseSequence(CallAs(kCompany).get(), pause, &paused).ok());

    v1::GetSequenceRequest get;
    get.set_name(name);
    get.set_consistency_token(paused.consistency_token());
    v1::Sequence seq;
    REQUIRE(api.sequences().GetSequence(CallAs(kCompany).get(), get, &seq).ok());
    CHECK(seq.paused());
    before_seq = seq.SerializeAsString();
    v1::ListEnrollmentsRequest le;
    le.set_parent(name);
    le.set_consistency_token(er.consistency_token());
    v1::ListEnrollmentsResponse list;
    REQUIRE(api.enrollments().ListEnrollments(CallAs(kCompany).get(), le, &list).ok());
    CHECK(list.enrollments_size() == 3);
    before_enrollments = list.SerializeAsString();
    v1::GetEnrollmentOverviewRequest ov;
    ov.set_parent(name);
    v1::EnrollmentOverview overview;
    REQUIRE(api.enrollments().GetEnrollmentOverview(CallAs(kCompany).get(), ov, &overview).ok());
    before_overview = overview.SerializeAsString();
    CHECK(api.process().Terminate() == 0);
  }
  ApiProcess rebuilt(env.prefix, env.dir + "/second");  // empty directory
  v1::GetSequenceRequest get;
  get.set_name(name);
  v1::Sequence seq;
  REQUIRE(rebuilt.sequences().GetSequence(CallAs(kCompany).get(), get, &seq).ok());
  CHECK(seq.SerializeAsString() == before_seq);
  v1::ListEnrollmentsRequest le;
  le.set_parent(name);
  v1::ListEnrollmentsResponse list;
  REQUIRE(rebuilt.enrollments().ListEnrollments(CallAs(kCompany).get(), le, &list).ok());
  CHECK(list.SerializeAsString() == before_enrollments);
  v1::GetEnrollmentOverviewRequest ov;
  ov.set_parent(name);
  v1::EnrollmentOverview overview;
  REQUIRE(rebuilt.enrollments().GetEnrollmentOverview(CallAs(kCompany).get(), ov, &overview).ok());
  CHECK(overview.SerializeAsString() == before_overview);
  CHECK(overview.pending() == 3);
}

TEST_CASE("a batch enroll answers every item on its own") {
  Env env;
  ApiProcess api(env.prefix, env.dir + "/data");
  const std::string name = CreateSequence(api, kCompany, "create-batch").sequence().name();
  v1::BatchEnrollRequest batch;
  batch.set_parent(name);
  for (int i = 0; i < 200; ++i) {
    *batch.add_items() = EnrollRequest(name, absl::StrCat("d", i), absl::StrCat("b-", i)).item();
  }
  batch.mutable_items(5)->set_entity_kind(v1::ENTITY_KIND_LEAD);  // wrong kind
  batch.mutable_items(6)->set_item_id("d0");                      // duplicate of item 0
  batch.mutable_items(6)->set_request_id("b-dup");
  v1::BatchEnrollResponse resp;
  grpc::Status s = api.enrollments().BatchEnroll(CallAs(kCompany).get(), batch, &resp);
  INFO(s.error_message());
  REQUIRE(s.ok());
  REQUIRE(resp.results_size() == 200);
  CHECK(resp.accepted_count() == 198);
  CHECK(resp.results(5).status().code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(resp.results(6).status().code() == grpc::StatusCode::ALREADY_EXISTS);
  CHECK(resp.results(7).status().code() == 0);
  CHECK(resp.results(7).enrollment().pending());

  v1::GetEnrollmentOverviewRequest ov;
  ov.set_parent(name);
  ov.set_consistency_token(resp.consistency_token());
  v1::EnrollmentOverview overview;
  REQUIRE(api.enrollments().GetEnrollmentOverview(CallAs(kCompany).get(), ov, &overview).ok());
  CHECK(overview.pending() == 198);

  // Paging walks every enrollment exactly once.
  v1::ListEnrollmentsRequest le;
  le.set_parent(name);
  le.set_page_size(64);
  std::set<std::string> seen;
  for (int page = 0; page < 10; ++page) {
    v1::ListEnrollmentsResponse list;
    REQUIRE(api.enrollments().ListEnrollments(CallAs(kCompany).get(), le, &list).ok());
    for (const v1::Enrollment& e : list.enrollments()) CHECK(seen.insert(e.name()).second);
    if (list.next_page_token().empty()) break;
    le.set_page_token(list.next_page_token());
  }
  CHECK(seen.size() == 198);
}

TEST_CASE(
    "ListSequences filters by entity kind and owner across pages, and a page token of one "
    "filter is refused for another") {
  Env env;
  ApiProcess api(env.prefix, env.dir + "/data");
  // 5 deal sequences of owner-a, 5 lead sequences of owner-b, interleaved by id.
  for (int i = 0; i < 10; ++i) {
    const bool deal = i % 2 == 0;
    v1::CreateSequenceRequest req = CreateRequest(
        "acme", absl::StrCat("filter-", i), deal ? v1::ENTITY_KIND_DEAL : v1::ENTITY_KIND_LEAD);
    req.mutable_sequence()->set_owner_id(deal ? "owner-a" : "owner-b");
    v1::SequenceResponse resp;
    grpc::Status s = api.sequences().CreateSequence(CallAs("acme").get(), req, &resp);
    INFO(s.error_message());
    REQUIRE(s.ok());
  }
  auto list_all = [&](v1::ListSequencesRequest req) {
    std::vector<v1::Sequence> out;
    std::string first_token;
    for (int page = 0; page < 20; ++page) {
      v1::ListSequencesResponse resp;
      grpc::Status s = api.sequences().ListSequences(CallAs("acme").get(), req, &resp);
      INFO(s.error_message());
      REQUIRE(s.ok());
      for (const v1::Sequence& seq : resp.sequences()) out.push_back(seq);
      if (first_token.empty()) first_token = resp.next_page_token();
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return std::make_pair(out, first_token);
  };
  v1::ListSequencesRequest leads;
  leads.set_parent("companies/acme");
  leads.set_page_size(2);
  leads.set_entity_kind(v1::ENTITY_KIND_LEAD);
  auto [lead_list, lead_token] = list_all(leads);
  CHECK(lead_list.size() == 5);
  for (const v1::Sequence& seq : lead_list) CHECK(seq.entity_kind() == v1::ENTITY_KIND_LEAD);

  v1::ListSequencesRequest owned;
  owned.set_parent("companies/acme");
  owned.set_page_size(3);
  owned.set_owner_id("owner-a");
  auto [owned_list, owned_token] = list_all(owned);
  CHECK(owned_list.size() == 5);
  for (const v1::Sequence& seq : owned_list) CHECK(seq.owner_id() == "owner-a");

  v1::ListSequencesRequest both = owned;
  both.set_entity_kind(v1::ENTITY_KIND_LEAD);
  CHECK(list_all(both).first.empty());

  // The lead listing's token does not continue a deal listing.
  REQUIRE_FALSE(lead_token.empty());
  v1::ListSequencesRequest deals = leads;
  deals.set_entity_kind(v1::ENTITY_KIND_DEAL);
  deals.set_page_token(lead_token);
  v1::ListSequencesResponse resp;
  grpc::Status s = api.sequences().ListSequences(CallAs("acme").get(), deals, &resp);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(Contains(ViolatedFields(s), "page_token"));
}

TEST_CASE(
    "a sequence created from a template with a settings override keeps the template's send "
    "window and re-enrollment rule") {
  Env env;
  ApiProcess api(env.prefix, env.dir + "/data");
  v1::ListSequenceTemplatesRequest lt;
  v1::ListSequenceTemplatesResponse templates;
  REQUIRE(api.sequences().ListSequenceTemplates(CallAs("acme").get(), lt, &templates).ok());
  REQUIRE(templates.templates_size() > 0);
  const v1::SequenceTemplate& t = templates.templates(0);
  REQUIRE(t.settings().has_send_window());
  v1::CreateSequenceRequest req;
  req.set_parent("companies/acme");
  req.set_request_id("from-template");
  req.set_template_id(t.id());
  req.mutable_sequence()->mutable_settings()->set_default_time_zone("Europe/Berlin");
  v1::SequenceResponse resp;
  grpc::Status s = api.sequences().CreateSequence(CallAs("acme").get(), req, &resp);
  INFO(s.error_message());
  REQUIRE(s.ok());
  const v1::SequenceSettings& got = resp.sequence().settings();
  CHECK(got.default_time_zone() == "Europe/Berlin");
  CHECK(got.send_window().SerializeAsString() == t.settings().send_window().SerializeAsString());
  CHECK(got.reenrollment() == t.settings().reenrollment());
}

}  // namespace
}  // namespace sequences::testing
