#!/usr/bin/env bash
# Runs the built Kafka Streams peer (build.sh) in this process (exec: the caller's pid is the
# JVM's, for memory and kill -9). Arguments: see StreamsPeer.java (--bootstrap, --topic_prefix,
# --state_dir, --instance_id, ...). PEER_HEAP sets the JVM's maximum heap (default 384m);
# PEER_LOG_LEVEL the log level of Kafka's clients (default warn; info shows rebalances, restores).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec java -Xmx"${PEER_HEAP:-384m}" -XX:+UseG1GC -Djava.awt.headless=true \
  -Dorg.slf4j.simpleLogger.defaultLogLevel="${PEER_LOG_LEVEL:-warn}" \
  -Dorg.slf4j.simpleLogger.showDateTime=true \
  -cp "$here/target/kafka-streams-peer.jar:$here/target/libs/*" sequences.peer.StreamsPeer "$@"
