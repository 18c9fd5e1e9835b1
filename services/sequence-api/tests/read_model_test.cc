// The read model's fold against a real RocksDB store (records handed to Apply directly; the Kafka
// side is covered by the e2e tier).
#include "services/sequence-api/read_model.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "libs/domain/envelope.h"
#include "tests/support/process.h"

namespace sequences::api {
namespace {

const service::Topics kTopics = service::Topics::WithPrefix("t.");
const absl::Time kT0 = absl::FromUnixSeconds(1800000000);

std::unique_ptr<ReadModel> OpenFresh() {
  auto rm = ReadModel::Open(
      {.data_dir = testing::TempDir("read-model") + "/db", .kafka = {}, .topics = kTopics});
  REQUIRE(rm.ok());
  return std::move(*rm);
}

kafka::Message Record(const std::string& topic, int64_t offset, const v1::Envelope& e) {
  kafka::Message m;
  m.topic = topic;
  m.partition = 0;
  m.offset = offset;
  // Enrollment inputs are keyed by their item, as the publisher contract says.
  if (e.has_enroll_requested()) m.key = e.enroll_requested().item_key();
  m.value = e.SerializeAsString();
  return m;
}

v1::Envelope Created(const std::string& id, const std::string& company) {
  v1::Envelope e = domain::MakeEnvelope(id + "@1", company, kT0, "", "req-create");
  v1::SequenceCreated* c = e.mutable_sequence_created();
  c->set_sequence_id(id);
  c->set_version(1);
  c->set_name("Demo");
  c->set_owner_id("u1");
  c->set_entity_kind(v1::ENTITY_KIND_DEAL);
  return e;
}

v1::Envelope EnrollRequested(const std::string& seq, const std::string& item,
                             const std::string& request_id) {
  v1::Envelope e = domain::MakeEnvelope("enroll/" + request_id, "acme", kT0, "", request_id);
  v1::EnrollRequested* r = e.mutable_enroll_requested();
  r->set_request_id(request_id);
  r->set_sequence_id(seq);
  r->set_item_key("acme/deal/" + item);
  r->set_entity_kind(v1::ENTITY_KIND_DEAL);
  r->set_owner_id("owner-7");
  return e;
}

v1::Envelope Started(const std::string& seq, const std::string& item,
                     const std::string& request_id) {
  const std::string item_key = "acme/deal/" + item;
  v1::Envelope e = domain::MakeEnvelope("started/" + request_id, "acme", kT0, "", request_id);
  v1::EnrollmentStarted* s = e.mutable_enrollment_started();
  s->mutable_ref()->set_enrollment_id(item_key + "#" + seq + "#1");
  s->mutable_ref()->set_item_key(item_key);
  s->mutable_ref()->set_sequence_id(seq);
  s->set_request_id(request_id);
  s->set_owner_id("owner-7");
  s->set_entity_kind(v1::ENTITY_KIND_DEAL);
  *s->mutable_started_at() = domain::ToProto(kT0);
  return e;
}

TEST_CASE("given an enroll request, the item is listed pending until the executor starts it") {
  std::unique_ptr<ReadModel> rm = OpenFresh();
  REQUIRE(rm->Apply({Record(kTopics.sequence_events, 0, Created("s1", "acme")),
                     Record(kTopics.enrollment_events, 0, EnrollRequested("s1", "42", "e1"))})
              .ok());
  absl::StatusOr<v1::EnrollmentOverview> o = rm->Overview("acme", "s1");
  REQUIRE(o.ok());
  CHECK(o->pending() == 1);
  auto rec = rm->LoadEnrollment("acme/deal/42", "s1");
  REQUIRE(rec.ok());
  REQUIRE(rec->has_value());
  CHECK((*rec)->pending_request_ids == std::set<std::string>{"e1"});

  REQUIRE(rm->Apply({Record(kTopics.executor_events, 0, Started("s1", "42", "e1"))}).ok());
  o = rm->Overview("acme", "s1");
  CHECK(o->pending() == 0);
  CHECK(o->in_progress() == 1);
  CHECK(o->total() == 1);
  rec = rm->LoadEnrollment("acme/deal/42", "s1");
  CHECK((*rec)->pending_request_ids.empty());
  CHECK((*rec)->view.status() == v1::ENROLLMENT_STATUS_IN_PROGRESS);

  std::string last;
  auto by_owner = rm->ListEnrollments({.company_id = "acme", .owner_id = "owner-7"}, "", 10, &last);
  REQUIRE(by_owner.ok());
  CHECK(by_owner->size() == 1);
}

// An executor event about deal `item` of sequence `seq` (generation 1), for the index tests.
v1::Envelope ExecutorEvent(const std::string& seq, const std::string& item, const std::string& id,
                           const std::function<v1::EnrollmentRef*(v1::Envelope&)>& payload) {
  v1::Envelope e = domain::MakeEnvelope(id, "acme", kT0, "", "");
  v1::EnrollmentRef* ref = payload(e);
  ref->set_enrollment_id("acme/deal/" + item + "#" + seq + "#1");
  ref->set_item_key("acme/deal/" + item);
  ref->set_sequence_id(seq);
  return e;
}

TEST_CASE(
    "given an enrollment whose status changes at every event (pending, in progress, paused, in "
    "progress, completed), then after each one it is listed under its current status only, once, "
    "and once under its owner, and its pending record is gone once started") {
  std::unique_ptr<ReadModel> rm = OpenFresh();
  int64_t offset = 0;
  auto apply = [&](const std::string& topic, const v1::Envelope& e) {
    REQUIRE(rm->Apply({Record(topic, offset++, e)}).ok());
  };
  auto listed = [&](EnrollmentFilter f) {
    f.company_id = "acme";
    std::string last;
    absl::StatusOr<std::vector<v1::Enrollment>> got = rm->ListEnrollments(f, "", 10, &last);
    REQUIRE(got.ok());
    return got->size();
  };
  const std::vector<v1::EnrollmentStatus> statuses = {v1::ENROLLMENT_STATUS_IN_PROGRESS,
                                                      v1::ENROLLMENT_STATUS_PAUSED,
                                                      v1::ENROLLMENT_STATUS_COMPLETED};
  auto expect = [&](v1::EnrollmentStatus now, bool pending) {
    INFO("expected " << v1::EnrollmentStatus_Name(now) << (pending ? ", pending" : ""));
    for (v1::EnrollmentStatus s : statuses) {
      INFO("listed as " << v1::EnrollmentStatus_Name(s));
      CHECK(listed({.sequence_id = "s1", .status = s}) == (s == now ? 1u : 0u));
    }
    CHECK(listed({.sequence_id = "s1", .pending_only = true}) == (pending ? 1u : 0u));
    CHECK(listed({.sequence_id = "s1"}) == 1);
    CHECK(listed({.owner_id = "owner-7"}) == 1);
    auto rec = rm->LoadEnrollment("acme/deal/42", "s1");
    REQUIRE(rec.ok());
    REQUIRE(rec->has_value());
    CHECK((*rec)->pending_request_ids.empty() == !pending);
  };
  apply(kTopics.sequence_events, Created("s1", "acme"));
  apply(kTopics.enrollment_events, EnrollRequested("s1", "42", "e1"));
  expect(v1::ENROLLMENT_STATUS_UNSPECIFIED, /*pending=*/true);
  apply(kTopics.executor_events, Started("s1", "42", "e1"));
  expect(v1::ENROLLMENT_STATUS_IN_PROGRESS, false);
  apply(kTopics.executor_events, ExecutorEvent("s1", "42", "paused", [](v1::Envelope& e) {
          e.mutable_enrollment_paused()->set_cause(v1::PAUSE_CAUSE_ENROLLMENT);
          return e.mutable_enrollment_paused()->mutable_ref();
        }));
  expect(v1::ENROLLMENT_STATUS_PAUSED, false);
  apply(kTopics.executor_events, ExecutorEvent("s1", "42", "resumed", [](v1::Envelope& e) {
          e.mutable_enrollment_resumed()->set_cause(v1::PAUSE_CAUSE_ENROLLMENT);
          return e.mutable_enrollment_resumed()->mutable_ref();
        }));
  expect(v1::ENROLLMENT_STATUS_IN_PROGRESS, false);
  apply(kTopics.executor_events, ExecutorEvent("s1", "42", "completed", [](v1::Envelope& e) {
          e.mutable_enrollment_completed()->set_exit_reason(v1::EXIT_REASON_ALL_STEPS_DONE);
          return e.mutable_enrollment_completed()->mutable_ref();
        }));
  expect(v1::ENROLLMENT_STATUS_COMPLETED, false);
}

TEST_CASE("a batch delivered again is skipped, so counts do not double") {
  std::unique_ptr<ReadModel> rm = OpenFresh();
  const std::vector<kafka::Message> batch = {
      Record(kTopics.sequence_events, 0, Created("s1", "acme")),
      Record(kTopics.enrollment_events, 0, EnrollRequested("s1", "1", "e1")),
      Record(kTopics.enrollment_events, 1, EnrollRequested("s1", "2", "e2"))};
  REQUIRE(rm->Apply(batch).ok());
  REQUIRE(rm->Apply(batch).ok());
  CHECK(rm->Overview("acme", "s1")->pending() == 2);
  CHECK(rm->WaitFor(std::vector<LogPosition>{{kTopics.enrollment_events, 0, 1}},
                    absl::InfinitePast()));
  CHECK_FALSE(rm->WaitFor(std::vector<LogPosition>{{kTopics.enrollment_events, 0, 2}},
                          absl::InfinitePast()));
}

TEST_CASE("a request id is remembered with the resource it named and its position") {
  std::unique_ptr<ReadModel> rm = OpenFresh();
  REQUIRE(rm->Apply({Record(kTopics.sequence_events, 5, Created("s1", "acme"))}).ok());
  auto r = rm->LookupRequest("acme", "req-create");
  REQUIRE(r.ok());
  REQUIRE(r->has_value());
  CHECK((*r)->resource == "companies/acme/sequences/s1");
  CHECK(DecodePositions((*r)->positions).value() ==
        std::vector<LogPosition>{{kTopics.sequence_events, 0, 5}});
  CHECK_FALSE(rm->LookupRequest("globex", "req-create")->has_value());
}

TEST_CASE("sequences are listed per company only") {
  std::unique_ptr<ReadModel> rm = OpenFresh();
  REQUIRE(rm->Apply({Record(kTopics.sequence_events, 0, Created("s1", "acme")),
                     Record(kTopics.sequence_events, 1, Created("s2", "globex")),
                     Record(kTopics.sequence_events, 2, Created("s3", "acme"))})
              .ok());
  auto acme = rm->ListSequences("acme", "", 10, false);
  REQUIRE(acme.ok());
  REQUIRE(acme->size() == 2);
  CHECK((*acme)[0].name() == "companies/acme/sequences/s1");
  CHECK((*acme)[1].name() == "companies/acme/sequences/s3");
  auto after = rm->ListSequences("acme", "s1", 10, false);
  REQUIRE(after->size() == 1);
  CHECK((*after)[0].name() == "companies/acme/sequences/s3");
}

TEST_CASE(
    "an enroll request that breaks the publisher contract is not pending and records no request") {
  auto rm = OpenFresh();
  v1::Envelope foreign = EnrollRequested("s1", "1", "req-foreign");
  foreign.set_company_id("globex");  // the item is acme's
  v1::Envelope unkeyed = EnrollRequested("s1", "2", "req-unkeyed");
  kafka::Message wrong_key = Record(kTopics.enrollment_events, 2, unkeyed);
  wrong_key.key = "acme/deal/other";
  REQUIRE(rm->Apply({Record(kTopics.sequence_events, 0, Created("s1", "acme")),
                     Record(kTopics.enrollment_events, 1, foreign), wrong_key})
              .ok());
  CHECK(rm->Overview("acme", "s1")->pending() == 0);
  CHECK_FALSE(rm->LookupRequest("globex", "req-foreign")->has_value());
  CHECK_FALSE(rm->LookupRequest("acme", "req-unkeyed")->has_value());
}

v1::Envelope PausedOrResumed(const std::string& seq, const std::string& item, int n) {
  const std::string item_key = "acme/deal/" + item;
  const absl::Time at = kT0 + absl::Seconds(n);
  v1::Envelope e = domain::MakeEnvelope(absl::StrCat("pause-toggle/", n), "acme", at, "", "r");
  v1::EnrollmentRef* ref;
  if (n % 2 == 1) {
    v1::EnrollmentPaused* p = e.mutable_enrollment_paused();
    p->set_cause(v1::PAUSE_CAUSE_ENROLLMENT);
    *p->mutable_paused_at() = domain::ToProto(at);
    ref = p->mutable_ref();
  } else {
    v1::EnrollmentResumed* r = e.mutable_enrollment_resumed();
    r->set_cause(v1::PAUSE_CAUSE_ENROLLMENT);
    *r->mutable_resumed_at() = domain::ToProto(at);
    *r->mutable_paused_for() = domain::ToProtoDuration(absl::Seconds(1));
    ref = r->mutable_ref();
  }
  ref->set_enrollment_id(item_key + "#" + seq + "#1");
  ref->set_item_key(item_key);
  ref->set_sequence_id(seq);
  return e;
}

// Without one snapshot for the record's reads, a load that runs between the fold's batches reads
// the view of one batch and the executor events of the next. It is a race, so this test can only
// make a tear likely, not certain: without the snapshot it failed 3 runs of 6 here (2-3 torn loads
// each; 3 of 3 with 3000 batches, but the history grows and each load folds all of it, so that
// took 15 s of CPU). The snapshot itself is tested deterministically in
// libs/store/tests/store_test.cc.
TEST_CASE(
    "Given the fold pausing and resuming an enrollment batch after batch, when the enrollment is "
    "loaded meanwhile, then its view and its state always agree (one fold batch, never two)") {
  std::unique_ptr<ReadModel> rm = OpenFresh();
  REQUIRE(rm->Apply({Record(kTopics.sequence_events, 0, Created("s1", "acme")),
                     Record(kTopics.enrollment_events, 0, EnrollRequested("s1", "7", "e1")),
                     Record(kTopics.executor_events, 0, Started("s1", "7", "e1"))})
              .ok());
  constexpr int kBatches = 800;
  std::atomic<bool> done{false};
  absl::Status fold_status;
  std::thread fold([&] {
    for (int n = 1; n <= kBatches && fold_status.ok(); ++n) {
      fold_status = rm->Apply({Record(kTopics.executor_events, n, PausedOrResumed("s1", "7", n))});
    }
    done = true;
  });
  int loads = 0, torn = 0;
  absl::Status load_status;
  while (!done && load_status.ok()) {
    auto rec = rm->LoadEnrollment("acme/deal/7", "s1");
    if (!rec.ok() || !rec->has_value()) {
      load_status = rec.ok() ? absl::NotFoundError("enrollment") : rec.status();
      break;
    }
    ++loads;
    const EnrollmentRecord& r = **rec;
    // The view's status is the folded state's; paused exactly when a pause cause is in force.
    if (r.view.status() != r.state.status ||
        (r.state.status == v1::ENROLLMENT_STATUS_PAUSED) == r.state.pause_causes.empty()) {
      ++torn;
    }
  }
  fold.join();
  REQUIRE(fold_status.ok());
  REQUIRE(load_status.ok());
  INFO(loads << " loads while the fold wrote " << kBatches << " batches");
  CHECK(loads > 0);
  CHECK(torn == 0);
}

v1::Envelope TemplateUpdated(const std::string& id, int64_t version, const std::string& subject,
                             const std::string& request_id) {
  v1::Envelope e =
      domain::MakeEnvelope(absl::StrCat(id, "@", version), "acme", kT0, "", request_id);
  v1::EmailTemplateUpdated* u = e.mutable_email_template_updated();
  u->set_template_id(id);
  u->set_version(version);
  u->set_name("Intro");
  u->set_subject(subject);
  u->set_body("Body");
  return e;
}

TEST_CASE(
    "given email template events beside a sequence's, the fold keeps the first event of each "
    "version, lists the template under its company only, and leaves the sequence alone") {
  std::unique_ptr<ReadModel> rm = OpenFresh();
  v1::Envelope created = domain::MakeEnvelope("t1@1", "acme", kT0, "", "req-tpl");
  v1::EmailTemplateCreated* c = created.mutable_email_template_created();
  c->set_template_id("t1");
  c->set_version(1);
  c->set_name("Intro");
  c->set_subject("Hi {{person.first_name}}");
  c->set_body("Body");
  REQUIRE(rm->Apply({Record(kTopics.sequence_events, 0, Created("s1", "acme")),
                     Record(kTopics.sequence_events, 1, created),
                     Record(kTopics.sequence_events, 2, TemplateUpdated("t1", 2, "First", "u-a")),
                     // Another writer's version 2, later in the log: ignored.
                     Record(kTopics.sequence_events, 3, TemplateUpdated("t1", 2, "Second", "u-b"))})
              .ok());
  absl::StatusOr<std::optional<v1::EmailTemplate>> t = rm->GetEmailTemplate("t1");
  REQUIRE(t.ok());
  REQUIRE(t->has_value());
  CHECK((*t)->name() == "companies/acme/emailTemplates/t1");
  CHECK((*t)->subject() == "First");
  CHECK((*t)->version() == 2);
  absl::StatusOr<std::optional<std::string>> kept = rm->EmailTemplateEventAt("t1", 2);
  REQUIRE(kept.ok());
  CHECK(**kept == TemplateUpdated("t1", 2, "First", "u-a").SerializeAsString());
  CHECK(rm->ListEmailTemplates("acme", "", 10, false)->size() == 1);
  CHECK(rm->ListEmailTemplates("globex", "", 10, false)->empty());
  // The request id names the template resource; the sequence is untouched by template events.
  absl::StatusOr<std::optional<RequestRecord>> req = rm->LookupRequest("acme", "u-a");
  REQUIRE(req.ok());
  REQUIRE(req->has_value());
  CHECK((*req)->resource == "companies/acme/emailTemplates/t1");
  absl::StatusOr<domain::SequenceState> seq = rm->LoadSequenceState("s1");
  REQUIRE(seq.ok());
  CHECK(seq->version == 1);
  CHECK_FALSE(rm->LoadSequenceState("t1")->exists);
}

}  // namespace
}  // namespace sequences::api
