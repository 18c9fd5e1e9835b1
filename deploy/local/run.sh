#!/usr/bin/env bash
# Runs the system on this machine: installs what is missing, builds, starts the local Kafka broker
# (127.0.0.1:9092) and both services in the background, then runs a short demo you can watch.
#
#   deploy/local/run.sh          start everything (again: restarts the services) and run the demo
#   deploy/local/run.sh stop     stop the services and the broker
#   deploy/local/run.sh status   what is running
#
# Logs: /tmp/sequences-run/{sequence-api,step-executor}.log and the broker's in
# /tmp/sequences-kafka-9092/logs.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
run=${SEQUENCES_RUN_DIR:-/tmp/sequences-run}
build=${BUILD_DIR:-$root/build}
export KAFKA_PORT=${KAFKA_PORT:-9092}
bootstrap=127.0.0.1:$KAFKA_PORT
api_addr=${API_ADDR:-127.0.0.1:50051}
# Operations HTTP of each service: /metrics (Prometheus), /healthz, /readyz (docs/metrics.md).
api_http=${API_HTTP_PORT:-9464}
executor_http=${EXECUTOR_HTTP_PORT:-9465}
executor_health=${EXECUTOR_HEALTH_PORT:-50061}
# The shared secret callers present as "authorization: Bearer <token>" (services/sequence-api/README.md).
export SEQUENCES_API_TOKEN=${SEQUENCES_API_TOKEN:-local-dev-token}

stop_service() {
  local name=$1 pidfile=$run/$1.pid
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill -TERM "$(cat "$pidfile")"
    for _ in $(seq 1 100); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$(cat "$pidfile")" 2>/dev/null || true
    echo "run.sh: stopped $name"
  fi
  rm -f "$pidfile"
}

start_service() {
  local name=$1
  shift
  "$@" >"$run/$name.log" 2>&1 &
  echo $! >"$run/$name.pid"
}

case "${1:-start}" in
  stop)
    stop_service step-executor
    stop_service sequence-api
    deploy/local/kafka.sh stop
    exit 0
    ;;
  status)
    deploy/local/kafka.sh status && echo "kafka: serving on $bootstrap" || echo "kafka: not running"
    for s in sequence-api step-executor; do
      if [ -f "$run/$s.pid" ] && kill -0 "$(cat "$run/$s.pid")" 2>/dev/null; then
        echo "$s: running (pid $(cat "$run/$s.pid"))"
      else
        echo "$s: not running"
      fi
    done
    exit 0
    ;;
  start) ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac

deploy/local/install-deps.sh
deploy/local/build.sh
deploy/local/kafka.sh start
mkdir -p "$run"
stop_service step-executor
stop_service sequence-api
start_service sequence-api "$build/services/sequence-api/sequence-api" \
  --bootstrap_servers="$bootstrap" --listen="$api_addr" --data_dir="$run/api-data" \
  --auth_token="$SEQUENCES_API_TOKEN" --http_port="$api_http"
start_service step-executor "$build/services/step-executor/step-executor" \
  --bootstrap_servers="$bootstrap" --data_dir="$run/executor-data" \
  --health_port="$executor_health" --http_port="$executor_http"

# Wait until the API answers gRPC health checks.
for _ in $(seq 1 100); do
  if grep -q '"msg":"serving"' "$run/sequence-api.log" 2>/dev/null; then break; fi
  # (the API listens once its read model has caught up with the log)
  for s in sequence-api step-executor; do
    if ! kill -0 "$(cat "$run/$s.pid")" 2>/dev/null; then
      echo "run.sh: $s exited; see $run/$s.log" >&2
      tail -n 20 "$run/$s.log" >&2
      exit 1
    fi
  done
  sleep 0.2
done

cat <<MSG

Running:
  Kafka broker    $bootstrap          (deploy/local/kafka.sh; logs in ${KAFKA_DATA_DIR:-/tmp/sequences-kafka-$KAFKA_PORT}/logs)
  sequence-api    $api_addr        (pid $(cat "$run/sequence-api.pid"), log $run/sequence-api.log)
                  gRPC health on $api_addr (grpc.health.v1, via reflection)
                  http://127.0.0.1:$api_http/metrics  /healthz  /readyz
  step-executor   group sequences.step-executor (pid $(cat "$run/step-executor.pid"), log $run/step-executor.log)
                  gRPC health on 127.0.0.1:$executor_health (grpc.health.v1, via reflection)
                  http://127.0.0.1:$executor_http/metrics  /healthz  /readyz

Stop everything with:  deploy/local/run.sh stop

MSG

if [ -x deploy/local/demo.sh ]; then
  deploy/local/demo.sh "$bootstrap" "$api_addr"
fi
