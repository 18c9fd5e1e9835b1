#ifndef SEQUENCES_TESTS_E2E_API_API_PROCESS_H_
#define SEQUENCES_TESTS_E2E_API_API_PROCESS_H_

// A real sequence-api process for e2e tests, and clients for it.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "sequences/v1/enrollment_service.grpc.pb.h"
#include "sequences/v1/operations_service.grpc.pb.h"
#include "sequences/v1/sequence_service.grpc.pb.h"
#include "tests/support/process.h"

namespace sequences::testing {

inline constexpr char kApiToken[] = "e2e-secret";

class ApiProcess {
 public:
  // Starts sequence-api on a port it picks (127.0.0.1:0) with its own topics (`topic_prefix`) and
  // read-model directory, and waits until it serves. REQUIREs success.
  ApiProcess(const std::string& topic_prefix, const std::string& data_dir,
             std::vector<std::string> extra_flags = {});
  ~ApiProcess();

  std::string address() const { return address_; }
  ChildProcess& process() { return *process_; }
  v1::SequenceService::Stub& sequences() { return *sequences_; }
  v1::EnrollmentService::Stub& enrollments() { return *enrollments_; }
  v1::Operations::Stub& operations() { return *operations_; }

 private:
  std::string address_;
  std::unique_ptr<ChildProcess> process_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::SequenceService::Stub> sequences_;
  std::unique_ptr<v1::EnrollmentService::Stub> enrollments_;
  std::unique_ptr<v1::Operations::Stub> operations_;
};

// A client context acting for `company`/`user` with the deployment's token and a deadline.
std::unique_ptr<grpc::ClientContext> CallAs(const std::string& company,
                                            const std::string& user = "u1",
                                            double deadline_seconds = 20,
                                            const std::string& token = kApiToken);

}  // namespace sequences::testing

#endif  // SEQUENCES_TESTS_E2E_API_API_PROCESS_H_
