#!/usr/bin/env bash
# Builds the Kafka Streams peer (target/kafka-streams-peer.jar and target/libs/) with Maven. The
# local Maven repository is the project's cache ($SEQUENCES_CACHE/m2, as deploy/local/kafka.sh):
# the first build downloads kafka-streams, protobuf-java and the build plugins from Maven Central,
# later builds run offline. Needs Debian's protoc and a JDK 17 (deploy/local/install-deps.sh --bench).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${SEQUENCES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sequences}
jar=$here/target/kafka-streams-peer.jar
# Up to date: nothing in the pom, the sources or the repo's protos is newer than the jar.
if [ -f "$jar" ] && [ -z "$(find "$here/pom.xml" "$here/src" "$here/../../../../proto/sequences/v1" \
  -newer "$jar" -print -quit)" ]; then
  exit 0
fi
mvn_args=(-q -B -Dstyle.color=never -f "$here/pom.xml" -Dmaven.repo.local="$cache/m2")
if [ -f "$cache/m2/.kafka-streams-peer-resolved" ]; then
  # Everything was resolved once: no network needed (falls back to online if that fails).
  mvn "${mvn_args[@]}" -o package || mvn "${mvn_args[@]}" package
else
  mvn "${mvn_args[@]}" package
  touch "$cache/m2/.kafka-streams-peer-resolved"
fi
