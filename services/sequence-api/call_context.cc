#include "services/sequence-api/call_context.h"

#include <algorithm>
#include <vector>

namespace sequences::api {

absl::Time Ports::ReadDeadline(const CallContext& ctx) const {
  return std::min(ctx.deadline, clock.Now() + options.max_read_wait);
}

std::string Ports::ConsistencyToken(const CallContext& ctx,
                                    absl::Span<const LogPosition> positions) const {
  if (positions.empty()) return "";
  return signer.Sign(ctx.company_id, "consistency", EncodePositions(positions));
}

std::string Ports::ConsistencyToken(const CallContext& ctx, const RequestRecord& seen) const {
  absl::StatusOr<std::vector<LogPosition>> positions = DecodePositions(seen.positions);
  return positions.ok() ? ConsistencyToken(ctx, *positions) : "";
}

absl::Status Ports::WaitForConsistencyToken(const CallContext& ctx,
                                            const std::string& token) const {
  if (token.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> text =
      signer.Verify(ctx.company_id, "consistency", token, "consistency_token");
  if (!text.ok()) return text.status();
  absl::StatusOr<std::vector<LogPosition>> positions = DecodePositions(*text);
  if (!positions.ok()) return positions.status();
  if (positions->empty()) return absl::OkStatus();
  if (read_model.WaitFor(*positions, ReadDeadline(ctx))) return absl::OkStatus();
  if (clock.Now() >= ctx.deadline) {
    return absl::DeadlineExceededError(
        "the read model did not reach the consistency token in time");
  }
  return absl::UnavailableError("the read model has not reached the consistency token yet; retry");
}

absl::StatusOr<std::string> Ports::PageStart(const CallContext& ctx, const std::string& listing,
                                             const std::string& token) const {
  if (token.empty()) return std::string();
  return signer.Verify(ctx.company_id, listing, token, "page_token");
}

}  // namespace sequences::api
