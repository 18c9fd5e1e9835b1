// The one Catch2 main shared by every test binary.
#define CATCH_CONFIG_RUNNER
// Catch's console reporter indents a test name's wrapped lines to just after its first ": ". Our
// names are sentences, many with that ": " past the 80th column: the indent then exceeds the width,
// and reporting a failure died in the reporter (basic_string::substr out_of_range) instead of
// saying what failed. Wide enough that no name wraps under an indent larger than the width (the
// reporter is only in this translation unit, the one that includes Catch's implementation).
#define CATCH_CONFIG_CONSOLE_WIDTH 400
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
