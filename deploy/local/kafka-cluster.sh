#!/usr/bin/env bash
# A real three-node Apache Kafka cluster (KRaft; each node a combined broker+controller) on
# 127.0.0.1, no Docker: the smallest production shape, replication factor 3, min.insync.replicas=2.
#
#   deploy/local/kafka-cluster.sh start          fetch if needed, format new storage, start all
#                                                three, wait until each serves and sees all three
#   deploy/local/kafka-cluster.sh stop           stop every node cleanly
#   deploy/local/kafka-cluster.sh status         exit 0 if all three run and serve
#   deploy/local/kafka-cluster.sh bootstrap      print the bootstrap list (for --bootstrap_servers)
#   deploy/local/kafka-cluster.sh start-node N   start node N (1..3) again on its data, wait until it serves
#   deploy/local/kafka-cluster.sh stop-node N    stop node N cleanly
#   deploy/local/kafka-cluster.sh kill-node N    kill -9 node N
#
# Environment:
#   KAFKA_CLUSTER_PORT  first of six ports (default 9192): node N serves clients on PORT+N-1 and
#                       its controller on PORT+N+2 (9192-9194 and 9195-9197 by default)
#   KAFKA_CLUSTER_DIR   data (default /tmp/sequences-kafka-cluster-$KAFKA_CLUSTER_PORT): node<N>/
#                       with its log dirs, pid file and logs
#   KAFKA_HEAP          JVM heap of each node (default 512m)
#   KAFKA_FRESH=1       wipe the data before starting
#   KAFKA_FLUSH=1       fsync every message before acknowledging it (log.flush.interval.messages=1;
#                       see docs/durability.md)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
base=${KAFKA_CLUSTER_PORT:-9192}
dir=${KAFKA_CLUSTER_DIR:-/tmp/sequences-kafka-cluster-$base}
cache=${SEQUENCES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sequences}
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")
libs=$cache/kafka-$version/libs
nodes=(1 2 3)

log() { echo "kafka-cluster.sh: $*" >&2; }
port_of() { echo $((base + $1 - 1)); }
cport_of() { echo $((base + $1 + 2)); }
bootstrap() {
  local n out=()
  for n in "${nodes[@]}"; do out+=("127.0.0.1:$(port_of "$n")"); done
  (IFS=,; echo "${out[*]}")
}
voters() {
  local n out=()
  for n in "${nodes[@]}"; do out+=("$n@127.0.0.1:$(cport_of "$n")"); done
  (IFS=,; echo "${out[*]}")
}

# Replaces the calling (sub)shell with the JVM, so $! of "(java_cmd ...) &" is the JVM itself.
java_cmd() {
  local node=$1 main=$2
  shift 2
  exec java -Xms"${KAFKA_HEAP:-512m}" -Xmx"${KAFKA_HEAP:-512m}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dkafka.logs.dir="$dir/node$node/logs" \
    -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
    -cp "$libs/*" "$main" "$@"
}

running_pid() {
  local f=$dir/node$1/kafka.pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

# Node N answers a metadata request and lists itself; with "all", lists all three.
serves() {
  local n=$1 want=${2:-self} md
  md=$(kcat -b "127.0.0.1:$(port_of "$n")" -L -m 2 2>/dev/null) || return 1
  if [ "$want" = all ]; then
    [ "$(grep -c '^  broker [0-9]* at ' <<<"$md")" -eq 3 ]
  else
    grep -q "broker $n at 127.0.0.1:$(port_of "$n")" <<<"$md"
  fi
}

write_config() {
  local n=$1 d=$dir/node$1
  mkdir -p "$d/logs"
  cat >"$d/server.properties" <<PROPS
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$(voters)
listeners=PLAINTEXT://127.0.0.1:$(port_of "$n"),CONTROLLER://127.0.0.1:$(cport_of "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(port_of "$n")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$d/kraft
num.partitions=1
auto.create.topics.enable=false
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=8
group.initial.rebalance.delay.ms=0
transaction.abort.timed.out.transaction.cleanup.interval.ms=10000
log.retention.hours=-1
log.segment.bytes=268435456
# A dead node leaves the ISR quickly, so acks=all completes on the two that remain.
replica.lag.time.max.ms=5000
PROPS
  if [ "${KAFKA_FLUSH:-0}" = 1 ]; then
    echo "log.flush.interval.messages=1" >>"$d/server.properties"
  fi
}

start_node() {
  local n=$1 d=$dir/node$1 pid
  if pid=$(running_pid "$n"); then log "node $n already running (pid $pid)"; return 0; fi
  write_config "$n"
  (java_cmd "$n" kafka.Kafka "$d/server.properties") </dev/null >"$d/logs/stdout.log" 2>&1 &
  echo $! >"$d/kafka.pid"
}

wait_serving() {
  local want=$1 t0=$SECONDS n pid ok
  shift
  for _ in $(seq 1 360); do
    ok=1
    for n in "$@"; do
      if ! pid=$(running_pid "$n"); then
        log "node $n exited during start; last lines of its logs:"
        tail -n 30 "$dir/node$n/logs/stdout.log" "$dir/node$n/logs/server.log" 2>/dev/null >&2 || true
        return 1
      fi
      serves "$n" "$want" || ok=0
    done
    if [ $ok = 1 ]; then
      log "Kafka $version node(s) $* serving ($(bootstrap)), ready in $((SECONDS - t0))s, data $dir"
      return 0
    fi
    sleep 0.25
  done
  log "node(s) $* did not serve within 90s; see $dir/node*/logs/server.log"
  return 1
}

start() {
  "$here/kafka.sh" fetch
  if [ "${KAFKA_FRESH:-0}" = 1 ]; then
    local n
    for n in "${nodes[@]}"; do kill_node "$n"; done
    rm -rf "$dir"
  fi
  mkdir -p "$dir"
  if [ ! -f "$dir/cluster.id" ]; then
    # A Kafka Uuid: 16 random bytes, URL-safe base64 without padding, not starting with '-'.
    local id=-
    while [ "${id:0:1}" = - ]; do
      id=$(openssl rand 16 | base64 | tr '+/' '-_' | tr -d '=')
    done
    echo "$id" >"$dir/cluster.id"
  fi
  local n
  for n in "${nodes[@]}"; do
    write_config "$n"
    if [ ! -f "$dir/node$n/kraft/meta.properties" ]; then
      (java_cmd "$n" kafka.tools.StorageTool format -t "$(cat "$dir/cluster.id")" \
        -c "$dir/node$n/server.properties") >/dev/null &
    fi
  done
  wait
  for n in "${nodes[@]}"; do start_node "$n"; done
  if ! wait_serving all "${nodes[@]}"; then stop; return 1; fi
}

stop_node() {
  local n=$1 pid
  if ! pid=$(running_pid "$n"); then rm -f "$dir/node$n/kafka.pid"; return 0; fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 120); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "node $n did not stop within 30s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/node$n/kafka.pid"
}

kill_node() {
  local n=$1 pid
  if ! pid=$(running_pid "$n"); then return 0; fi
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  rm -f "$dir/node$n/kafka.pid"
  log "killed node $n (pid $pid)"
}

stop() {
  # In parallel: a node that stops last waits for no quorum.
  local n
  for n in "${nodes[@]}"; do stop_node "$n" & done
  wait
  log "stopped the cluster on $(bootstrap)"
}

node_arg() {
  case "${1:-}" in
    1 | 2 | 3) echo "$1" ;;
    *) echo "usage: $0 start-node|stop-node|kill-node 1|2|3" >&2; exit 2 ;;
  esac
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    for n in "${nodes[@]}"; do running_pid "$n" >/dev/null && serves "$n" || exit 1; done ;;
  bootstrap) bootstrap ;;
  start-node) n=$(node_arg "${2:-}"); start_node "$n"; wait_serving self "$n" ;;
  stop-node) n=$(node_arg "${2:-}"); stop_node "$n" ;;
  kill-node) n=$(node_arg "${2:-}"); kill_node "$n" ;;
  *) echo "usage: $0 start|stop|status|bootstrap|start-node N|stop-node N|kill-node N" >&2; exit 2 ;;
esac
