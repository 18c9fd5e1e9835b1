#include "services/sequence-api/watch.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/domain/errors.h"
#include "services/sequence-api/call_checks.h"

namespace sequences::api {
namespace {

constexpr char kFilterRule[] =
    "set exactly one filter: sequence, entity_kind with item_id, or owner_id";

absl::Status NotResumable() {
  return domain::InvalidField("resume_token",
                              "is not a token returned by a watch with this parent and filter");
}

}  // namespace

std::string EncodeWatchCursor(const WatchCursor& cursor) {
  std::vector<std::string> entries;
  for (const auto& [partition, next] : cursor)
    entries.push_back(absl::StrCat(partition, ":", next));
  return absl::StrJoin(entries, ",");
}

absl::StatusOr<WatchCursor> DecodeWatchCursor(absl::string_view text) {
  WatchCursor cursor;
  if (text.empty()) return cursor;
  for (absl::string_view entry : absl::StrSplit(text, ',')) {
    std::pair<absl::string_view, absl::string_view> f =
        absl::StrSplit(entry, absl::MaxSplits(':', 1));
    int32_t partition = 0;
    int64_t next = 0;
    if (!absl::SimpleAtoi(f.first, &partition) || !absl::SimpleAtoi(f.second, &next) ||
        partition < 0 || next < 0 || !cursor.emplace(partition, next).second) {
      return NotResumable();
    }
  }
  return cursor;
}

WatchStream::WatchStream(const Ports& ports, std::string company_id, std::string purpose,
                         WatchCursor cursor, std::vector<WatchChange> backlog,
                         std::shared_ptr<WatchSubscription> subscription)
    : ports_(ports),
      company_id_(std::move(company_id)),
      purpose_(std::move(purpose)),
      cursor_(std::move(cursor)),
      backlog_(std::move(backlog)),
      subscription_(std::move(subscription)) {}

WatchStream::~WatchStream() {
  subscription_->ClearWaker();
  ports_.read_model.watch_hub().Unsubscribe(subscription_);
}

std::optional<v1::WatchEnrollmentsResponse> WatchStream::Deliver(WatchChange change) {
  // A change before the cursor was delivered already (from the change log or an earlier watch).
  auto it = cursor_.find(change.partition);
  if (it != cursor_.end() && change.offset < it->second) return std::nullopt;
  cursor_[change.partition] = change.offset + 1;
  v1::WatchEnrollmentsResponse out;
  *out.mutable_update() = std::move(change.update);
  out.set_resume_token(ports_.signer.Sign(company_id_, purpose_, EncodeWatchCursor(cursor_)));
  return out;
}

absl::StatusOr<std::optional<v1::WatchEnrollmentsResponse>> WatchStream::TryNext() {
  while (backlog_next_ < backlog_.size()) {
    std::optional<v1::WatchEnrollmentsResponse> m = Deliver(std::move(backlog_[backlog_next_++]));
    if (backlog_next_ == backlog_.size()) backlog_.clear(), backlog_next_ = 0;
    if (m.has_value()) return m;
  }
  while (std::optional<WatchChange> c = subscription_->TryPop()) {
    std::optional<v1::WatchEnrollmentsResponse> m = Deliver(std::move(*c));
    if (m.has_value()) return m;
  }
  switch (subscription_->end()) {
    case WatchSubscription::End::kNone:
      return std::optional<v1::WatchEnrollmentsResponse>();
    case WatchSubscription::End::kOverflow:
      return absl::ResourceExhaustedError(
          "the watch fell too far behind (the server queues a bounded number of changes per "
          "watch): resume from the last resume_token");
    case WatchSubscription::End::kClosed:
      break;
  }
  return absl::UnavailableError("the server is shutting down: resume from the last resume_token");
}

absl::StatusOr<std::optional<v1::WatchEnrollmentsResponse>> WatchStream::Next(absl::Time deadline) {
  while (true) {
    absl::StatusOr<std::optional<v1::WatchEnrollmentsResponse>> m = TryNext();
    if (!m.ok() || m->has_value()) return m;
    if (!subscription_->Wait(deadline)) return m;
  }
}

absl::StatusOr<std::unique_ptr<WatchStream>> Watches::Start(
    const CallContext& ctx, const v1::WatchEnrollmentsRequest& req) {
  absl::StatusOr<std::string> company = ParseOwnCompany(ctx, req.parent(), "parent");
  if (!company.ok()) return company.status();
  const bool by_item = req.entity_kind() != v1::ENTITY_KIND_UNSPECIFIED || !req.item_id().empty();
  const int filters =
      (req.sequence().empty() ? 0 : 1) + (by_item ? 1 : 0) + (req.owner_id().empty() ? 0 : 1);
  if (filters == 0) return domain::InvalidField("sequence", kFilterRule);
  if (filters > 1) {
    // Name every filter after the first one set.
    domain::FieldViolations v;
    if (!req.sequence().empty() && by_item) {
      v.Add(req.item_id().empty() ? "entity_kind" : "item_id", kFilterRule);
    }
    if (!req.owner_id().empty()) v.Add("owner_id", kFilterRule);
    return v.ToStatus("a watch follows one filter");
  }
  WatchFilter filter;
  filter.company_id = *company;
  std::string purpose;
  if (!req.sequence().empty()) {
    absl::StatusOr<SequenceName> n = ParseOwnSequence(ctx, req.sequence(), "sequence");
    if (!n.ok()) return n.status();
    absl::StatusOr<domain::SequenceState> seq =
        LoadOwnSequence(ports_.read_model, ctx, n->sequence_id);
    if (!seq.ok()) return seq.status();
    filter.sequence_id = n->sequence_id;
    purpose = absl::StrCat("watch/", req.parent(), "/sequence/", n->sequence_id);
  } else if (by_item) {
    domain::FieldViolations v;
    absl::StatusOr<std::string> item_key =
        OwnItemKey(ctx, req.parent(), req.entity_kind(), req.item_id(), v);
    if (!item_key.ok()) return item_key.status();
    if (!v.empty()) return v.ToStatus("invalid item");
    filter.item_key = *item_key;
    purpose = absl::StrCat("watch/", req.parent(), "/item/", *item_key);
  } else {
    if (!IsValidUserId(req.owner_id())) return domain::InvalidField("owner_id", kUserIdRule);
    filter.owner_id = req.owner_id();
    purpose = absl::StrCat("watch/", req.parent(), "/owner/", req.owner_id());
  }
  std::optional<WatchCursor> resume;
  if (!req.resume_token().empty()) {
    absl::StatusOr<std::string> body =
        ports_.signer.Verify(ctx.company_id, purpose, req.resume_token(), "resume_token");
    if (!body.ok()) return body.status();
    absl::StatusOr<WatchCursor> cursor = DecodeWatchCursor(*body);
    if (!cursor.ok()) return cursor.status();
    resume = std::move(*cursor);
  }
  if (ports_.read_model.watch_hub().subscribers(filter.company_id) >=
      ports_.options.max_watches_per_company) {
    return absl::ResourceExhaustedError(
        absl::StrCat("this company has ", ports_.options.max_watches_per_company,
                     " watches open, the most it may: close one first"));
  }
  // Subscribe first, then read the change log: a change is in the store, in the queue, or both
  // (the cursor drops the second copy); never in neither.
  WatchCursor published;
  std::shared_ptr<WatchSubscription> sub = ports_.read_model.watch_hub().Subscribe(
      filter, ports_.options.watch_queue_capacity, &published);
  std::vector<WatchChange> backlog;
  WatchCursor cursor = std::move(published);
  if (resume.has_value()) {
    absl::StatusOr<std::vector<WatchChange>> since =
        ports_.read_model.ChangesSince(filter, *resume);
    if (!since.ok()) {
      ports_.read_model.watch_hub().Unsubscribe(sub);
      return since.status();
    }
    backlog = std::move(*since);
    cursor = std::move(*resume);
  }
  return std::make_unique<WatchStream>(ports_, ctx.company_id, std::move(purpose),
                                       std::move(cursor), std::move(backlog), std::move(sub));
}

}  // namespace sequences::api
