#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft, combined broker+controller) on 127.0.0.1, no Docker.
#
#   deploy/local/kafka.sh fetch    resolve the broker's jars with Maven into the cache (once)
#   deploy/local/kafka.sh start    fetch if needed, format storage if new, start, wait until it serves
#   deploy/local/kafka.sh stop     stop it cleanly (SIGTERM, then SIGKILL after a grace period)
#   deploy/local/kafka.sh status   exit 0 if it is running and answers metadata requests
#
# Environment:
#   KAFKA_PORT        client port (default 9092); the controller listens on KAFKA_PORT+1
#   KAFKA_DATA_DIR    log dirs, pid file and server.log (default /tmp/sequences-kafka-$KAFKA_PORT)
#   SEQUENCES_CACHE   where the jars go (default ${XDG_CACHE_HOME:-$HOME/.cache}/sequences)
#   KAFKA_HEAP        JVM heap (default 768m)
#   KAFKA_FRESH=1     wipe the data directory before starting
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
port=${KAFKA_PORT:-9092}
cport=$((port + 1))
data=${KAFKA_DATA_DIR:-/tmp/sequences-kafka-$port}
cache=${SEQUENCES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sequences}
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")
libs=$cache/kafka-$version/libs
pidfile=$data/kafka.pid

log() { echo "kafka.sh: $*" >&2; }
exec_or_run() { "$@"; }

fetch() {
  if [ -f "$libs/.complete" ]; then return 0; fi
  log "fetching Kafka $version jars with Maven into $libs"
  rm -rf "$libs"
  mkdir -p "$libs"
  mvn -q -B -Dstyle.color=never -f "$here/kafka/pom.xml" \
    -Dmaven.repo.local="$cache/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs"
  touch "$libs/.complete"
}

running_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

serves() {
  # A metadata round trip that lists this broker: the broker is accepting and answering requests.
  kcat -b "127.0.0.1:$port" -L -m 2 2>/dev/null | grep -q "broker 1 at 127.0.0.1:$port"
}

java_cmd() {
  local main=$1
  shift
  exec_or_run java -Xms"${KAFKA_HEAP:-768m}" -Xmx"${KAFKA_HEAP:-768m}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true \
    -Dkafka.logs.dir="$data/logs" \
    -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
    -cp "$libs/*" "$main" "$@"
}

write_config() {
  mkdir -p "$data/logs"
  cat >"$data/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data/kraft
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
group.initial.rebalance.delay.ms=0
transaction.abort.timed.out.transaction.cleanup.interval.ms=10000
log.retention.hours=-1
log.segment.bytes=268435456
PROPS
}

start() {
  if pid=$(running_pid); then
    if serves; then log "already running (pid $pid) on 127.0.0.1:$port"; return 0; fi
  fi
  fetch
  if [ "${KAFKA_FRESH:-0}" = 1 ]; then rm -rf "$data"; fi
  write_config
  if [ ! -f "$data/kraft/meta.properties" ]; then
    local id
    id=$(java_cmd kafka.tools.StorageTool random-uuid)
    java_cmd kafka.tools.StorageTool format -t "$id" -c "$data/server.properties" >/dev/null
  fi
  local t0=$SECONDS
  # exec in the background subshell, so $! is the JVM itself.
  (exec_or_run() { exec "$@"; }; java_cmd kafka.Kafka "$data/server.properties") \
    </dev/null >"$data/logs/stdout.log" 2>&1 &
  echo $! >"$pidfile"
  local pid
  pid=$(cat "$pidfile")
  for _ in $(seq 1 240); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "broker exited during start; last lines of $data/logs:"
      tail -n 30 "$data/logs/stdout.log" "$data/logs/server.log" 2>/dev/null >&2 || true
      return 1
    fi
    if serves; then
      log "Kafka $version serving on 127.0.0.1:$port (pid $pid, ready in $((SECONDS - t0))s, data $data)"
      return 0
    fi
    sleep 0.25
  done
  log "broker did not serve within 60s; see $data/logs/server.log"
  stop
  return 1
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$pidfile"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 120); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "broker did not stop within 30s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  log "stopped broker on 127.0.0.1:$port"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) running_pid >/dev/null && serves ;;
  *) echo "usage: $0 fetch|start|stop|status" >&2; exit 2 ;;
esac
