// Red-team attacks on the API's promises to callers, in one process (tier "unit"): the real Api,
// read model and RocksDB with the loopback event log (loopback_event_log.h). Each test case is an
// attack the other suites do not try (api_test.cc, watch_test.cc, the adversarial e2e tables):
// inputs other services publish on enrollment-events naming another company's sequence, every
// read RPC given another company's consistency token, every listing given another company's (or
// another listing's) page token, and one request id used by two companies at once for every kind
// of mutation.
#include <atomic>
#include <catch2/catch.hpp>
#include <limits>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/domain/envelope.h"
#include "libs/domain/errors.h"
#include "services/sequence-api/api.h"
#include "services/sequence-api/tests/api_harness.h"
#include "services/sequence-api/tests/loopback_event_log.h"
#include "tests/support/process.h"
#include "tests/support/requests.h"

namespace sequences::api {
namespace {

using ::sequences::testing::CreateRequest;
using ::sequences::testing::EnrollRequest;

using unit::As;
using unit::CreateSequence;
using unit::IdOf;
using unit::kT0;
using unit::kTopics;
using unit::OpenReadModel;
constexpr char kA[] = "acme";
constexpr char kB[] = "globex";

// The shared harness, and what these attacks count and publish.
struct Harness : unit::ApiHarness {
  // Records of `topic` whose envelope has correlation id `request_id` and company `company`.
  int Written(const std::string& topic, const std::string& company,
              const std::string& request_id) const {
    return static_cast<int>(log.Records(topic,
                                        [&](const kafka::Message& m) {
                                          v1::Envelope e;
                                          return e.ParseFromString(m.value) &&
                                                 e.company_id() == company &&
                                                 e.correlation_id() == request_id;
                                        })
                                .size());
  }

  // What another service (the automation engine) publishes on enrollment-events: `e`, keyed as
  // the publisher contract says.
  void Publish(const std::string& key, const v1::Envelope& e) {
    std::vector<absl::StatusOr<LogPosition>> written = log.Append(
        {{.topic = kTopics.enrollment_events, .key = key, .value = e.SerializeAsString()}},
        absl::InfiniteFuture());
    REQUIRE(written.size() == 1);
    REQUIRE(written[0].ok());
    REQUIRE(log.ApplyError().ok());
  }
};

// An EnrollRequested as a publisher of `company` writes it: item `company`/deal/`item_id` into
// sequence id `sequence_id` (the contract holds: the record key is the item key of that company).
v1::Envelope EnrollOverKafka(const std::string& company, const std::string& item_id,
                             const std::string& sequence_id, const std::string& request_id) {
  v1::Envelope e =
      domain::MakeEnvelope(absl::StrCat("engine-", request_id), company, kT0, "", request_id);
  v1::EnrollRequested* r = e.mutable_enroll_requested();
  r->set_request_id(request_id);
  r->set_sequence_id(sequence_id);
  r->set_item_key(absl::StrCat(company, "/deal/", item_id));
  r->set_entity_kind(v1::ENTITY_KIND_DEAL);
  r->set_owner_id("b-owner");
  (*r->mutable_merge_data())["person.first_name"] = "Mallory";
  return e;
}

std::vector<std::string> ViolatedFields(const absl::Status& s) {
  std::vector<std::string> fields;
  for (const domain::FieldViolation& v : domain::GetFieldViolations(s)) fields.push_back(v.field);
  return fields;
}

bool RefusedNaming(const absl::Status& s, const std::string& field) {
  const std::vector<std::string> fields = ViolatedFields(s);
  return absl::IsInvalidArgument(s) &&
         std::find(fields.begin(), fields.end(), field) != fields.end();
}

// ---------------------------------------------------------------- inputs over Kafka

TEST_CASE(
    "given a publisher of company B enrolling B's item into company A's sequence id over Kafka "
    "(the executor rejects it), then A's overview, listings and edit preview show nothing of it") {
  Harness h;
  const std::string a_seq = CreateSequence(h, kA, "create-a");
  REQUIRE(h.api.Enroll(As(kA), EnrollRequest(a_seq, "1", "enroll-a-1")).ok());
  // B's automation rule names A's sequence id (learned from a log line, or a typo); a second
  // record's sequence id carries the read model's key separator (NUL) and a status byte.
  h.Publish("globex/deal/x", EnrollOverKafka(kB, "x", IdOf(a_seq), "engine-1"));
  const std::string nul(1, '\0');
  h.Publish("globex/deal/y",
            EnrollOverKafka(kB, "y", absl::StrCat(IdOf(a_seq), nul, "1", nul, "z"), "engine-2"));

  v1::GetEnrollmentOverviewRequest overview;
  overview.set_parent(a_seq);
  absl::StatusOr<v1::EnrollmentOverview> o = h.api.GetEnrollmentOverview(As(kA), overview);
  REQUIRE(o.ok());
  INFO(o->DebugString());
  CHECK(o->total() == 1);  // A's own pending enroll, nothing of B's
  CHECK(o->pending() == 1);
  CHECK(o->in_progress() == 0);
  for (bool pending_only : {false, true}) {
    v1::ListEnrollmentsRequest list;
    list.set_parent(a_seq);
    list.set_pending_only(pending_only);
    absl::StatusOr<v1::ListEnrollmentsResponse> listed = h.api.ListEnrollments(As(kA), list);
    REQUIRE(listed.ok());
    INFO("pending_only " << pending_only << ": " << listed->DebugString());
    CHECK(listed->enrollments_size() == 1);
    for (const v1::Enrollment& e : listed->enrollments()) {
      CHECK(absl::StartsWith(e.item_key(), "acme/"));
      CHECK_FALSE(absl::StrContains(e.DebugString(), "Mallory"));
    }
  }
  v1::ListEnrollmentsRequest in_progress;
  in_progress.set_parent(a_seq);
  in_progress.set_status(v1::ENROLLMENT_STATUS_IN_PROGRESS);
  absl::StatusOr<v1::ListEnrollmentsResponse> none = h.api.ListEnrollments(As(kA), in_progress);
  REQUIRE(none.ok());
  CHECK(none->enrollments_size() == 0);
  v1::PreviewScheduleRequest preview;
  preview.set_name(a_seq);
  *preview.mutable_proposed_steps() =
      CreateRequest(kA, "unused").sequence().steps();  // the same steps: an edit's impacts
  preview.set_has_proposed_steps(true);
  absl::StatusOr<v1::PreviewScheduleResponse> impacts = h.api.PreviewSchedule(As(kA), preview);
  REQUIRE(impacts.ok());
  CHECK(impacts->impacts_size() == 0);  // A's only enrollment is still pending
}

// ---------------------------------------------------------------- tokens

TEST_CASE(
    "given company A's consistency token, every read RPC of company B that takes one refuses it "
    "naming consistency_token, and A's own reads accept it") {
  Harness h;
  absl::StatusOr<v1::SequenceResponse> a_created =
      h.api.CreateSequence(As(kA), CreateRequest(kA, "create-a"));
  REQUIRE(a_created.ok());
  const std::string a_token = a_created->consistency_token();
  const std::string b_seq = CreateSequence(h, kB, "create-b");
  REQUIRE(h.api.Enroll(As(kB), EnrollRequest(b_seq, "1", "enroll-b-1")).ok());
  v1::CreateEmailTemplateRequest tpl;
  tpl.set_parent("companies/globex");
  tpl.set_request_id("tpl-b");
  tpl.mutable_email_template()->set_display_name("t");
  tpl.mutable_email_template()->set_subject("s");
  tpl.mutable_email_template()->set_body("b");
  absl::StatusOr<v1::EmailTemplateResponse> b_tpl = h.api.CreateEmailTemplate(As(kB), tpl);
  REQUIRE(b_tpl.ok());
  const std::string b_enrollment = b_seq + "/enrollments/deal:1";

  // Each read of B's own data, with `token`.
  struct Read {
    const char* name;
    std::function<absl::Status(const std::string& company, const std::string& token)> call;
  };
  const std::vector<Read> reads = {
      {"GetSequence",
       [&](const std::string& c, const std::string& t) {
         v1::GetSequenceRequest r;
         r.set_name(b_seq);
         r.set_consistency_token(t);
         return h.api.GetSequence(As(c), r).status();
       }},
      {"ListSequences",
       [&](const std::string& c, const std::string& t) {
         v1::ListSequencesRequest r;
         r.set_parent(absl::StrCat("companies/", c));
         r.set_consistency_token(t);
         return h.api.ListSequences(As(c), r).status();
       }},
      {"PreviewSchedule",
       [&](const std::string& c, const std::string& t) {
         v1::PreviewScheduleRequest r;
         r.set_name(b_seq);
         r.set_consistency_token(t);
         return h.api.PreviewSchedule(As(c), r).status();
       }},
      {"GetSequenceStatistics",
       [&](const std::string& c, const std::string& t) {
         v1::GetSequenceStatisticsRequest r;
         r.set_name(b_seq);
         r.set_consistency_token(t);
         return h.api.GetSequenceStatistics(As(c), r).status();
       }},
      {"GetEmailTemplate",
       [&](const std::string& c, const std::string& t) {
         v1::GetEmailTemplateRequest r;
         r.set_name(b_tpl->email_template().name());
         r.set_consistency_token(t);
         return h.api.GetEmailTemplate(As(c), r).status();
       }},
      {"ListEmailTemplates",
       [&](const std::string& c, const std::string& t) {
         v1::ListEmailTemplatesRequest r;
         r.set_parent(absl::StrCat("companies/", c));
         r.set_consistency_token(t);
         return h.api.ListEmailTemplates(As(c), r).status();
       }},
      {"GetCompanySendingSettings",
       [&](const std::string& c, const std::string& t) {
         v1::GetCompanySendingSettingsRequest r;
         r.set_parent(absl::StrCat("companies/", c));
         r.set_consistency_token(t);
         return h.api.GetCompanySendingSettings(As(c), r).status();
       }},
      {"GetEnrollment",
       [&](const std::string& c, const std::string& t) {
         v1::GetEnrollmentRequest r;
         r.set_name(b_enrollment);
         r.set_consistency_token(t);
         return h.api.GetEnrollment(As(c), r).status();
       }},
      {"ListEnrollments",
       [&](const std::string& c, const std::string& t) {
         v1::ListEnrollmentsRequest r;
         r.set_parent(b_seq);
         r.set_consistency_token(t);
         return h.api.ListEnrollments(As(c), r).status();
       }},
      {"GetEnrollmentOverview",
       [&](const std::string& c, const std::string& t) {
         v1::GetEnrollmentOverviewRequest r;
         r.set_parent(b_seq);
         r.set_consistency_token(t);
         return h.api.GetEnrollmentOverview(As(c), r).status();
       }},
      {"ListEnrollmentEvents",
       [&](const std::string& c, const std::string& t) {
         v1::ListEnrollmentEventsRequest r;
         r.set_name(b_enrollment);
         r.set_consistency_token(t);
         return h.api.ListEnrollmentEvents(As(c), r).status();
       }},
  };
  for (const Read& read : reads) {
    const absl::Status s = read.call(kB, a_token);
    INFO(read.name << ": " << s.ToString());
    CHECK(RefusedNaming(s, "consistency_token"));
  }
  // The token itself is good: A's own read with it is served.
  v1::GetSequenceRequest own;
  own.set_name(a_created->sequence().name());
  own.set_consistency_token(a_token);
  CHECK(h.api.GetSequence(As(kA), own).ok());
}

TEST_CASE(
    "given a page token of one listing, then the same listing of another company, and another "
    "listing (other filters) of the same company, refuse it naming page_token") {
  Harness h;
  // Two of everything per company, so each first page of one has a next page token.
  std::map<std::string, std::string> seq;  // company -> first sequence
  for (const char* c : {kA, kB}) {
    seq[c] = CreateSequence(h, c, "create-1");
    CreateSequence(h, c, "create-2");
    for (const char* item : {"1", "2"}) {
      REQUIRE(h.api.Enroll(As(c), EnrollRequest(seq[c], item, absl::StrCat("enroll-", item))).ok());
    }
    for (const char* t : {"tpl-1", "tpl-2"}) {
      v1::CreateEmailTemplateRequest tpl;
      tpl.set_parent(absl::StrCat("companies/", c));
      tpl.set_request_id(t);
      tpl.mutable_email_template()->set_display_name(t);
      tpl.mutable_email_template()->set_subject("s");
      tpl.mutable_email_template()->set_body("b");
      REQUIRE(h.api.CreateEmailTemplate(As(c), tpl).ok());
    }
  }
  // Each listing as `company` (its own data) with `filter` (0 or 1: two listings of one kind),
  // one item per page and `token`.
  struct Listing {
    const char* name;
    std::function<absl::StatusOr<std::string>(const std::string& company, int filter,
                                              const std::string& token)>
        page;
  };
  auto next = [](const auto& r) -> absl::StatusOr<std::string> {
    if (!r.ok()) return r.status();
    return r->next_page_token();
  };
  const std::vector<Listing> listings = {
      {"ListSequences",
       [&](const std::string& c, int filter, const std::string& t) {
         v1::ListSequencesRequest r;
         r.set_parent(absl::StrCat("companies/", c));
         r.set_page_size(1);
         r.set_show_deleted(filter == 1);
         r.set_page_token(t);
         return next(h.api.ListSequences(As(c), r));
       }},
      {"ListEnrollments",
       [&](const std::string& c, int filter, const std::string& t) {
         v1::ListEnrollmentsRequest r;
         r.set_parent(seq[c]);
         r.set_page_size(1);
         r.set_pending_only(filter == 1);
         r.set_page_token(t);
         return next(h.api.ListEnrollments(As(c), r));
       }},
      {"ListEmailTemplates",
       [&](const std::string& c, int filter, const std::string& t) {
         v1::ListEmailTemplatesRequest r;
         r.set_parent(absl::StrCat("companies/", c));
         r.set_page_size(1);
         r.set_show_deleted(filter == 1);
         r.set_page_token(t);
         return next(h.api.ListEmailTemplates(As(c), r));
       }},
      {"ListSequenceTemplates",
       [&](const std::string& c, int, const std::string& t) {
         v1::ListSequenceTemplatesRequest r;
         r.set_page_size(1);
         r.set_page_token(t);
         return next(h.api.ListSequenceTemplates(As(c), r));
       }},
  };
  for (const Listing& l : listings) {
    INFO(l.name);
    absl::StatusOr<std::string> a_token = l.page(kA, 0, "");
    REQUIRE(a_token.ok());
    REQUIRE_FALSE(a_token->empty());
    CHECK(l.page(kA, 0, *a_token).ok());  // A may go on
    const absl::StatusOr<std::string> b = l.page(kB, 0, *a_token);
    INFO("B with A's token: " << b.status().ToString());
    CHECK(RefusedNaming(b.status(), "page_token"));
    if (std::string(l.name) != "ListSequenceTemplates") {  // one listing only
      const absl::StatusOr<std::string> other = l.page(kA, 1, *a_token);
      INFO("A's token on its other listing: " << other.status().ToString());
      CHECK(RefusedNaming(other.status(), "page_token"));
    }
  }
}

// ---------------------------------------------------------------- times out of range

// What the step executor writes when deal `item_id` of `company` starts in `sequence_name` and
// its first step (an activity) waits for task `task_id`.
void StartWaitingForTask(Harness& h, const std::string& company, const std::string& sequence_name,
                         const std::string& item_id, const std::string& task_id) {
  const std::string item_key = absl::StrCat(company, "/deal/", item_id);
  const std::string sequence_id = IdOf(sequence_name);
  const std::string enrollment_id = absl::StrCat(item_key, "#", sequence_id, "#1");
  v1::EnrollmentRef ref;
  ref.set_enrollment_id(enrollment_id);
  ref.set_item_key(item_key);
  ref.set_sequence_id(sequence_id);
  v1::Envelope started = domain::MakeEnvelope(absl::StrCat(enrollment_id, "/started"), company,
                                              h.clock.Now(), "", "enroll-" + item_id);
  v1::EnrollmentStarted* s = started.mutable_enrollment_started();
  *s->mutable_ref() = ref;
  s->set_request_id("enroll-" + item_id);
  s->set_sequence_version(1);
  s->set_entity_kind(v1::ENTITY_KIND_DEAL);
  s->set_owner_id("owner-7");
  s->set_time_zone("UTC");
  *s->mutable_started_at() = started.occurred_at();
  s->set_first_step_id("call-1");
  *s->mutable_first_due_at() = started.occurred_at();
  v1::Envelope waiting =
      domain::MakeEnvelope(absl::StrCat(enrollment_id, "/waiting"), company, h.clock.Now(), "", "");
  *waiting.mutable_waiting_for_activity()->mutable_ref() = ref;
  waiting.mutable_waiting_for_activity()->set_step_id("call-1");
  waiting.mutable_waiting_for_activity()->set_task_id(task_id);
  for (const v1::Envelope& e : {started, waiting}) {
    std::vector<absl::StatusOr<LogPosition>> written = h.log.Append(
        {{.topic = kTopics.executor_events, .key = item_key, .value = e.SerializeAsString()}},
        absl::InfiniteFuture());
    REQUIRE(written.size() == 1);
    REQUIRE(written[0].ok());
  }
  REQUIRE(h.log.ApplyError().ok());
}

TEST_CASE(
    "given a completion time or a preview start that is not a valid time (beyond year 9999, "
    "negative, nanos out of range) or a completion in the future, then INVALID_ARGUMENT names "
    "the field and nothing is written, and a valid completion time is written as given") {
  Harness h;
  const std::string seq = CreateSequence(h, kA, "create-a");
  StartWaitingForTask(h, kA, seq, "1", "t-1");
  const int before = static_cast<int>(h.log.Records(kTopics.enrollment_events).size());
  const int64_t now = absl::ToUnixSeconds(kT0);
  const std::vector<std::pair<int64_t, int32_t>> bad = {
      {std::numeric_limits<int64_t>::max(), 0},  // the next step would never come due
      {253402300800, 0},                         // 10000-01-01
      {-5, 0},
      {now - 60, -1},
      {now - 60, 1000000000},
      {now + 3600, 0},  // an hour from now: not done yet
  };
  for (const auto& [seconds, nanos] : bad) {
    INFO(seconds << "s " << nanos << "ns");
    v1::ReportActivityCompletedRequest done;
    done.set_name(seq + "/enrollments/deal:1");
    done.set_task_id("t-1");
    done.set_request_id(absl::StrCat("done-", seconds, "-", nanos));
    done.mutable_complete_time()->set_seconds(seconds);
    done.mutable_complete_time()->set_nanos(nanos);
    const absl::Status s = h.api.ReportActivityCompleted(As(kA), done).status();
    INFO(s.ToString());
    CHECK(RefusedNaming(s, "complete_time"));
  }
  CHECK(static_cast<int>(h.log.Records(kTopics.enrollment_events).size()) == before);
  // Nothing lost: the task completed a minute ago is reported, with that time.
  v1::ReportActivityCompletedRequest done;
  done.set_name(seq + "/enrollments/deal:1");
  done.set_task_id("t-1");
  done.set_request_id("done-ok");
  done.mutable_complete_time()->set_seconds(now - 60);
  absl::StatusOr<v1::EnrollmentResponse> ok = h.api.ReportActivityCompleted(As(kA), done);
  INFO(ok.status().ToString());
  REQUIRE(ok.ok());
  const std::vector<kafka::Message> written = h.log.Records(kTopics.enrollment_events);
  REQUIRE(static_cast<int>(written.size()) == before + 1);
  v1::Envelope completed;
  REQUIRE(completed.ParseFromString(written.back().value));
  CHECK(completed.activity_completed().completed_at().seconds() == now - 60);
  for (const auto& [seconds, nanos] : bad) {
    if (seconds == now + 3600 || seconds == -5) continue;  // a preview may start then
    INFO(seconds << "s " << nanos << "ns");
    v1::PreviewScheduleRequest preview;
    preview.set_name(seq);
    preview.mutable_start_time()->set_seconds(seconds);
    preview.mutable_start_time()->set_nanos(nanos);
    const absl::Status s = h.api.PreviewSchedule(As(kA), preview).status();
    INFO(s.ToString());
    CHECK(RefusedNaming(s, "start_time"));
  }
}

// ---------------------------------------------------------------- outages during a batch

v1::BatchEnrollRequest Batch(const std::string& sequence, int n) {
  v1::BatchEnrollRequest r;
  r.set_parent(sequence);
  for (int i = 0; i < n; ++i) {
    *r.add_items() = sequences::testing::Item(absl::StrCat("b", i), absl::StrCat("batch-", i));
  }
  return r;
}

int EnrollsWritten(const Harness& h) {
  return static_cast<int>(h.log
                              .Records(kTopics.enrollment_events,
                                       [](const kafka::Message& m) {
                                         v1::Envelope e;
                                         return e.ParseFromString(m.value) &&
                                                e.has_enroll_requested();
                                       })
                              .size());
}

TEST_CASE(
    "given a broker that cannot make a batch durable, then every item is refused UNAVAILABLE with "
    "no enrollment in its answer and nothing shows, and the batch retried writes each item once") {
  Harness h;
  const std::string seq = CreateSequence(h, kA, "create-a");
  h.log.FailNextAppends(1, absl::UnavailableError("broker down"));
  absl::StatusOr<v1::BatchEnrollResponse> down = h.api.BatchEnroll(As(kA), Batch(seq, 4));
  REQUIRE(down.ok());  // answered item by item
  CHECK(down->accepted_count() == 0);
  for (const v1::BatchEnrollResult& r : down->results()) {
    INFO(r.DebugString());
    CHECK(r.status().code() == static_cast<int>(absl::StatusCode::kUnavailable));
    CHECK_FALSE(r.has_enrollment());
  }
  CHECK(EnrollsWritten(h) == 0);
  v1::GetEnrollmentOverviewRequest overview;
  overview.set_parent(seq);
  CHECK(h.api.GetEnrollmentOverview(As(kA), overview)->total() == 0);
  for (int attempt = 0; attempt < 2; ++attempt) {
    absl::StatusOr<v1::BatchEnrollResponse> back = h.api.BatchEnroll(As(kA), Batch(seq, 4));
    REQUIRE(back.ok());
    CHECK(back->accepted_count() == 4);
  }
  CHECK(EnrollsWritten(h) == 4);
}

TEST_CASE(
    "given a batch whose writes the broker acknowledged after the call's deadline, when it is "
    "retried at once and again once the writes landed, then nothing is written twice and the "
    "last retry answers every item with a consistency token covering the first writes") {
  Harness h;
  const std::string seq = CreateSequence(h, kA, "create-a");
  h.log.AckLateNext(1);
  absl::StatusOr<v1::BatchEnrollResponse> first = h.api.BatchEnroll(As(kA), Batch(seq, 3));
  REQUIRE(first.ok());
  for (const v1::BatchEnrollResult& r : first->results()) {
    CHECK(r.status().code() == static_cast<int>(absl::StatusCode::kDeadlineExceeded));
  }
  // Retried while the first writes' outcome is unknown: not written again.
  absl::StatusOr<v1::BatchEnrollResponse> early = h.api.BatchEnroll(As(kA), Batch(seq, 3));
  if (early.ok()) {
    for (const v1::BatchEnrollResult& r : early->results()) {
      INFO(r.DebugString());
      CHECK(r.status().code() != 0);
    }
  }
  CHECK(EnrollsWritten(h) == 3);
  h.log.DeliverLate();
  absl::StatusOr<v1::BatchEnrollResponse> retried = h.api.BatchEnroll(As(kA), Batch(seq, 3));
  REQUIRE(retried.ok());
  CHECK(retried->accepted_count() == 3);
  for (const v1::BatchEnrollResult& r : retried->results()) {
    INFO(r.DebugString());
    CHECK(r.status().code() == 0);
    CHECK(r.enrollment().pending());
  }
  CHECK(EnrollsWritten(h) == 3);
  // The token is the first writes' (as a retried Enroll's is): another instance whose read model
  // has not read them waits for them instead of answering NOT_FOUND.
  REQUIRE_FALSE(retried->consistency_token().empty());
  std::unique_ptr<ReadModel> behind = OpenReadModel();
  LoopbackEventLog behind_log(*behind, {{kTopics.enrollment_events, 3}});
  Api other(unit::DefaultOptions(), behind_log, *behind, h.clock, h.signer);
  v1::GetEnrollmentRequest get;
  get.set_name(seq + "/enrollments/deal:b0");
  get.set_consistency_token(retried->consistency_token());
  const absl::Status stale = other.GetEnrollment(As(kA), get).status();
  INFO(stale.ToString());
  CHECK(absl::IsUnavailable(stale));
}

// ---------------------------------------------------------------- request ids across companies

TEST_CASE(
    "given company A used a request id for every kind of mutation, when company B sends the same "
    "request ids (also at once with A), then B's requests are applied as B's own: none is "
    "refused or answered as A's, and each company's request is written once") {
  Harness h;
  h.log.SetAppendLatency(absl::Milliseconds(1));
  constexpr int kSenders = 8;  // threads per company, all released at once
  std::map<std::string, std::string> seq;
  for (const char* c : {kA, kB}) seq[c] = CreateSequence(h, c, "same-create");
  REQUIRE(seq[kA] != seq[kB]);

  // One mutation as `company` with request id `id`: OK and the resource it names, or the error.
  struct Mutation {
    const char* request_id;
    std::string topic;
    std::function<absl::StatusOr<std::string>(const std::string& company)> call;
  };
  auto resource = [](const auto& r, auto name_of) -> absl::StatusOr<std::string> {
    if (!r.ok()) return r.status();
    return name_of(*r);
  };
  const std::vector<Mutation> mutations = {
      {"same-enroll", kTopics.enrollment_events,
       [&](const std::string& c) {
         return resource(h.api.Enroll(As(c), EnrollRequest(seq[c], "7", "same-enroll")),
                         [](const v1::EnrollmentResponse& r) { return r.enrollment().name(); });
       }},
      {"same-batch-item", kTopics.enrollment_events,
       [&](const std::string& c) {
         v1::BatchEnrollRequest r;
         r.set_parent(seq[c]);
         *r.add_items() = sequences::testing::Item("8", "same-batch-item");
         return resource(h.api.BatchEnroll(As(c), r), [](const v1::BatchEnrollResponse& r) {
           return r.results(0).status().code() == 0 ? r.results(0).enrollment().name()
                                                    : r.results(0).status().message();
         });
       }},
      {"same-rename", kTopics.sequence_events,
       [&](const std::string& c) {
         v1::UpdateSequenceRequest r;
         r.mutable_sequence()->set_name(seq[c]);
         r.mutable_sequence()->set_display_name(absl::StrCat("Renamed by ", c));
         r.mutable_update_mask()->add_paths("display_name");
         r.set_request_id("same-rename");
         return resource(h.api.UpdateSequence(As(c), r),
                         [](const v1::SequenceResponse& r) { return r.sequence().name(); });
       }},
      {"same-outcome", kTopics.enrollment_events,
       [&](const std::string& c) {
         v1::ReportItemOutcomeRequest r;
         r.set_parent(absl::StrCat("companies/", c));
         r.set_entity_kind(v1::ENTITY_KIND_DEAL);
         r.set_item_id("9");
         r.set_outcome(v1::ITEM_OUTCOME_KIND_DEAL_LOST);
         r.set_request_id("same-outcome");
         return resource(h.api.ReportItemOutcome(As(c), r),
                         [](const v1::ItemInputResponse& r) { return r.item(); });
       }},
      {"same-bounce", kTopics.enrollment_events,
       [&](const std::string& c) {
         v1::ReportEmailEventRequest r;
         r.set_parent(absl::StrCat("companies/", c));
         r.set_entity_kind(v1::ENTITY_KIND_DEAL);
         r.set_item_id("9");
         r.set_sequence(seq[c]);
         r.set_detail("550");
         r.set_request_id("same-bounce");
         return resource(h.api.ReportEmailBounced(As(c), r),
                         [](const v1::ItemInputResponse& r) { return r.item(); });
       }},
      {"same-pause-user", kTopics.enrollment_events,
       [&](const std::string& c) {
         v1::UserEnrollmentsRequest r;
         r.set_parent(absl::StrCat("companies/", c));
         r.set_user_id("owner-7");
         r.set_request_id("same-pause-user");
         return resource(h.api.PauseUserEnrollments(As(c), r),
                         [c](const v1::UserEnrollmentsResponse&) { return c; });
       }},
      {"same-template", kTopics.sequence_events,
       [&](const std::string& c) {
         v1::CreateEmailTemplateRequest r;
         r.set_parent(absl::StrCat("companies/", c));
         r.set_request_id("same-template");
         r.mutable_email_template()->set_display_name(c);
         r.mutable_email_template()->set_subject("s");
         r.mutable_email_template()->set_body("b");
         return resource(
             h.api.CreateEmailTemplate(As(c), r),
             [](const v1::EmailTemplateResponse& r) { return r.email_template().name(); });
       }},
      {"same-settings", kTopics.sequence_events,
       [&](const std::string& c) {
         v1::SetCompanySendingSettingsRequest r;
         r.set_parent(absl::StrCat("companies/", c));
         r.mutable_settings()->set_daily_limit_per_sender(c == std::string(kA) ? 10 : 20);
         r.set_request_id("same-settings");
         return resource(h.api.SetCompanySendingSettings(As(c), r),
                         [c](const v1::CompanySendingSettingsResponse&) { return c; });
       }},
  };
  for (const Mutation& m : mutations) {
    // A first, alone; then both companies' senders at once (A's are retries, B's are new).
    const absl::StatusOr<std::string> first = m.call(kA);
    INFO(m.request_id << ": A " << first.status().ToString());
    REQUIRE(first.ok());
    std::vector<std::optional<absl::StatusOr<std::string>>> got(2 * kSenders);
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 2 * kSenders; ++i) {
      threads.emplace_back([&, i] {
        ++ready;
        while (ready.load() < 2 * kSenders) std::this_thread::yield();
        got[i].emplace(m.call(i % 2 == 0 ? kA : kB));
      });
    }
    for (std::thread& t : threads) t.join();
    for (int i = 0; i < 2 * kSenders; ++i) {
      const std::string company = i % 2 == 0 ? kA : kB;
      const absl::StatusOr<std::string>& r = *got[i];
      INFO(company << ": " << r.status().ToString());
      REQUIRE(r.ok());
      CHECK(absl::StrContains(*r, company));
      CHECK_FALSE(absl::StrContains(*r, company == kA ? kB : kA));
    }
    // Each company's request written once (a user-wide pause: once per partition).
    const int per_request = std::string(m.request_id) == "same-pause-user" ? 3 : 1;
    CHECK(h.Written(m.topic, kA, m.request_id) == per_request);
    CHECK(h.Written(m.topic, kB, m.request_id) == per_request);
  }
}

}  // namespace
}  // namespace sequences::api
