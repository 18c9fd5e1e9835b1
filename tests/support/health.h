#ifndef SEQUENCES_TESTS_SUPPORT_HEALTH_H_
#define SEQUENCES_TESTS_SUPPORT_HEALTH_H_

// The standard gRPC health check of a service under test, without generated health-proto code.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace sequences::testing {

// grpc.health.v1.Health/Check of service "" at `address`: "SERVING", "NOT_SERVING", "UNKNOWN",
// "SERVICE_UNKNOWN", or "error: <grpc status>" when the call fails. Sent as raw bytes (the
// request with an empty service name is empty on the wire; the response is field 1, an enum), so
// the tests need no generated code of the health proto.
inline std::string HealthOf(const std::string& address, absl::Duration timeout = absl::Seconds(2)) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::Slice empty{std::string()};
  grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (!status.ok())
    return absl::StrCat("error: ", status.error_code(), " ", status.error_message());
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (response.Dump(&slices).ok()) {
    for (const grpc::Slice& sl : slices) {
      bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
    }
  }
  const int value = bytes.size() >= 2 && bytes[0] == 0x08 ? bytes[1] : 0;
  switch (value) {
    case 1:
      return "SERVING";
    case 2:
      return "NOT_SERVING";
    case 3:
      return "SERVICE_UNKNOWN";
    default:
      return "UNKNOWN";
  }
}

// Polls HealthOf until it answers `want` (true) or `timeout` passes (false).
inline bool WaitForHealth(const std::string& address, const std::string& want,
                          absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    if (HealthOf(address) == want) return true;
    absl::SleepFor(absl::Milliseconds(250));
  }
  return false;
}

}  // namespace sequences::testing

#endif  // SEQUENCES_TESTS_SUPPORT_HEALTH_H_
