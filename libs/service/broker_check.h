#ifndef SEQUENCES_LIBS_SERVICE_BROKER_CHECK_H_
#define SEQUENCES_LIBS_SERVICE_BROKER_CHECK_H_

#include "absl/status/status.h"
#include "libs/kafka/types.h"

namespace sequences::service {

// Connects to the broker and checks that it enables the protocol features exactly-once needs
// (MsgVer2, IdempotentProducer, BrokerGroupCoordinator), logging what it found. FailedPrecondition
// names the missing features; Unavailable if the broker cannot be reached.
absl::Status CheckBroker(const kafka::ClientConfig& config);

}  // namespace sequences::service

#endif  // SEQUENCES_LIBS_SERVICE_BROKER_CHECK_H_
