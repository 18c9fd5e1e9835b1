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
  options.column_families = {kEnrollmentsCf, kSequencesCf, kDueCf,    kBySequenceCf,
                             kByOwnerCf,     kOffsetsCf,   kSendersCf};
  if (rebuild) {
    options.bulk_load = true;
    // Fewer, larger flushes: fewer level-0 files for lookups to check and compactions to merge.
    options.write_buffer_bytes = 256 << 20;
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

v1::SenderSnapshot ToSnapshot(const domain::SenderState& s, int32_t partition) {
  v1::SenderSnapshot out;
  out.set_sender_key(s.sender_key);
  out.set_seq(s.seq);
  for (const auto& [bucket, n] : s.sent.buckets) (*out.mutable_sent_per_bucket())[bucket] = n;
  for (const auto& [id, r] : s.queue) *out.add_queue() = r;
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

}  // namespace

absl::StatusOr<Overlay::SenderEntry*> Overlay::GetSender(const std::string& sender_key) {
  auto it = senders_.find(sender_key);
  if (it != senders_.end()) return &it->second;
  auto v = store_.raw().Get(kSendersCf, sender_key);
  if (!v.ok()) return v.status();
  SenderEntry e;
  if (v->has_value()) {
    v1::SenderSnapshot snapshot;
    if (!snapshot.ParseFromString(**v)) {
      return absl::DataLossError(absl::StrCat("sender record ", sender_key, " does not decode"));
    }
    e.state = FromSnapshot(snapshot);
    e.partition = snapshot.partition();
    e.stored_due = e.state.next_release;
  }
  return &senders_.emplace(sender_key, std::move(e)).first->second;
}

absl::Status Overlay::ApplyLedger(const v1::SendLedgerEntry& entry, int32_t partition) {
  auto sender = GetSender(entry.sender_key());
  if (!sender.ok()) return sender.status();
  SenderEntry& e = **sender;
  const int64_t before = e.state.seq;
  e.state = domain::EvolveSender(std::move(e.state), entry);
  if (e.state.seq == before) return absl::OkStatus();  // folded already (or out of order)
  e.partition = partition;
  e.dirty = true;
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
    if (!e.state.sequence_id.empty()) {  // idempotent puts: cheap, and never missing
      batch.Put(kBySequenceCf, IndexKey(e.state.sequence_id, key), "");
      if (!e.state.owner_id.empty()) batch.Put(kByOwnerCf, IndexKey(e.state.owner_id, key), "");
    }
  }
  for (auto& [key, e] : senders_) {
    if (!e.dirty) continue;
    batch.Put(kSendersCf, key, SerializeDeterministic(ToSnapshot(e.state, e.partition)));
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
