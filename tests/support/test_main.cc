// The one Catch2 main shared by every test binary.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdlib>

int main(int argc, char* argv[]) {
  // A gRPC client with no call in progress reads its sockets only from the backup poller, every
  // 5 s by default. A test's idle channel then answers a stopping sequence-api's GOAWAY ping up to
  // 5 s late, and the server's graceful shutdown waits for it: most of each API test's stop time.
  // Tests poll every 100 ms (read at the first grpc_init, so it must be set before any). An
  // explicit setting in the environment wins.
  setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "100", /*overwrite=*/0);
  return Catch::Session().run(argc, argv);
}
