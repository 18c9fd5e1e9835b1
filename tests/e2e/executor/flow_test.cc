// The step executor end to end: a real step-executor process, the real broker, inputs published
// straight to Kafka as the automation engine publishes them, outputs read with read_committed.
#include <catch2/catch.hpp>
#include <fstream>
#include <regex>

#include "absl/strings/str_join.h"
#include "libs/domain/envelope.h"
#include "tests/e2e/executor/harness.h"

namespace sequences::executor::e2e {
namespace {

using namespace sequences::executor::testing;

std::map<std::string, std::vector<const Seen*>> ByItem(const std::vector<const Seen*>& seen) {
  std::map<std::string, std::vector<const Seen*>> out;
  for (const Seen* s : seen) out[s->message.key].push_back(s);
  return out;
}

TEST_CASE(
    "Enrollments published straight to Kafka run an activity, a draft email and an "
    "automatic email exactly once each, in order, at or after their due time") {
  World w;
  w.UseTestClock();  // the draft's one-minute delay passes when the test moves the clock
  const absl::Time t0 = w.Now();
  SequenceBuilder seq("c1", "s-flow");
  std::vector<v1::Envelope> events = seq.Create(
      {ActivityStep("call", 0), EmailStep("draft", 1, false), EmailStep("auto", 0, true)}, t0);
  for (auto& e : seq.AutomatedSending(true, t0)) events.push_back(e);
  for (auto& e : seq.Consent("owner-1", true, t0)) events.push_back(e);
  w.PublishSequence(events);
  auto exec = w.StartExecutor("a");

  constexpr int kItems = 20;
  for (int i = 0; i < kItems; ++i) {
    const std::string item = absl::StrCat("c1/deal/", i);
    w.Publish(w.topics().enrollment_events, item,
              Enroll(item, seq.id(), seq.state().version, w.Now()));
  }
  Reader reader({w.topics().task_events, w.topics().email_events, w.topics().executor_events});
  auto completed = [&] {
    int n = 0;
    for (const Seen& s : reader.seen()) n += s.event.has_enrollment_completed() ? 1 : 0;
    return n;
  };
  // Every call fired; the drafts wait for their minute: none is written before the clock moves.
  REQUIRE(reader.PollUntil([&] { return reader.On(w.topics().task_events).size() >= kItems; },
                           absl::Seconds(60)));
  reader.Poll(absl::Seconds(1));
  CHECK(reader.On(w.topics().email_events).empty());
  w.AdvanceClock(absl::Minutes(1));
  REQUIRE(reader.PollUntil([&] { return completed() >= kItems; }, absl::Seconds(60)));
  reader.Poll(absl::Seconds(2));  // anything extra would show up now

  auto tasks = ByItem(reader.On(w.topics().task_events));
  auto emails = ByItem(reader.On(w.topics().email_events));
  auto executor_events = ByItem(reader.On(w.topics().executor_events));
  REQUIRE(tasks.size() == kItems);
  REQUIRE(emails.size() == kItems);
  for (int i = 0; i < kItems; ++i) {
    const std::string item = absl::StrCat("c1/deal/", i);
    INFO(item);
    REQUIRE(tasks[item].size() == 1);
    CHECK(tasks[item][0]->event.task_created().step_id() == "call");
    REQUIRE(emails[item].size() == 2);
    CHECK(emails[item][0]->event.email_send().step_id() == "draft");
    CHECK(emails[item][0]->event.email_send().mode() == v1::EMAIL_MODE_DRAFT_FOR_REVIEW);
    CHECK(emails[item][1]->event.email_send().step_id() == "auto");
    CHECK(emails[item][1]->event.email_send().mode() == v1::EMAIL_MODE_AUTOMATIC);
    std::vector<std::string> executed;
    for (const Seen* s : executor_events[item]) {
      if (!s->event.has_step_executed()) continue;
      const v1::StepExecuted& x = s->event.step_executed();
      executed.push_back(x.step_id());
      const absl::Time due = domain::FromProto(x.due_at());
      CHECK(domain::FromProto(x.executed_at()) >= due);
      // Written at or after its due time (the executor's time; Kafka has ms resolution).
      CHECK(w.clock().ServiceTime(s->message.timestamp) >= due - absl::Milliseconds(1));
    }
    CHECK(executed == std::vector<std::string>{"call", "draft", "auto"});
    // The draft waited for its one-minute delay after the call.
    CHECK(domain::FromProto(emails[item][0]->event.email_send().scheduled_at()) >=
          domain::FromProto(tasks[item][0]->event.task_created().due_at()) + absl::Minutes(1));
  }
  CHECK(exec->Terminate() == 0);
}

TEST_CASE(
    "With --processing_guarantee=at_least_once (no transactions) every step of every "
    "enrollment fires and the enrollments complete") {
  World w;
  const absl::Time t0 = absl::Now();
  SequenceBuilder seq("c1", "s-alo");
  std::vector<v1::Envelope> events =
      seq.Create({ActivityStep("call", 0), EmailStep("auto", 0, true)}, t0);
  for (auto& e : seq.AutomatedSending(true, t0)) events.push_back(e);
  for (auto& e : seq.Consent("owner-1", true, t0)) events.push_back(e);
  w.PublishSequence(events);
  auto exec = w.StartExecutor("a", {"--processing_guarantee=at_least_once"});
  CHECK(exec->Log().find("\"processing_guarantee\":\"at_least_once\"") != std::string::npos);

  constexpr int kItems = 10;
  for (int i = 0; i < kItems; ++i) {
    const std::string item = absl::StrCat("c1/deal/", i);
    w.Publish(w.topics().enrollment_events, item,
              Enroll(item, seq.id(), seq.state().version, absl::Now()));
  }
  Reader reader({w.topics().task_events, w.topics().email_events, w.topics().executor_events});
  // Without transactions the three topics are written one after the other: a reader may see an
  // enrollment completed before that enrollment's email, so it waits for all of them.
  std::set<std::string> completed;
  REQUIRE(reader.PollUntil(
      [&] {
        for (const Seen& s : reader.seen()) {
          if (s.event.has_enrollment_completed()) completed.insert(s.message.key);
        }
        return completed.size() >= kItems &&
               ByItem(reader.On(w.topics().task_events)).size() >= kItems &&
               ByItem(reader.On(w.topics().email_events)).size() >= kItems;
      },
      absl::Seconds(60)));
  auto tasks = ByItem(reader.On(w.topics().task_events));
  auto emails = ByItem(reader.On(w.topics().email_events));
  for (int i = 0; i < kItems; ++i) {
    const std::string item = absl::StrCat("c1/deal/", i);
    INFO(item);
    REQUIRE(!tasks[item].empty());
    CHECK(tasks[item][0]->event.task_created().step_id() == "call");
    REQUIRE(!emails[item].empty());
    CHECK(emails[item][0]->event.email_send().step_id() == "auto");
  }
  CHECK(exec->Terminate() == 0);
}

TEST_CASE(
    "A garbage record on the input topic lands in dead-letter with its origin in headers, "
    "and processing goes on") {
  World w;
  const absl::Time t0 = absl::Now();
  SequenceBuilder seq("c1", "s-dl");
  w.PublishSequence(seq.Create({ActivityStep("call", 0)}, t0));
  auto exec = w.StartExecutor("a");
  const std::string item = "c1/deal/7";
  w.PublishRaw(w.topics().enrollment_events, item, "\x01garbage that is no envelope");
  v1::Envelope wrong_topic = Input("ping-ish", t0);
  *wrong_topic.mutable_task_created() = v1::TaskCreated();
  w.Publish(w.topics().enrollment_events, item, wrong_topic);
  w.Publish(w.topics().enrollment_events, item, Enroll(item, seq.id(), 1, absl::Now()));

  Reader reader({w.topics().dead_letter, w.topics().task_events});
  REQUIRE(reader.PollUntil(
      [&] {
        return reader.On(w.topics().dead_letter).size() >= 2 &&
               !reader.On(w.topics().task_events).empty();
      },
      absl::Seconds(60)));
  auto dead = reader.On(w.topics().dead_letter);
  REQUIRE(dead.size() == 2);
  const kafka::Message& garbage = dead[0]->message;
  CHECK(garbage.value == "\x01garbage that is no envelope");
  CHECK(garbage.key == item);
  REQUIRE(garbage.FindHeader("reason") != nullptr);
  CHECK(garbage.FindHeader("reason")->find("undecodable") == 0);
  CHECK(*garbage.FindHeader("topic") == w.topics().enrollment_events);
  REQUIRE(garbage.FindHeader("partition") != nullptr);
  REQUIRE(garbage.FindHeader("offset") != nullptr);
  CHECK(*garbage.FindHeader("offset") == "0");
  CHECK(dead[1]->message.FindHeader("reason")->find("contract") == 0);
  CHECK(reader.On(w.topics().task_events)[0]->event.task_created().item_key() == item);
  CHECK(exec->Terminate() == 0);
}

TEST_CASE(
    "Inputs that break the publisher contract (no event_id, no company_id, no occurred_at, a "
    "company that is not the item key's) land in dead-letter with the reason, and fire nothing") {
  World w;
  SequenceBuilder seq("c1", "s-contract");
  w.PublishSequence(seq.Create({ActivityStep("call", 0)}, absl::Now()));
  auto exec = w.StartExecutor("a");
  std::map<std::string, std::string> want;  // item -> reason prefix
  auto broken = [&](const std::string& item, const std::string& reason, auto&& breaks) {
    v1::Envelope e = Enroll(item, seq.id(), 1, absl::Now());
    breaks(e);
    w.Publish(w.topics().enrollment_events, item, e);
    want[item] = reason;
  };
  broken("c1/deal/1", "contract: event_id is required",
         [](v1::Envelope& e) { e.clear_event_id(); });
  broken("c1/deal/2", "contract: company_id is required",
         [](v1::Envelope& e) { e.clear_company_id(); });
  broken("c1/deal/3", "contract: occurred_at is required",
         [](v1::Envelope& e) { e.clear_occurred_at(); });
  broken("c1/deal/4", "contract: company_id 'c2' is not the company",
         [](v1::Envelope& e) { e.set_company_id("c2"); });
  const std::string good = "c1/deal/5";
  w.Publish(w.topics().enrollment_events, good, Enroll(good, seq.id(), 1, absl::Now()));

  Reader reader({w.topics().dead_letter, w.topics().task_events});
  REQUIRE(reader.PollUntil(
      [&] {
        return reader.On(w.topics().dead_letter).size() >= want.size() &&
               !reader.On(w.topics().task_events).empty();
      },
      absl::Seconds(60)));
  reader.Poll(absl::Seconds(2));
  auto dead = reader.On(w.topics().dead_letter);
  REQUIRE(dead.size() == want.size());
  for (const Seen* d : dead) {
    INFO(d->message.key);
    REQUIRE(want.count(d->message.key) == 1);
    REQUIRE(d->message.FindHeader("reason") != nullptr);
    CHECK(d->message.FindHeader("reason")->find(want[d->message.key]) == 0);
    CHECK(*d->message.FindHeader("topic") == w.topics().enrollment_events);
  }
  auto tasks = reader.On(w.topics().task_events);
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0]->event.task_created().item_key() == good);
  CHECK(exec->Terminate() == 0);
}

TEST_CASE(
    "With --health_port the executor serves grpc.health.v1 Check on loopback: SERVING once it "
    "owns its partitions and is caught up, and nothing after SIGTERM") {
  World w;
  auto exec = w.StartExecutor("a", {"--health_port=0"});
  const absl::StatusOr<int> port =
      exec->WaitForPort("health server listening", "address", absl::Seconds(5));
  INFO(port.status().ToString());
  REQUIRE(port.ok());
  CHECK(exec->Log().find("\"address\":\"127.0.0.1:") != std::string::npos);
  const std::string address = absl::StrCat("127.0.0.1:", *port);
  REQUIRE(WaitForHealth(address, "SERVING", absl::Seconds(60)));
  CHECK(exec->Terminate() == 0);
  CHECK(HealthOf(address, absl::Milliseconds(500)).find("error") == 0);
}

TEST_CASE(
    "Replaying the log from zero rebuilds state with the live instance's digest, folding on the "
    "reading thread or on two folder threads, with few keys staged or many, and deciding again "
    "from the inputs reproduces every recorded decision") {
  World w;
  const absl::Time t0 = absl::Now();
  SequenceBuilder seq("c1", "s-replay");
  std::vector<v1::Envelope> events =
      seq.Create({ActivityStep("call", 0), EmailStep("draft", 0, false)}, t0);
  w.PublishSequence(events);
  auto exec = w.StartExecutor("a");
  constexpr int kItems = 40;
  for (int i = 0; i < kItems; ++i) {
    const std::string item = absl::StrCat("c1/deal/", i);
    v1::Envelope e = Enroll(item, seq.id(), 1, absl::Now());
    w.Publish(w.topics().enrollment_events, item, e);
  }
  Reader reader({w.topics().executor_events});
  REQUIRE(reader.PollUntil(
      [&] {
        int n = 0;
        for (const Seen& s : reader.seen()) n += s.event.has_enrollment_completed() ? 1 : 0;
        return n >= kItems;
      },
      absl::Seconds(60)));
  REQUIRE(exec->Terminate() == 0);
  const std::string live = DigestIn(exec->Log(), "\"msg\":\"stopped\"");
  REQUIRE(!live.empty());

  // The folder threads take the records whose keys hash to them (4 partitions, 40 items). With
  // 8 staged keys, each of the two folders writes its least recently used keys every few
  // enrollments and reads them back when their next events come.
  const std::vector<std::vector<std::string>> modes = {{"--fold_threads=0"},
                                                       {"--fold_threads=2"},
                                                       {"--fold_threads=2", "--staged_keys=8"},
                                                       {"--dry_run"}};
  for (size_t i = 0; i < modes.size(); ++i) {
    const std::string mode = absl::StrJoin(modes[i], " ");
    const bool dry_run = mode == "--dry_run";
    const std::string dir = w.DataDir(absl::StrCat("replay-", i));
    std::vector<std::string> argv = {
        ServiceBinary("step-executor"), "replay",           "--bootstrap_servers=" + Bootstrap(),
        "--topic_prefix=" + w.prefix(), "--from=beginning", "--data_dir=" + dir};
    argv.insert(argv.end(), modes[i].begin(), modes[i].end());
    auto replay = ChildProcess::Start(argv, dir + ".log");
    REQUIRE(replay.ok());
    const absl::Time deadline = absl::Now() + absl::Seconds(90);
    while ((*replay)->Running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(100));
    const int code = (*replay)->Terminate();  // already exited: its exit code
    INFO(mode << ": " << (*replay)->Log());
    CHECK(code == 0);
    CHECK(DigestIn((*replay)->Log(), "{\"digest\"") == live);
    if (dry_run) {
      CHECK((*replay)->Log().find("\"decisions_differing\":0,") != std::string::npos);
      CHECK((*replay)->Log().find("\"decisions_checked\":0,") == std::string::npos);
    }
  }
}

TEST_CASE(
    "Given flows that wait for activities completed at nanosecond times and an executor-events "
    "record that does not decode, when the executor recovers and the log is replayed with "
    "--dry_run, then no decision differs and the undecodable record is counted, logged and "
    "fails the replay with exit code 4") {
  World w;
  const absl::Time t0 = absl::Now();
  SequenceBuilder seq("c1", "s-wait");
  w.PublishSequence(
      seq.Create({ActivityStep("call", 0, /*wait=*/true), ActivityStep("after", 0)}, t0));
  w.PublishRaw(w.topics().executor_events, "c1/deal/0", "\x01garbage that is no envelope");
  auto exec = w.StartExecutor("a");
  constexpr int kItems = 5;
  for (int i = 0; i < kItems; ++i) {
    const std::string item = absl::StrCat("c1/deal/", i);
    w.Publish(w.topics().enrollment_events, item, Enroll(item, seq.id(), 1, absl::Now()));
  }
  Reader reader({w.topics().task_events, w.topics().executor_events});
  auto count = [&](auto has) {
    int n = 0;
    for (const Seen& s : reader.seen()) n += has(s.event) ? 1 : 0;
    return n;
  };
  REQUIRE(reader.PollUntil(
      [&] {
        return count([](const v1::Envelope& e) { return e.has_waiting_for_activity(); }) >= kItems;
      },
      absl::Seconds(60)));
  // Completed well after the step ran (so the completion, not the execution, is the anchor).
  absl::SleepFor(absl::Milliseconds(1500));
  for (const Seen* s : reader.On(w.topics().task_events)) {
    const v1::TaskCreated& t = s->event.task_created();
    v1::Envelope done = Input(absl::StrCat("done-", t.task_id()), absl::Now());
    done.mutable_activity_completed()->set_task_id(t.task_id());
    done.mutable_activity_completed()->set_item_key(t.item_key());
    done.mutable_activity_completed()->set_sequence_id(t.sequence_id());
    // A second ago, with the task service's nanoseconds.
    *done.mutable_activity_completed()->mutable_completed_at() =
        domain::ToProto(absl::Now() - absl::Seconds(1) + absl::Nanoseconds(123456789));
    w.Publish(w.topics().enrollment_events, t.item_key(), done);
  }
  REQUIRE(reader.PollUntil(
      [&] {
        return count([](const v1::Envelope& e) { return e.has_enrollment_completed(); }) >= kItems;
      },
      absl::Seconds(60)));
  REQUIRE(exec->Terminate() == 0);
  CHECK(exec->Log().find("executor event does not decode") != std::string::npos);
  const std::string live = DigestIn(exec->Log(), "\"msg\":\"stopped\"");
  REQUIRE(!live.empty());

  const std::string dir = w.DataDir("replay-wait");
  auto replay = ChildProcess::Start(
      {ServiceBinary("step-executor"), "replay", "--bootstrap_servers=" + Bootstrap(),
       "--topic_prefix=" + w.prefix(), "--from=beginning", "--data_dir=" + dir, "--dry_run"},
      dir + ".log");
  REQUIRE(replay.ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(90);
  while ((*replay)->Running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(100));
  const int code = (*replay)->Terminate();
  const std::string log = (*replay)->Log();
  INFO(log);
  CHECK(code == 4);
  CHECK(DigestIn(log, "{\"digest\"") == live);
  CHECK(log.find("\"executor_events_undecodable\":1,") != std::string::npos);
  CHECK(log.find("record does not decode") != std::string::npos);
  CHECK(log.find("\"decisions_differing\":0,") != std::string::npos);
  CHECK(log.find("\"decisions_checked\":0,") == std::string::npos);
}

}  // namespace
}  // namespace sequences::executor::e2e
