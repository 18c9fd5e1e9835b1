// sequence-api over mutual TLS (tier e2e): the real binary serving with a server certificate and
// requiring client certificates of a configured CA; certificates made with the openssl CLI.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "tests/e2e/api/api_process.h"
#include "tests/support/kafka_env.h"
#include "tests/support/process.h"

namespace sequences::testing {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void Run(const std::string& command) {
  INFO(command);
  REQUIRE(std::system((command + " >/dev/null 2>&1").c_str()) == 0);
}

// A CA and a certificate it signs (`subject`, with an IP SAN when `ip`), in `dir`/<name>.{key,pem}.
void MakeCa(const std::string& dir, const std::string& name) {
  Run(absl::StrCat("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=", name,
                   " -keyout ", dir, "/", name, ".key -out ", dir, "/", name, ".pem"));
}
void MakeCert(const std::string& dir, const std::string& ca, const std::string& name,
              const std::string& san) {
  Run(absl::StrCat("openssl req -newkey rsa:2048 -nodes -subj /CN=", name, " -keyout ", dir, "/",
                   name, ".key -out ", dir, "/", name, ".csr"));
  std::ofstream(absl::StrCat(dir, "/", name, ".ext")) << "subjectAltName=" << san << "\n";
  Run(absl::StrCat("openssl x509 -req -days 2 -in ", dir, "/", name, ".csr -CA ", dir, "/", ca,
                   ".pem -CAkey ", dir, "/", ca, ".key -CAcreateserial -extfile ", dir, "/", name,
                   ".ext -out ", dir, "/", name, ".pem"));
}

// A channel to `address` trusting `dir`/ca.pem, presenting `client` (none if empty).
std::unique_ptr<v1::SequenceService::Stub> Client(const std::string& address,
                                                  const std::string& dir,
                                                  const std::string& client) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = Read(dir + "/ca.pem");
  if (!client.empty()) {
    options.pem_private_key = Read(absl::StrCat(dir, "/", client, ".key"));
    options.pem_cert_chain = Read(absl::StrCat(dir, "/", client, ".pem"));
  }
  return v1::SequenceService::NewStub(grpc::CreateChannel(address, grpc::SslCredentials(options)));
}

grpc::Status ListAs(v1::SequenceService::Stub& stub) {
  v1::ListSequencesRequest req;
  req.set_parent("companies/acme");
  v1::ListSequencesResponse resp;
  return stub.ListSequences(CallAs("acme", "u1", 10).get(), req, &resp);
}

TEST_CASE("with mutual TLS, only clients with a certificate of the configured CA are served") {
  const std::string dir = TempDir("api-tls");
  MakeCa(dir, "ca");
  MakeCa(dir, "other-ca");
  MakeCert(dir, "ca", "server", "DNS:localhost,IP:127.0.0.1");
  MakeCert(dir, "ca", "crm-service", "DNS:crm-service.internal");
  MakeCert(dir, "other-ca", "intruder", "DNS:crm-service.internal");

  ApiProcess api(UniqueName("tls") + ".", dir + "/data",
                 {"--tls_cert=" + dir + "/server.pem", "--tls_key=" + dir + "/server.key",
                  "--tls_client_ca=" + dir + "/ca.pem"});

  auto good = Client(api.address(), dir, "crm-service");
  grpc::Status s = ListAs(*good);
  INFO(s.error_message());
  CHECK(s.ok());
  // The caller's certificate identity is logged with its call.
  CHECK(api.process().WaitForLog("crm-service.internal", absl::Seconds(5)));

  auto anonymous = Client(api.address(), dir, "");
  CHECK(ListAs(*anonymous).error_code() == grpc::StatusCode::UNAVAILABLE);
  auto intruder = Client(api.address(), dir, "intruder");
  CHECK(ListAs(*intruder).error_code() == grpc::StatusCode::UNAVAILABLE);
  // Plaintext is not served at all.
  CHECK(ListAs(api.sequences()).error_code() == grpc::StatusCode::UNAVAILABLE);
  // The certificate does not replace the bearer token.
  v1::ListSequencesRequest req;
  req.set_parent("companies/acme");
  v1::ListSequencesResponse resp;
  CHECK(
      good->ListSequences(CallAs("acme", "u1", 10, "wrong-token").get(), req, &resp).error_code() ==
      grpc::StatusCode::UNAUTHENTICATED);
}

}  // namespace
}  // namespace sequences::testing
