// The executor's deciding half without Kafka: a real RocksDB store in a temp directory, a
// simulated clock, records handed in as the consumer would.
#include "services/step-executor/processor.h"

#include <catch2/catch.hpp>
#include <deque>
#include <functional>
#include <set>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/domain/envelope.h"
#include "libs/domain/history.h"
#include "libs/domain/min_gap.h"
#include "libs/domain/routing.h"
#include "libs/domain/send_limits.h"
#include "libs/runtime/clock.h"
#include "sequences/v1/enrollment_updates.pb.h"
#include "services/step-executor/state.h"
#include "services/step-executor/tests/builders.h"
#include "tests/support/process.h"

namespace sequences::executor {
namespace {

using namespace testing;

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

struct Fixture {
  Fixture() : clock(kT0) {
    dir = sequences::testing::TempDir("executor-unit");
    auto s = StateStore::Open(dir);
    REQUIRE(s.ok());
    store = std::move(*s);
    processor = std::make_unique<Processor>(*store, service::Topics::WithPrefix("t."));
    REQUIRE(processor->LoadSequences().ok());
  }

  kafka::Message Record(const std::string& topic, int32_t partition, const std::string& key,
                        const v1::Envelope& e) {
    kafka::Message m;
    m.topic = topic;
    m.partition = partition;
    m.offset = next_offset++;
    m.key = key;
    m.value = e.SerializeAsString();
    return m;
  }

  // Folds sequence events (as read from sequence-events) and flushes.
  void FoldSequence(const std::vector<v1::Envelope>& events) {
    Overlay overlay(*store);
    BatchOutput out;
    for (const v1::Envelope& e : events) {
      REQUIRE(processor
                  ->OnSequenceRecord(
                      Record("t.sequence-events", 0, e.sequence_created().sequence_id(), e), all,
                      clock.Now(), overlay, out)
                  .ok());
    }
    REQUIRE(overlay.Flush().ok());
  }

  Processor::InputResult Decide(const kafka::Message& m, BatchOutput& out) {
    Overlay overlay(*store);
    auto r = processor->OnInputRecord(m, false, clock.Now(), overlay, out);
    REQUIRE(r.ok());
    REQUIRE(processor->FlushSenders(clock.Now(), overlay, out).ok());
    REQUIRE(overlay.Flush().ok());
    return *r;
  }

  // Enrolls `item` in sequence s1 (version 1) now, from an input on `partition`.
  BatchOutput EnrollNow(int32_t partition, const std::string& item) {
    BatchOutput out;
    Decide(Record("t.enrollment-events", partition, item, Enroll(item, "s1", 1, clock.Now())), out);
    return out;
  }

  BatchOutput Fire(const Processor::OwnedFn& owned, int max = 100) {
    Overlay overlay(*store);
    BatchOutput out;
    REQUIRE(processor->FireDue(clock.Now(), owned, max, &scan_from, overlay, out).ok());
    std::optional<absl::Time> earliest;
    REQUIRE(overlay.Flush(&earliest).ok());
    if (earliest.has_value()) scan_from = std::min(scan_from, DuePosition::At(*earliest));
    return out;
  }

  std::vector<v1::Envelope> On(const BatchOutput& out, const std::string& topic) {
    std::vector<v1::Envelope> v;
    for (const kafka::Record& r : out.records) {
      if (r.topic != topic) continue;
      v1::Envelope e;
      REQUIRE(e.ParseFromString(r.value));
      v.push_back(e);
    }
    return v;
  }

  std::string dir;
  SimulatedClock clock;
  std::unique_ptr<StateStore> store;
  std::unique_ptr<Processor> processor;
  int64_t next_offset = 0;
  DuePosition scan_from;
  Processor::OwnedFn all = [](int32_t) { return true; };
};

TEST_CASE(
    "Given a known sequence, when an item is enrolled, then EnrollmentStarted is written "
    "to the input's partition and the first step waits in the due index") {
  Fixture f;
  SequenceBuilder seq("c1", "s1");
  f.FoldSequence(seq.Create({ActivityStep("a", 5)}, kT0));

  BatchOutput out;
  CHECK(f.Decide(f.Record("t.enrollment-events", 3, "c1/deal/1", Enroll("c1/deal/1", "s1", 1, kT0)),
                 out) == Processor::InputResult::kDone);
  REQUIRE(out.records.size() == 2);  // the executor event, and its public enrollment update
  CHECK(out.records[0].topic == "t.executor-events");
  CHECK(out.records[0].partition == 3);
  CHECK(out.records[0].key == "c1/deal/1");
  CHECK(out.records[1].topic == "t.enrollment-updates");
  CHECK(out.records[1].key == "c1/deal/1#s1");
  CHECK(out.executor_partitions == std::set<int32_t>{3});
  auto next = f.processor->NextDue(DuePosition(), f.all, 10);
  REQUIRE(next.ok());
  CHECK(*next == kT0 + absl::Minutes(5));
}

TEST_CASE(
    "Given an enrolled item, when the clock reaches the due time, then the step fires "
    "exactly once with its task, and never before") {
  Fixture f;
  SequenceBuilder seq("c1", "s1");
  f.FoldSequence(seq.Create({ActivityStep("a", 5), ActivityStep("b", 5)}, kT0));
  BatchOutput enrolled;
  f.Decide(f.Record("t.enrollment-events", 0, "c1/deal/1", Enroll("c1/deal/1", "s1", 1, kT0)),
           enrolled);

  f.clock.Advance(absl::Minutes(5) - absl::Seconds(1));
  CHECK(f.Fire(f.all).empty());

  f.clock.Advance(absl::Seconds(1));
  BatchOutput fired = f.Fire(f.all);
  CHECK(fired.steps_fired == 1);
  auto tasks = f.On(fired, "t.task-events");
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0].task_created().step_id() == "a");
  CHECK(fired.lateness == std::vector<absl::Duration>{absl::ZeroDuration()});

  // Firing again at the same time: the entry is gone from the index.
  CHECK(f.Fire(f.all).empty());
  // The next step is due 5 minutes later, and fires then.
  f.clock.Advance(absl::Minutes(5));
  BatchOutput second = f.Fire(f.all);
  REQUIRE(f.On(second, "t.task-events").size() == 1);
  CHECK(f.On(second, "t.task-events")[0].task_created().step_id() == "b");
}

TEST_CASE(
    "Given a sequence whose first step has no delay, when an item is enrolled, then the step "
    "fires in the enrolling batch, once, and only the next step waits in the due index") {
  Fixture f;
  SequenceBuilder seq("c1", "s1");
  f.FoldSequence(seq.Create({ActivityStep("a", 0), ActivityStep("b", 5)}, kT0));

  // One batch as the executor runs it: the inputs, the stored index, then the staged steps.
  Overlay overlay(*f.store);
  BatchOutput out;
  auto r = f.processor->OnInputRecord(
      f.Record("t.enrollment-events", 2, "c1/deal/1", Enroll("c1/deal/1", "s1", 1, kT0)), false,
      f.clock.Now(), overlay, out);
  REQUIRE(r.ok());
  REQUIRE(f.processor->FlushSenders(f.clock.Now(), overlay, out).ok());
  REQUIRE(f.processor->FireDue(f.clock.Now(), f.all, 100, &f.scan_from, overlay, out).ok());
  REQUIRE(f.processor->FireStaged(f.clock.Now(), f.all, overlay, out).ok());
  REQUIRE(overlay.Flush().ok());

  CHECK(out.steps_fired == 1);
  auto tasks = f.On(out, "t.task-events");
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0].task_created().step_id() == "a");
  auto events = f.On(out, "t.executor-events");
  REQUIRE(events.size() == 2);
  CHECK(events[0].has_enrollment_started());
  CHECK(events[1].has_step_executed());
  for (const kafka::Record& rec : out.records) {
    if (rec.topic == "t.executor-events") CHECK(rec.partition == 2);
  }
  auto next = f.processor->NextDue(DuePosition(), f.all, 10);
  REQUIRE(next.ok());
  CHECK(*next == kT0 + absl::Minutes(5));

  // The next batches at the same instant fire nothing: the step is not in the index again.
  CHECK(f.Fire(f.all).empty());
  Overlay again(*f.store);
  BatchOutput none;
  REQUIRE(f.processor->FireStaged(f.clock.Now(), f.all, again, none).ok());
  CHECK(none.empty());
}

TEST_CASE(
    "Given a step made due at once on a partition this instance does not own, when the batch "
    "fires staged steps, then it does not fire it") {
  Fixture f;
  SequenceBuilder seq("c1", "s1");
  f.FoldSequence(seq.Create({ActivityStep("a", 0)}, kT0));
  Overlay overlay(*f.store);
  BatchOutput out;
  REQUIRE(f.processor
              ->OnInputRecord(f.Record("t.enrollment-events", 1, "c1/deal/1",
                                       Enroll("c1/deal/1", "s1", 1, kT0)),
                              false, f.clock.Now(), overlay, out)
              .ok());
  Processor::OwnedFn only0 = [](int32_t p) { return p == 0; };
  REQUIRE(f.processor->FireStaged(f.clock.Now(), only0, overlay, out).ok());
  CHECK(out.steps_fired == 0);
  CHECK(f.On(out, "t.task-events").empty());
}

TEST_CASE(
    "Given more due entries of partitions owned by others than one look-ahead visits, when "
    "the next due time is asked, then the scan is told to go on, and the owned step fires") {
  Fixture f;
  SequenceBuilder seq("c1", "s1");
  f.FoldSequence(seq.Create({ActivityStep("a", 5)}, kT0));
  for (int i = 0; i < 6; ++i) {  // partition 1: kept from an earlier assignment
    f.clock.Advance(absl::Seconds(1));
    f.EnrollNow(1, absl::StrCat("c1/deal/", i));
  }
  f.clock.Advance(absl::Minutes(1));
  f.EnrollNow(0, "c1/deal/own");
  const absl::Time own_due = f.clock.Now() + absl::Minutes(5);
  Processor::OwnedFn only0 = [](int32_t p) { return p == 0; };

  auto next = f.processor->NextDue(DuePosition(), only0, 3);
  REQUIRE(next.ok());
  REQUIRE(next->has_value());
  CHECK(**next <= own_due);

  f.clock.Set(own_due);
  int fired = 0;
  for (int i = 0; i < 5 && fired == 0; ++i) fired += f.Fire(only0, 3).steps_fired;
  CHECK(fired == 1);
}

TEST_CASE(
    "Given more due entries of partitions owned by others than one batch visits, all due at "
    "the very same microsecond as an owned step, when batches run, then the owned step fires") {
  Fixture f;
  SequenceBuilder seq("c1", "s1");
  f.FoldSequence(seq.Create({ActivityStep("a", 5)}, kT0));
  for (int i = 0; i < 12; ++i) {  // partition 1: kept from an earlier assignment
    f.EnrollNow(1, absl::StrCat("c1/deal/", i));
  }
  f.EnrollNow(0, "c1/deal/own");  // sorts after the others within the same microsecond
  f.clock.Advance(absl::Minutes(5));
  Processor::OwnedFn only0 = [](int32_t p) { return p == 0; };
  int fired = 0;
  for (int i = 0; i < 10 && fired == 0; ++i) fired += f.Fire(only0, 3).steps_fired;
  CHECK(fired == 1);
}

TEST_CASE(
    "Given an enroll request naming a sequence version not folded yet, when it arrives, "
    "then it waits, and is decided once that version is folded") {
  Fixture f;
  SequenceBuilder seq("c1", "s1");
  std::vector<v1::Envelope> created = seq.Create({ActivityStep("a", 5)}, kT0);
  std::vector<v1::Envelope> switched = seq.AutomatedSending(true, kT0);
  f.FoldSequence(created);

  kafka::Message enroll =
      f.Record("t.enrollment-events", 0, "c1/deal/1", Enroll("c1/deal/1", "s1", 2, kT0));
  BatchOutput waiting;
  CHECK(f.Decide(enroll, waiting) == Processor::InputResult::kDeferred);
  CHECK(waiting.empty());

  f.FoldSequence(switched);
  BatchOutput decided;
  CHECK(f.Decide(enroll, decided) == Processor::InputResult::kDone);
  auto events = f.On(decided, "t.executor-events");
  REQUIRE(events.size() == 1);
  CHECK(events[0].has_enrollment_started());
}

TEST_CASE(
    "Given a record that is not an envelope, when it is decided, then it goes to "
    "dead-letter with reason, topic, partition and offset headers") {
  Fixture f;
  kafka::Message garbage;
  garbage.topic = "t.enrollment-events";
  garbage.partition = 2;
  garbage.offset = 41;
  garbage.key = "c1/deal/1";
  garbage.value = "\xff\xfe not protobuf";
  BatchOutput out;
  CHECK(f.Decide(garbage, out) == Processor::InputResult::kDone);
  REQUIRE(out.records.size() == 1);
  const kafka::Record& r = out.records[0];
  CHECK(r.topic == "t.dead-letter");
  CHECK(r.value == garbage.value);
  CHECK(r.key == "c1/deal/1");
  kafka::Message as_read;
  as_read.headers = r.headers;
  REQUIRE(as_read.FindHeader(kHeaderReason) != nullptr);
  CHECK(as_read.FindHeader(kHeaderReason)->find("undecodable") == 0);
  CHECK(*as_read.FindHeader(kHeaderTopic) == "t.enrollment-events");
  CHECK(*as_read.FindHeader(kHeaderPartition) == "2");
  CHECK(*as_read.FindHeader(kHeaderOffset) == "41");
}

TEST_CASE(
    "Given enroll requests that break the publisher contract (no event_id, no company_id, no "
    "occurred_at, a company_id that is not the item key's company), when they are decided, then "
    "each goes to dead-letter with a contract reason and nothing is enrolled") {
  Fixture f;
  SequenceBuilder seq("c1", "s1");
  f.FoldSequence(seq.Create({ActivityStep("call", 0)}, f.clock.Now()));
  struct Case {
    const char* name;
    std::function<void(v1::Envelope&)> breaks;
    const char* reason;
  };
  const std::vector<Case> cases = {
      {"no event_id", [](v1::Envelope& e) { e.clear_event_id(); }, "contract: event_id"},
      {"no company_id", [](v1::Envelope& e) { e.clear_company_id(); }, "contract: company_id is"},
      {"no occurred_at", [](v1::Envelope& e) { e.clear_occurred_at(); }, "contract: occurred_at"},
      {"other company", [](v1::Envelope& e) { e.set_company_id("c2"); },
       "contract: company_id 'c2' is not the company of item key 'c1/deal/7'"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    v1::Envelope e = Enroll("c1/deal/7", "s1", 1, f.clock.Now());
    c.breaks(e);
    BatchOutput out;
    CHECK(f.Decide(f.Record("t.enrollment-events", 0, "c1/deal/7", e), out) ==
          Processor::InputResult::kDone);
    REQUIRE(out.records.size() == 1);
    CHECK(out.records[0].topic == "t.dead-letter");
    CHECK(out.dead_lettered == 1);
    kafka::Message as_read;
    as_read.headers = out.records[0].headers;
    REQUIRE(as_read.FindHeader(kHeaderReason) != nullptr);
    CHECK(as_read.FindHeader(kHeaderReason)->find(c.reason) == 0);
  }
  // The same request, whole, is enrolled: the cases above failed only on their own break.
  BatchOutput ok;
  f.Decide(
      f.Record("t.enrollment-events", 0, "c1/deal/7", Enroll("c1/deal/7", "s1", 1, f.clock.Now())),
      ok);
  CHECK(f.On(ok, "t.dead-letter").empty());
  CHECK(f.On(ok, "t.executor-events").size() >= 1);
}

TEST_CASE(
    "Given an enroll request whose record key is not its item key, when it is decided, "
    "then it goes to dead-letter and starts nothing") {
  Fixture f;
  SequenceBuilder seq("c1", "s1");
  f.FoldSequence(seq.Create({ActivityStep("a", 5)}, kT0));
  BatchOutput out;
  f.Decide(f.Record("t.enrollment-events", 0, "c1/deal/OTHER", Enroll("c1/deal/1", "s1", 1, kT0)),
           out);
  REQUIRE(out.records.size() == 1);
  CHECK(out.records[0].topic == "t.dead-letter");
  CHECK(out.executor_partitions.empty());
}

TEST_CASE(
    "Given due steps on partitions this instance does not own, when the clock passes "
    "them, then they are not fired") {
  Fixture f;
  SequenceBuilder seq("c1", "s1");
  f.FoldSequence(seq.Create({ActivityStep("a", 1)}, kT0));
  BatchOutput out;
  f.Decide(f.Record("t.enrollment-events", 1, "c1/deal/1", Enroll("c1/deal/1", "s1", 1, kT0)), out);
  f.Decide(f.Record("t.enrollment-events", 2, "c1/deal/2", Enroll("c1/deal/2", "s1", 1, kT0)), out);
  f.clock.Advance(absl::Minutes(2));
  BatchOutput fired = f.Fire([](int32_t p) { return p == 2; });
  auto tasks = f.On(fired, "t.task-events");
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0].task_created().item_key() == "c1/deal/2");
  auto next = f.processor->NextDue(
      DuePosition(), [](int32_t p) { return p == 2; }, 10);
  REQUIRE(next.ok());
  CHECK_FALSE(next->has_value());
}

TEST_CASE(
    "Given more due steps than the per-batch cap, when batches run, then each fires at "
    "most the cap and together they fire every step once") {
  Fixture f;
  SequenceBuilder seq("c1", "s1");
  f.FoldSequence(seq.Create({ActivityStep("a", 1)}, kT0));
  for (int i = 0; i < 25; ++i) {
    BatchOutput out;
    const std::string item = absl::StrCat("c1/deal/", i);
    f.Decide(
        f.Record("t.enrollment-events", 0, item, Enroll(item, "s1", 1, kT0 + absl::Seconds(i))),
        out);
  }
  f.clock.Advance(absl::Minutes(5));
  std::set<std::string> fired;
  int batches = 0;
  for (;; ++batches) {
    BatchOutput out = f.Fire(f.all, 10);
    if (out.empty()) break;
    CHECK(out.steps_fired <= 10);
    for (const v1::Envelope& t : f.On(out, "t.task-events")) {
      CHECK(fired.insert(t.task_created().task_id()).second);
    }
  }
  CHECK(fired.size() == 25);
  CHECK(batches == 3);
}

TEST_CASE(
    "Given a sequence deleted while an item waits, when the step comes due, then the "
    "enrollment is removed and nothing is sent") {
  Fixture f;
  SequenceBuilder seq("c1", "s1");
  f.FoldSequence(seq.Create({EmailStep("e", 1, false)}, kT0));
  BatchOutput out;
  f.Decide(f.Record("t.enrollment-events", 0, "c1/deal/1", Enroll("c1/deal/1", "s1", 1, kT0)), out);
  // Folding the deletion decides it for the owned enrollment at once.
  Overlay overlay(*f.store);
  BatchOutput deleted;
  for (const v1::Envelope& e : seq.Delete(kT0 + absl::Seconds(10))) {
    REQUIRE(f.processor
                ->OnSequenceRecord(f.Record("t.sequence-events", 0, "s1", e), f.all, f.clock.Now(),
                                   overlay, deleted)
                .ok());
  }
  REQUIRE(overlay.Flush().ok());
  auto events = f.On(deleted, "t.executor-events");
  REQUIRE(events.size() == 1);
  CHECK(events[0].enrollment_removed().reason() == v1::REMOVAL_REASON_SEQUENCE_DELETED);
  f.clock.Advance(absl::Minutes(2));
  CHECK(f.Fire(f.all).empty());
}

TEST_CASE(
    "Given the same events, when they are stored through two overlays, then the digests "
    "are equal, and one more event changes it") {
  Fixture a;
  Fixture b;
  SequenceBuilder seq("c1", "s1");
  std::vector<v1::Envelope> created = seq.Create({ActivityStep("a", 1)}, kT0);
  a.FoldSequence(created);
  b.FoldSequence(created);
  BatchOutput oa, ob;
  a.Decide(a.Record("t.enrollment-events", 0, "c1/deal/1", Enroll("c1/deal/1", "s1", 1, kT0)), oa);
  b.Decide(b.Record("t.enrollment-events", 0, "c1/deal/1", Enroll("c1/deal/1", "s1", 1, kT0)), ob);
  auto da = a.store->Digest();
  auto db = b.store->Digest();
  REQUIRE(da.ok());
  REQUIRE(db.ok());
  CHECK(*da == *db);
  a.clock.Advance(absl::Minutes(1));
  CHECK(a.Fire(a.all).steps_fired == 1);
  CHECK(*a.store->Digest() != *db);
}

TEST_CASE(
    "Given an item waiting for an activity reported completed at an instant with nanoseconds, "
    "when the next step fires, then deciding its timer again from the timer id reproduces the "
    "recorded events (what replay --dry_run checks)") {
  Fixture f;
  SequenceBuilder seq("c1", "s1");
  f.FoldSequence(seq.Create({ActivityStep("a", 0, /*wait=*/true), ActivityStep("b", 5)}, kT0));
  f.EnrollNow(0, "c1/deal/1");
  const BatchOutput first = f.Fire(f.all);
  REQUIRE(first.steps_fired == 1);
  const std::string task_id = f.On(first, "t.task-events").at(0).task_created().task_id();

  f.clock.Advance(absl::Hours(1));
  v1::Envelope done = Input("done-1", f.clock.Now());
  v1::ActivityCompleted* a = done.mutable_activity_completed();
  a->set_task_id(task_id);
  a->set_item_key("c1/deal/1");
  a->set_sequence_id("s1");
  // Reported a little late, with the task service's nanoseconds.
  *a->mutable_completed_at() =
      domain::ToProto(f.clock.Now() - absl::Minutes(2) + absl::Nanoseconds(123456789));
  BatchOutput completed;
  f.Decide(f.Record("t.enrollment-events", 0, "c1/deal/1", done), completed);

  f.clock.Advance(absl::Minutes(6));
  domain::EnrollmentState before;
  {
    Overlay overlay(*f.store);
    auto entry = overlay.Get(domain::EnrollmentKey("c1/deal/1", "s1"));
    REQUIRE(entry.ok());
    before = (*entry)->state;
  }
  const BatchOutput fired = f.Fire(f.all);
  REQUIRE(fired.steps_fired == 1);
  const std::vector<v1::Envelope> recorded = f.On(fired, "t.executor-events");
  REQUIRE(!recorded.empty());
  // The timer id names the due time in microseconds; replay decides the timer with that time.
  const std::string& cause = recorded[0].causation_id();
  const size_t at = cause.rfind("/due@");
  REQUIRE(at != std::string::npos);
  int64_t micros = 0;
  REQUIRE(absl::SimpleAtoi(cause.substr(at + 5), &micros));
  auto again = domain::DecideStepDue(before, absl::FromUnixMicros(micros), seq.state(),
                                     domain::FromProto(recorded[0].occurred_at()));
  REQUIRE(again.ok());
  std::vector<std::string> recorded_bytes, decided_bytes;
  for (const v1::Envelope& e : recorded) recorded_bytes.push_back(SerializeDeterministic(e));
  for (const v1::Envelope& e : again->executor_events) {
    decided_bytes.push_back(SerializeDeterministic(e));
  }
  CHECK(decided_bytes == recorded_bytes);
}

}  // namespace
}  // namespace sequences::executor

namespace sequences::executor {
namespace {

using namespace testing;

TEST_CASE(
    "Given executor events the store already holds, when the log is folded again from an "
    "earlier offset or holds them twice, then the state does not change") {
  Fixture f;
  SequenceBuilder seq("c1", "s1");
  f.FoldSequence(seq.Create({ActivityStep("a", 1)}, kT0));
  BatchOutput out;
  f.Decide(f.Record("t.enrollment-events", 0, "c1/deal/1", Enroll("c1/deal/1", "s1", 1, kT0)), out);
  f.clock.Advance(absl::Minutes(1));
  BatchOutput fired = f.Fire(f.all);
  REQUIRE(fired.steps_fired == 1);
  for (const kafka::Record& r : fired.records) out.records.push_back(r);
  auto before = f.store->Digest();
  REQUIRE(before.ok());

  Overlay overlay(*f.store);
  for (int twice = 0; twice < 2; ++twice) {
    for (const kafka::Record& r : out.records) {
      if (r.topic != "t.executor-events") continue;
      v1::Envelope e;
      REQUIRE(e.ParseFromString(r.value));
      REQUIRE(overlay.Apply(e, r.value, r.partition).ok());
    }
  }
  REQUIRE(overlay.Flush().ok());
  CHECK(*f.store->Digest() == *before);
  CHECK(f.Fire(f.all).empty());
}

TEST_CASE(
    "Given an enrollment at a time finer than the index's microseconds, when the clock "
    "reaches the next whole microsecond, then its immediate step fires") {
  Fixture f;
  f.clock.Set(kT0 + absl::Nanoseconds(1500));
  SequenceBuilder seq("c1", "s1");
  f.FoldSequence(seq.Create({ActivityStep("a", 0)}, f.clock.Now()));
  BatchOutput out;
  f.Decide(
      f.Record("t.enrollment-events", 0, "c1/deal/1", Enroll("c1/deal/1", "s1", 1, f.clock.Now())),
      out);
  // Due times are whole microseconds, rounded up (the index and timer ids have that resolution).
  auto next = f.processor->NextDue(DuePosition(), f.all, 10);
  REQUIRE(next.ok());
  CHECK(*next == kT0 + absl::Microseconds(2));
  CHECK(f.Fire(f.all).steps_fired == 0);
  f.clock.Set(kT0 + absl::Microseconds(2));
  CHECK(f.Fire(f.all).steps_fired == 1);
}

}  // namespace
}  // namespace sequences::executor

namespace sequences::executor {
namespace {

using namespace testing;

// c1's sequence s1 (an automatic email at once, another a month later), owner-1's consent, and
// the company's settings: `daily` a day per sender, `gap_seconds` between emails to one person.
// Returns the sequence's builder, for later commands about it.
SequenceBuilder SendingSequence(Fixture& f, int daily, int64_t gap_seconds) {
  f.clock.Set(absl::FromCivil(absl::CivilSecond(2026, 3, 2, 10, 0, 0), absl::UTCTimeZone()));
  const absl::Time t0 = f.clock.Now();
  SequenceBuilder seq("c1", "s1");
  std::vector<v1::Envelope> events =
      seq.Create({EmailStep("mail", 0, true), EmailStep("later", 30 * 24 * 60, true)}, t0);
  for (auto& e : seq.AutomatedSending(true, t0)) events.push_back(e);
  for (auto& e : seq.Consent("owner-1", true, t0)) events.push_back(e);
  v1::Envelope settings = domain::MakeEnvelope("set", "c1", t0, "", "");
  settings.mutable_company_sending_settings_changed()->set_company_id("c1");
  settings.mutable_company_sending_settings_changed()->set_version(1);
  v1::CompanySendingSettings* s =
      settings.mutable_company_sending_settings_changed()->mutable_settings();
  s->set_daily_limit_per_sender(daily);
  s->set_min_gap_between_emails_seconds(gap_seconds);
  events.push_back(settings);
  f.FoldSequence(events);
  return seq;
}

// An automatic email's request to its sender stage, as the step's batch writes it.
v1::Envelope SendRequest(const std::string& id, const std::string& sequence_id, absl::Time due) {
  v1::Envelope e = domain::MakeEnvelope(absl::StrCat(id, "/send"), "c1", due, "", "");
  v1::SendRequested* r = e.mutable_send_requested();
  v1::EmailSend* email = r->mutable_email();
  email->set_idempotency_key(id);
  email->set_sequence_id(sequence_id);
  email->set_step_id("mail");
  email->set_item_key(absl::StrCat("c1/deal/", id));
  email->set_enrollment_id(absl::StrCat("c1/deal/", id, "#", sequence_id, "#1"));
  email->set_sender_user_id("owner-1");
  email->set_mode(v1::EMAIL_MODE_AUTOMATIC);
  email->mutable_recipient()->set_email(absl::StrCat(id, "@example.com"));
  *email->mutable_scheduled_at() = domain::ToProto(due);
  *r->mutable_due_at() = domain::ToProto(due);
  r->set_time_zone("UTC");
  r->mutable_ref()->set_item_key(email->item_key());
  r->mutable_ref()->set_sequence_id(sequence_id);
  r->mutable_ref()->set_enrollment_id(email->enrollment_id());
  return e;
}

TEST_CASE(
    "Given a sender at its daily limit with 3,000 emails waiting, when one more arrives and when "
    "the next day releases one, then each batch holds only the requests it decides on, not the "
    "queue, and releases in fair FIFO order") {
  Fixture f;
  SendingSequence(f, /*daily=*/1, /*gap_seconds=*/0);
  const std::string sender = domain::SenderKey("c1", "owner-1");
  const absl::Time t0 = f.clock.Now();
  // The stage's batch: every request in, then planned once (FlushSenders), as the loop does.
  // `check` looks at the staged sender before the batch is written.
  auto batch = [&](const std::vector<v1::Envelope>& requests,
                   const std::function<void(const Overlay::SenderEntry&)>& check) {
    Overlay overlay(*f.store);
    BatchOutput out;
    for (const v1::Envelope& e : requests) {
      REQUIRE(f.processor
                  ->OnInputRecord(f.Record("t.enrollment-events", 2, sender, e), false,
                                  f.clock.Now(), overlay, out)
                  .ok());
    }
    REQUIRE(f.processor->FlushSenders(f.clock.Now(), overlay, out).ok());
    auto stage = overlay.GetSender(sender);
    REQUIRE(stage.ok());
    check(**stage);
    REQUIRE(overlay.Flush().ok());
    return out;
  };
  std::vector<v1::Envelope> flood;
  for (int i = 0; i < 1500; ++i) {  // two sequences, due a second apart, newest first
    for (const char* seq : {"s1", "s2"}) {
      flood.push_back(
          SendRequest(absl::StrCat(seq, "-", 10000 + i), seq, t0 - absl::Seconds(3000 - 2 * i)));
    }
  }
  BatchOutput first = batch(flood, [](const Overlay::SenderEntry&) {});
  REQUIRE(f.On(first, "t.email-events").size() == 1);
  CHECK(f.On(first, "t.email-events")[0].email_send().idempotency_key() == "s1-10000");

  SECTION("one more arrives: it is looked up, planned with the runs' heads, and deferred") {
    f.clock.Advance(absl::Minutes(1));
    BatchOutput more =
        batch({SendRequest("s1-late", "s1", f.clock.Now())}, [](const Overlay::SenderEntry& e) {
          CHECK(e.waiting() == 3000);
          CHECK(e.state.queue.size() == 1);  // the new one alone
        });
    CHECK(f.On(more, "t.email-events").empty());
    int deferred = 0;
    for (const v1::Envelope& e : f.On(more, "t.enrollment-events")) {
      deferred += e.send_outcome().kind() == v1::SendOutcome::KIND_DEFERRED ? 1 : 0;
    }
    CHECK(deferred == 1);
  }
  SECTION("the next day starts: the sender's due entry releases one, the other sequence's first") {
    f.clock.Set(t0 + absl::Hours(14) + absl::Seconds(1));  // 2026-03-03 00:00:01 UTC
    Overlay overlay(*f.store);
    BatchOutput out;
    REQUIRE(f.processor->FireDue(f.clock.Now(), f.all, 100, &f.scan_from, overlay, out).ok());
    auto stage = overlay.GetSender(sender);
    REQUIRE(stage.ok());
    CHECK((*stage)->waiting() == 2998);
    CHECK((*stage)->state.queue.empty());  // the released one loaded, then gone
    REQUIRE(overlay.Flush().ok());
    REQUIRE(f.On(out, "t.email-events").size() == 1);
    CHECK(f.On(out, "t.email-events")[0].email_send().idempotency_key() == "s2-10000");
  }
}

TEST_CASE(
    "Given a store written before the sender queue was keyed (the queue inside the sender's "
    "value), when the sender is next decided, then its waiting emails move to send_queue and are "
    "released in the same order as before, once each") {
  Fixture f;
  SendingSequence(f, /*daily=*/1, /*gap_seconds=*/0);
  const std::string sender = domain::SenderKey("c1", "owner-1");
  const absl::Time t0 = f.clock.Now();
  const absl::Time next_day = t0 + absl::Hours(14);  // 2026-03-03 00:00 UTC
  // As an executor before the change left it: one sent today, three waiting, due at midnight.
  v1::SenderSnapshot old;
  old.set_sender_key(sender);
  old.set_seq(1);
  (*old.mutable_sent_per_bucket())[absl::ToUnixSeconds(t0) / 900] = 1;
  for (const auto& [id, minutes] :
       std::vector<std::pair<std::string, int>>{{"w-b", 20}, {"w-a", 30}, {"w-c", 10}}) {
    *old.add_queue() = SendRequest(id, "s1", t0 - absl::Minutes(minutes)).send_requested();
  }
  *old.mutable_next_release_at() = domain::ToProto(next_day);
  old.set_partition(2);
  store::WriteBatch batch;
  batch.Put(kSendersCf, sender, old.SerializeAsString());
  batch.Put(kDueCf, store::DueKey(next_day, sender), std::string("\0\0\0\2", 4));
  REQUIRE(f.store->raw().Write(batch).ok());

  {  // a new request: deferred behind them, the old queue moved out of the value
    Overlay overlay(*f.store);
    BatchOutput out;
    REQUIRE(f.processor
                ->OnInputRecord(
                    f.Record("t.enrollment-events", 2, sender, SendRequest("w-new", "s1", t0)),
                    false, t0, overlay, out)
                .ok());
    REQUIRE(f.processor->FlushSenders(t0, overlay, out).ok());
    REQUIRE(overlay.Flush().ok());
    CHECK(f.On(out, "t.email-events").empty());
  }
  auto stored = f.store->raw().Get(kSendersCf, sender);
  REQUIRE(stored.ok());
  REQUIRE(stored->has_value());
  v1::SenderSnapshot now;
  REQUIRE(now.ParseFromString(**stored));
  CHECK(now.queue_size() == 0);
  CHECK(now.seq() == 2);

  std::vector<std::string> sent;
  for (int day = 0; day < 5; ++day) {
    f.clock.Set(next_day + absl::Hours(24 * day) + absl::Seconds(1));
    for (const v1::Envelope& e : f.On(f.Fire(f.all), "t.email-events")) {
      sent.push_back(e.email_send().idempotency_key());
    }
  }
  CHECK(sent == std::vector<std::string>{"w-a", "w-b", "w-c", "w-new"});  // FIFO by due, once
}

// A pause of every enrollment of an owner, as the API writes it: one record per partition.
v1::Envelope PauseOwner(const std::string& company, const std::string& owner, absl::Time now) {
  v1::Envelope e = domain::MakeEnvelope(absl::StrCat("pause-", company, "-", owner), company, now,
                                        "", "corr-pause");
  e.mutable_pause_requested()->mutable_target()->set_owner_id(owner);
  e.mutable_pause_requested()->set_requested_by("someone");
  return e;
}

TEST_CASE(
    "Given two companies' enrollments of the same owner id, when one company pauses that "
    "owner, then only its own enrollments pause") {
  Fixture f;
  SequenceBuilder a("c1", "s1");
  f.FoldSequence(a.Create({ActivityStep("a", 60)}, kT0));
  SequenceBuilder b("c2", "s2");
  f.FoldSequence(b.Create({ActivityStep("a", 60)}, kT0));
  // Each company's deal in its own sequence, both owned by a user id "owner-1".
  BatchOutput out;
  f.Decide(f.Record("t.enrollment-events", 0, "c1/deal/1", Enroll("c1/deal/1", "s1", 1, kT0)), out);
  v1::Envelope other = Enroll("c2/deal/1", "s2", 1, kT0);
  other.set_company_id("c2");
  f.Decide(f.Record("t.enrollment-events", 0, "c2/deal/1", other), out);
  REQUIRE(f.On(out, "t.executor-events").size() >= 2);

  BatchOutput paused;
  f.Decide(f.Record("t.enrollment-events", 0, "c2/user/owner-1", PauseOwner("c2", "owner-1", kT0)),
           paused);
  std::set<std::string> paused_items;
  for (const v1::Envelope& e : f.On(paused, "t.executor-events")) {
    if (e.has_enrollment_paused()) paused_items.insert(e.enrollment_paused().ref().item_key());
  }
  CHECK(paused_items == std::set<std::string>{"c2/deal/1"});

  BatchOutput foreign;
  f.Decide(f.Record("t.enrollment-events", 0, "c3/user/owner-1", PauseOwner("c3", "owner-1", kT0)),
           foreign);
  CHECK(f.On(foreign, "t.executor-events").empty());
}

TEST_CASE(
    "Given an enrollment whose steps fire in later batches (its record rewritten without its index "
    "keys), when its sequence and its owner are looked up and the owner is paused, then it is "
    "found and paused") {
  Fixture f;
  SequenceBuilder a("c1", "s1");
  f.FoldSequence(
      a.Create({ActivityStep("a", 5), ActivityStep("b", 60), ActivityStep("c", 60)}, kT0));
  f.EnrollNow(0, "c1/deal/1");
  f.clock.Advance(absl::Minutes(5));
  REQUIRE(f.Fire(f.all).steps_fired == 1);
  f.clock.Advance(absl::Minutes(60));
  REQUIRE(f.Fire(f.all).steps_fired == 1);
  const std::string key = domain::EnrollmentKey("c1/deal/1", "s1");
  auto by_sequence = f.store->KeysOfSequence("s1");
  REQUIRE(by_sequence.ok());
  CHECK(*by_sequence == std::vector<std::string>{key});
  auto by_owner = f.store->KeysOfOwner("c1", "owner-1");
  REQUIRE(by_owner.ok());
  CHECK(*by_owner == std::vector<std::string>{key});
  BatchOutput paused;
  f.Decide(f.Record("t.enrollment-events", 0, "c1/user/owner-1",
                    PauseOwner("c1", "owner-1", f.clock.Now())),
           paused);
  int pauses = 0;
  for (const v1::Envelope& e : f.On(paused, "t.executor-events"))
    pauses += e.has_enrollment_paused();
  CHECK(pauses == 1);
}

TEST_CASE(
    "Given another company's sequence, when an item is enrolled in it, then the enrollment is "
    "rejected as sequence not found") {
  Fixture f;
  SequenceBuilder a("c1", "s1");
  f.FoldSequence(a.Create({ActivityStep("a", 60)}, kT0));
  v1::Envelope e = Enroll("c2/deal/1", "s1", 1, kT0);
  e.set_company_id("c2");
  BatchOutput out;
  f.Decide(f.Record("t.enrollment-events", 0, "c2/deal/1", e), out);
  auto events = f.On(out, "t.executor-events");
  REQUIRE(events.size() == 1);
  REQUIRE(events[0].has_enrollment_rejected());
  CHECK(events[0].enrollment_rejected().reason() == v1::REJECTION_REASON_SEQUENCE_NOT_FOUND);
}

// The enrollment-updates records of a batch output, decoded, with their keys.
std::vector<std::pair<std::string, v1::EnrollmentUpdate>> Updates(const BatchOutput& out) {
  std::vector<std::pair<std::string, v1::EnrollmentUpdate>> v;
  for (const kafka::Record& r : out.records) {
    if (r.topic != "t.enrollment-updates") continue;
    v1::EnrollmentUpdate u;
    REQUIRE(u.ParseFromString(r.value));
    v.emplace_back(r.key, u);
  }
  return v;
}

TEST_CASE(
    "Given an enrollment that starts, waits for an activity, is paused, resumed and completes, "
    "when the executor decides it, then each status change is in the same batch as its event "
    "as one enrollment update keyed by the enrollment, and nothing else is") {
  Fixture f;
  SequenceBuilder seq("c1", "s1");
  f.FoldSequence(
      seq.Create({ActivityStep("call", 0, /*wait=*/true), ActivityStep("note", 5)}, kT0));
  std::vector<v1::EnrollmentUpdate> all;
  auto take = [&](const BatchOutput& out) {
    for (auto& [key, u] : Updates(out)) {
      CHECK(key == "c1/deal/1#s1");
      CHECK(u.ref().enrollment_id() == "c1/deal/1#s1#1");
      CHECK(u.company_id() == "c1");
      // Reported with the executor event it reports, in the same batch (one transaction).
      bool with_event = false;
      for (const v1::Envelope& e : f.On(out, "t.executor-events")) {
        with_event = with_event || e.event_id() == u.update_id();
      }
      CHECK(with_event);
      all.push_back(u);
    }
  };

  take(f.EnrollNow(0, "c1/deal/1"));
  BatchOutput fired = f.Fire(f.all);  // "call" is due at once: runs, then waits for its task
  REQUIRE(f.On(fired, "t.task-events").size() == 1);
  const std::string task_id = f.On(fired, "t.task-events")[0].task_created().task_id();
  take(fired);

  auto input = [&](const std::string& id, auto fill) {
    v1::Envelope e = Input(id, f.clock.Now());
    fill(&e);
    BatchOutput out;
    f.Decide(f.Record("t.enrollment-events", 0, "c1/deal/1", e), out);
    take(out);
  };
  auto target = [](v1::EnrollmentTarget* t) {
    t->mutable_item_in_sequence()->set_item_key("c1/deal/1");
    t->mutable_item_in_sequence()->set_sequence_id("s1");
  };
  input("pause", [&](v1::Envelope* e) { target(e->mutable_pause_requested()->mutable_target()); });
  input("owner-pause", [&](v1::Envelope* e) {
    e->mutable_pause_requested()->mutable_target()->set_owner_id("owner-1");
  });
  input("resume",
        [&](v1::Envelope* e) { target(e->mutable_resume_requested()->mutable_target()); });
  input("owner-resume", [&](v1::Envelope* e) {
    e->mutable_resume_requested()->mutable_target()->set_owner_id("owner-1");
  });
  input("merge", [&](v1::Envelope* e) {  // merge data: no status change
    e->mutable_merge_data_updated()->set_item_key("c1/deal/1");
    (*e->mutable_merge_data_updated()->mutable_merge_data())["person.first_name"] = "Grace";
  });
  input("done", [&](v1::Envelope* e) {  // StepScheduled for "note": no status change
    e->mutable_activity_completed()->set_task_id(task_id);
    e->mutable_activity_completed()->set_item_key("c1/deal/1");
    e->mutable_activity_completed()->set_sequence_id("s1");
  });
  f.clock.Advance(absl::Minutes(5));
  take(f.Fire(f.all));  // "note" runs, the last step: completed

  std::vector<std::string> got;
  for (const v1::EnrollmentUpdate& u : all) {
    got.push_back(absl::StrCat(v1::EnrollmentUpdateKind_Name(u.kind()), " ",
                               v1::EnrollmentStatus_Name(u.status()), " ", u.step_id(),
                               v1::PauseCause_Name(u.pause_cause()), "/", u.pause_causes_size(),
                               " ", v1::ExitReason_Name(u.exit_reason())));
  }
  CHECK(got == std::vector<std::string>{
                   "ENROLLMENT_UPDATE_KIND_ENROLLED ENROLLMENT_STATUS_IN_PROGRESS "
                   "PAUSE_CAUSE_UNSPECIFIED/0 EXIT_REASON_UNSPECIFIED",
                   "ENROLLMENT_UPDATE_KIND_STEP_REACHED ENROLLMENT_STATUS_IN_PROGRESS "
                   "callPAUSE_CAUSE_UNSPECIFIED/0 EXIT_REASON_UNSPECIFIED",
                   "ENROLLMENT_UPDATE_KIND_PAUSED ENROLLMENT_STATUS_PAUSED "
                   "PAUSE_CAUSE_ENROLLMENT/1 EXIT_REASON_UNSPECIFIED",
                   "ENROLLMENT_UPDATE_KIND_PAUSED ENROLLMENT_STATUS_PAUSED "
                   "PAUSE_CAUSE_OWNER/2 EXIT_REASON_UNSPECIFIED",
                   "ENROLLMENT_UPDATE_KIND_RESUMED ENROLLMENT_STATUS_PAUSED "
                   "PAUSE_CAUSE_ENROLLMENT/1 EXIT_REASON_UNSPECIFIED",
                   "ENROLLMENT_UPDATE_KIND_RESUMED ENROLLMENT_STATUS_IN_PROGRESS "
                   "PAUSE_CAUSE_OWNER/0 EXIT_REASON_UNSPECIFIED",
                   "ENROLLMENT_UPDATE_KIND_STEP_REACHED ENROLLMENT_STATUS_IN_PROGRESS "
                   "notePAUSE_CAUSE_UNSPECIFIED/0 EXIT_REASON_UNSPECIFIED",
                   "ENROLLMENT_UPDATE_KIND_COMPLETED ENROLLMENT_STATUS_COMPLETED "
                   "PAUSE_CAUSE_UNSPECIFIED/0 EXIT_REASON_ALL_STEPS_DONE",
               });
}

TEST_CASE(
    "Given a sender limited to 1 a day, when two automatic emails of the sender come due, then "
    "they go to the sender stage by sender key, the first is sent, the second is deferred (its "
    "enrollment is told why) and is sent at the next day's start, unless its enrollment ends "
    "first") {
  Fixture f;
  // A second step a month later keeps the enrollments running (a reply can end them).
  SequenceBuilder s1 = SendingSequence(f, /*daily=*/1, /*gap_seconds=*/0);
  CHECK(f.processor->LimitsFor("c1").daily == 1);

  BatchOutput e1 = f.EnrollNow(0, "c1/deal/1");
  BatchOutput e2 = f.EnrollNow(1, "c1/deal/2");
  std::vector<kafka::Record> requests;
  for (BatchOutput* out : {&e1, &e2}) {
    BatchOutput fired = *out;
    if (f.On(fired, "t.enrollment-events").empty()) fired = f.Fire(f.all);
    CHECK(f.On(fired, "t.email-events").empty());  // never straight to the mailer
    for (const kafka::Record& r : fired.records) {
      if (r.topic == "t.enrollment-events") requests.push_back(r);
    }
  }
  REQUIRE(requests.size() == 2);
  const std::string sender = domain::SenderKey("c1", "owner-1");
  for (const kafka::Record& r : requests) CHECK(r.key == sender);

  // The sender stage, on the sender key's partition (2).
  BatchOutput first;
  f.Decide(f.Record("t.enrollment-events", 2, requests[0].key,
                    [&] {
                      v1::Envelope e;
                      REQUIRE(e.ParseFromString(requests[0].value));
                      return e;
                    }()),
           first);
  REQUIRE(f.On(first, "t.email-events").size() == 1);
  // The email keeps its step's correlation id (the enroll input's) through the stage.
  CHECK(f.On(first, "t.email-events")[0].correlation_id() == "corr-enroll-c1/deal/1-s1");
  CHECK(f.On(first, "t.enrollment-events").empty());
  REQUIRE(f.On(first, "t.executor-events").size() == 1);
  CHECK(f.On(first, "t.executor-events")[0].has_send_ledger_entry());
  CHECK(first.records.back().partition == 2);

  BatchOutput second;
  v1::Envelope req2;
  REQUIRE(req2.ParseFromString(requests[1].value));
  f.Decide(f.Record("t.enrollment-events", 2, requests[1].key, req2), second);
  CHECK(f.On(second, "t.email-events").empty());
  CHECK(second.emails_deferred == 1);
  std::vector<v1::Envelope> outcome = f.On(second, "t.enrollment-events");
  REQUIRE(outcome.size() == 1);
  const v1::SendOutcome& o = outcome[0].send_outcome();
  CHECK(o.kind() == v1::SendOutcome::KIND_DEFERRED);
  CHECK(o.reason() == "send_limit");
  CHECK(o.detail() == "sender owner-1: 1/day reached");
  const absl::Time tomorrow =
      absl::FromCivil(absl::CivilSecond(2026, 3, 3, 0, 0, 0), absl::UTCTimeZone());
  CHECK(domain::FromProto(o.at()) == tomorrow);
  CHECK(o.ref().item_key() == req2.send_requested().ref().item_key());

  // The enrollment records why its email waits.
  BatchOutput told;
  f.Decide(f.Record("t.enrollment-events", 1, o.ref().item_key(), outcome[0]), told);
  REQUIRE(f.On(told, "t.executor-events").size() == 1);
  CHECK(f.On(told, "t.executor-events")[0].has_email_deferred());

  SECTION("when the next day starts, then the second email goes out") {
    // Nothing before the next day; at its start the second email goes out.
    f.clock.Set(tomorrow - absl::Seconds(1));
    CHECK(f.On(f.Fire(f.all), "t.email-events").empty());
    f.clock.Set(tomorrow);
    BatchOutput released = f.Fire(f.all);
    REQUIRE(f.On(released, "t.email-events").size() == 1);
    CHECK(f.On(released, "t.email-events")[0].email_send().idempotency_key() ==
          req2.send_requested().email().idempotency_key());
    // Released a day later from the sender's queue, still with its step's correlation id.
    CHECK(f.On(released, "t.email-events")[0].correlation_id() == "corr-enroll-c1/deal/2-s1");
    CHECK(released.emails_released == 1);
    REQUIRE(f.On(released, "t.enrollment-events").size() == 1);
    CHECK(f.On(released, "t.enrollment-events")[0].send_outcome().kind() ==
          v1::SendOutcome::KIND_SENT);
    // Released once: the timer does not fire again.
    f.clock.Set(tomorrow + absl::Hours(1));
    CHECK(f.On(f.Fire(f.all), "t.email-events").empty());
  }

  // Automated sending and consent are checked again when a queued email is released, not only
  // when its step fired (PRODUCT.md): one its sequence no longer allows leaves the queue unsent.
  const std::string waiting_id = req2.send_requested().email().idempotency_key();
  auto withheld_at_release = [&](const std::vector<v1::Envelope>& change, const std::string& reason,
                                 const std::string& detail) {
    f.FoldSequence(change);
    f.clock.Set(tomorrow);
    BatchOutput released = f.Fire(f.all);
    CHECK(f.On(released, "t.email-events").empty());
    CHECK(released.emails_released == 0);
    const std::vector<v1::Envelope> ledger = f.On(released, "t.executor-events");
    REQUIRE(ledger.size() == 1);
    const v1::SendLedgerEntry& entry = ledger[0].send_ledger_entry();
    CHECK(entry.released_size() == 0);
    REQUIRE(entry.cancelled_size() == 1);
    CHECK(entry.cancelled(0) == waiting_id);
    CHECK_FALSE(entry.has_next_release_at());  // nothing left to release
    const std::vector<v1::Envelope> answer = f.On(released, "t.enrollment-events");
    REQUIRE(answer.size() == 1);
    const v1::SendOutcome& cancelled = answer[0].send_outcome();
    CHECK(cancelled.kind() == v1::SendOutcome::KIND_CANCELLED);
    CHECK(cancelled.email_id() == waiting_id);
    CHECK(cancelled.reason() == reason);
    CHECK(cancelled.detail() == detail);
    // Its enrollment records why (its history says so), and the stage never sends it later.
    BatchOutput recorded;
    f.Decide(f.Record("t.enrollment-events", 1, cancelled.ref().item_key(), answer[0]), recorded);
    const std::vector<v1::Envelope> events = f.On(recorded, "t.executor-events");
    REQUIRE(events.size() == 1);
    REQUIRE(events[0].has_email_cancelled());
    CHECK(events[0].email_cancelled().reason() == reason);
    CHECK(domain::DescribeExecutorEvent(events[0]) ==
          absl::StrCat("queued email of step mail withheld at sending (", reason, "): ", detail));
    f.clock.Set(tomorrow + absl::Hours(49));
    CHECK(f.On(f.Fire(f.all), "t.email-events").empty());
  };

  SECTION("when its sender revokes consent before the next day, then it is withheld unsent") {
    withheld_at_release(s1.Consent("owner-1", false, f.clock.Now()), "consent_missing",
                        "user owner-1 revoked consent to automated sending for this sequence");
  }

  SECTION("when automated sending is switched off before the next day, then it is withheld") {
    withheld_at_release(s1.AutomatedSending(false, f.clock.Now()), "automated_sending_off",
                        "automated email sending was switched off for the sequence");
  }

  SECTION(
      "when another sequence's waiting email is next in turn and its sender revoked consent "
      "there, then that one is withheld and the day's one email goes to this one") {
    SequenceBuilder s2("c1", "s2");
    std::vector<v1::Envelope> events = s2.Create(
        {EmailStep("mail", 0, true), EmailStep("later", 30 * 24 * 60, true)}, f.clock.Now());
    for (auto& e : s2.AutomatedSending(true, f.clock.Now())) events.push_back(e);
    for (auto& e : s2.Consent("owner-1", true, f.clock.Now())) events.push_back(e);
    f.FoldSequence(events);
    BatchOutput queued;
    f.Decide(f.Record("t.enrollment-events", 2, sender, SendRequest("x3", "s2", f.clock.Now())),
             queued);
    CHECK(queued.emails_deferred == 1);
    // Round robin serves s2 first tomorrow (s1 was served last); s2 no longer may send.
    f.FoldSequence(s2.Consent("owner-1", false, f.clock.Now()));
    f.clock.Set(tomorrow);
    BatchOutput released = f.Fire(f.all);
    const std::vector<v1::Envelope> emails = f.On(released, "t.email-events");
    REQUIRE(emails.size() == 1);
    CHECK(emails[0].email_send().idempotency_key() == waiting_id);
    const std::vector<v1::Envelope> ledger = f.On(released, "t.executor-events");
    REQUIRE(ledger.size() == 1);
    const v1::SendLedgerEntry& entry = ledger[0].send_ledger_entry();
    REQUIRE(entry.cancelled_size() == 1);
    CHECK(entry.cancelled(0) == "x3");
    REQUIRE(entry.released_size() == 1);
    CHECK(entry.released(0) == waiting_id);
  }

  SECTION("when its customer replies first, then the sender stage drops it unsent") {
    v1::Envelope reply = domain::MakeEnvelope("reply-1", "c1", f.clock.Now(), "", "");
    reply.mutable_email_replied()->set_item_key(o.ref().item_key());
    BatchOutput replied;
    f.Decide(f.Record("t.enrollment-events", 1, o.ref().item_key(), reply), replied);
    std::vector<kafka::Record> cancels;
    for (const kafka::Record& r : replied.records) {
      if (r.topic == "t.enrollment-events") cancels.push_back(r);
    }
    REQUIRE(cancels.size() == 1);
    CHECK(cancels[0].key == sender);
    v1::Envelope cancel;
    REQUIRE(cancel.ParseFromString(cancels[0].value));
    CHECK(cancel.send_cancelled().email_id() == req2.send_requested().email().idempotency_key());

    BatchOutput dropped;
    f.Decide(f.Record("t.enrollment-events", 2, cancels[0].key, cancel), dropped);
    CHECK(f.On(dropped, "t.email-events").empty());
    const std::vector<v1::Envelope> ledger = f.On(dropped, "t.executor-events");
    REQUIRE(ledger.size() == 1);
    const v1::SendLedgerEntry& entry = ledger[0].send_ledger_entry();
    REQUIRE(entry.cancelled_size() == 1);
    CHECK(entry.cancelled(0) == cancel.send_cancelled().email_id());
    CHECK_FALSE(entry.has_next_release_at());  // nothing left to release
    std::vector<v1::Envelope> answer = f.On(dropped, "t.enrollment-events");
    REQUIRE(answer.size() == 1);
    CHECK(answer[0].send_outcome().kind() == v1::SendOutcome::KIND_CANCELLED);

    // The enrollment records it; the same cancel again changes nothing.
    BatchOutput recorded;
    f.Decide(f.Record("t.enrollment-events", 1, o.ref().item_key(), answer[0]), recorded);
    REQUIRE(f.On(recorded, "t.executor-events").size() == 1);
    CHECK(f.On(recorded, "t.executor-events")[0].has_email_cancelled());
    BatchOutput again;
    f.Decide(f.Record("t.enrollment-events", 2, cancels[0].key, cancel), again);
    CHECK(again.records.empty());

    f.clock.Set(tomorrow + absl::Hours(1));
    CHECK(f.On(f.Fire(f.all), "t.email-events").empty());
  }
}

}  // namespace
}  // namespace sequences::executor

// ---- the person stage (docs/min-gap.md) ----

namespace sequences::executor {
namespace {

using namespace testing;

// How many of `events` have the payload `kind`.
int CountOf(const std::vector<v1::Envelope>& events, v1::Envelope::PayloadCase kind) {
  int n = 0;
  for (const v1::Envelope& e : events) n += e.payload_case() == kind;
  return n;
}

// Enrollment-events records delivered back to the processor as a consumer would, in an order the
// test controls; everything else collected.
struct Net {
  Fixture& f;
  std::deque<kafka::Record> pending;
  int emails = 0;
  std::vector<v1::Envelope> executor_events;

  void Collect(const BatchOutput& out) {
    for (const kafka::Record& r : out.records) {
      if (r.topic == "t.enrollment-events") pending.push_back(r);
      if (r.topic == "t.email-events") ++emails;
      if (r.topic == "t.executor-events") {
        v1::Envelope e;
        REQUIRE(e.ParseFromString(r.value));
        executor_events.push_back(e);
      }
    }
  }
  // Decides `records` as one batch (the sender and person stages plan once, after all of them).
  void Batch(const std::vector<kafka::Record>& records) {
    Overlay overlay(*f.store);
    BatchOutput out;
    for (const kafka::Record& r : records) {
      v1::Envelope e;
      REQUIRE(e.ParseFromString(r.value));
      REQUIRE(f.processor
                  ->OnInputRecord(f.Record("t.enrollment-events", 0, r.key, e), false,
                                  f.clock.Now(), overlay, out)
                  .ok());
    }
    REQUIRE(f.processor->FlushSenders(f.clock.Now(), overlay, out).ok());
    REQUIRE(overlay.Flush().ok());
    Collect(out);
  }
  // Takes the first pending record that `match` accepts.
  kafka::Record Take(const std::function<bool(const v1::Envelope&, const std::string&)>& match) {
    for (auto it = pending.begin(); it != pending.end(); ++it) {
      v1::Envelope e;
      REQUIRE(e.ParseFromString(it->value));
      if (match(e, it->key)) {
        kafka::Record r = *it;
        pending.erase(it);
        return r;
      }
    }
    FAIL("no such pending record");
    return {};
  }
  void Pump() {
    while (!pending.empty()) {
      kafka::Record r = pending.front();
      pending.pop_front();
      Batch({r});
    }
  }
  int Count(v1::Envelope::PayloadCase kind) const { return CountOf(executor_events, kind); }
};

// The requests a batch wrote to stages (a step's SendRequested), firing the due step if the
// enroll did not run it at once.
std::vector<v1::Envelope> StageRequests(Fixture& f, BatchOutput out) {
  if (f.On(out, "t.enrollment-events").empty()) out = f.Fire(f.all);
  return f.On(out, "t.enrollment-events");
}

TEST_CASE(
    "Given a sender limited to 1 a day in Australia/Lord_Howe and a send window of Saturday "
    "evening and Sunday 02:00-03:00, when the second email is deferred on the Saturday before "
    "the clocks jump from 02:00 to 02:30, then its enrollment is told 02:30 LHDT (15:30Z: the "
    "window's start is skipped, the day's limit is free from midnight) and it goes exactly then") {
  Fixture f;
  const absl::TimeZone lord_howe = domain::LoadZoneOrUtc("Australia/Lord_Howe");
  // Saturday 2026-10-03 21:00 LHST (+10:30); Sunday 02:00 LHST does not exist (02:30 LHDT).
  const absl::Time saturday_9pm =
      absl::FromCivil(absl::CivilSecond(2026, 10, 3, 10, 30, 0), absl::UTCTimeZone());
  const absl::Time jump =
      absl::FromCivil(absl::CivilSecond(2026, 10, 3, 15, 30, 0), absl::UTCTimeZone());
  REQUIRE(lord_howe.At(absl::CivilSecond(2026, 10, 4, 2, 0, 0)).kind ==
          absl::TimeZone::TimeInfo::SKIPPED);
  f.clock.Set(saturday_9pm);
  SequenceBuilder seq("c1", "s1");
  v1::SequenceCommand create;
  create.mutable_create()->set_name("Lord Howe");
  create.mutable_create()->set_owner_id("owner-1");
  create.mutable_create()->set_entity_kind(v1::ENTITY_KIND_DEAL);
  v1::SequenceSettings* settings = create.mutable_create()->mutable_settings();
  settings->set_default_time_zone("Australia/Lord_Howe");
  for (auto [day, from, to] :
       {std::tuple{v1::WEEKDAY_SATURDAY, 20, 24}, std::tuple{v1::WEEKDAY_SUNDAY, 2, 3}}) {
    v1::WindowRange* r = settings->mutable_send_window()->add_ranges();
    r->set_weekday(day);
    r->mutable_start()->set_hours(from);
    r->mutable_end()->set_hours(to);
  }
  *create.mutable_create()->add_steps() = EmailStep("mail", 0, true);
  *create.mutable_create()->add_steps() = EmailStep("later", 30 * 24 * 60, true);
  std::vector<v1::Envelope> events = seq.Run(create, saturday_9pm);
  for (auto& e : seq.AutomatedSending(true, saturday_9pm)) events.push_back(e);
  for (auto& e : seq.Consent("owner-1", true, saturday_9pm)) events.push_back(e);
  v1::Envelope limits = domain::MakeEnvelope("set", "c1", saturday_9pm, "", "");
  limits.mutable_company_sending_settings_changed()->set_company_id("c1");
  limits.mutable_company_sending_settings_changed()->set_version(1);
  limits.mutable_company_sending_settings_changed()->mutable_settings()->set_daily_limit_per_sender(
      1);
  limits.mutable_company_sending_settings_changed()->mutable_settings()->set_time_zone(
      "Australia/Lord_Howe");
  events.push_back(limits);
  f.FoldSequence(events);

  std::vector<v1::Envelope> requests = StageRequests(f, f.EnrollNow(0, "c1/deal/1"));
  for (const v1::Envelope& e : StageRequests(f, f.EnrollNow(1, "c1/deal/2"))) {
    requests.push_back(e);
  }
  REQUIRE(requests.size() == 2);
  const std::string sender = domain::SenderKey("c1", "owner-1");
  BatchOutput first, second;
  f.Decide(f.Record("t.enrollment-events", 2, sender, requests[0]), first);
  REQUIRE(f.On(first, "t.email-events").size() == 1);
  f.Decide(f.Record("t.enrollment-events", 2, sender, requests[1]), second);
  CHECK(f.On(second, "t.email-events").empty());
  const std::vector<v1::Envelope> outcome = f.On(second, "t.enrollment-events");
  REQUIRE(outcome.size() == 1);
  CHECK(outcome[0].send_outcome().reason() == "send_limit");
  CHECK(domain::FromProto(outcome[0].send_outcome().at()) == jump);

  // Not at midnight (the limit is free, the window closed), not a second before the jump.
  for (absl::Time t : {jump - absl::Hours(2), jump - absl::Seconds(1)}) {
    f.clock.Set(t);
    CHECK(f.On(f.Fire(f.all), "t.email-events").empty());
  }
  f.clock.Set(jump);
  const std::vector<v1::Envelope> released = f.On(f.Fire(f.all), "t.email-events");
  REQUIRE(released.size() == 1);
  CHECK(released[0].email_send().idempotency_key() ==
        requests[1].send_requested().email().idempotency_key());
}

TEST_CASE(
    "Given a minimum gap of 1 hour and a sender limit of 2 a day, when two deals of one person "
    "and one of another come due, then one email per person goes out and the other waits at the "
    "person stage: a reply cancels it there, or, once forwarded and held by the send limit, "
    "through the person stage at the sender stage, even in one batch with the request") {
  Fixture f;
  SendingSequence(f, /*daily=*/2, /*gap_seconds=*/3600);

  Net net{f};
  for (const std::string item : {"c1/deal/1", "c1/deal/2", "c1/deal/3"}) {
    v1::Envelope e = Enroll(item, "s1", 1, f.clock.Now());
    if (item == "c1/deal/3") e.mutable_enroll_requested()->mutable_recipient()->set_email("b@x.io");
    BatchOutput out;
    f.Decide(f.Record("t.enrollment-events", 0, item, e), out);
    net.Collect(out);
  }
  net.Collect(f.Fire(f.all));
  const std::string ada = domain::PersonKey("c1", "ada@example.com");
  for (const kafka::Record& r : net.pending) {
    CHECK(domain::IsPersonKey(r.key));  // with a gap, requests go to the person stage first
  }
  net.Pump();
  CHECK(net.emails == 2);  // deal 1 (ada) and deal 3 (b@x.io): the sender's 2 for the day
  REQUIRE(net.Count(v1::Envelope::kEmailDeferred) == 1);
  const v1::EmailDeferred waiting = [&] {
    for (const v1::Envelope& e : net.executor_events) {
      if (e.has_email_deferred()) return e.email_deferred();
    }
    return v1::EmailDeferred();
  }();
  CHECK(waiting.ref().item_key() == "c1/deal/2");
  CHECK(waiting.reason() == "min_gap");
  CHECK(waiting.person_key() == ada);
  auto reply = [&] {
    v1::Envelope r = domain::MakeEnvelope("reply-2", "c1", f.clock.Now(), "", "");
    r.mutable_email_replied()->set_item_key("c1/deal/2");
    BatchOutput out;
    f.Decide(f.Record("t.enrollment-events", 0, "c1/deal/2", r), out);
    net.Collect(out);
  };
  auto person_state = [&] {
    Overlay overlay(*f.store);
    auto p = overlay.GetSender(ada);
    REQUIRE(p.ok());
    return (*p)->state;
  };

  SECTION("when the person replies while the email waits at the person stage") {
    reply();
    REQUIRE(net.pending.size() == 1);
    CHECK(net.pending.front().key == ada);  // the cancel goes where the email waits
    net.Pump();
    CHECK(net.Count(v1::Envelope::kEmailCancelled) == 1);
    f.clock.Advance(absl::Hours(2));
    net.Collect(f.Fire(f.all));
    net.Pump();
    CHECK(net.emails == 2);
    CHECK(person_state().queue.empty());
  }

  SECTION("when the person replies after the person stage forwarded it to its full sender") {
    f.clock.Advance(absl::Hours(1) + absl::Seconds(1));
    net.Collect(f.Fire(f.all));  // the person stage looks again: forwards deal 2's email
    REQUIRE(net.pending.size() == 1);
    const kafka::Record forwarded = net.pending.front();
    net.pending.clear();  // not delivered yet
    CHECK(forwarded.key == domain::SenderKey("c1", "owner-1"));
    CHECK(person_state().in_flight == waiting.email_id());
    reply();  // the enrollment still thinks it waits at the person stage
    net.Batch({net.Take([&](const v1::Envelope&, const std::string& key) { return key == ada; })});
    // The person stage passes the cancel on to the sender stage; both reach it in one batch.
    const kafka::Record cancel =
        net.Take([](const v1::Envelope& e, const std::string&) { return e.has_send_cancelled(); });
    CHECK(cancel.key == domain::SenderKey("c1", "owner-1"));
    net.Batch({forwarded, cancel});
    net.Pump();
    CHECK(net.Count(v1::Envelope::kEmailCancelled) == 1);
    CHECK(person_state().in_flight.empty());
    f.clock.Advance(absl::Hours(24));
    net.Collect(f.Fire(f.all));
    net.Pump();
    CHECK(net.emails == 2);  // never sent
  }
}

TEST_CASE(
    "Given a gap of 2 days, one email to ada sent and two more waiting at her person stage, when "
    "the company sets the gap to 0, then reading the change hands both to the sender stage at "
    "once, in due order, and they are sent, a reply to one handed on cancels it at the sender, a "
    "new email skips the stage") {
  Fixture f;
  SendingSequence(f, /*daily=*/200, /*gap_seconds=*/2 * 86400);
  auto gap = [&](int64_t version, int64_t seconds) {
    v1::Envelope e =
        domain::MakeEnvelope(absl::StrCat("gap-", version), "c1", f.clock.Now(), "", "");
    e.mutable_company_sending_settings_changed()->set_company_id("c1");
    e.mutable_company_sending_settings_changed()->set_version(version);
    e.mutable_company_sending_settings_changed()
        ->mutable_settings()
        ->set_min_gap_between_emails_seconds(seconds);
    return e;
  };

  Net net{f};
  const std::string ada = domain::PersonKey("c1", "ada@example.com");
  auto enroll = [&](const std::string& item) {
    BatchOutput out;
    f.Decide(f.Record("t.enrollment-events", 0, item, Enroll(item, "s1", 1, f.clock.Now())), out);
    net.Collect(out);
    net.Collect(f.Fire(f.all));
  };
  enroll("c1/deal/1");
  net.Pump();
  REQUIRE(net.emails == 1);
  f.clock.Advance(absl::Minutes(1));
  enroll("c1/deal/3");
  f.clock.Advance(absl::Minutes(1));
  enroll("c1/deal/2");
  net.Pump();
  REQUIRE(net.emails == 1);
  REQUIRE(net.Count(v1::Envelope::kEmailDeferred) == 2);
  for (const v1::Envelope& e : net.executor_events) {
    if (!e.has_email_deferred()) continue;
    CHECK(e.email_deferred().reason() == "min_gap");
    CHECK(absl::StartsWith(e.email_deferred().detail(), "last email to ada@example.com sent "));
    CHECK(absl::StrContains(e.email_deferred().detail(), "Z, gap 2d"));
  }
  auto person_state = [&] {
    Overlay overlay(*f.store);
    auto p = overlay.GetSender(ada);
    REQUIRE(p.ok());
    return (*p)->state;
  };
  CHECK(person_state().queue.size() == 2);

  f.clock.Advance(absl::Minutes(1));  // nowhere near the old gap
  {
    Overlay overlay(*f.store);
    BatchOutput out;
    const v1::Envelope off = gap(2, 0);
    REQUIRE(f.processor
                ->OnSequenceRecord(f.Record("t.sequence-events", 0, "company:c1", off), f.all,
                                   f.clock.Now(), overlay, out)
                .ok());
    REQUIRE(overlay.Flush().ok());
    net.Collect(out);
  }
  // Both handed on, in due order (deal 3 came due first), to the sender, not in flight.
  REQUIRE(net.pending.size() == 2);
  std::vector<std::string> handed;
  for (const kafka::Record& r : net.pending) {
    CHECK(r.key == domain::SenderKey("c1", "owner-1"));
    v1::Envelope e;
    REQUIRE(e.ParseFromString(r.value));
    REQUIRE(e.has_send_requested());
    CHECK(e.send_requested().waited());
    CHECK_FALSE(e.send_requested().gap_cleared());
    handed.push_back(e.send_requested().email().item_key());
  }
  CHECK(handed == std::vector<std::string>{"c1/deal/3", "c1/deal/2"});
  CHECK(person_state().queue.empty());
  CHECK(person_state().in_flight.empty());

  SECTION("when they reach the sender") {
    net.Pump();
    CHECK(net.emails == 3);
    CHECK(net.Count(v1::Envelope::kEmailReleased) == 2);
    enroll("c1/deal/4");
    REQUIRE(net.pending.size() == 1);
    CHECK(net.pending.front().key == domain::SenderKey("c1", "owner-1"));  // no person stage
    net.Pump();
    CHECK(net.emails == 4);
  }

  SECTION("when deal 2's person replies before its email reaches the sender") {
    v1::Envelope r = domain::MakeEnvelope("reply-2", "c1", f.clock.Now(), "", "");
    r.mutable_email_replied()->set_item_key("c1/deal/2");
    BatchOutput out;
    f.Decide(f.Record("t.enrollment-events", 0, "c1/deal/2", r), out);
    net.Collect(out);
    // The enrollment last heard of its email from the person stage: the cancel goes there, and on
    // to the sender, which gets it with the handed-on request.
    auto cancel = [](const v1::Envelope& e, const std::string&) { return e.has_send_cancelled(); };
    const kafka::Record to_person = net.Take(cancel);
    CHECK(to_person.key == ada);
    net.Batch({to_person});
    const kafka::Record to_sender = net.Take(cancel);
    CHECK(to_sender.key == domain::SenderKey("c1", "owner-1"));
    const kafka::Record request = net.Take([](const v1::Envelope& e, const std::string&) {
      return e.has_send_requested() && e.send_requested().email().item_key() == "c1/deal/2";
    });
    net.Batch({request, to_sender});
    net.Pump();
    CHECK(net.emails == 2);  // deal 3's only
    CHECK(net.Count(v1::Envelope::kEmailCancelled) == 1);
    CHECK(net.Count(v1::Envelope::kEmailReleased) == 1);
  }
}

}  // namespace
}  // namespace sequences::executor

// ---- deciding in the writer's batch (docs/send-limits.md) ----

namespace sequences::executor {
namespace {

using namespace testing;

// Enrolls `items` (deal 3, if any, to another person), each in its batch, then fires what is due
// in one more batch (a step due at once may already run in its enroll batch): every batch's
// output, FlushSenders run after its inputs as the executor does.
std::vector<BatchOutput> EnrollAndFire(Fixture& f, const std::vector<std::string>& items) {
  std::vector<BatchOutput> batches;
  for (const std::string& item : items) {
    v1::Envelope e = Enroll(item, "s1", 1, f.clock.Now());
    if (item == "c1/deal/3") e.mutable_enroll_requested()->mutable_recipient()->set_email("b@x.io");
    batches.emplace_back();
    f.Decide(f.Record("t.enrollment-events", 0, item, e), batches.back());
  }
  Overlay overlay(*f.store);
  batches.emplace_back();
  BatchOutput& out = batches.back();
  REQUIRE(f.processor->FireDue(f.clock.Now(), f.all, 100, &f.scan_from, overlay, out).ok());
  REQUIRE(f.processor->FlushSenders(f.clock.Now(), overlay, out).ok());
  REQUIRE(overlay.Flush().ok());
  return batches;
}

// Every record of `batches` on `topic`, decoded.
std::vector<v1::Envelope> AllOn(Fixture& f, const std::vector<BatchOutput>& batches,
                                const std::string& topic) {
  std::vector<v1::Envelope> all;
  for (const BatchOutput& b : batches) {
    for (v1::Envelope& e : f.On(b, topic)) all.push_back(std::move(e));
  }
  return all;
}

// Each email sent by `batches` is in the batch (one transaction) of its step's StepExecuted.
void CheckSentWithTheirStep(Fixture& f, const std::vector<BatchOutput>& batches) {
  for (const BatchOutput& b : batches) {
    std::set<std::string> steps;
    for (const v1::Envelope& e : f.On(b, "t.executor-events")) {
      if (e.has_step_executed()) steps.insert(e.step_executed().effect_id());
    }
    for (const v1::Envelope& e : f.On(b, "t.email-events")) {
      INFO(e.email_send().idempotency_key());
      CHECK(steps.count(e.email_send().idempotency_key()) == 1);
    }
  }
}

TEST_CASE(
    "Given an instance that owns the sender key's partition, when automatic emails of the sender "
    "come due, then the stage decides them in the batch that runs their steps (one transaction): "
    "the first within the limit is sent, the second deferred, no request record is written (the "
    "ledger keeps them), and a marked one an earlier version wrote is skipped when consumed") {
  Fixture f;
  SendingSequence(f, /*daily=*/1, /*gap_seconds=*/0);
  const std::string sender = domain::SenderKey("c1", "owner-1");
  std::vector<std::string> asked;
  f.processor->SetLocalStage([&](const std::string& key) -> std::optional<int32_t> {
    asked.push_back(key);
    return 4;
  });

  const std::vector<BatchOutput> batches = EnrollAndFire(f, {"c1/deal/1", "c1/deal/2"});
  CHECK(CountOf(AllOn(f, batches, "t.executor-events"), v1::Envelope::kStepExecuted) == 2);
  REQUIRE(AllOn(f, batches, "t.email-events").size() == 1);
  CheckSentWithTheirStep(f, batches);
  int deferred = 0;
  std::vector<kafka::Record> requests;
  int queued = 0;
  for (const BatchOutput& b : batches) {
    deferred += b.emails_deferred;
    for (const kafka::Record& r : b.records) {
      if (r.topic == "t.enrollment-updates") continue;  // EnrollmentUpdate, not an Envelope
      v1::Envelope e;
      REQUIRE(e.ParseFromString(r.value));
      if (r.topic == "t.executor-events" && e.has_send_ledger_entry()) {
        CHECK(r.partition == 4);  // the ledger on the stage key's partition
        for (const v1::SendRequested& q : e.send_ledger_entry().queued()) {
          ++queued;
          CHECK_FALSE(q.decided());  // the ledger keeps the request without the record's mark
        }
      }
      if (r.topic == "t.enrollment-events" && e.has_send_requested()) requests.push_back(r);
    }
  }
  CHECK(deferred == 1);
  CHECK(queued == 2);
  CHECK(asked == std::vector<std::string>{sender, sender});
  CHECK(requests.empty());

  // A marked record as an executor before this change wrote it, consumed here (or by another
  // instance after a rebalance): nothing decided again.
  for (const v1::Envelope& entry : AllOn(f, batches, "t.executor-events")) {
    for (const v1::SendRequested& q : entry.send_ledger_entry().queued()) {
      v1::Envelope e = domain::MakeEnvelope(absl::StrCat(q.email().idempotency_key(), "/send"),
                                            "c1", f.clock.Now(), "", "");
      *e.mutable_send_requested() = q;
      e.mutable_send_requested()->set_decided(true);
      BatchOutput again;
      CHECK(f.Decide(f.Record("t.enrollment-events", 4, sender, e), again) ==
            Processor::InputResult::kDone);
      CHECK(again.records.empty());
    }
  }
  // The deferred one goes out when the next day starts, once.
  f.clock.Set(absl::FromCivil(absl::CivilSecond(2026, 3, 3, 0, 0, 0), absl::UTCTimeZone()));
  CHECK(f.On(f.Fire(f.all), "t.email-events").size() == 1);
  f.clock.Advance(absl::Hours(1));
  CHECK(f.On(f.Fire(f.all), "t.email-events").empty());
}

TEST_CASE(
    "Given an instance that owns no stage's partition, when an automatic email comes due, then "
    "its request goes through enrollment-events unmarked, as before") {
  Fixture f;
  SendingSequence(f, /*daily=*/1, /*gap_seconds=*/0);
  f.processor->SetLocalStage([](const std::string&) { return std::nullopt; });
  const std::vector<BatchOutput> batches = EnrollAndFire(f, {"c1/deal/1"});
  CHECK(AllOn(f, batches, "t.email-events").empty());
  CHECK(CountOf(AllOn(f, batches, "t.executor-events"), v1::Envelope::kSendLedgerEntry) == 0);
  const std::vector<v1::Envelope> requests = AllOn(f, batches, "t.enrollment-events");
  REQUIRE(requests.size() == 1);
  CHECK_FALSE(requests[0].send_requested().decided());
  for (const BatchOutput& b : batches) {
    for (const kafka::Record& r : b.records) {
      if (r.topic == "t.enrollment-events") CHECK(r.partition == -1);
    }
  }
}

TEST_CASE(
    "Given a minimum gap of 1 hour and an instance that owns every stage's partition, when two "
    "deals of one person and one of another come due, then the person stages forward, the sender "
    "sends one email per person and its notices settle the person stages, all in the batch of "
    "the email's step, and the other email waits for the gap, then goes out an hour later") {
  Fixture f;
  SendingSequence(f, /*daily=*/100, /*gap_seconds=*/3600);
  f.processor->SetLocalStage([](const std::string&) { return 0; });
  const std::string ada = domain::PersonKey("c1", "ada@example.com");

  const std::vector<BatchOutput> batches =
      EnrollAndFire(f, {"c1/deal/1", "c1/deal/2", "c1/deal/3"});
  CHECK(AllOn(f, batches, "t.email-events").size() == 2);  // deal 1 (ada), deal 3 (b@x.io)
  CheckSentWithTheirStep(f, batches);
  int deferred_min_gap = 0;
  for (const BatchOutput& b : batches) deferred_min_gap += b.emails_deferred_min_gap;
  CHECK(deferred_min_gap == 1);
  // Ada's person stage: one email forwarded, then settled by the notice of its send; no other.
  std::vector<std::string> forwarded;
  std::vector<std::string> settled;
  for (const v1::Envelope& e : AllOn(f, batches, "t.executor-events")) {
    if (!e.has_send_ledger_entry() || e.send_ledger_entry().sender_key() != ada) continue;
    if (!e.send_ledger_entry().forwarded().empty()) {
      forwarded.push_back(e.send_ledger_entry().forwarded());
    }
    if (!e.send_ledger_entry().settled().empty())
      settled.push_back(e.send_ledger_entry().settled());
  }
  REQUIRE(forwarded.size() == 1);
  CHECK(settled == forwarded);
  {
    Overlay overlay(*f.store);
    auto p = overlay.GetSender(ada);
    REQUIRE(p.ok());
    CHECK((*p)->state.in_flight.empty());
    CHECK((*p)->state.last_sent == f.clock.Now());
    CHECK((*p)->state.queue.size() == 1);
  }
  // Every hop was decided in the batch: no stage record goes through enrollment-events (3
  // requests, 2 forwards, 2 notices, all kept by their stages' ledger entries instead).
  int stage_records = 0;
  int ledger_entries = 0;
  for (const BatchOutput& b : batches) {
    for (const kafka::Record& r : b.records) {
      if (r.topic == "t.enrollment-events" &&
          (domain::IsPersonKey(r.key) || domain::IsSenderKey(r.key))) {
        ++stage_records;
      }
    }
  }
  for (const v1::Envelope& e : AllOn(f, batches, "t.executor-events")) {
    ledger_entries += e.has_send_ledger_entry() ? 1 : 0;
  }
  CHECK(stage_records == 0);
  CHECK(ledger_entries > 0);

  // An hour later ada's person stage looks again: forwards, the sender sends, in one batch.
  f.clock.Advance(absl::Hours(1) + absl::Seconds(1));
  Overlay overlay(*f.store);
  BatchOutput later;
  REQUIRE(f.processor->FireDue(f.clock.Now(), f.all, 100, &f.scan_from, overlay, later).ok());
  REQUIRE(f.processor->FlushSenders(f.clock.Now(), overlay, later).ok());
  REQUIRE(overlay.Flush().ok());
  CHECK(f.On(later, "t.email-events").size() == 1);
}

}  // namespace
}  // namespace sequences::executor
