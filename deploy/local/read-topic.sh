#!/usr/bin/env bash
# Prints the records of a sequences topic, decoded as sequences.v1.Envelope (protobuf text format;
# sequences.v1.EnrollmentUpdate for the public enrollment-updates topic),
# read with kcat at isolation level read_committed: exactly what the task service and the mailer
# see (records of aborted transactions never show).
#
#   deploy/local/read-topic.sh sequences.task-events
#   BOOTSTRAP=127.0.0.1:19092 deploy/local/read-topic.sh sequences.email-events
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
topic=${1:?usage: read-topic.sh <topic>}
bootstrap=${BOOTSTRAP:-127.0.0.1:${KAFKA_PORT:-9092}}
googleapis=/usr/share/gocode/src/github.com/gogo/googleapis
committed=(-X isolation.level=read_committed)

message=sequences.v1.Envelope
proto_file=$root/proto/sequences/v1/events.proto
if [[ $topic == *enrollment-updates ]]; then
  message=sequences.v1.EnrollmentUpdate
  proto_file=$root/proto/sequences/v1/enrollment_updates.proto
fi

# Values are binary protobuf: list positions first, then decode one record at a time.
positions=$(kcat -C -b "$bootstrap" -t "$topic" -o beginning -e -q "${committed[@]}" \
  -f '%p:%o:%k\n' 2>/dev/null || true)
for pos in $positions; do
  IFS=: read -r p o k <<<"$pos"
  echo "--- $topic partition $p offset $o key $k"
  kcat -C -b "$bootstrap" -t "$topic" -p "$p" -o "$o" -c 1 -q "${committed[@]}" -f '%s' \
    2>/dev/null |
    protoc --decode="$message" -I "$root/proto" -I "$googleapis" "$proto_file"
done
