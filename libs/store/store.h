#ifndef SEQUENCES_LIBS_STORE_STORE_H_
#define SEQUENCES_LIBS_STORE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

// A RocksDB-backed projection store: named column families, atomic write batches, ordered scans.
// RocksDB is linked PRIVATE; no rocksdb:: type appears here (House style item 4).
//
// A projection writes its state and the log position it reflects in ONE WriteBatch (House style
// item 6), so a batch redelivered after a crash is recognised and skipped.
namespace sequences::store {

struct StoreOptions {
  // Directory of the database; created if missing.
  std::string path;
  // Column families besides "default". Opening adds missing ones; existing ones not listed are
  // opened too (and left alone).
  std::vector<std::string> column_families;
  // Block cache, and the cap on all memtables together (charged to the cache): memory stays flat
  // however many keys the store holds.
  int64_t block_cache_bytes = 64 << 20;
  int64_t write_buffer_bytes = 64 << 20;
  // Rebuilding an empty store from scratch (replay). Writes skip the write-ahead log: what was
  // written is durable only once Flush() returns, and a crash before that loses any of it. Flushes
  // of all column families are atomic, so a crash leaves every column family at the same prefix
  // of the writes. Memtables carry a whole-key filter, so looking up a key not written yet costs
  // no memtable search. Its files are written uncompressed (readers take either; a store opened
  // later without bulk_load compresses what it flushes and compacts).
  bool bulk_load = false;
  // With bulk_load: column families the load only writes until Flush (never reads, nor scans).
  // Their memtables are unsorted vectors sorted once when flushed, instead of skiplists that
  // sort on every write, and carry no filter. What they hold after Flush is the same; a read
  // before it is still right but slow (it sorts a copy of the memtable). Writers of the store
  // queue for the memtables instead of writing them concurrently.
  std::vector<std::string> bulk_load_write_only;
};

// Mutations applied atomically by Store::Write.
class WriteBatch {
 public:
  WriteBatch();
  ~WriteBatch();
  WriteBatch(WriteBatch&&) noexcept;
  WriteBatch& operator=(WriteBatch&&) noexcept;

  void Put(absl::string_view column_family, absl::string_view key, absl::string_view value);
  void Delete(absl::string_view column_family, absl::string_view key);
  int Count() const;
  void Clear();

 private:
  friend class Store;
  // Every operation back to back in one buffer (no allocation per operation): a kind byte, then
  // the column family, key and value, each a 4-byte length and its bytes.
  std::string rep_;
  int count_ = 0;
};

// Figures for operations (metrics).
struct StoreStats {
  // Bytes of the store's data: SST files plus memtables, over every column family.
  int64_t size_bytes = 0;
  // Block cache lookups since Open.
  int64_t block_cache_hits = 0;
  int64_t block_cache_misses = 0;
  // hits / (hits + misses); 1 when nothing was looked up yet (nothing missed).
  double block_cache_hit_ratio = 1;
  // Where the store's memory is (bytes, RocksDB's own accounting):
  // the cache's capacity and what it holds now (blocks, index and filter partitions, and the
  // memtables' reservations), and of that what is pinned (in use by readers or pinned index
  // and filter blocks: it cannot be evicted);
  int64_t block_cache_capacity_bytes = 0;
  int64_t block_cache_usage_bytes = 0;
  int64_t block_cache_pinned_bytes = 0;
  // the memtables, active and immutable, of every column family (charged to the cache);
  int64_t memtable_bytes = 0;
  // the open SST files' readers outside the cache (index and filter blocks not in the cache).
  int64_t table_readers_bytes = 0;
};

class Store;

// A consistent point-in-time view of a Store: reads through it see every Write that returned
// before it was taken and none after, whatever the writers do meanwhile (a writer's batch is
// seen whole or not at all). Released when destroyed; it must not outlive its Store. Holding one
// keeps the versions it sees from being compacted away, so hold it for one read, not for long.
// Thread-safety: may be read through from several threads at once.
class Snapshot {
 public:
  ~Snapshot();
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

 private:
  friend class Store;
  struct Impl;
  explicit Snapshot(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Thread-safety: all methods may be called concurrently. Lifetime: one Store per directory per
// process (RocksDB holds a lock file).
class Store {
 public:
  // Called for each key in order; return false to stop.
  using Visitor = std::function<bool(absl::string_view key, absl::string_view value)>;

  // Opens (creating if needed). Errors: Unavailable if another process holds the directory,
  // Internal/DataLoss for corruption (the caller may destroy and rebuild from the log).
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);
  // Deletes the database directory (rebuild from the log). OK if it does not exist.
  static absl::Status Destroy(const std::string& path);

  ~Store();

  // The store as it is now, for several reads that must agree with each other.
  std::unique_ptr<Snapshot> NewSnapshot();

  // Every read takes an optional `at`: read through that snapshot (of this store) instead of
  // the latest state.
  // nullopt if absent. NotFound for an unknown column family.
  absl::StatusOr<std::optional<std::string>> Get(absl::string_view column_family,
                                                 absl::string_view key,
                                                 const Snapshot* at = nullptr);
  // The value of each of `keys` (nullopt where absent), in the order of `keys`, as Get would
  // read them one by one through `at` (or one view of the latest state): one lookup of the
  // store for all of them, cheaper than a Get per key. NotFound for an unknown column family.
  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      absl::string_view column_family, absl::Span<const std::string> keys,
      const Snapshot* at = nullptr);
  // Applies every operation of `batch` atomically. `sync`: fsync the WAL before returning
  // (bulk_load: no WAL, `sync` is ignored; see Flush).
  [[nodiscard]] absl::Status Write(const WriteBatch& batch, bool sync = false);
  // Writes every memtable to SST files and waits: on return, everything written before is
  // durable (files and manifest synced), with or without the write-ahead log.
  [[nodiscard]] absl::Status Flush();
  // Visits keys in [begin, end) in byte order (end empty: to the end of the column family).
  absl::Status Scan(absl::string_view column_family, absl::string_view begin, absl::string_view end,
                    const Visitor& visit, const Snapshot* at = nullptr);
  // Visits every key that starts with `prefix`, in order.
  absl::Status ScanPrefix(absl::string_view column_family, absl::string_view prefix,
                          const Visitor& visit, const Snapshot* at = nullptr);
  // RocksDB's estimate of the number of keys (cheap; exact after a compaction).
  int64_t EstimateKeys(absl::string_view column_family);
  // Size and block cache figures (cheap: RocksDB properties and statistics tickers).
  StoreStats Stats();

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Order-preserving encodings for keys.
// Appends `v` as 8 big-endian bytes.
void AppendBigEndian64(std::string* out, uint64_t v);
// Reads 8 big-endian bytes at `in`'s start; false if too short.
bool ReadBigEndian64(absl::string_view in, uint64_t* v);
// Due-index key: big-endian microseconds since the epoch (times before the epoch clamp to 0),
// then `suffix` (the enrollment key). Scanning in key order is scanning in due order.
std::string DueKey(absl::Time due, absl::string_view suffix);
// The smallest due key at or after `t` (scan bound).
std::string DueKeyBound(absl::Time t);
// Splits a due key; false if malformed.
bool ParseDueKey(absl::string_view key, absl::Time* due, std::string* suffix);

}  // namespace sequences::store

#endif  // SEQUENCES_LIBS_STORE_STORE_H_
