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
#   KAFKA_JVM_FLAGS   extra JVM flags (the private test brokers add -XX:TieredStopAtLevel=1)
#   KAFKA_CDS         1 (default), use or 0: the class data sharing archive (see cds_flags below)
#   KAFKA_BROKER_SESSION_MS  the controller's session of its broker (broker.session.timeout.ms,
#                     Kafka's default 9000; heartbeats every quarter of it). After kill -9 the
#                     restarted broker cannot register until the dead one's session has ended, so
#                     test brokers that are killed and restarted set it low (tests/support/broker.cc)
#   KAFKA_FLUSH=1     fsync every message before acknowledging it (log.flush.interval.messages=1;
#                     see docs/durability.md)
#   KAFKA_SECURITY    PLAINTEXT (default) or SASL_SSL: the client port then speaks TLS (a
#                     self-signed CA and a broker certificate for 127.0.0.1/localhost, made with
#                     openssl when storage is formatted) and requires a SCRAM-SHA-512 login. The
#                     users are created in the KRaft metadata at format time: "admin" (the broker
#                     itself) and KAFKA_SASL_USER (default "sequences"). What clients need lands in
#                     $KAFKA_DATA_DIR/security: ca.pem, and <user>.password (KAFKA_SASL_PASSWORD,
#                     default a random one).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
port=${KAFKA_PORT:-9092}
cport=$((port + 1))
data=${KAFKA_DATA_DIR:-/tmp/sequences-kafka-$port}
cache=${SEQUENCES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sequences}
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")
libs=$cache/kafka-$version/libs
pidfile=$data/kafka.pid
security=$(echo "${KAFKA_SECURITY:-PLAINTEXT}" | tr '[:lower:]' '[:upper:]')
sec=$data/security
sasl_user=${KAFKA_SASL_USER:-sequences}
case "$security" in
  PLAINTEXT | SASL_SSL) ;;
  *) echo "kafka.sh: KAFKA_SECURITY must be PLAINTEXT or SASL_SSL, not $security" >&2; exit 2 ;;
esac

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

# librdkafka settings of a client logged in as the broker's own admin user (kcat -X ...).
client_args() {
  [ "$security" = SASL_SSL ] || return 0
  printf '%s\n' -X security.protocol=sasl_ssl -X sasl.mechanisms=SCRAM-SHA-512 \
    -X sasl.username=admin -X "sasl.password=$(cat "$sec/admin.password")" \
    -X "ssl.ca.location=$sec/ca.pem"
}

serves() {
  # A metadata round trip that lists this broker: the broker is accepting and answering requests.
  local args=()
  mapfile -t args < <(client_args)
  kcat -b "127.0.0.1:$port" "${args[@]}" -L -m 2 2>/dev/null | grep -q "broker 1 at 127.0.0.1:$port"
}

# A CA and a broker certificate for 127.0.0.1 and localhost (clients verify the name), and the
# passwords of the SCRAM users. Once per data directory.
make_security() {
  [ -f "$sec/.complete" ] && return 0
  rm -rf "$sec"
  mkdir -p "$sec"
  chmod 700 "$sec"
  (
    cd "$sec"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=sequences-local-kafka-ca" \
      -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout broker.key \
      -out broker.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' \
      >broker.ext
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile broker.ext -out broker.crt 2>/dev/null
    # Kafka reads a PEM keystore: the PKCS#8 key, then the certificate chain.
    openssl pkcs8 -topk8 -nocrypt -in broker.key >broker.pem
    cat broker.crt ca.pem >>broker.pem
    openssl rand -hex 16 >admin.password
    if [ -n "${KAFKA_SASL_PASSWORD:-}" ]; then
      printf '%s\n' "$KAFKA_SASL_PASSWORD" >"$sasl_user.password"
    else
      openssl rand -hex 16 >"$sasl_user.password"
    fi
    rm -f broker.csr broker.ext ca.srl
  )
  touch "$sec/.complete"
}

# A random Kafka cluster id (what `StorageTool random-uuid` prints: 16 random bytes in URL-safe
# base64 without padding, never starting with '-'), without starting a JVM for it.
cluster_id() {
  local id=-
  while [ "${id:0:1}" = - ]; do
    id=$(openssl rand 16 | base64 | tr '+/' '-_' | tr -d '=')
  done
  echo "$id"
}

# Class data sharing: an archive of the classes a broker loads (JDK 17 AppCDS) halves the CPU and
# the wall time of every later JVM start (tests/bench/README.md, "The test command"). The JVM makes
# it itself as the first broker started without one exits cleanly (a one-time 10-30 s longer
# stop). It lives next to the jars it was made from, named after the JVM build; a JVM that cannot
# use it runs without (-Xshare:auto). KAFKA_CDS=1 (default) uses it and makes it when missing,
# KAFKA_CDS=use only uses it (the private brokers of tests, whose stops are part of a test),
# KAFKA_CDS=0 neither.
jvm_id=$(stat -Lc %s-%Y "$(dirname "$(readlink -f "$(command -v java)")")/../lib/server/libjvm.so" \
  2>/dev/null || echo unknown)
cds_archive=$libs/cds-$jvm_id.jsa
cds_pending=$data/cds.jsa.pending

# The JVM flags for the archive; `dump`: this JVM may make it at exit.
cds_flags() {
  local mode=${KAFKA_CDS:-1}
  [ "$mode" = 0 ] && return 0
  if [ -f "$cds_archive" ]; then
    echo "-XX:SharedArchiveFile=$cds_archive -Xlog:cds=off -Xlog:cds+dynamic=off"
  elif [ "${1:-}" = dump ] && [ "$mode" = 1 ]; then
    touch "$data/cds.dumping"
    echo "-XX:ArchiveClassesAtExit=$cds_pending -Xlog:cds=off -Xlog:cds+dynamic=off"
  fi
}

java_cmd() {
  local main=$1
  shift
  local extra=(-XX:+UseG1GC -XX:MaxGCPauseMillis=20)
  # The storage tool runs for a moment: no optimizing compiler, no concurrent collector.
  [ "$main" = kafka.Kafka ] || extra=(-XX:TieredStopAtLevel=1 -XX:+UseSerialGC)
  local cds_mode=""
  [ "$main" = kafka.Kafka ] && cds_mode=dump
  # shellcheck disable=SC2046,SC2086 # KAFKA_JVM_FLAGS: extra flags, split at spaces
  exec_or_run java -Xms"${KAFKA_HEAP:-768m}" -Xmx"${KAFKA_HEAP:-768m}" "${extra[@]}" \
    $(cds_flags "$cds_mode") ${KAFKA_JVM_FLAGS:-} \
    -Djava.awt.headless=true \
    -Dkafka.logs.dir="$data/logs" \
    -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
    -cp "$libs/*" "$main" "$@"
}

write_config() {
  mkdir -p "$data/logs"
  local listener=PLAINTEXT
  [ "$security" = SASL_SSL ] && listener=SASL_SSL
  cat >"$data/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$listener://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=$listener://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=$listener
listener.security.protocol.map=$listener:$listener,CONTROLLER:PLAINTEXT
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
  if [ "${KAFKA_FLUSH:-0}" = 1 ]; then
    echo "log.flush.interval.messages=1" >>"$data/server.properties"
  fi
  if [ -n "${KAFKA_BROKER_SESSION_MS:-}" ]; then
    printf 'broker.session.timeout.ms=%s\nbroker.heartbeat.interval.ms=%s\n' \
      "$KAFKA_BROKER_SESSION_MS" "$((KAFKA_BROKER_SESSION_MS / 4))" >>"$data/server.properties"
  fi
  if [ "$security" = SASL_SSL ]; then
    # The broker talks to itself (transaction markers) over the same listener, as "admin".
    cat >>"$data/server.properties" <<PROPS
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(cat "$sec/admin.password")";
ssl.keystore.type=PEM
ssl.keystore.location=$sec/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$sec/ca.pem
ssl.endpoint.identification.algorithm=https
ssl.client.auth=none
PROPS
  fi
}

start() {
  if pid=$(running_pid); then
    if serves; then log "already running (pid $pid) on 127.0.0.1:$port"; return 0; fi
  fi
  fetch
  if [ "${KAFKA_FRESH:-0}" = 1 ]; then rm -rf "$data"; fi
  [ "$security" = SASL_SSL ] && make_security
  write_config
  if [ ! -f "$data/kraft/meta.properties" ]; then
    local id scram=()
    id=$(cluster_id)
    if [ "$security" = SASL_SSL ]; then
      # SCRAM users live in the cluster metadata; KRaft creates them with the storage.
      scram=(--add-scram "SCRAM-SHA-512=[name=admin,password=$(cat "$sec/admin.password")]"
        --add-scram "SCRAM-SHA-512=[name=$sasl_user,password=$(cat "$sec/$sasl_user.password")]")
    fi
    java_cmd kafka.tools.StorageTool format -t "$id" -c "$data/server.properties" \
      "${scram[@]}" >/dev/null
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
      log "Kafka $version serving $security on 127.0.0.1:$port (pid $pid, ready in $((SECONDS - t0))s, data $data)"
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
  # Writing the class archive at exit takes a while (once).
  local polls=120
  [ -f "$data/cds.dumping" ] && polls=480
  for _ in $(seq 1 "$polls"); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "broker did not stop within $((polls / 4))s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$cds_pending"
  fi
  # A clean exit wrote the class archive this broker was asked for (cds_flags); rename is atomic,
  # so brokers starting meanwhile see the whole file or none.
  if [ -s "$cds_pending" ] && [ ! -f "$cds_archive" ]; then
    mv "$cds_pending" "$cds_archive.$$" && mv "$cds_archive.$$" "$cds_archive" &&
      log "class data archive for faster JVM starts: $cds_archive"
  fi
  rm -f "$cds_pending" "$cds_archive.$$" "$data/cds.dumping"
  rm -f "$pidfile"
  log "stopped broker on 127.0.0.1:$port"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status)
    # The running broker's own listener decides how to ask it.
    if [ -z "${KAFKA_SECURITY:-}" ] && grep -q '^listeners=SASL_SSL' "$data/server.properties" 2>/dev/null; then
      security=SASL_SSL
    fi
    running_pid >/dev/null && serves ;;
  *) echo "usage: $0 fetch|start|stop|status" >&2; exit 2 ;;
esac
