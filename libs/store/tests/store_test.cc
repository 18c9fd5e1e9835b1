#include "libs/store/store.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/support/process.h"

namespace sequences::store {
namespace {

std::unique_ptr<Store> OpenFresh(const std::string& dir) {
  auto store = Store::Open({.path = dir, .column_families = {"state", "due", "offsets"}});
  REQUIRE(store.ok());
  return std::move(*store);
}

TEST_CASE("a write batch applies all of its operations, and they survive reopening") {
  std::string dir = sequences::testing::TempDir("store");
  {
    auto store = OpenFresh(dir);
    WriteBatch batch;
    batch.Put("state", "a", "1");
    batch.Put("offsets", "p0", "42");
    batch.Put("state", "b", "2");
    batch.Delete("state", "b");
    REQUIRE(store->Write(batch).ok());
  }
  auto store = OpenFresh(dir);
  CHECK(*store->Get("state", "a") == std::optional<std::string>("1"));
  CHECK(*store->Get("offsets", "p0") == std::optional<std::string>("42"));
  CHECK(*store->Get("state", "b") == std::nullopt);
}

TEST_CASE(
    "given data written and read back after reopening, then stats show its size and the "
    "block cache lookups of the read") {
  std::string dir = sequences::testing::TempDir("store");
  {
    auto store = OpenFresh(dir);
    StoreStats empty = store->Stats();
    CHECK(empty.block_cache_hit_ratio == 1);  // nothing looked up, nothing missed
    WriteBatch batch;
    for (int i = 0; i < 1000; ++i)
      batch.Put("state", "key-" + std::to_string(i), std::string(100, 'x'));
    REQUIRE(store->Write(batch).ok());
    CHECK(store->Stats().size_bytes > 0);
  }
  auto store = OpenFresh(dir);   // the log is replayed into memtables (not flushed by Open)
  REQUIRE(store->Flush().ok());  // into table files, read through the block cache
  CHECK(*store->Get("state", "key-7") == std::optional<std::string>(std::string(100, 'x')));
  StoreStats stats = store->Stats();
  CHECK(stats.size_bytes > 0);
  CHECK(stats.block_cache_hits + stats.block_cache_misses > 0);
  CHECK(stats.block_cache_hit_ratio >= 0);
  CHECK(stats.block_cache_hit_ratio <= 1);
}

TEST_CASE("a batch naming an unknown column family writes nothing") {
  auto store = OpenFresh(sequences::testing::TempDir("store"));
  WriteBatch batch;
  batch.Put("state", "a", "1");
  batch.Put("nope", "x", "y");
  CHECK(store->Write(batch).code() == absl::StatusCode::kNotFound);
  CHECK(*store->Get("state", "a") == std::nullopt);
}

TEST_CASE("a second open of the same directory is refused while the first holds it") {
  std::string dir = sequences::testing::TempDir("store");
  auto first = OpenFresh(dir);
  auto second = Store::Open({.path = dir, .column_families = {"state"}});
  CHECK_FALSE(second.ok());
}

TEST_CASE("scans visit keys in byte order within bounds, and prefix scans stay in the prefix") {
  auto store = OpenFresh(sequences::testing::TempDir("store"));
  WriteBatch batch;
  for (const char* k : {"c1/deal/1#s1", "c1/deal/1#s2", "c1/deal/10#s1", "c1/deal/2#s1"}) {
    batch.Put("state", k, "v");
  }
  REQUIRE(store->Write(batch).ok());
  std::vector<std::string> seen;
  REQUIRE(store
              ->ScanPrefix("state", "c1/deal/1#",
                           [&](absl::string_view k, absl::string_view) {
                             seen.emplace_back(k);
                             return true;
                           })
              .ok());
  CHECK(seen == std::vector<std::string>{"c1/deal/1#s1", "c1/deal/1#s2"});

  seen.clear();
  REQUIRE(store
              ->Scan("state", "c1/deal/1#s2", "c1/deal/2",
                     [&](absl::string_view k, absl::string_view) {
                       seen.emplace_back(k);
                       return true;
                     })
              .ok());
  CHECK(seen == std::vector<std::string>{"c1/deal/1#s2", "c1/deal/10#s1"});
}

TEST_CASE("due keys sort by due time first, whatever the enrollment key") {
  absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  auto store = OpenFresh(sequences::testing::TempDir("store"));
  WriteBatch batch;
  batch.Put("due", DueKey(t0 + absl::Seconds(2), "a"), "");
  batch.Put("due", DueKey(t0 + absl::Milliseconds(1), "z"), "");
  batch.Put("due", DueKey(t0 + absl::Hours(24 * 400), "b"), "");
  batch.Put("due", DueKey(t0, "m"), "");
  REQUIRE(store->Write(batch).ok());

  std::vector<std::string> order;
  // Everything due at or before t0 + 2s.
  REQUIRE(store
              ->Scan("due", DueKeyBound(absl::UnixEpoch()),
                     DueKeyBound(t0 + absl::Seconds(2) + absl::Microseconds(1)),
                     [&](absl::string_view k, absl::string_view) {
                       absl::Time due;
                       std::string suffix;
                       REQUIRE(ParseDueKey(k, &due, &suffix));
                       order.push_back(suffix);
                       return true;
                     })
              .ok());
  CHECK(order == std::vector<std::string>{"m", "z", "a"});
}

TEST_CASE("due key round trip keeps microseconds and the suffix") {
  absl::Time t = absl::FromUnixMicros(1'800'000'000'123'456);
  absl::Time due;
  std::string suffix;
  REQUIRE(ParseDueKey(DueKey(t, "c1/lead/9#s"), &due, &suffix));
  CHECK(due == t);
  CHECK(suffix == "c1/lead/9#s");
  CHECK_FALSE(ParseDueKey("short", &due, &suffix));
}

TEST_CASE(
    "Given a snapshot, when batches are written after it, then reads through it see neither the "
    "new keys nor the new values nor the deletions, and reads without it see them all") {
  auto store = OpenFresh(sequences::testing::TempDir("store"));
  WriteBatch before;
  before.Put("state", "k#1", "old-1");
  before.Put("state", "k#2", "old-2");
  before.Put("offsets", "view", "old-view");
  REQUIRE(store->Write(before).ok());

  std::unique_ptr<Snapshot> snap = store->NewSnapshot();
  WriteBatch after;
  after.Put("state", "k#1", "new-1");
  after.Delete("state", "k#2");
  after.Put("state", "k#3", "new-3");
  after.Put("offsets", "view", "new-view");
  REQUIRE(store->Write(after).ok());

  auto scan = [&](const Snapshot* at) {
    std::vector<std::string> seen;
    REQUIRE(store
                ->ScanPrefix(
                    "state", "k#",
                    [&](absl::string_view k, absl::string_view v) {
                      seen.push_back(absl::StrCat(k, "=", v));
                      return true;
                    },
                    at)
                .ok());
    return seen;
  };
  CHECK(*store->Get("offsets", "view", snap.get()) == std::optional<std::string>("old-view"));
  CHECK(scan(snap.get()) == std::vector<std::string>{"k#1=old-1", "k#2=old-2"});
  CHECK(*store->Get("offsets", "view") == std::optional<std::string>("new-view"));
  CHECK(scan(nullptr) == std::vector<std::string>{"k#1=new-1", "k#3=new-3"});

  // A snapshot taken now sees the second batch whole.
  std::unique_ptr<Snapshot> later = store->NewSnapshot();
  CHECK(scan(later.get()) == scan(nullptr));
  CHECK(*store->Get("state", "k#2", later.get()) == std::nullopt);
}

TEST_CASE(
    "Given keys present, absent and deleted, when read with one MultiGet (latest or through a "
    "snapshot), then each value is what a Get of that key reads, in the order asked") {
  auto store = OpenFresh(sequences::testing::TempDir("store"));
  WriteBatch before;
  before.Put("state", "a", "1");
  before.Put("state", "b", "2");
  before.Put("state", "c", "3");
  before.Delete("state", "c");
  REQUIRE(store->Write(before).ok());
  std::unique_ptr<Snapshot> snap = store->NewSnapshot();
  WriteBatch after;
  after.Put("state", "a", "1-new");
  after.Delete("state", "b");
  after.Put("state", "d", "4");
  REQUIRE(store->Write(after).ok());

  const std::vector<std::string> keys = {"d", "a", "missing", "b", "c", "a"};
  for (const Snapshot* at :
       {static_cast<const Snapshot*>(nullptr), static_cast<const Snapshot*>(snap.get())}) {
    absl::StatusOr<std::vector<std::optional<std::string>>> got =
        store->MultiGet("state", keys, at);
    REQUIRE(got.ok());
    REQUIRE(got->size() == keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      INFO(keys[i] << (at == nullptr ? " latest" : " snapshot"));
      CHECK((*got)[i] == *store->Get("state", keys[i], at));
    }
  }
  CHECK((*store->MultiGet("state", keys, snap.get()))[0] == std::nullopt);
  CHECK((*store->MultiGet("state", keys))[0] == std::optional<std::string>("4"));
  CHECK(store->MultiGet("state", {}).ok());
  CHECK(absl::IsNotFound(store->MultiGet("nope", keys).status()));
}

// Every "key=value" of `column_family`, in key order.
std::vector<std::string> ScanAll(Store& store, absl::string_view column_family) {
  std::vector<std::string> seen;
  REQUIRE(store
              .Scan(column_family, "", "",
                    [&](absl::string_view k, absl::string_view v) {
                      seen.push_back(absl::StrCat(k, "=", v));
                      return true;
                    })
              .ok());
  return seen;
}

// The child of BulkLoadThenDie, run as its own process (hidden: never run unless named).
TEST_CASE("bulk load then die", "[.bulk-load-child]") {
  const char* dir = std::getenv("STORE_TEST_CHILD_DIR");
  const char* flush = std::getenv("STORE_TEST_CHILD_FLUSH");
  if (dir == nullptr || flush == nullptr) return;
  auto store = Store::Open({.path = dir, .column_families = {"state"}, .bulk_load = true});
  if (!store.ok()) _exit(2);
  WriteBatch batch;
  for (int i = 0; i < 1000; ++i) batch.Put("state", absl::StrCat("key-", i), "v");
  if (!(*store)->Write(batch).ok()) _exit(3);
  if (std::string(flush) == "1" && !(*store)->Flush().ok()) _exit(4);
  _exit(0);  // no destructor: the memtables are not flushed at close
}

// In a child process: opens `dir` for a bulk load, writes 1,000 keys, flushes if `flush`, and
// dies without closing the store (as kill -9 would). The exit code says how far it got. The child
// is this binary run afresh, not a fork: a fork of a process whose earlier cases started RocksDB's
// background threads inherits a thread pool without its threads, and its Flush waits forever.
int BulkLoadThenDie(const std::string& dir, bool flush) {
  const pid_t pid = fork();
  if (pid == 0) {
    setenv("STORE_TEST_CHILD_DIR", dir.c_str(), 1);
    setenv("STORE_TEST_CHILD_FLUSH", flush ? "1" : "0", 1);
    execl("/proc/self/exe", "store_test", "[.bulk-load-child]", static_cast<char*>(nullptr));
    _exit(5);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_CASE(
    "Given a bulk-load store, when the process dies after Flush, then every write is there on "
    "reopening, and when it dies before Flush, then none is (no write-ahead log)") {
  const std::string flushed = sequences::testing::TempDir("store");
  REQUIRE(BulkLoadThenDie(flushed, /*flush=*/true) == 0);
  {
    auto store = Store::Open({.path = flushed, .column_families = {"state"}});
    REQUIRE(store.ok());
    CHECK(*(*store)->Get("state", "key-0") == std::optional<std::string>("v"));
    CHECK(*(*store)->Get("state", "key-999") == std::optional<std::string>("v"));
  }
  const std::string lost = sequences::testing::TempDir("store");
  REQUIRE(BulkLoadThenDie(lost, /*flush=*/false) == 0);
  auto store = Store::Open({.path = lost, .column_families = {"state"}});
  REQUIRE(store.ok());
  CHECK(*(*store)->Get("state", "key-0") == std::nullopt);
}

TEST_CASE(
    "Given a bulk load with write-only column families, when keys are put, overwritten and "
    "deleted across batches, then reads before and after Flush and after reopening see the last "
    "write of each key, in key order") {
  const std::string dir = sequences::testing::TempDir("store");
  std::vector<std::string> expected;
  {
    auto store = Store::Open({.path = dir,
                              .column_families = {"state", "due"},
                              .bulk_load = true,
                              .bulk_load_write_only = {"due"}});
    REQUIRE(store.ok());
    // Written in descending order, each key twice, every third one deleted in a later batch.
    for (int round = 0; round < 2; ++round) {
      WriteBatch batch;
      for (int i = 999; i >= 0; --i) {
        batch.Put("due", absl::StrCat("k", 1000 + i), absl::StrCat("v", round, "-", i));
      }
      REQUIRE((*store)->Write(batch).ok());
    }
    WriteBatch deletes;
    for (int i = 0; i < 1000; i += 3) deletes.Delete("due", absl::StrCat("k", 1000 + i));
    deletes.Put("due", "k1003", "last");  // put, deleted, put again
    deletes.Delete("due", "k1003");
    deletes.Put("due", "k1003", "again");
    REQUIRE((*store)->Write(deletes).ok());
    for (int i = 0; i < 1000; ++i) {
      if (i % 3 == 0 && i != 3) continue;
      expected.push_back(
          absl::StrCat("k", 1000 + i, "=", i == 3 ? "again" : absl::StrCat("v1-", i)));
    }
    CHECK(ScanAll(**store, "due") == expected);
    CHECK(*(*store)->Get("due", "k1003") == std::optional<std::string>("again"));
    CHECK(*(*store)->Get("due", "k1000") == std::nullopt);
    REQUIRE((*store)->Flush().ok());
    CHECK(ScanAll(**store, "due") == expected);
  }
  auto store = Store::Open({.path = dir, .column_families = {"state", "due"}});
  REQUIRE(store.ok());
  CHECK(ScanAll(**store, "due") == expected);
  CHECK(*(*store)->Get("due", "k1998") == std::optional<std::string>("v1-998"));
}

}  // namespace
}  // namespace sequences::store
