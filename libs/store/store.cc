#include "libs/store/store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"

namespace sequences::store {
namespace {

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(what, ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    return absl::UnavailableError(msg);  // another process holds the directory
  }
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) return absl::UnavailableError(msg);
  return absl::InternalError(msg);
}

rocksdb::Slice ToSlice(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
absl::string_view ToView(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

struct Store::Impl {
  // Declared before `db`: destroyed after it (the DB's tables and memtables hold entries).
  std::shared_ptr<rocksdb::Cache> cache;
  std::unique_ptr<rocksdb::DB> db;
  bool disable_wal = false;
  std::map<std::string, rocksdb::ColumnFamilyHandle*, std::less<>> cfs;

  ~Impl() {
    for (auto& [name, handle] : cfs) {
      db->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
    }
    if (db != nullptr) db->Close().PermitUncheckedError();
  }

  absl::StatusOr<rocksdb::ColumnFamilyHandle*> Cf(absl::string_view name) {
    auto it = cfs.find(name);
    if (it == cfs.end()) return absl::NotFoundError(absl::StrCat("column family ", name));
    return it->second;
  }
};

struct Snapshot::Impl {
  rocksdb::DB* db = nullptr;
  const rocksdb::Snapshot* snapshot = nullptr;
  ~Impl() {
    if (snapshot != nullptr) db->ReleaseSnapshot(snapshot);
  }
};

Snapshot::Snapshot(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Snapshot::~Snapshot() = default;

WriteBatch::WriteBatch() = default;
WriteBatch::~WriteBatch() = default;
WriteBatch::WriteBatch(WriteBatch&&) noexcept = default;
WriteBatch& WriteBatch::operator=(WriteBatch&&) noexcept = default;

namespace {

constexpr char kPutOp = 'P';
constexpr char kDeleteOp = 'D';

void AppendField(std::string* rep, absl::string_view field) {
  const uint32_t n = static_cast<uint32_t>(field.size());
  rep->append(reinterpret_cast<const char*>(&n), sizeof(n));
  rep->append(field.data(), field.size());
}

// Reads one field written by AppendField at `*pos` (the buffer is ours: always well-formed).
absl::string_view ReadField(const std::string& rep, size_t* pos) {
  uint32_t n = 0;
  std::memcpy(&n, rep.data() + *pos, sizeof(n));
  absl::string_view field(rep.data() + *pos + sizeof(n), n);
  *pos += sizeof(n) + n;
  return field;
}

}  // namespace

void WriteBatch::Put(absl::string_view cf, absl::string_view key, absl::string_view value) {
  rep_.push_back(kPutOp);
  AppendField(&rep_, cf);
  AppendField(&rep_, key);
  AppendField(&rep_, value);
  ++count_;
}
void WriteBatch::Delete(absl::string_view cf, absl::string_view key) {
  rep_.push_back(kDeleteOp);
  AppendField(&rep_, cf);
  AppendField(&rep_, key);
  AppendField(&rep_, "");
  ++count_;
}
int WriteBatch::Count() const { return count_; }
void WriteBatch::Clear() {
  rep_.clear();
  count_ = 0;
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  db_options.write_buffer_size = options.write_buffer_bytes;
  db_options.max_open_files = 512;
  // Restart after a crash (kill -9): Open replays the write-ahead log. A WAL as large as the
  // memtables (256 MiB in the executor), replayed and then flushed to files inside Open, kept
  // a restarted executor from its first step for 11 s at 5,000 steps/s. Capped at a quarter of
  // the memtable budget (the column family holding the oldest data is flushed when it is
  // reached), and the replayed memtables stay in memory instead of being flushed during Open.
  db_options.max_total_wal_size = static_cast<uint64_t>(options.write_buffer_bytes / 4);
  db_options.avoid_flush_during_recovery = true;
  // Tickers only (block cache hits and misses for Stats): no histograms, no timers.
  db_options.statistics = rocksdb::CreateDBStatistics();
  db_options.statistics->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);

  // One cache for blocks and memtables: the store's memory is bounded by block_cache_bytes +
  // write_buffer_bytes whatever the number of keys or column families. The memtables are charged
  // to the cache, so it holds both budgets: sized at block_cache_bytes alone, full memtables
  // left no room for blocks, and every Get read its filter and index blocks from the file again.
  std::shared_ptr<rocksdb::Cache> cache =
      rocksdb::NewLRUCache(options.block_cache_bytes + options.write_buffer_bytes);
  db_options.write_buffer_manager =
      std::make_shared<rocksdb::WriteBufferManager>(options.write_buffer_bytes, cache);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Index and filters in the cache (bounded), cut into small partitions so that a store far
  // larger than the cache reads only the partitions a key needs; the top levels stay pinned.
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  table.partition_filters = true;
  table.pin_top_level_index_and_filter = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  // Files are checksummed with XXH3: this build's CRC32C has no hardware path and cost more
  // than the compression (first in bulk loads, then in the executor's flushes and compactions
  // too). Readers take either, so files written before keep working.
  table.checksum = rocksdb::kXXH3;
  rocksdb::ColumnFamilyOptions cf_options(db_options);
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Per column family; the manager above caps all of them together.
  cf_options.write_buffer_size = std::max<int64_t>(options.write_buffer_bytes / 4, 4 << 20);
  if (options.bulk_load) {
    // No WAL (Write), so column families must flush together to stay consistent after a crash.
    db_options.atomic_flush = true;
    // Writers (replay's folders) queue for the memtable instead of spinning for it: on a
    // machine with few cores the spinning takes the CPU the writer it waits for needs.
    db_options.enable_write_thread_adaptive_yield = false;
    // Files written uncompressed: compressing them took a few percent of a replay's CPU, most of
    // it in the final flush the replay waits for. The store's readers take either; the live
    // instance compresses what it compacts.
    cf_options.compression = rocksdb::kNoCompression;
  }
  // A Get of a key not written yet (every new enrollment the executor loads) skips each memtable
  // by its filter instead of searching its skiplist.
  cf_options.memtable_prefix_bloom_size_ratio = 0.02;
  cf_options.memtable_whole_key_filtering = true;

  std::vector<std::string> names = {rocksdb::kDefaultColumnFamilyName};
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(db_options, options.path, &existing).ok()) {
    for (const auto& n : existing) {
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    }
  }
  for (const auto& n : options.column_families) {
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  }
  // A bulk load's write-only column families: an insert appends to a vector (sorted once, by the
  // flush) instead of searching a skiplist and filling a filter. A vector memtable takes no
  // concurrent writes, so no column family does.
  rocksdb::ColumnFamilyOptions write_only_options = cf_options;
  if (options.bulk_load && !options.bulk_load_write_only.empty()) {
    write_only_options.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
    write_only_options.memtable_prefix_bloom_size_ratio = 0;
    write_only_options.memtable_whole_key_filtering = false;
    db_options.allow_concurrent_memtable_write = false;
  }
  auto write_only = [&](const std::string& n) {
    return options.bulk_load &&
           std::find(options.bulk_load_write_only.begin(), options.bulk_load_write_only.end(), n) !=
               options.bulk_load_write_only.end();
  };
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& n : names)
    descriptors.emplace_back(n, write_only(n) ? write_only_options : cf_options);

  auto impl = std::make_unique<Impl>();
  impl->disable_wal = options.bulk_load;
  impl->cache = cache;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options.path, descriptors, &handles, &raw);
  if (!s.ok()) return FromRocks(s, absl::StrCat("open store ", options.path));
  impl->db.reset(raw);
  for (size_t i = 0; i < handles.size(); ++i) impl->cfs[names[i]] = handles[i];
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

absl::Status Store::Destroy(const std::string& path) {
  return FromRocks(rocksdb::DestroyDB(path, rocksdb::Options()),
                   absl::StrCat("destroy store ", path));
}

std::unique_ptr<Snapshot> Store::NewSnapshot() {
  auto impl = std::make_unique<Snapshot::Impl>();
  impl->db = impl_->db.get();
  impl->snapshot = impl_->db->GetSnapshot();
  return std::unique_ptr<Snapshot>(new Snapshot(std::move(impl)));
}

absl::StatusOr<std::optional<std::string>> Store::Get(absl::string_view column_family,
                                                      absl::string_view key, const Snapshot* at) {
  auto cf = impl_->Cf(column_family);
  if (!cf.ok()) return cf.status();
  std::string value;
  rocksdb::ReadOptions ro;
  if (at != nullptr) ro.snapshot = at->impl_->snapshot;
  rocksdb::Status s = impl_->db->Get(ro, *cf, ToSlice(key), &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return FromRocks(s, "get");
  return value;
}

absl::StatusOr<std::vector<std::optional<std::string>>> Store::MultiGet(
    absl::string_view column_family, absl::Span<const std::string> keys, const Snapshot* at) {
  auto cf = impl_->Cf(column_family);
  if (!cf.ok()) return cf.status();
  std::vector<std::optional<std::string>> out(keys.size());
  if (keys.empty()) return out;
  std::vector<rocksdb::Slice> slices;
  slices.reserve(keys.size());
  for (const std::string& key : keys) slices.push_back(ToSlice(key));
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  rocksdb::ReadOptions ro;
  // Without a snapshot, MultiGet reads every key at one sequence number of its own.
  if (at != nullptr) ro.snapshot = at->impl_->snapshot;
  impl_->db->MultiGet(ro, *cf, keys.size(), slices.data(), values.data(), statuses.data());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    if (!statuses[i].ok()) return FromRocks(statuses[i], "multiget");
    out[i].emplace(values[i].data(), values[i].size());
  }
  return out;
}

absl::Status Store::Write(const WriteBatch& batch, bool sync) {
  rocksdb::WriteBatch wb(batch.rep_.size() + 24 * static_cast<size_t>(batch.count_));
  absl::string_view last_cf;
  rocksdb::ColumnFamilyHandle* handle = nullptr;
  for (size_t pos = 0; pos < batch.rep_.size();) {
    const char kind = batch.rep_[pos++];
    const absl::string_view cf_name = ReadField(batch.rep_, &pos);
    const absl::string_view key = ReadField(batch.rep_, &pos);
    const absl::string_view value = ReadField(batch.rep_, &pos);
    if (handle == nullptr || cf_name != last_cf) {
      auto cf = impl_->Cf(cf_name);
      if (!cf.ok()) return cf.status();
      handle = *cf;
      last_cf = cf_name;
    }
    rocksdb::Status s = kind == kDeleteOp ? wb.Delete(handle, ToSlice(key))
                                          : wb.Put(handle, ToSlice(key), ToSlice(value));
    if (!s.ok()) return FromRocks(s, "write batch");
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync && !impl_->disable_wal;
  wo.disableWAL = impl_->disable_wal;
  return FromRocks(impl_->db->Write(wo, &wb), "write");
}

absl::Status Store::Flush() {
  std::vector<rocksdb::ColumnFamilyHandle*> all;
  for (const auto& [name, handle] : impl_->cfs) all.push_back(handle);
  rocksdb::FlushOptions fo;
  fo.wait = true;
  fo.allow_write_stall = true;
  return FromRocks(impl_->db->Flush(fo, all), "flush");
}

absl::Status Store::Scan(absl::string_view column_family, absl::string_view begin,
                         absl::string_view end, const Visitor& visit, const Snapshot* at) {
  auto cf = impl_->Cf(column_family);
  if (!cf.ok()) return cf.status();
  rocksdb::ReadOptions ro;
  if (at != nullptr) ro.snapshot = at->impl_->snapshot;
  rocksdb::Slice upper = ToSlice(end);
  // The bound lets RocksDB skip deleted keys past `end` instead of stepping over them.
  if (!end.empty()) ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, *cf));
  for (it->Seek(ToSlice(begin)); it->Valid(); it->Next()) {
    if (!visit(ToView(it->key()), ToView(it->value()))) break;
  }
  return FromRocks(it->status(), "scan");
}

absl::Status Store::ScanPrefix(absl::string_view column_family, absl::string_view prefix,
                               const Visitor& visit, const Snapshot* at) {
  // The smallest key greater than every key with this prefix.
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return Scan(column_family, prefix, end, visit, at);
}

int64_t Store::EstimateKeys(absl::string_view column_family) {
  auto cf = impl_->Cf(column_family);
  if (!cf.ok()) return 0;
  uint64_t n = 0;
  impl_->db->GetIntProperty(*cf, "rocksdb.estimate-num-keys", &n);
  return static_cast<int64_t>(n);
}

StoreStats Store::Stats() {
  StoreStats out;
  uint64_t sst = 0;
  uint64_t mem = 0;
  impl_->db->GetAggregatedIntProperty("rocksdb.total-sst-files-size", &sst);
  impl_->db->GetAggregatedIntProperty("rocksdb.size-all-mem-tables", &mem);
  out.size_bytes = static_cast<int64_t>(sst + mem);
  uint64_t v = 0;
  if (impl_->db->GetAggregatedIntProperty("rocksdb.cur-size-all-mem-tables", &v)) {
    out.memtable_bytes = static_cast<int64_t>(v);
  }
  if (impl_->db->GetAggregatedIntProperty("rocksdb.estimate-table-readers-mem", &v)) {
    out.table_readers_bytes = static_cast<int64_t>(v);
  }
  if (impl_->cache != nullptr) {
    out.block_cache_capacity_bytes = static_cast<int64_t>(impl_->cache->GetCapacity());
    out.block_cache_usage_bytes = static_cast<int64_t>(impl_->cache->GetUsage());
    out.block_cache_pinned_bytes = static_cast<int64_t>(impl_->cache->GetPinnedUsage());
  }
  if (const std::shared_ptr<rocksdb::Statistics>& st = impl_->db->GetDBOptions().statistics;
      st != nullptr) {
    out.block_cache_hits = static_cast<int64_t>(st->getTickerCount(rocksdb::BLOCK_CACHE_HIT));
    out.block_cache_misses = static_cast<int64_t>(st->getTickerCount(rocksdb::BLOCK_CACHE_MISS));
  }
  const int64_t lookups = out.block_cache_hits + out.block_cache_misses;
  if (lookups > 0) out.block_cache_hit_ratio = static_cast<double>(out.block_cache_hits) / lookups;
  return out;
}

void AppendBigEndian64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

bool ReadBigEndian64(absl::string_view in, uint64_t* v) {
  if (in.size() < 8) return false;
  uint64_t r = 0;
  for (int i = 0; i < 8; ++i) r = (r << 8) | static_cast<unsigned char>(in[i]);
  *v = r;
  return true;
}

std::string DueKeyBound(absl::Time t) {
  std::string key;
  int64_t micros = absl::ToUnixMicros(t);
  AppendBigEndian64(&key, static_cast<uint64_t>(std::max<int64_t>(micros, 0)));
  return key;
}

std::string DueKey(absl::Time due, absl::string_view suffix) {
  std::string key = DueKeyBound(due);
  key.append(suffix.data(), suffix.size());
  return key;
}

bool ParseDueKey(absl::string_view key, absl::Time* due, std::string* suffix) {
  uint64_t micros = 0;
  if (!ReadBigEndian64(key, &micros)) return false;
  *due = absl::FromUnixMicros(static_cast<int64_t>(micros));
  suffix->assign(key.data() + 8, key.size() - 8);
  return true;
}

}  // namespace sequences::store
