#include "services/sequence-api/own_writes.h"

#include <openssl/sha.h>

#include <algorithm>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "libs/domain/errors.h"
#include "sequences/v1/events.pb.h"

namespace sequences::api {

std::string RequestKey(const CallContext& ctx, const std::string& request_id) {
  return absl::StrCat("request\x1f", ctx.company_id, "\x1f", request_id);
}

std::string RequestDigest(absl::string_view method, const google::protobuf::Message& request) {
  std::string encoded;
  {
    google::protobuf::io::StringOutputStream out(&encoded);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    // Fails only for a proto2 message missing required fields; API requests are proto3.
    static_cast<void>(request.SerializeToCodedStream(&coded));
  }
  // The method's length first: no method and encoding can be read as another pair.
  const std::string input = absl::StrCat(method.size(), ":", method, encoded);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

absl::Status MatchPriorRequest(const RequestRecord& seen, absl::string_view resource,
                               absl::string_view digest, absl::FunctionRef<std::string()> field) {
  if (seen.resource != resource) {
    return domain::InvalidField(field(), "was already used for another request");
  }
  if (!digest.empty() && !seen.digest.empty() && seen.digest != digest) {
    // Same resource, another request (another RPC, or other fields): answering it with the first
    // request's result would report a change that was never made.
    return domain::InvalidField(field(),
                                "was already used for a different request (another method or "
                                "other fields); a retry repeats the request unchanged, a new "
                                "request needs a new request id");
  }
  return absl::OkStatus();
}

OwnWrites::Mutation::Mutation(OwnWrites& own, const CallContext& ctx, std::vector<std::string> keys,
                              const std::vector<std::string>& request_ids)
    : own_(own), ctx_(ctx), keys_(std::move(keys)) {
  for (const std::string& id : request_ids) keys_.push_back(RequestKey(ctx, id));
  locked_.reserve(keys_.size());
  for (const std::string& key : keys_) locked_.push_back(absl::HashOf(key));
  std::sort(locked_.begin(), locked_.end());
  locked_.erase(std::unique(locked_.begin(), locked_.end()), locked_.end());
  own_.Lock(locked_);
}

OwnWrites::Mutation::~Mutation() { own_.Unlock(locked_); }

void OwnWrites::Lock(const std::vector<size_t>& keys) {
  absl::MutexLock lock(&locks_mu_);
  auto any_held = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(locks_mu_) {
    for (size_t k : keys) {
      if (held_.contains(k)) return true;
    }
    return false;
  };
  while (any_held()) released_.Wait(&locks_mu_);
  held_.insert(keys.begin(), keys.end());
}

void OwnWrites::Unlock(const std::vector<size_t>& keys) {
  {
    absl::MutexLock lock(&locks_mu_);
    for (size_t k : keys) held_.erase(k);
  }
  released_.SignalAll();
}

absl::Status OwnWrites::Mutation::AwaitOwnWrites(const std::vector<std::string>& also) {
  if (also.empty()) return own_.WaitFor(ctx_, keys_);
  std::vector<std::string> keys = keys_;
  keys.insert(keys.end(), also.begin(), also.end());
  return own_.WaitFor(ctx_, keys);
}

absl::StatusOr<std::optional<RequestRecord>> OwnWrites::Mutation::PriorRequest(
    const std::string& request_id, const std::string& resource, absl::string_view field) {
  return PriorRequest(request_id, resource, field, ctx_.request_digest);
}

absl::StatusOr<std::optional<RequestRecord>> OwnWrites::Mutation::PriorRequest(
    const std::string& request_id, const std::string& resource, absl::string_view field,
    absl::string_view digest) {
  absl::StatusOr<std::optional<RequestRecord>> seen =
      own_.ports_.read_model.LookupRequest(ctx_.company_id, request_id);
  if (!seen.ok()) return seen.status();
  if (!seen->has_value()) return seen;
  if (absl::Status s =
          MatchPriorRequest(**seen, resource, digest, [field] { return std::string(field); });
      !s.ok()) {
    return s;
  }
  return seen;
}

absl::StatusOr<std::vector<std::optional<RequestRecord>>> OwnWrites::Mutation::PriorRequests(
    absl::Span<const std::string> request_ids) {
  return own_.ports_.read_model.LookupRequests(ctx_.company_id, request_ids);
}

std::vector<absl::StatusOr<LogPosition>> OwnWrites::Mutation::AppendEach(
    const std::vector<kafka::Record>& records, const std::vector<RecordKeys>& keys_of_record) {
  const ApiOptions& options = own_.ports_.options;
  // What is written must be readable: every reader decodes an Envelope from the value. The
  // decoded copies live in one arena, freed at once.
  std::vector<absl::StatusOr<LogPosition>> results(records.size());
  std::vector<size_t> writable_index;
  writable_index.reserve(records.size());
  {
    google::protobuf::Arena arena;
    for (size_t i = 0; i < records.size(); ++i) {
      v1::Envelope* decoded = google::protobuf::Arena::CreateMessage<v1::Envelope>(&arena);
      if (records[i].value.size() > options.max_record_bytes) {
        results[i] = domain::InvalidField(
            "request",
            absl::StrCat("is too large: the event it writes would be ", records[i].value.size(),
                         " bytes, at most ", options.max_record_bytes));
      } else if (!decoded->ParseFromString(records[i].value)) {
        results[i] = absl::InternalError("refusing to write an event that readers cannot decode");
      } else if (!ctx_.request_digest.empty() && !decoded->correlation_id().empty() &&
                 decoded->request_digest().empty()) {
        // Without it a retry under this request id with other fields would be answered as this.
        results[i] = absl::InternalError("refusing to write a command without its request digest");
      } else {
        writable_index.push_back(i);
      }
    }
  }
  std::vector<absl::StatusOr<LogPosition>> written;
  if (!writable_index.empty()) {
    // Every key of a record on its way is unsettled until the record's outcome is known: here,
    // or later from the log when the call's deadline comes first (DEADLINE_EXCEEDED).
    // One copy of the keys, shared with the late callback (which may outlive this call).
    auto writable_keys = std::make_shared<std::vector<std::vector<std::string>>>();
    writable_keys->reserve(writable_index.size());
    for (size_t i : writable_index) {
      writable_keys->emplace_back(keys_of_record[i].begin(), keys_of_record[i].end());
    }
    {
      absl::MutexLock lock(&own_.unsettled_->mu);
      for (const auto& keys : *writable_keys) {
        for (const std::string& key : keys) ++own_.unsettled_->unknown[key];
      }
    }
    std::shared_ptr<Unsettled> unsettled = own_.unsettled_;
    auto late = [unsettled, writable_keys](size_t k, absl::StatusOr<LogPosition> result) {
      absl::MutexLock lock(&unsettled->mu);
      if (k < writable_keys->size()) {
        unsettled->Settle((*writable_keys)[k], result.ok() ? &*result : nullptr);
      }
    };
    if (writable_index.size() == records.size()) {
      written = own_.ports_.log.Append(records, ctx_.deadline, late);
    } else {
      std::vector<kafka::Record> writable;
      writable.reserve(writable_index.size());
      for (size_t i : writable_index) writable.push_back(records[i]);
      written = own_.ports_.log.Append(writable, ctx_.deadline, late);
    }
    absl::MutexLock lock(&own_.unsettled_->mu);
    for (size_t k = 0; k < written.size(); ++k) {
      // A DEADLINE_EXCEEDED record settles through the late callback; the others now (their
      // positions are noted below as this call's writes).
      if (absl::IsDeadlineExceeded(written[k].status())) continue;
      own_.unsettled_->Settle((*writable_keys)[k], nullptr);
    }
  }
  absl::MutexLock lock(&own_.mu_);
  for (size_t k = 0; k < written.size(); ++k) {
    const size_t i = writable_index[k];
    results[i] = std::move(written[k]);
    if (!results[i].ok()) continue;
    for (absl::string_view key : keys_of_record[i]) own_.NoteLocked(key, *results[i]);
  }
  return results;
}

absl::StatusOr<std::vector<LogPosition>> OwnWrites::Mutation::Append(
    const std::vector<kafka::Record>& records) {
  const RecordKeys all(keys_.begin(), keys_.end());
  std::vector<absl::StatusOr<LogPosition>> results =
      AppendEach(records, std::vector<RecordKeys>(records.size(), all));
  std::vector<LogPosition> positions;
  for (auto& r : results) {
    if (!r.ok()) return r.status();
    positions.push_back(*r);
  }
  return positions;
}

void OwnWrites::Unsettled::Settle(const std::vector<std::string>& keys,
                                  const LogPosition* landed_late) {
  for (const std::string& key : keys) {
    if (landed_late != nullptr) landed[key].push_back(*landed_late);
    auto it = unknown.find(key);
    if (it != unknown.end() && --it->second <= 0) unknown.erase(it);
  }
}

absl::Status OwnWrites::WaitFor(const CallContext& ctx, const std::vector<std::string>& keys) {
  std::vector<std::pair<std::string, LogPosition>> landed;  // key, position
  {
    // An earlier write about these keys whose outcome its call did not learn: wait for it, then
    // treat it as this process's write if it landed.
    Unsettled& u = *unsettled_;
    absl::MutexLock lock(&u.mu);
    auto settled = [&u, &keys]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(u.mu) {
      for (const std::string& key : keys) {
        if (u.unknown.contains(key)) return false;
      }
      return true;
    };
    if (!u.mu.AwaitWithDeadline(absl::Condition(&settled), ports_.ReadDeadline(ctx))) {
      const std::string why =
          "an earlier write of this request or resource has no answer from the broker yet";
      if (ports_.clock.Now() >= ctx.deadline) return absl::DeadlineExceededError(why);
      return absl::UnavailableError(absl::StrCat(why, "; retry"));
    }
    for (const std::string& key : keys) {
      auto it = u.landed.find(key);
      if (it == u.landed.end()) continue;
      for (const LogPosition& p : it->second) landed.emplace_back(key, p);
      u.landed.erase(it);
    }
  }
  std::vector<LogPosition> positions;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, p] : landed) NoteLocked(key, p);
    for (const std::string& key : keys) {
      auto it = written_.find(key);
      if (it != written_.end())
        positions.insert(positions.end(), it->second.begin(), it->second.end());
    }
  }
  if (positions.empty()) return absl::OkStatus();
  if (ports_.read_model.WaitFor(positions, ports_.ReadDeadline(ctx))) return absl::OkStatus();
  if (ports_.clock.Now() >= ctx.deadline) {
    return absl::DeadlineExceededError("the read model did not catch up in time");
  }
  return absl::UnavailableError("the read model is behind the log; retry");
}

void OwnWrites::NoteLocked(absl::string_view key, const LogPosition& position) {
  constexpr size_t kPruneAbove = 100000;
  if (written_.size() > kPruneAbove) {
    // Forget keys whose writes the read model has applied: waiting for them is a no-op.
    std::vector<LogPosition> applied = ports_.read_model.AppliedPositions();  // next to apply
    auto is_applied = [&](const LogPosition& p) {
      for (const LogPosition& a : applied) {
        if (a.topic == p.topic && a.partition == p.partition) return p.offset < a.offset;
      }
      return false;
    };
    absl::erase_if(written_, [&](const auto& entry) {
      return std::all_of(entry.second.begin(), entry.second.end(), is_applied);
    });
  }
  std::vector<LogPosition>& positions = written_.try_emplace(key).first->second;
  for (LogPosition& p : positions) {
    if (p.topic == position.topic && p.partition == position.partition) {
      p.offset = std::max(p.offset, position.offset);
      return;
    }
  }
  positions.push_back(position);
}

}  // namespace sequences::api
