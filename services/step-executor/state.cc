#include "services/step-executor/state.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "absl/strings/str_cat.h"
#include "libs/domain/envelope.h"
#include "libs/domain/routing.h"
#include "libs/runtime/log.h"

namespace sequences::executor {
namespace {

void AppendBigEndian32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

bool ReadBigEndian32(absl::string_view in, uint32_t* v) {
  if (in.size() < 4) return false;
  *v = 0;
  for (int i = 0; i < 4; ++i) *v = (*v << 8) | static_cast<uint8_t>(in[i]);
  return true;
}

std::string IndexKey(absl::string_view first, absl::string_view enrollment_key) {
  return absl::StrCat(first, absl::string_view("\0", 1), enrollment_key);
}

std::string PartitionValue(int32_t partition) {
  std::string v;
  AppendBigEndian32(&v, static_cast<uint32_t>(partition));
  return v;
}

}  // namespace

std::string SerializeDeterministic(const google::protobuf::MessageLite& message) {
  // Sized once, written once: a growing string stream re-allocates and zero-fills as it goes
  // (on the hot path, every record is serialized this way).
  const size_t size = message.ByteSizeLong();
  std::string out(size, '\0');
  google::protobuf::io::ArrayOutputStream stream(out.data(), static_cast<int>(size));
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  message.SerializeWithCachedSizes(&coded);
  return out;
}

std::optional<std::string> EnrollmentKeyOfEvent(const v1::Envelope& e) {
  return domain::ExecutorEventKey(e);
}

namespace {
void AppendEventList(const std::vector<std::string>& events, std::string* out) {
  size_t size = out->size();
  for (const std::string& e : events) size += 4 + e.size();
  out->reserve(size);
  for (const std::string& e : events) {
    AppendBigEndian32(out, static_cast<uint32_t>(e.size()));
    out->append(e);
  }
}
}  // namespace

std::string EncodeEventList(const std::vector<std::string>& events) {
  std::string out;
  AppendEventList(events, &out);
  return out;
}

bool DecodeEventList(absl::string_view in, std::vector<std::string>* events) {
  events->clear();
  while (!in.empty()) {
    uint32_t n = 0;
    if (!ReadBigEndian32(in, &n) || in.size() < 4 + static_cast<size_t>(n)) return false;
    events->emplace_back(in.substr(4, n));
    in.remove_prefix(4 + n);
  }
  return true;
}

std::string EnrollmentRecord::Encode() const {
  std::string out;
  AppendBigEndian32(&out, static_cast<uint32_t>(partition));
  AppendEventList(events, &out);
  return out;
}

bool EnrollmentRecord::Decode(absl::string_view in, EnrollmentRecord* out) {
  uint32_t p = 0;
  if (!ReadBigEndian32(in, &p)) return false;
  out->partition = static_cast<int32_t>(p);
  in.remove_prefix(4);
  return DecodeEventList(in, &out->events);
}

domain::EnrollmentState FoldRecord(const EnrollmentRecord& record, int* undecodable) {
  domain::EnrollmentState state;
  for (const std::string& bytes : record.events) {
    v1::Envelope e;
    if (!e.ParseFromString(bytes)) {
      if (undecodable != nullptr) ++*undecodable;
      continue;
    }
    state = domain::EvolveEnrollment(std::move(state), e);
  }
  return state;
}

namespace {
absl::StatusOr<std::unique_ptr<store::Store>> OpenStore(const std::string& path, bool rebuild,
                                                        const StoreMemory& memory) {
  store::StoreOptions options;
  options.path = path;
  options.block_cache_bytes = memory.block_cache_bytes;
  options.write_buffer_bytes = memory.write_buffer_bytes;
  options.column_families = {kEnrollmentsCf, kSequencesCf, kDueCf,     kBySequenceCf,
                             kByOwnerCf,     kOffsetsCf,   kSendersCf, kSendQueueCf};
  if (rebuild) {
    options.bulk_load = true;
    // Fewer, larger flushes: fewer level-0 files for lookups to check and compactions to merge.
    options.write_buffer_bytes = 256 << 20;
    // A rebuild writes the index column families without reading them (replay folds executor
    // events by enrollment key; it scans by_sequence only while folding sequence events, before
    // anything is written there): their memtables are sorted once, at the flush, instead of on
    // every write.
    options.bulk_load_write_only = {kDueCf, kBySequenceCf, kByOwnerCf};
  }
  return store::Store::Open(options);
}
}  // namespace

absl::StatusOr<std::unique_ptr<StateStore>> StateStore::Open(const std::string& path,
                                                             const StoreMemory& memory) {
  auto s = OpenStore(path, /*rebuild=*/false, memory);
  if (!s.ok()) return s.status();
  return std::unique_ptr<StateStore>(new StateStore(std::move(*s)));
}

absl::StatusOr<std::unique_ptr<StateStore>> StateStore::OpenForRebuild(const std::string& path) {
  auto s = OpenStore(path, /*rebuild=*/true, StoreMemory());
  if (!s.ok()) return s.status();
  return std::unique_ptr<StateStore>(new StateStore(std::move(*s)));
}

absl::Status StateStore::Destroy(const std::string& path) { return store::Store::Destroy(path); }

std::string StateStore::ExecOffsetKey(int32_t partition) {
  return absl::StrCat("exec/", partition);
}
std::string StateStore::SeqOffsetKey(int32_t partition) { return absl::StrCat("seq/", partition); }

absl::StatusOr<std::optional<EnrollmentRecord>> StateStore::LoadEnrollment(absl::string_view key) {
  auto v = store_->Get(kEnrollmentsCf, key);
  if (!v.ok()) return v.status();
  if (!v->has_value()) return std::nullopt;
  EnrollmentRecord r;
  if (!EnrollmentRecord::Decode(**v, &r)) {
    return absl::DataLossError(absl::StrCat("enrollment record ", key, " does not decode"));
  }
  return r;
}

absl::StatusOr<std::optional<int64_t>> StateStore::GetOffset(absl::string_view key) {
  auto v = store_->Get(kOffsetsCf, key);
  if (!v.ok()) return v.status();
  if (!v->has_value()) return std::nullopt;
  uint64_t o = 0;
  if (!store::ReadBigEndian64(**v, &o)) return absl::DataLossError("bad offset value");
  return static_cast<int64_t>(o);
}

DuePosition DuePosition::At(absl::Time t) { return DuePosition(store::DueKeyBound(t)); }

DuePosition DuePosition::Of(const DueEntry& e) {
  return DuePosition(store::DueKey(e.due, e.enrollment_key));
}

DuePosition DuePosition::After(const DueEntry& e) {
  std::string key = store::DueKey(e.due, e.enrollment_key);
  key.push_back('\0');  // the smallest key after e's
  return DuePosition(std::move(key));
}

absl::Status StateStore::ScanDue(const DuePosition& from, absl::Time to, int max,
                                 const std::function<bool(const DueEntry&)>& visit) {
  int n = 0;
  const std::string& begin = from.key();
  const std::string end = store::DueKeyBound(to + absl::Microseconds(1));
  return store_->Scan(kDueCf, begin, end, [&](absl::string_view k, absl::string_view v) {
    DueEntry e;
    uint32_t p = 0;
    if (!store::ParseDueKey(k, &e.due, &e.enrollment_key) || !ReadBigEndian32(v, &p)) return true;
    e.partition = static_cast<int32_t>(p);
    if (!visit(e)) return false;
    return ++n < max;
  });
}

namespace {
absl::StatusOr<std::vector<std::string>> IndexKeys(store::Store& s, absl::string_view cf,
                                                   absl::string_view first) {
  std::vector<std::string> out;
  const std::string prefix = IndexKey(first, "");
  absl::Status st = s.ScanPrefix(cf, prefix, [&](absl::string_view k, absl::string_view) {
    out.emplace_back(k.substr(prefix.size()));
    return true;
  });
  if (!st.ok()) return st;
  return out;
}
}  // namespace

absl::StatusOr<std::vector<std::string>> StateStore::KeysOfSequence(absl::string_view sequence_id) {
  return IndexKeys(*store_, kBySequenceCf, sequence_id);
}

absl::StatusOr<std::vector<std::string>> StateStore::KeysOfOwner(absl::string_view company_id,
                                                                 absl::string_view owner_id) {
  // Index keys are "<owner>\0<enrollment key>" and enrollment keys start with "<company>/".
  std::vector<std::string> out;
  const std::string prefix = IndexKey(owner_id, absl::StrCat(company_id, "/"));
  const size_t owner_prefix = IndexKey(owner_id, "").size();
  absl::Status st =
      store_->ScanPrefix(kByOwnerCf, prefix, [&](absl::string_view k, absl::string_view) {
        out.emplace_back(k.substr(owner_prefix));
        return true;
      });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<std::vector<std::string>> StateStore::KeysWithPrefix(absl::string_view prefix) {
  std::vector<std::string> out;
  absl::Status st =
      store_->ScanPrefix(kEnrollmentsCf, prefix, [&](absl::string_view k, absl::string_view) {
        out.emplace_back(k);
        return true;
      });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<std::string> StateStore::Digest(int64_t* enrollments, int64_t* sequences) {
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&](absl::string_view s) {
    // Length first, so ("ab","c") and ("a","bc") differ.
    for (int i = 0; i < 8; ++i) {
      h ^= static_cast<uint8_t>(s.size() >> (8 * i));
      h *= 1099511628211ULL;
    }
    for (char c : s) {
      h ^= static_cast<uint8_t>(c);
      h *= 1099511628211ULL;
    }
  };
  for (const char* cf : {kEnrollmentsCf, kSequencesCf}) {
    int64_t count = 0;
    absl::Status s = store_->Scan(cf, "", "", [&](absl::string_view k, absl::string_view v) {
      mix(cf);
      mix(k);
      mix(v);
      ++count;
      return true;
    });
    if (!s.ok()) return s;
    if (cf == kEnrollmentsCf && enrollments != nullptr) *enrollments = count;
    if (cf == kSequencesCf && sequences != nullptr) *sequences = count;
  }
  return absl::StrCat(absl::Hex(h, absl::kZeroPad16));
}

absl::StatusOr<Overlay::Entry*> Overlay::Get(const std::string& key) {
  // One descent of the map for a staged key and for a new one (the entry built in place).
  auto it = entries_.lower_bound(key);
  if (it != entries_.end() && it->first == key) return &it->second;
  auto rec = store_.LoadEnrollment(key);
  if (!rec.ok()) return rec.status();
  Entry& e = entries_.try_emplace(it, key)->second;
  if (rec->has_value()) {
    e.record = std::move(**rec);
    int undecodable = 0;
    e.state = FoldRecord(e.record, &undecodable);
    if (undecodable > 0) {
      Log(LogLevel::kError, "executor", "stored executor events do not decode; skipped",
          {{"enrollment_key", key}, {"undecodable", undecodable}});
    }
    e.stored_due = domain::NextDueAt(e.state);
    e.stored_sequence_id = e.state.sequence_id;
    e.stored_owner_id = e.state.owner_id;
    e.existed = true;
  }
  return &e;
}

Overlay::Entry* Overlay::GetNew(const std::string& key) {
  return &entries_.try_emplace(key).first->second;
}

absl::Status Overlay::Apply(const v1::Envelope& event, std::string bytes, int32_t partition) {
  std::optional<std::string> key = EnrollmentKeyOfEvent(event);
  if (!key.has_value()) return absl::OkStatus();  // not an executor event: nothing to fold
  return ApplyToKey(*key, event, std::move(bytes), partition).status();
}

absl::StatusOr<Overlay::Entry*> Overlay::ApplyToKey(const std::string& key,
                                                    const v1::Envelope& event, std::string bytes,
                                                    int32_t partition) {
  auto entry = Get(key);
  if (!entry.ok()) return entry.status();
  Entry& e = **entry;
  // The same bytes are the same event (ids are deterministic): one the store already holds,
  // read again by a recovery that started before it, or written twice by at_least_once.
  for (const std::string& held : e.record.events) {
    if (held == bytes) return &e;
  }
  if (e.record.partition < 0) e.record.partition = partition;
  e.record.events.push_back(std::move(bytes));
  e.state = domain::EvolveEnrollment(std::move(e.state), event);
  e.dirty = true;
  return &e;
}

namespace {

v1::SenderSnapshot ToSnapshot(const domain::SenderState& s, int32_t partition, bool keyed) {
  v1::SenderSnapshot out;
  out.set_sender_key(s.sender_key);
  out.set_seq(s.seq);
  for (const auto& [bucket, n] : s.sent.buckets) (*out.mutable_sent_per_bucket())[bucket] = n;
  if (!keyed) {
    for (const auto& [id, r] : s.queue) *out.add_queue() = r;
  }
  out.set_last_sequence_id(s.last_sequence_id);
  if (s.next_release.has_value()) *out.mutable_next_release_at() = domain::ToProto(*s.next_release);
  out.set_partition(partition);
  out.set_in_flight(s.in_flight);
  if (s.last_sent.has_value()) *out.mutable_last_sent_at() = domain::ToProto(*s.last_sent);
  return out;
}

domain::SenderState FromSnapshot(const v1::SenderSnapshot& in) {
  domain::SenderState s;
  s.sender_key = in.sender_key();
  s.seq = in.seq();
  for (const auto& [bucket, n] : in.sent_per_bucket()) s.sent.buckets[bucket] = n;
  for (const v1::SendRequested& r : in.queue()) s.queue.emplace(r.email().idempotency_key(), r);
  s.last_sequence_id = in.last_sequence_id();
  if (in.has_next_release_at()) s.next_release = domain::FromProto(in.next_release_at());
  s.in_flight = in.in_flight();
  if (in.has_last_sent_at()) s.last_sent = domain::FromProto(in.last_sent_at());
  return s;
}

// ---- send_queue keys (state.h) ----

Overlay::RunKey RunOf(const v1::SendRequested& r) {
  return {r.email().sequence_id(), r.time_zone()};
}

std::string RunPrefix(absl::string_view stage, const Overlay::RunKey& run) {
  std::string k(stage);
  k.push_back('\0');
  k.push_back('o');
  absl::StrAppend(&k, run.first);
  k.push_back('\0');
  absl::StrAppend(&k, run.second);
  k.push_back('\0');
  return k;
}

// The run's prefix, then the due time (seconds with the sign bit flipped, then nanos, both big
// endian: byte order is time order), then the id: key order is (due time, id) order.
std::string OrderedKey(absl::string_view stage, const v1::SendRequested& r) {
  std::string k = RunPrefix(stage, RunOf(r));
  store::AppendBigEndian64(&k, static_cast<uint64_t>(r.due_at().seconds()) ^ (uint64_t{1} << 63));
  const uint32_t nanos = static_cast<uint32_t>(r.due_at().nanos());
  for (int shift = 24; shift >= 0; shift -= 8) k.push_back(static_cast<char>(nanos >> shift));
  absl::StrAppend(&k, r.email().idempotency_key());
  return k;
}
constexpr size_t kDueBytes = 12;

std::string IdKey(absl::string_view stage, absl::string_view id) {
  std::string k(stage);
  k.push_back('\0');
  k.push_back('i');
  absl::StrAppend(&k, id);
  return k;
}

std::string RunCountPrefix(absl::string_view stage) {
  std::string k(stage);
  k.push_back('\0');
  k.push_back('g');
  return k;
}

std::string RunCountKey(absl::string_view stage, const Overlay::RunKey& run) {
  std::string k = RunCountPrefix(stage);
  absl::StrAppend(&k, run.first);
  k.push_back('\0');
  absl::StrAppend(&k, run.second);
  return k;
}

// The smallest key after every key that starts with `prefix` (prefix ends in '\0' here).
std::string PrefixEnd(std::string prefix) {
  prefix.back() = static_cast<char>(prefix.back() + 1);
  return prefix;
}

// One run read on demand: the stored requests (in chunks, skipping `skip`) merged with the
// in-memory ones, in key order.
struct RunReader {
  store::Store* store = nullptr;
  std::string resume;  // where the next chunk starts
  std::string end;
  bool store_done = false;
  size_t chunk = 4;
  std::vector<std::string> buffered;  // stored keys not handed out yet, in order
  size_t buffered_at = 0;
  std::vector<std::pair<std::string, absl::Time>> memory;  // (ordered key, due), sorted
  size_t memory_at = 0;
  std::set<std::string> skip;  // ids
  size_t prefix_size = 0;
  absl::Status* error = nullptr;

  absl::string_view IdOf(absl::string_view key) const {
    return key.substr(prefix_size + kDueBytes);
  }
  static absl::Time DueOf(absl::string_view key, size_t prefix_size) {
    uint64_t seconds = 0;
    store::ReadBigEndian64(key.substr(prefix_size), &seconds);
    uint32_t nanos = 0;
    for (int i = 0; i < 4; ++i) {
      nanos = (nanos << 8) | static_cast<unsigned char>(key[prefix_size + 8 + i]);
    }
    return absl::FromUnixSeconds(static_cast<int64_t>(seconds ^ (uint64_t{1} << 63))) +
           absl::Nanoseconds(nanos);
  }
  bool FillStore() {
    while (buffered_at == buffered.size() && !store_done) {
      buffered.clear();
      buffered_at = 0;
      size_t visited = 0;
      std::string last;
      absl::Status s =
          store->Scan(kSendQueueCf, resume, end, [&](absl::string_view k, absl::string_view) {
            ++visited;
            last.assign(k.data(), k.size());
            if (skip.count(std::string(IdOf(k))) == 0) {
              buffered.push_back(last);
            }
            return visited < chunk;
          });
      if (!s.ok()) {
        if (error != nullptr && error->ok()) *error = s;
        store_done = true;
        break;
      }
      if (visited < chunk) store_done = true;
      if (!last.empty()) resume = last + std::string(1, '\0');
      chunk = std::min<size_t>(chunk * 4, 1024);
    }
    return buffered_at < buffered.size();
  }
  std::optional<domain::RunItem> Next() {
    const bool have_store = FillStore();
    const bool have_memory = memory_at < memory.size();
    if (!have_store && !have_memory) return std::nullopt;
    if (have_store && (!have_memory || buffered[buffered_at] < memory[memory_at].first)) {
      const std::string& k = buffered[buffered_at++];
      return domain::RunItem{std::string(IdOf(k)), DueOf(k, prefix_size)};
    }
    const auto& [k, due] = memory[memory_at++];
    return domain::RunItem{std::string(IdOf(k)), due};
  }
};

}  // namespace

int64_t Overlay::SenderEntry::waiting() const {
  if (!keyed) return static_cast<int64_t>(state.queue.size());
  int64_t n = 0;
  for (const auto& [run, count] : runs) n += count;
  return n;
}

absl::StatusOr<Overlay::SenderEntry*> Overlay::GetSender(const std::string& sender_key) {
  auto it = senders_.find(sender_key);
  if (it != senders_.end()) return &it->second;
  auto v = store_.raw().Get(kSendersCf, sender_key);
  if (!v.ok()) return v.status();
  SenderEntry e;
  e.keyed = domain::IsSenderKey(sender_key);
  if (v->has_value()) {
    v1::SenderSnapshot snapshot;
    if (!snapshot.ParseFromString(**v)) {
      return absl::DataLossError(absl::StrCat("sender record ", sender_key, " does not decode"));
    }
    e.state = FromSnapshot(snapshot);
    e.partition = snapshot.partition();
    e.stored_due = e.state.next_release;
  }
  // Nothing waits without a next release (a plan leaves one whenever a request remains, and the
  // value and the queue are written in one batch): then there is no run to read.
  if (e.keyed && e.state.next_release.has_value()) {
    const std::string prefix = RunCountPrefix(sender_key);
    absl::Status s = store_.raw().ScanPrefix(
        kSendQueueCf, prefix, [&](absl::string_view k, absl::string_view c) {
          const absl::string_view rest = k.substr(prefix.size());
          const size_t zero = rest.find('\0');
          uint64_t n = 0;
          if (zero == absl::string_view::npos || !store::ReadBigEndian64(c, &n)) return true;
          RunKey run{std::string(rest.substr(0, zero)), std::string(rest.substr(zero + 1))};
          e.stored_runs.insert(run);
          e.runs[std::move(run)] = static_cast<int64_t>(n);
          return true;
        });
    if (!s.ok()) return s;
  }
  if (e.keyed) {
    // A value written before the queue was keyed holds its queue: it moves to send_queue.
    for (const auto& [id, r] : e.state.queue) {
      e.added.insert(id);
      ++e.runs[RunOf(r)];
      e.runs_changed.insert(RunOf(r));
    }
    if (!e.added.empty()) e.dirty = true;
  }
  return &senders_.emplace(sender_key, std::move(e)).first->second;
}

absl::Status Overlay::LoadQueued(const std::string& sender_key, SenderEntry& e,
                                 const std::vector<std::string>& ids) {
  if (!e.keyed || e.stored_runs.empty()) return absl::OkStatus();
  for (const std::string& id : ids) {
    if (e.state.queue.count(id) > 0 || e.removed.count(id) > 0) continue;
    auto key = store_.raw().Get(kSendQueueCf, IdKey(sender_key, id));
    if (!key.ok()) return key.status();
    if (!key->has_value()) continue;
    auto value = store_.raw().Get(kSendQueueCf, **key);
    if (!value.ok()) return value.status();
    v1::SendRequested r;
    if (!value->has_value() || !r.ParseFromString(**value)) {
      return absl::DataLossError(absl::StrCat("queued request ", id, " of ", sender_key,
                                              " is missing or does not decode"));
    }
    e.state.queue.emplace(id, std::move(r));
    e.stored.emplace(id, std::move(**key));
  }
  return absl::OkStatus();
}

std::vector<domain::SendRun> Overlay::SenderRuns(
    const std::string& sender_key, const SenderEntry& e,
    const std::map<std::string, const v1::SendRequested*>& extra,
    const std::set<std::string>& excluded,
    const std::function<domain::Calendar(const std::string&, const std::string&)>& calendar,
    absl::Status* error) {
  // In memory: this batch's additions and arrivals, by run.
  std::map<RunKey, std::vector<std::pair<std::string, absl::Time>>> memory;
  auto remember = [&](const std::string& id, const v1::SendRequested& r) {
    if (excluded.count(id) > 0) return;
    memory[RunOf(r)].emplace_back(OrderedKey(sender_key, r), domain::FromProto(r.due_at()));
  };
  if (e.keyed) {
    for (const std::string& id : e.added) {
      auto it = e.state.queue.find(id);
      if (it != e.state.queue.end()) remember(id, it->second);
    }
  } else {
    for (const auto& [id, r] : e.state.queue) remember(id, r);
  }
  for (const auto& [id, r] : extra) remember(id, *r);
  std::set<RunKey> runs;
  for (const auto& [run, list] : memory) runs.insert(run);
  if (e.keyed) {
    for (const auto& [run, count] : e.runs) {
      if (count > 0) runs.insert(run);
    }
  }
  std::vector<domain::SendRun> out;
  for (const RunKey& run : runs) {
    auto reader = std::make_shared<RunReader>();
    reader->store = &store_.raw();
    reader->resume = RunPrefix(sender_key, run);
    reader->prefix_size = reader->resume.size();
    reader->end = PrefixEnd(reader->resume);
    // A run that was not in the store when loaded has nothing there: no read.
    reader->store_done = e.stored_runs.count(run) == 0;
    reader->error = error;
    if (auto m = memory.find(run); m != memory.end()) {
      reader->memory = std::move(m->second);
      std::sort(reader->memory.begin(), reader->memory.end());
    }
    for (const auto& [id, key] : e.removed) reader->skip.insert(id);
    reader->skip.insert(excluded.begin(), excluded.end());
    out.push_back(
        {run.first, calendar(run.first, run.second), [reader] { return reader->Next(); }});
  }
  return out;
}

absl::Status Overlay::ApplyLedger(const v1::SendLedgerEntry& entry, int32_t partition) {
  auto sender = GetSender(entry.sender_key());
  if (!sender.ok()) return sender.status();
  SenderEntry& e = **sender;
  if (entry.seq() != e.state.seq + 1) return absl::OkStatus();  // folded already (or a gap)
  // The ids the entry touches, loaded, so the fold sees them as it would see the whole queue.
  std::vector<std::string> ids;
  if (e.keyed) {
    for (const v1::SendRequested& r : entry.queued()) {
      if (e.stored_runs.count(RunOf(r)) > 0) ids.push_back(r.email().idempotency_key());
    }
    ids.insert(ids.end(), entry.cancelled().begin(), entry.cancelled().end());
    ids.insert(ids.end(), entry.released().begin(), entry.released().end());
    if (absl::Status s = LoadQueued(entry.sender_key(), e, ids); !s.ok()) return s;
    ids.clear();
    for (const v1::SendRequested& r : entry.queued()) ids.push_back(r.email().idempotency_key());
    ids.insert(ids.end(), entry.cancelled().begin(), entry.cancelled().end());
    ids.insert(ids.end(), entry.released().begin(), entry.released().end());
  }
  std::map<std::string, RunKey> before;
  for (const std::string& id : ids) {
    auto it = e.state.queue.find(id);
    if (it != e.state.queue.end()) before.emplace(id, RunOf(it->second));
  }
  const int64_t seq_before = e.state.seq;
  e.state = domain::EvolveSender(std::move(e.state), entry);
  if (e.state.seq == seq_before) return absl::OkStatus();
  e.partition = partition;
  e.dirty = true;
  if (!e.keyed) return absl::OkStatus();
  for (const std::string& id : ids) {
    auto was = before.find(id);
    auto now = e.state.queue.find(id);
    if (was != before.end() && now == e.state.queue.end()) {
      if (auto s = e.stored.find(id); s != e.stored.end()) {
        e.removed[id] = std::move(s->second);
        e.stored.erase(s);
      } else {
        e.added.erase(id);
      }
      if (--e.runs[was->second] <= 0) e.runs.erase(was->second);
      e.runs_changed.insert(was->second);
      before.erase(was);  // an id listed twice counts once
    } else if (was == before.end() && now != e.state.queue.end() && e.added.count(id) == 0 &&
               e.stored.count(id) == 0) {
      e.added.insert(id);
      ++e.runs[RunOf(now->second)];
      e.runs_changed.insert(RunOf(now->second));
    }
  }
  return absl::OkStatus();
}

void Overlay::PutSequence(const std::string& sequence_id, const std::vector<std::string>& events) {
  sequences_[sequence_id] = events;
}

void Overlay::SetOffset(const std::string& key, int64_t value) { offsets_[key] = value; }

absl::Status Overlay::Flush(std::optional<absl::Time>* earliest_new_due) {
  store::WriteBatch batch;
  std::optional<absl::Time> earliest;
  for (auto& [key, e] : entries_) {
    if (!e.dirty) continue;
    batch.Put(kEnrollmentsCf, key, e.record.Encode());
    const std::optional<absl::Time> due = domain::NextDueAt(e.state);
    if (due != e.stored_due) {
      if (e.stored_due.has_value()) batch.Delete(kDueCf, store::DueKey(*e.stored_due, key));
      if (due.has_value()) {
        batch.Put(kDueCf, store::DueKey(*due, key), PartitionValue(e.record.partition));
        if (!earliest.has_value() || *due < *earliest) earliest = due;
      }
    }
    // Index keys are written with the record that first names the sequence or owner (in the same
    // WriteBatch, so a stored record always has them); an enrollment that fires a later step
    // writes only its record and due entry.
    if (!e.state.sequence_id.empty()) {
      if (!e.existed || e.state.sequence_id != e.stored_sequence_id) {
        batch.Put(kBySequenceCf, IndexKey(e.state.sequence_id, key), "");
      }
      if (!e.state.owner_id.empty() && (!e.existed || e.state.owner_id != e.stored_owner_id ||
                                        e.state.sequence_id != e.stored_sequence_id)) {
        batch.Put(kByOwnerCf, IndexKey(e.state.owner_id, key), "");
      }
    }
  }
  for (auto& [key, e] : senders_) {
    if (!e.dirty) continue;
    batch.Put(kSendersCf, key, SerializeDeterministic(ToSnapshot(e.state, e.partition, e.keyed)));
    if (e.keyed) {
      for (const auto& [id, ordered] : e.removed) {
        batch.Delete(kSendQueueCf, ordered);
        batch.Delete(kSendQueueCf, IdKey(key, id));
      }
      for (const std::string& id : e.added) {
        auto it = e.state.queue.find(id);
        if (it == e.state.queue.end()) continue;
        const std::string ordered = OrderedKey(key, it->second);
        batch.Put(kSendQueueCf, ordered, SerializeDeterministic(it->second));
        batch.Put(kSendQueueCf, IdKey(key, id), ordered);
      }
      for (const RunKey& run : e.runs_changed) {
        auto it = e.runs.find(run);
        if (it == e.runs.end()) {
          batch.Delete(kSendQueueCf, RunCountKey(key, run));
        } else {
          std::string n;
          store::AppendBigEndian64(&n, static_cast<uint64_t>(it->second));
          batch.Put(kSendQueueCf, RunCountKey(key, run), n);
        }
      }
    }
    if (e.state.next_release != e.stored_due) {
      if (e.stored_due.has_value()) batch.Delete(kDueCf, store::DueKey(*e.stored_due, key));
      if (e.state.next_release.has_value()) {
        batch.Put(kDueCf, store::DueKey(*e.state.next_release, key), PartitionValue(e.partition));
        if (!earliest.has_value() || *e.state.next_release < *earliest) {
          earliest = e.state.next_release;
        }
      }
    }
  }
  for (const auto& [id, events] : sequences_) batch.Put(kSequencesCf, id, EncodeEventList(events));
  for (const auto& [key, value] : offsets_) {
    std::string v;
    store::AppendBigEndian64(&v, static_cast<uint64_t>(value));
    batch.Put(kOffsetsCf, key, v);
  }
  if (batch.Count() > 0) {
    absl::Status s = store_.raw().Write(batch);
    if (!s.ok()) return s;
  }
  if (earliest_new_due != nullptr) *earliest_new_due = earliest;
  Discard();
  return absl::OkStatus();
}

absl::Status Overlay::FlushSome(
    const std::function<bool(const std::string& key, const Entry&)>& evict) {
  std::map<std::string, Entry> kept;
  for (auto it = entries_.begin(); it != entries_.end();) {
    auto next = std::next(it);
    if (!evict(it->first, it->second)) kept.insert(kept.end(), entries_.extract(it));
    it = next;
  }
  absl::Status s = Flush();
  if (entries_.empty()) {
    entries_ = std::move(kept);  // Flush succeeded
  } else {
    entries_.merge(kept);
  }
  return s;
}

void Overlay::Discard() {
  senders_.clear();
  entries_.clear();
  sequences_.clear();
  offsets_.clear();
}

}  // namespace sequences::executor
