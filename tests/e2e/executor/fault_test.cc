// Crashes and rebalances: kill -9 of real executor processes at random moments, instances
// joining and leaving. Every step must fire exactly once (counted by idempotency key on a
// read_committed consumer), none lost.
//
// Sizes: CI-sized by default; SEQUENCES_EXEC_CRASH_ENROLLMENTS and SEQUENCES_EXEC_CRASH_KILLS
// make the crash run longer (README of services/step-executor).
#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <random>

#include "absl/strings/match.h"
#include "libs/kafka/transactional_producer.h"
#include "libs/kafka/types.h"
#include "tests/e2e/executor/harness.h"

namespace sequences::executor::e2e {
namespace {

using namespace sequences::executor::testing;

// Three steps per enrollment, all due at once: the executor is always busy while it is killed.
SequenceBuilder ThreeSteps(World& w, const std::string& id) {
  SequenceBuilder seq("c1", id);
  w.PublishSequence(
      seq.Create({ActivityStep("call", 0), EmailStep("draft", 0, false), ActivityStep("follow", 0)},
                 absl::Now()));
  return seq;
}

// Publishes enrollments into `sequence_id` in waves, the items of each wave numbered on from the
// last; `published` counts them all.
struct Waves {
  World& w;
  std::string sequence_id;
  int published = 0;
  void operator()(int n, absl::Time at = absl::Now()) {
    w.PublishAll(w.topics().enrollment_events,
                 Enrollments(sequence_id, published, published + n, at));
    published += n;
  }
};

// After `expected` effects arrived: waits a little longer (a duplicate would arrive then) and
// checks that each effect id came exactly once and none is missing.
void CheckEachEffectOnce(Reader& reader, const World& w, size_t expected) {
  reader.Poll(absl::Seconds(3));
  std::map<std::string, int> counts = EffectCounts(reader, w.topics());
  CHECK(counts.size() == expected);
  int duplicated = 0;
  for (const auto& [id, n] : counts) duplicated += n > 1 ? 1 : 0;
  CHECK(duplicated == 0);
  CHECK(reader.seen().size() == expected);
}

TEST_CASE(
    "Killing the executor with kill -9 at random moments, many times, loses no step and "
    "fires none twice") {
  const int enrollments = EnvInt("SEQUENCES_EXEC_CRASH_ENROLLMENTS", 2000);
  const int kills = EnvInt("SEQUENCES_EXEC_CRASH_KILLS", 8);
  World w;
  SequenceBuilder seq = ThreeSteps(w, "s-crash");
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pause_ms(300, 2500);

  auto exec = w.StartExecutor("a");
  // Enrollments arrive in waves while the executor is being killed and restarted.
  const int waves = kills + 1;
  int published = 0;
  for (int k = 0; k < kills; ++k) {
    const int next = enrollments * (k + 1) / waves;
    w.PublishAll(w.topics().enrollment_events, Enrollments(seq.id(), published, next));
    published = next;
    absl::SleepFor(absl::Milliseconds(pause_ms(rng)));
    exec->Kill();
    exec = w.StartExecutor("a");
  }
  w.PublishAll(w.topics().enrollment_events, Enrollments(seq.id(), published, enrollments));

  Reader reader({w.topics().task_events, w.topics().email_events});
  const size_t expected = static_cast<size_t>(enrollments) * 3;
  REQUIRE(reader.PollUntil([&] { return reader.seen().size() >= expected; }, absl::Seconds(120)));
  CheckEachEffectOnce(reader, w, expected);
  CHECK(exec->Terminate() == 0);
}

TEST_CASE(
    "Executors joining and leaving while batches are in flight move partitions back and forth "
    "(a join, a third member, a graceful leave, a kill -9 and restart) without losing or "
    "repeating a step") {
  World w;
  SequenceBuilder seq = ThreeSteps(w, "s-rebalance");
  Waves waves{w, seq.id()};
  // Every step due at once: the executors are busy through each move.
  auto wave = [&] { waves(400); };
  auto a = w.StartExecutor("a");
  wave();
  // b joins while a decides the wave: a gives up some partitions (cooperatively, between two
  // of its transactions) and keeps the others.
  auto b = w.StartExecutor("b");
  wave();
  REQUIRE(b->WaitForLog("\"msg\":\"recovered\"", absl::Seconds(60)));  // it owns some
  // c joins: partitions move from both.
  auto c = w.StartExecutor("c");
  wave();
  absl::SleepFor(absl::Milliseconds(500));
  // b leaves gracefully: its partitions go to a and c, whose standby state of them is warm.
  CHECK(b->Terminate() == 0);
  wave();
  absl::SleepFor(absl::Milliseconds(500));
  // a dies mid-batch and comes back under the same instance id (static membership).
  a->Kill();
  wave();
  a = w.StartExecutor("a");
  wave();

  Reader reader({w.topics().task_events, w.topics().email_events});
  const size_t expected = static_cast<size_t>(waves.published) * 3;
  REQUIRE(reader.PollUntil([&] { return reader.seen().size() >= expected; }, absl::Seconds(120)));
  CheckEachEffectOnce(reader, w, expected);
  CHECK(a->Terminate() == 0);
  CHECK(c->Terminate() == 0);
}

TEST_CASE(
    "An executor that warms up while another decides on every partition folds every record it "
    "passes: when the other leaves and it takes all partitions, no step fires twice") {
  World w;
  SequenceBuilder seq = ThreeSteps(w, "s-warm");
  Waves wave{w, seq.id()};
  auto a = w.StartExecutor("a");
  // A backlog of executor events on one partition: the newcomer's warm-up reaches the end of the
  // others long before the end of that one.
  constexpr int kBacklog = 3000;
  std::vector<std::pair<std::string, v1::Envelope>> backlog;
  for (int i = 1000000; static_cast<int>(backlog.size()) < kBacklog; ++i) {
    const std::string item = absl::StrCat("c1/deal/", i);
    if (kafka::PartitionForKey(item, kPartitions) != 0) continue;
    backlog.push_back({item, Enroll(item, seq.id(), 1, absl::Now())});
  }
  w.PublishAll(w.topics().enrollment_events, backlog);
  Reader reader({w.topics().task_events, w.topics().email_events});
  REQUIRE(
      reader.PollUntil([&] { return reader.seen().size() >= kBacklog * 3u; }, absl::Seconds(120)));
  // b warms up (folds every partition to its end) while a goes on writing to all of them: the
  // partitions whose end it reached first receive more records before it reaches the last end.
  auto b = w.LaunchExecutor("b");
  while (!b->WaitForLog("\"msg\":\"running\"", absl::Milliseconds(20))) {
    REQUIRE(b->Running());
    wave(60);
  }
  for (int i = 0; i < 10; ++i) {
    wave(60);
    absl::SleepFor(absl::Milliseconds(20));
  }
  REQUIRE(b->WaitForLog("\"msg\":\"recovered\"", absl::Seconds(60)));
  // a leaves: b owns every partition, with the state its warm-up and standby folded.
  CHECK(a->Terminate() == 0);
  wave(300);

  const size_t expected = static_cast<size_t>(kBacklog + wave.published) * 3;
  REQUIRE(reader.PollUntil([&] { return reader.seen().size() >= expected; }, absl::Seconds(120)));
  CheckEachEffectOnce(reader, w, expected);
  CHECK(b->Terminate() == 0);
}

TEST_CASE(
    "An executor frozen mid-batch (SIGSTOP: a long pause, a stalled machine) past its session "
    "and transaction timeouts: the other member takes its partitions and fires their steps while "
    "it is frozen, and once it resumes, what it was deciding is fenced: every step exactly once") {
  // SEQUENCES_EXEC_FREEZES: freezes, alternating the two members (default 2).
  const int freezes = EnvInt("SEQUENCES_EXEC_FREEZES", 2);
  World w;
  SequenceBuilder seq = ThreeSteps(w, "s-frozen");
  Waves wave{w, seq.id()};
  // The broker's smallest session timeout: the frozen member leaves the group 6 s into a freeze.
  const std::vector<std::string> flags = {"--session_timeout=6s"};
  std::map<std::string, std::unique_ptr<ChildProcess>> exec;
  exec["a"] = w.StartExecutor("a", flags);
  exec["b"] = w.StartExecutor("b", flags);
  REQUIRE(exec["b"]->WaitForLog("\"msg\":\"recovered\"", absl::Seconds(60)));
  Reader reader({w.topics().task_events, w.topics().email_events});
  std::mt19937 rng(std::random_device{}());
  for (int k = 0; k < freezes; ++k) {
    const std::string frozen = k % 2 == 0 ? "a" : "b";
    INFO("freeze " << k + 1 << " of " << frozen);
    // Frozen while both decide a wave (every step due at once): often inside a transaction.
    wave(400);
    absl::SleepFor(absl::Milliseconds(std::uniform_int_distribution<int>(50, 400)(rng)));
    REQUIRE(kill(exec[frozen]->pid(), SIGSTOP) == 0);
    wave(200);
    // Liveness: the other member takes the frozen one's partitions (after its session ends and
    // its open transaction is aborted by the broker, 10 s) and fires everything meanwhile.
    const size_t due = static_cast<size_t>(wave.published) * 3;
    CHECK(reader.PollUntil([&] { return reader.seen().size() >= due; }, absl::Seconds(90)));
    REQUIRE(kill(exec[frozen]->pid(), SIGCONT) == 0);
    // It resumes where it stopped: its late commit must be refused, not land as duplicates.
    wave(200);
    absl::SleepFor(absl::Seconds(2));
  }
  const size_t expected = static_cast<size_t>(wave.published) * 3;
  REQUIRE(reader.PollUntil([&] { return reader.seen().size() >= expected; }, absl::Seconds(120)));
  CheckEachEffectOnce(reader, w, expected);
  CHECK(exec["a"]->Terminate() == 0);
  CHECK(exec["b"]->Terminate() == 0);
}

TEST_CASE(
    "Members started, stopped and killed at random while enrollments flow and timers come due "
    "(an executor warming up, recovering or deciding at every change): every step fires exactly "
    "once") {
  // SEQUENCES_EXEC_CHURN_CHANGES: membership changes (default 8; 60 for a long run).
  const int changes = EnvInt("SEQUENCES_EXEC_CHURN_CHANGES", 8);
  World w;
  w.UseTestClock();  // the delayed steps come due when the test moves the clock, between changes
  SequenceBuilder seq("c1", "s-churn");
  w.PublishSequence(seq.Create(
      {ActivityStep("call", 0), EmailStep("draft", 1, false), ActivityStep("follow", 2)}, w.Now()));
  std::mt19937 rng(std::random_device{}());
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  Waves waves{w, seq.id()};
  auto wave = [&] { waves(50 + pick(200), w.Now()); };
  const std::vector<std::string> ids = {"a", "b", "c"};
  std::map<std::string, std::unique_ptr<ChildProcess>> running;
  running["a"] = w.StartExecutor("a");
  std::string history;
  for (int k = 0; k < changes; ++k) {
    wave();
    if (pick(2) == 0) w.AdvanceClock(absl::Minutes(1));
    std::vector<std::string> up, down;
    for (const std::string& id : ids) (running.count(id) > 0 ? up : down).push_back(id);
    const int action = down.empty() ? 1 + pick(2) : up.size() == 1 ? 0 : pick(3);
    if (action == 0) {
      // Started without waiting for it: the next change may find it warming up.
      const std::string id = down[pick(static_cast<int>(down.size()))];
      running[id] = w.LaunchExecutor(id);
      absl::StrAppend(&history, " start ", id);
    } else {
      const std::string id = up[pick(static_cast<int>(up.size()))];
      if (action == 1) {
        running[id]->Kill();
        absl::StrAppend(&history, " kill ", id);
      } else {
        // A stop may wait out one bounded Kafka call (10 s) held back by a killed member.
        CHECK(running[id]->Terminate(absl::Seconds(30)) == 0);
        absl::StrAppend(&history, " stop ", id);
      }
      running.erase(id);
    }
    absl::SleepFor(absl::Milliseconds(200 + pick(1000)));
  }
  INFO("changes:" << history);
  if (running.empty()) running["a"] = w.LaunchExecutor("a");
  wave();

  Reader reader({w.topics().task_events, w.topics().email_events});
  const size_t expected = static_cast<size_t>(waves.published) * 3;
  // Each step is due a minute or two after the one before it ran: move the clock on until all ran
  // (a killed member's partitions wait for its session to end, 10 s).
  const absl::Time give_up = absl::Now() + absl::Seconds(120);
  while (reader.seen().size() < expected && absl::Now() < give_up) {
    w.AdvanceClock(absl::Minutes(3));
    reader.PollUntil([&] { return reader.seen().size() >= expected; }, absl::Seconds(2));
  }
  REQUIRE(reader.seen().size() >= expected);
  CheckEachEffectOnce(reader, w, expected);
  for (auto& [id, p] : running) CHECK(p->Terminate(absl::Seconds(30)) == 0);
}

TEST_CASE(
    "An executor stopped after it joined the group but before its first assignment (the new "
    "leader stalled) stops cleanly with exit 0") {
  World w;
  ThreeSteps(w, "s-first-assignment");
  auto a = w.StartExecutor("a");
  REQUIRE(a->WaitForLog("\"msg\":\"recovered\"", absl::Seconds(60)));
  // a leads the group and dies without leaving it (a static member): the rebalance the
  // newcomers' joins start waits for a's session (10 s) to end.
  a->Kill();
  const absl::Time killed = absl::Now();
  std::vector<std::unique_ptr<ChildProcess>> stalled;
  for (const char* id : {"b", "c", "d", "e"}) stalled.push_back(w.StartExecutor(id));
  auto f = w.StartExecutor("f");
  // All but f stall (SIGSTOP) before a's session ends. The broker then answers the joins and picks
  // a new leader among the five (at random): a stalled one 4 times in 5. f, not the leader, has
  // its JoinGroup answer and waits in SyncGroup for an assignment that does not come.
  absl::SleepFor(killed + absl::Seconds(8) - absl::Now());
  for (auto& p : stalled) REQUIRE(kill(p->pid(), SIGSTOP) == 0);
  absl::SleepFor(killed + absl::Seconds(13) - absl::Now());
  const bool assigned = absl::StrContains(f->Log(), "\"msg\":\"partitions assigned\"");
  // Elected itself, f stops as an assigned member; the stalled ones, resumed and stopped at once,
  // may still stop between their JoinGroup answer and their assignment.
  if (assigned) WARN("f was elected leader: only the resumed members may stop before assignment");
  // A stop may wait out one bounded Kafka call (10 s: a committed-offsets fetch held back by the
  // killed member's open transaction), more than Terminate's default 15 s grace allows on a busy
  // machine.
  const int f_exit = f->Terminate(absl::Seconds(30));
  INFO(f->Log());
  CHECK(f_exit == 0);
  for (auto& p : stalled) {
    REQUIRE(kill(p->pid(), SIGCONT) == 0);
    CHECK(p->Terminate(absl::Seconds(30)) == 0);
  }
}

TEST_CASE(
    "An executor fenced as a static member (another consumer joined with its group.instance.id) "
    "rebuilds its Kafka clients by itself, takes its partitions back, says NOT_SERVING "
    "meanwhile, and fires every step exactly once") {
  World w;
  SequenceBuilder seq = ThreeSteps(w, "s-fenced");
  auto exec = w.StartExecutor("a", {"--health_port=0", "--session_timeout=6s"});
  const absl::StatusOr<int> health_port =
      exec->WaitForPort("health server listening", "address", absl::Seconds(10));
  REQUIRE(health_port.ok());
  const std::string health = absl::StrCat("127.0.0.1:", *health_port);
  REQUIRE(WaitForHealth(health, "SERVING", absl::Seconds(60)));
  w.PublishAll(w.topics().enrollment_events, Enrollments(seq.id(), 0, 300));
  {
    // The same group and group.instance.id: the broker hands the instance to this consumer and
    // answers the executor's consumer FENCED_INSTANCE_ID, a fatal error in librdkafka.
    kafka::ConsumerConfig c;
    c.client = Client();
    c.group_id = w.prefix() + "executor";
    c.session_timeout = absl::Seconds(6);
    c.client.overrides["group.instance.id"] = "a";
    auto impostor = kafka::Consumer::Create(c);
    REQUIRE(impostor.ok());
    bool assigned = false;
    kafka::RebalanceListener listener;
    listener.on_assigned = [&](const std::vector<kafka::TopicPartition>&) {
      assigned = true;
      return std::vector<kafka::TopicPartitionOffset>{};
    };
    REQUIRE((*impostor)->Subscribe({w.topics().enrollment_events}, listener).ok());
    const absl::Time until = absl::Now() + absl::Seconds(30);
    while (!assigned && absl::Now() < until) {
      (*impostor)->PollBatch(100, absl::Milliseconds(100)).IgnoreError();  // fetched, never used
    }
    REQUIRE(assigned);
    CHECK(WaitForHealth(health, "NOT_SERVING", absl::Seconds(15)));
    // The executor rebuilds and its new consumer takes the instance back (fencing this one).
    REQUIRE(exec->WaitForLog("\"msg\":\"kafka clients rebuilt", absl::Seconds(30)));
    const absl::Time fenced_until = absl::Now() + absl::Seconds(30);
    while ((*impostor)->FatalError().ok() && absl::Now() < fenced_until) {
      (*impostor)->PollBatch(100, absl::Milliseconds(100)).IgnoreError();
    }
    CHECK(!(*impostor)->FatalError().ok());
  }
  REQUIRE(WaitForHealth(health, "SERVING", absl::Seconds(60)));
  w.PublishAll(w.topics().enrollment_events, Enrollments(seq.id(), 300, 600));

  Reader reader({w.topics().task_events, w.topics().email_events});
  const size_t expected = 600 * 3;
  REQUIRE(reader.PollUntil([&] { return reader.seen().size() >= expected; }, absl::Seconds(90)));
  CheckEachEffectOnce(reader, w, expected);
  CHECK(exec->Running());
  CHECK(exec->Terminate() == 0);
}

TEST_CASE(
    "Given a transaction left open on executor-events by an instance that died mid-batch, when "
    "another instance recovers that partition while the open transaction still hides the older "
    "owner's later decisions, then it waits for the end and fires every step exactly once") {
  World w;
  w.UseTestClock();
  SequenceBuilder seq("c1", "s-open-txn");
  w.PublishSequence(seq.Create({ActivityStep("call", 0), ActivityStep("follow", 60)}, absl::Now()));
  constexpr int32_t kPartition = 0;
  // Deals whose enrollment events (and so their executor events) land on kPartition.
  std::vector<std::string> items;
  for (int i = 0; items.size() < 40; ++i) {
    const std::string item = absl::StrCat("c1/deal/o", i);
    if (kafka::PartitionForKey(item, kPartitions) == kPartition) items.push_back(item);
  }
  auto enroll = [&](size_t from, size_t to) {
    std::vector<std::pair<std::string, v1::Envelope>> batch;
    for (size_t i = from; i < to; ++i) {
      batch.push_back({items[i], Enroll(items[i], seq.id(), seq.state().version, w.Now())});
    }
    w.PublishAll(w.topics().enrollment_events, batch);
  };
  Reader reader({w.topics().task_events});
  auto tasks = [&] { return reader.On(w.topics().task_events).size(); };
  auto a = w.StartExecutor("a", {"--transaction_timeout=5s", "--session_timeout=6s"});
  enroll(0, 20);
  REQUIRE(reader.PollUntil([&] { return tasks() >= 20; }, absl::Seconds(60)));

  // A dead instance's transaction: records on kPartition, no offsets, never ended. The broker
  // would abort it after its timeout (a minute here); the test ends it itself below, once b has
  // shown it waits for it, as the broker's abort would.
  kafka::TransactionalProducerConfig zc;
  zc.client = Client();
  zc.transactional_id = w.prefix() + "executor.dead";
  zc.transaction_timeout = absl::Seconds(60);
  auto zombie = kafka::TransactionalProducer::Create(zc);
  REQUIRE(zombie.ok());
  REQUIRE((*zombie)->Init(absl::Seconds(30)).ok());
  REQUIRE((*zombie)->Begin().ok());
  kafka::Record unfinished;
  unfinished.topic = w.topics().executor_events;
  unfinished.key = items[0];
  unfinished.value = "unfinished";
  unfinished.partition = kPartition;
  REQUIRE((*zombie)->Produce(unfinished).ok());
  REQUIRE((*zombie)->Flush(absl::Seconds(10)).ok());
  // a decides more of kPartition: committed, but behind the open transaction.
  enroll(20, 40);
  REQUIRE(reader.PollUntil([&] { return tasks() >= 40; }, absl::Seconds(60)));

  // b starts with an empty store and takes over every partition while the transaction is open.
  auto b = w.StartExecutor("b", {"--transaction_timeout=5s", "--session_timeout=6s"});
  CHECK(a->Terminate() == 0);
  // It reaches the read_committed end while the transaction is open and waits there.
  REQUIRE(b->WaitForLog("an open transaction holds back the end", absl::Seconds(30)));
  absl::SleepFor(absl::Seconds(1));
  REQUIRE((*zombie)->Abort(absl::Seconds(10)).ok());
  REQUIRE(b->WaitForLog("\"msg\":\"recovered\"", absl::Seconds(30)));
  // Every follow step comes due: b must know every enrollment a started.
  w.AdvanceClock(absl::Minutes(61));
  reader.PollUntil([&] { return tasks() >= 80; }, absl::Seconds(60));
  reader.Poll(absl::Seconds(2));  // a duplicate would arrive now
  std::map<std::string, int> counts = EffectCounts(reader, w.topics());
  CHECK(counts.size() == 80);
  int duplicated = 0;
  for (const auto& [id, n] : counts) duplicated += n > 1 ? 1 : 0;
  CHECK(duplicated == 0);
  CHECK(b->Terminate() == 0);
}

}  // namespace
}  // namespace sequences::executor::e2e
