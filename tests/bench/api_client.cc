#include "tests/bench/api_client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "sequences/v1/enrollment_service.grpc.pb.h"

namespace sequences::bench {

absl::StatusOr<Figures> ApiBatchEnroll(const ApiTarget& api, const std::string& parent, int batch,
                                       int repeats, const std::string& tag) {
  auto stub = v1::EnrollmentService::NewStub(
      grpc::CreateChannel(api.address, grpc::InsecureChannelCredentials()));
  Histogram latency;
  int ok_calls = 0;
  int accepted = 0;
  for (int call = 0; call < repeats; ++call) {
    v1::BatchEnrollRequest req;
    req.set_parent(parent);
    req.mutable_items()->Reserve(batch);
    for (int i = 0; i < batch; ++i) {
      v1::EnrollItem* item = req.add_items();
      item->set_entity_kind(v1::ENTITY_KIND_DEAL);
      item->set_item_id(absl::StrCat(tag, "-", call, "-", i));
      item->set_request_id(item->item_id());
    }
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", api.token));
    ctx.AddMetadata("x-sequences-company", api.company);
    ctx.AddMetadata("x-sequences-user", api.user);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::BatchEnrollResponse resp;
    const absl::Time start = absl::Now();
    grpc::Status s = stub->BatchEnroll(&ctx, req, &resp);
    latency.Add(absl::Now() - start);
    if (!s.ok()) continue;
    ++ok_calls;
    accepted += resp.accepted_count();
  }
  if (ok_calls == 0) return absl::UnavailableError("no BatchEnroll call succeeded");
  Figures f = latency.Summary("latency_ms");
  f["batch"] = batch;
  f["ok"] = ok_calls;
  f["accepted_per_call"] = static_cast<double>(accepted) / ok_calls;
  return f;
}

}  // namespace sequences::bench
