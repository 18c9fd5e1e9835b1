// The staging area's partial flush (Overlay::FlushSome), which replay's folders use to write their
// least recently used keys while the others stay staged.
#include "services/step-executor/state.h"

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "libs/domain/envelope.h"
#include "libs/domain/routing.h"
#include "tests/support/process.h"

namespace sequences::executor {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

// An EnrollmentStarted of `item` in sequence s1 whose first step is due at `due`.
v1::Envelope Started(const std::string& item, absl::Time due) {
  v1::Envelope e = domain::MakeEnvelope(absl::StrCat("started-", item), "c1", kT0, "", "corr");
  v1::EnrollmentStarted* p = e.mutable_enrollment_started();
  p->mutable_ref()->set_enrollment_id(absl::StrCat(item, "#s1#1"));
  p->mutable_ref()->set_item_key(item);
  p->mutable_ref()->set_sequence_id("s1");
  p->set_owner_id("owner-1");
  *p->mutable_started_at() = domain::ToProto(kT0);
  p->set_first_step_id("a");
  *p->mutable_first_due_at() = domain::ToProto(due);
  return e;
}

std::vector<std::string> DueKeys(StateStore& store) {
  std::vector<std::string> keys;
  REQUIRE(store
              .ScanDue(DuePosition(), kT0 + absl::Hours(24), 100,
                       [&](const DueEntry& d) {
                         keys.push_back(d.enrollment_key);
                         return true;
                       })
              .ok());
  return keys;
}

TEST_CASE(
    "Given two staged enrollments, when the overlay writes only the one selected, then it is "
    "stored with its due entry and index keys, and the other stays staged and unwritten until "
    "the next flush") {
  auto store = StateStore::Open(sequences::testing::TempDir("executor-state"));
  REQUIRE(store.ok());
  Overlay overlay(**store);
  const v1::Envelope a = Started("c1/deal/1", kT0 + absl::Hours(1));
  const v1::Envelope b = Started("c1/deal/2", kT0 + absl::Hours(2));
  const std::string key_a = *EnrollmentKeyOfEvent(a);
  const std::string key_b = *EnrollmentKeyOfEvent(b);
  auto staged_a = overlay.ApplyToKey(key_a, a, SerializeDeterministic(a), 3);
  REQUIRE(staged_a.ok());
  (*staged_a)->last_used = 1;
  auto staged_b = overlay.ApplyToKey(key_b, b, SerializeDeterministic(b), 3);
  REQUIRE(staged_b.ok());
  (*staged_b)->last_used = 2;

  REQUIRE(
      overlay
          .FlushSome([](const std::string&, const Overlay::Entry& e) { return e.last_used == 1; })
          .ok());

  auto stored_a = (*store)->LoadEnrollment(key_a);
  REQUIRE(stored_a.ok());
  REQUIRE(stored_a->has_value());
  CHECK((*stored_a)->events == std::vector<std::string>{SerializeDeterministic(a)});
  CHECK((*store)->KeysOfSequence("s1").value() == std::vector<std::string>{key_a});
  CHECK(DueKeys(**store) == std::vector<std::string>{key_a});
  auto stored_b = (*store)->LoadEnrollment(key_b);
  REQUIRE(stored_b.ok());
  CHECK(!stored_b->has_value());
  REQUIRE(overlay.entries().size() == 1);
  CHECK(overlay.entries().begin()->first == key_b);
  CHECK(overlay.entries().begin()->second.dirty);

  REQUIRE(overlay.Flush().ok());
  CHECK(overlay.empty());
  CHECK((*store)->KeysOfSequence("s1").value() == std::vector<std::string>{key_a, key_b});
  CHECK(DueKeys(**store) == std::vector<std::string>{key_a, key_b});
}

}  // namespace
}  // namespace sequences::executor
