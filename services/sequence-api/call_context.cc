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

}  // namespace sequences::api
