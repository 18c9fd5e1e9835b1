// sequence-api across broker outages (tier "e2e"): a private broker (never the shared test
// broker) is killed with kill -9, then stopped cleanly, and restarted on the same data each time,
// while calls keep coming. Every write answered OK must be durable (a new instance folding the log
// from zero lists it); every other answer must be UNAVAILABLE or DEADLINE_EXCEEDED, given within
// the call's deadline; and the same API process must serve writes again after each restart.
// Enroll too, with a step-executor running on the same broker: each outage outlasts the
// executor's session and transaction timeouts; an Enroll refused during it is retried with the
// same request id once the broker is back (what a caller is told to do), and every enrolled deal
// gets its first step's task exactly once; a BatchEnroll during the outage answers no item OK,
// and retried after it enrolls each item once. A watch opened before the outages keeps delivering
// after them, on the same stream. A broker that freezes instead (SIGSTOP: connections open,
// nothing answered) turns health NOT_SERVING within seconds, and the API writes again once it
// thaws.
#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/e2e/api/api_process.h"
#include "tests/support/broker.h"
#include "tests/support/health.h"
#include "tests/support/kafka_env.h"
#include "tests/support/process.h"
#include "tests/support/steps.h"
#include "tests/support/topic_reader.h"

namespace sequences::testing {
namespace {

constexpr char kCompany[] = "acme";

v1::CreateSequenceRequest Create(const std::string& request_id) {
  v1::CreateSequenceRequest req;
  req.set_parent(absl::StrCat("companies/", kCompany));
  req.set_request_id(request_id);
  v1::Sequence* s = req.mutable_sequence();
  s->set_display_name(absl::StrCat("Outage ", request_id));
  s->set_entity_kind(v1::ENTITY_KIND_DEAL);
  *s->add_steps() = InDays(ActivityStep("call-1", 1));
  return req;
}

// A deal sequence whose first step (a call task) is due as soon as the deal is enrolled.
v1::CreateSequenceRequest CreateImmediate() {
  v1::CreateSequenceRequest req = Create("req-immediate");
  *req.mutable_sequence()->mutable_steps(0) = ActivityStep("call-now", 0);
  return req;
}

// After the broker is back: `write` (one write with the deadline it is given) until one is
// answered OK, for at most a minute. True if one was.
template <typename Fn>
bool WritesAgain(Fn write) {
  const absl::Time until = absl::Now() + absl::Seconds(60);
  while (absl::Now() < until) {
    if (write(absl::Seconds(10))) return true;
  }
  return false;
}

TEST_CASE(
    "Across a broker kill -9 and a clean stop, each followed by a restart on the same data, "
    "every API write (Enroll too) is durable when answered OK, otherwise UNAVAILABLE or "
    "DEADLINE_EXCEEDED within its deadline, the API writes again after each restart, and an "
    "Enroll retried with its request id enrolls the deal once") {
  PrivateBroker broker;
  REQUIRE(broker.Start(/*fresh=*/true).ok());
  const std::string prefix = UniqueName("api-outage") + ".";
  const std::string dir = TempDir("api-outage");
  std::set<std::string> acknowledged;  // sequence names answered OK
  std::set<std::string> enrolled;      // item keys whose Enroll was answered OK
  int refused = 0;
  int n = 0;
  {
    ApiProcess api(prefix, dir + "/api",
                   {"--bootstrap_servers=" + broker.bootstrap(), "--delivery_timeout_ms=4000"});
    // One call with a `deadline`; checks the answer's kind and timing.
    auto call = [&](absl::Duration deadline) {
      v1::SequenceResponse resp;
      const absl::Time start = absl::Now();
      grpc::Status s = api.sequences().CreateSequence(
          CallAs(kCompany, "u1", absl::ToDoubleSeconds(deadline)).get(),
          Create(absl::StrCat("req-", ++n)), &resp);
      const absl::Duration took = absl::Now() - start;
      INFO("call " << n << ": " << s.error_code() << " " << s.error_message() << " after "
                   << absl::FormatDuration(took));
      CHECK(took < deadline + absl::Seconds(1));
      if (s.ok()) {
        acknowledged.insert(resp.sequence().name());
      } else {
        ++refused;
        CHECK((s.error_code() == grpc::StatusCode::UNAVAILABLE ||
               s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED));
      }
      return s.ok();
    };
    REQUIRE(call(absl::Seconds(10)));
    CHECK(HealthOf(api.address()) == "SERVING");
    // An executor on the same topics, whose session and transaction timeouts each outage outlasts.
    auto executor = ChildProcess::Start(
        {ServiceBinary("step-executor"), "--bootstrap_servers=" + broker.bootstrap(),
         "--topic_prefix=" + prefix, "--group_id=" + prefix + "executor", "--instance_id=x",
         "--data_dir=" + dir + "/executor", "--partitions=3", "--session_timeout=6s",
         "--transaction_timeout=5s"},
        dir + "/executor.log");
    REQUIRE(executor.ok());
    REQUIRE((*executor)->WaitForLog("\"msg\":\"running\"", absl::Seconds(60)));
    std::string parent;
    {
      v1::SequenceResponse resp;
      REQUIRE(api.sequences()
                  .CreateSequence(CallAs(kCompany, "u1", 10).get(), CreateImmediate(), &resp)
                  .ok());
      parent = resp.sequence().name();
    }
    // One Enroll of deal `item` (request id "enroll-<item>", the same on every retry).
    auto enroll = [&](const std::string& item, absl::Duration deadline) {
      v1::EnrollRequest req;
      req.set_parent(parent);
      req.mutable_item()->set_entity_kind(v1::ENTITY_KIND_DEAL);
      req.mutable_item()->set_item_id(item);
      req.mutable_item()->set_request_id("enroll-" + item);
      v1::EnrollmentResponse resp;
      const absl::Time start = absl::Now();
      grpc::Status s = api.enrollments().Enroll(
          CallAs(kCompany, "u1", absl::ToDoubleSeconds(deadline)).get(), req, &resp);
      const absl::Duration took = absl::Now() - start;
      INFO("enroll " << item << ": " << s.error_code() << " " << s.error_message() << " after "
                     << absl::FormatDuration(took));
      CHECK(took < deadline + absl::Seconds(1));
      if (s.ok()) {
        enrolled.insert(absl::StrCat(kCompany, "/deal/", item));
      } else {
        ++refused;
        CHECK((s.error_code() == grpc::StatusCode::UNAVAILABLE ||
               s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED));
      }
      return s.ok();
    };
    // A BatchEnroll of `items` (request ids "enroll-<item>", the same on every retry): true if
    // every item was answered OK; while the broker is down none may be (nothing is durable).
    auto batch_enroll = [&](const std::vector<std::string>& items, absl::Duration deadline) {
      v1::BatchEnrollRequest req;
      req.set_parent(parent);
      for (const std::string& item : items) {
        v1::EnrollItem* e = req.add_items();
        e->set_entity_kind(v1::ENTITY_KIND_DEAL);
        e->set_item_id(item);
        e->set_request_id("enroll-" + item);
      }
      v1::BatchEnrollResponse resp;
      const absl::Time start = absl::Now();
      grpc::Status s = api.enrollments().BatchEnroll(
          CallAs(kCompany, "u1", absl::ToDoubleSeconds(deadline)).get(), req, &resp);
      const absl::Duration took = absl::Now() - start;
      INFO("batch: " << s.error_code() << " " << s.error_message() << " after "
                     << absl::FormatDuration(took) << "\n"
                     << resp.DebugString());
      CHECK(took < deadline + absl::Seconds(1));
      if (!s.ok()) {
        ++refused;
        CHECK((s.error_code() == grpc::StatusCode::UNAVAILABLE ||
               s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED));
        return false;
      }
      bool all = resp.results_size() == static_cast<int>(items.size());
      for (const v1::BatchEnrollResult& r : resp.results()) {
        if (r.status().code() == 0) {
          enrolled.insert(absl::StrCat(kCompany, "/deal/", items[r.index()]));
        } else {
          all = false;
          CHECK((r.status().code() == grpc::StatusCode::UNAVAILABLE ||
                 r.status().code() == grpc::StatusCode::DEADLINE_EXCEEDED));
          CHECK_FALSE(r.has_enrollment());
        }
      }
      return all;
    };
    // A watch of the sequence, open across both outages (liveness: the stream is not ended by
    // an outage and delivers what is decided after it, with no reconnect and no API restart).
    auto watch_ctx = CallAs(kCompany, "u1", /*deadline_seconds=*/240);
    v1::WatchEnrollmentsRequest watch_req;
    watch_req.set_parent(absl::StrCat("companies/", kCompany));
    watch_req.set_sequence(parent);
    auto watch = api.enrollments().WatchEnrollments(watch_ctx.get(), watch_req);
    watch->WaitForInitialMetadata();  // in place: no later change is missed
    REQUIRE(enroll("before", absl::Seconds(10)));
    for (int k = 0; k < 2; ++k) {
      INFO("outage " << k + 1);
      if (k == 0) {
        REQUIRE(broker.Kill().ok());
      } else {
        REQUIRE(broker.Stop().ok());
      }
      // Calls while it is down: a long deadline (the producer gives up first: UNAVAILABLE) and a
      // short one (the deadline ends first: DEADLINE_EXCEEDED).
      call(absl::Seconds(8));
      call(absl::Seconds(1));
      // An Enroll: the producer gives up first (kill) or the deadline ends first (stop).
      const std::string refused_item = absl::StrCat("down-", k);
      CHECK(!enroll(refused_item, k == 0 ? absl::Seconds(6) : absl::Seconds(1)));
      // A BatchEnroll: refused item by item (kill: the producer gives up) or as a whole (stop:
      // the deadline ends first); no item is answered OK.
      const std::vector<std::string> batch = {absl::StrCat("batch-", k, "-a"),
                                              absl::StrCat("batch-", k, "-b")};
      const size_t enrolled_before = enrolled.size();
      CHECK(!batch_enroll(batch, k == 0 ? absl::Seconds(6) : absl::Seconds(1)));
      CHECK(enrolled.size() == enrolled_before);
      // Health tells the truth: a load balancer stops sending calls here while the broker is down.
      CHECK(WaitForHealth(api.address(), "NOT_SERVING", absl::Seconds(15)));
      REQUIRE(broker.Start().ok());
      // The same process writes again, soon.
      REQUIRE(WritesAgain(call));
      CHECK(WaitForHealth(api.address(), "SERVING", absl::Seconds(15)));
      // The refused Enroll and batch, retried with their request ids, go through; so does a new
      // Enroll.
      REQUIRE(enroll(refused_item, absl::Seconds(10)));
      REQUIRE(batch_enroll(batch, absl::Seconds(10)));
      REQUIRE(enroll(absl::StrCat("after-", k), absl::Seconds(10)));
    }
    CHECK(refused >= 4);
    // Every deal enrolled has its first step's task, exactly once, and no other deal has one.
    TopicReader reader({prefix + "task-events"}, 3, broker.bootstrap());
    std::map<std::string, int> tasks;  // item key -> tasks
    auto count = [&] {
      tasks.clear();
      for (const Seen& s : reader.seen()) ++tasks[s.message.key];
      for (const std::string& k : enrolled) {
        if (tasks.count(k) == 0) return false;
      }
      return true;
    };
    CHECK(reader.PollUntil(count, absl::Seconds(60)));
    reader.Poll(absl::Seconds(2));  // a duplicate would arrive now
    count();
    CHECK(enrolled.size() == 9);
    // The watch opened before the outages shows every enrolled deal reach its step, the deals
    // enrolled after the restarts too, on the same stream.
    std::set<std::string> reached;
    v1::WatchEnrollmentsResponse change;
    while (reached.size() < enrolled.size() && watch->Read(&change)) {
      if (change.update().kind() == v1::ENROLLMENT_UPDATE_KIND_STEP_REACHED) {
        reached.insert(change.update().ref().item_key());
      }
    }
    INFO("watch: " << reached.size() << " of " << enrolled.size() << " deals seen reaching a step");
    CHECK(reached == enrolled);
    watch_ctx->TryCancel();
    const grpc::Status ended = watch->Finish();
    CHECK(ended.error_code() == grpc::StatusCode::CANCELLED);
    for (const auto& [item, n] : tasks) {
      INFO(item);
      CHECK(enrolled.count(item) == 1);
      CHECK(n == 1);
    }
    CHECK((*executor)->Running());
    CHECK((*executor)->Terminate() == 0);
    CHECK(api.process().Terminate() == 0);
  }
  // Durable: a fresh instance folding the log from zero lists every acknowledged sequence.
  ApiProcess rebuilt(prefix, dir + "/rebuilt", {"--bootstrap_servers=" + broker.bootstrap()});
  v1::ListSequencesRequest list;
  list.set_parent(absl::StrCat("companies/", kCompany));
  list.set_page_size(100);
  v1::ListSequencesResponse listed;
  REQUIRE(rebuilt.sequences().ListSequences(CallAs(kCompany).get(), list, &listed).ok());
  std::set<std::string> found;
  for (const v1::Sequence& s : listed.sequences()) found.insert(s.name());
  for (const std::string& name : acknowledged) {
    INFO(name);
    CHECK(found.count(name) == 1);
  }
}

TEST_CASE(
    "Given a broker that freezes (connections stay open, nothing answers), the API's health says "
    "NOT_SERVING within seconds, calls fail UNAVAILABLE or DEADLINE_EXCEEDED within their "
    "deadline, it serves and writes again once the broker thaws, and a SIGTERM while the broker "
    "is frozen still ends the process cleanly") {
  PrivateBroker broker;
  REQUIRE(broker.Start(/*fresh=*/true).ok());
  const std::string prefix = UniqueName("api-freeze") + ".";
  ApiProcess api(prefix, TempDir("api-freeze"), {"--bootstrap_servers=" + broker.bootstrap()});
  int n = 0;
  std::string created;  // the latest sequence answered OK, and its consistency token
  std::string token;
  auto create = [&](absl::Duration deadline) {
    v1::SequenceResponse resp;
    const absl::Time start = absl::Now();
    grpc::Status s = api.sequences().CreateSequence(
        CallAs(kCompany, "u1", absl::ToDoubleSeconds(deadline)).get(),
        Create(absl::StrCat("req-freeze-", ++n)), &resp);
    INFO("call " << n << ": " << s.error_code() << " " << s.error_message());
    CHECK(absl::Now() - start < deadline + absl::Seconds(1));
    if (!s.ok()) {
      CHECK((s.error_code() == grpc::StatusCode::UNAVAILABLE ||
             s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED));
    } else {
      created = resp.sequence().name();
      token = resp.consistency_token();
    }
    return s.ok();
  };
  REQUIRE(create(absl::Seconds(10)));
  REQUIRE(WaitForHealth(api.address(), "SERVING", absl::Seconds(10)));
  for (int k = 0; k < 2; ++k) {
    INFO("freeze " << k + 1);
    REQUIRE(broker.Freeze().ok());
    CHECK_FALSE(create(absl::Seconds(2)));
    // The broker's latest answer goes stale within 5 s; the loop looks once a second.
    CHECK(WaitForHealth(api.address(), "NOT_SERVING", absl::Seconds(10)));
    REQUIRE(broker.Thaw().ok());
    REQUIRE(WritesAgain(create));
    CHECK(WaitForHealth(api.address(), "SERVING", absl::Seconds(15)));
    // The read model folds again: the sequence written after the thaw can be read (the token
    // makes the read wait for the fold of the write).
    v1::GetSequenceRequest get;
    get.set_name(created);
    get.set_consistency_token(token);
    v1::Sequence got;
    CHECK(api.sequences().GetSequence(CallAs(kCompany).get(), get, &got).ok());
    CHECK(got.name() == created);
  }
  // Stopped while the broker is frozen: the process ends (exit 0) within the grace a supervisor
  // gives, never stuck behind a request the broker does not answer.
  REQUIRE(broker.Freeze().ok());
  CHECK(WaitForHealth(api.address(), "NOT_SERVING", absl::Seconds(10)));
  CHECK(api.process().Terminate(absl::Seconds(30)) == 0);
  REQUIRE(broker.Thaw().ok());
}

}  // namespace
}  // namespace sequences::testing
