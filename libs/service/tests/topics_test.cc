#include "libs/service/topics.h"

#include <catch2/catch.hpp>

namespace sequences::service {
namespace {

TEST_CASE("a single broker gets unreplicated topics that accept writes on their one copy") {
  CHECK(ReplicationFor(1).factor == 1);
  CHECK(ReplicationFor(1).min_insync_replicas == 1);
}

TEST_CASE("two brokers get two copies, writable while either copy is in sync") {
  CHECK(ReplicationFor(2).factor == 2);
  CHECK(ReplicationFor(2).min_insync_replicas == 1);
}

TEST_CASE("three or more brokers get three copies, and a write needs two of them") {
  for (int brokers : {3, 4, 9}) {
    INFO(brokers);
    CHECK(ReplicationFor(brokers).factor == 3);
    CHECK(ReplicationFor(brokers).min_insync_replicas == 2);
  }
}

TEST_CASE("a metadata answer listing no broker still yields a valid factor") {
  CHECK(ReplicationFor(0).factor == 1);
}

}  // namespace
}  // namespace sequences::service
