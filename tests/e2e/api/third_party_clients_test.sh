#!/usr/bin/env bash
# sequence-api through clients no one on the team wrote (tier "e2e"): grpcurl via server
# reflection, and a Python grpcio client whose stubs are generated from proto/ here.
# Needs SEQUENCES_BOOTSTRAP and SEQUENCES_BUILD_DIR (deploy/local/test.sh sets both).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
: "${SEQUENCES_BOOTSTRAP:?run with deploy/local/test.sh}" "${SEQUENCES_BUILD_DIR:?}"
eval "$("$here/clients.sh" --env)"

work=$(mktemp -d /tmp/sequence-api-clients.XXXXXX)
api_pid=
exec_pid=
cleanup() {
  if [ -n "$exec_pid" ]; then kill -TERM "$exec_pid" 2>/dev/null || true; wait "$exec_pid" || true; fi
  if [ -n "$api_pid" ]; then kill -TERM "$api_pid" 2>/dev/null || true; wait "$api_pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "third_party_clients_test: FAILED: $*" >&2
  tail -n 20 "$work/api.log" >&2
  [ -f "$work/executor.log" ] && tail -n 20 "$work/executor.log" >&2
  exit 1
}

source "$root/tests/support/log_port.sh"
token=clients-secret
prefix="test.clients.$RANDOM$RANDOM."
"$SEQUENCES_BUILD_DIR/services/sequence-api/sequence-api" --bootstrap_servers="$SEQUENCES_BOOTSTRAP" \
  --topic_prefix="$prefix" --partitions=3 --listen=127.0.0.1:0 \
  --data_dir="$work/data" --auth_token="$token" >"$work/api.log" 2>&1 &
api_pid=$!
port=$(wait_for_logged_port "$work/api.log" serving port "$api_pid") ||
  fail "sequence-api did not start"
addr=127.0.0.1:$port

# --- grpcurl, through reflection only (no proto files given)
auth=(-H "authorization: Bearer $token" -H "x-sequences-company: curlco" -H "x-sequences-user: u1")
services=$("$GRPCURL" -plaintext "$addr" list)
for s in sequences.v1.SequenceService sequences.v1.EnrollmentService grpc.health.v1.Health; do
  grep -qx "$s" <<<"$services" || fail "reflection does not list $s"
done
created=$("$GRPCURL" -plaintext "${auth[@]}" -d '{
  "parent": "companies/curlco", "request_id": "curl-create-1",
  "sequence": {"display_name": "Demo follow-up", "entity_kind": "ENTITY_KIND_DEAL",
    "steps": [{"id": "call-1", "delay": {"unit": "DELAY_UNIT_DAYS", "amount": 1},
               "activity": {"activity_type": "call", "subject": "Call {{person.first_name}}",
                            "assignee": {"item_owner": true}}}]}}' \
  "$addr" sequences.v1.SequenceService/CreateSequence) || fail "CreateSequence: $created"
name=$(sed -n 's/.*"name": "\(companies\/curlco\/sequences\/[^"]*\)".*/\1/p' <<<"$created" | head -1)
[ -n "$name" ] || fail "no sequence name in: $created"
enrolled=$("$GRPCURL" -plaintext "${auth[@]}" -d "{
  \"parent\": \"$name\",
  \"item\": {\"entity_kind\": \"ENTITY_KIND_DEAL\", \"item_id\": \"42\", \"request_id\": \"curl-enroll-42\",
           \"merge_data\": {\"person.first_name\": \"Ada\"}}}" \
  "$addr" sequences.v1.EnrollmentService/Enroll) || fail "Enroll: $enrolled"
grep -q '"pending": true' <<<"$enrolled" || fail "enrollment not pending: $enrolled"
token_json=$(sed -n 's/.*"consistency_token": "\([^"]*\)".*/\1/p' <<<"$enrolled")
overview=$("$GRPCURL" -plaintext "${auth[@]}" \
  -d "{\"parent\": \"$name\", \"consistency_token\": \"$token_json\"}" \
  "$addr" sequences.v1.EnrollmentService/GetEnrollmentOverview) || fail "overview: $overview"
grep -q '"pending": "1"' <<<"$overview" || fail "overview: $overview"
if out=$("$GRPCURL" -plaintext -d '{"parent": "companies/curlco"}' "$addr" \
  sequences.v1.SequenceService/ListSequences 2>&1); then
  fail "a call without identity was accepted: $out"
fi
grep -q Unauthenticated <<<"$out" || fail "expected Unauthenticated: $out"
# The standard health check through reflection alone (no health.proto given to grpcurl).
health=$("$GRPCURL" -plaintext "$addr" grpc.health.v1.Health/Check 2>&1) || fail "api health: $health"
grep -q '"status": "SERVING"' <<<"$health" || fail "api health: $health"
# A server stream through reflection: two filters are refused, one watch stays open until its time.
if out=$("$GRPCURL" -plaintext "${auth[@]}" -d "{\"parent\": \"companies/curlco\", \"sequence\": \"$name\", \"owner_id\": \"u1\"}" \
  "$addr" sequences.v1.EnrollmentService/WatchEnrollments 2>&1); then
  fail "a watch with two filters was accepted: $out"
fi
grep -q InvalidArgument <<<"$out" || fail "watch with two filters: $out"
out=$("$GRPCURL" -plaintext -max-time 2 "${auth[@]}" -d "{\"parent\": \"companies/curlco\", \"sequence\": \"$name\"}" \
  "$addr" sequences.v1.EnrollmentService/WatchEnrollments 2>&1) && fail "an open watch ended: $out"
grep -q DeadlineExceeded <<<"$out" || fail "open watch: $out"
echo "grpcurl client: OK"

# --- grpcurl health check of the step-executor's health port, through reflection alone
"$SEQUENCES_BUILD_DIR/services/step-executor/step-executor" --bootstrap_servers="$SEQUENCES_BOOTSTRAP" \
  --topic_prefix="$prefix" --partitions=3 --group_id="${prefix}executors" --instance_id=clients \
  --data_dir="$work/executor" --health_port=0 >"$work/executor.log" 2>&1 &
exec_pid=$!
health_port=$(wait_for_logged_port "$work/executor.log" "health server listening" address \
  "$exec_pid") || fail "no health port in the executor's log"
health=
for _ in $(seq 1 150); do
  health=$("$GRPCURL" -plaintext "127.0.0.1:$health_port" grpc.health.v1.Health/Check 2>&1) &&
    grep -q '"status": "SERVING"' <<<"$health" && break
  kill -0 "$exec_pid" 2>/dev/null || fail "step-executor exited"
  sleep 0.2
done
grep -q '"status": "SERVING"' <<<"$health" || fail "executor health: $health"
echo "grpcurl executor health: OK"

# --- Python grpcio, stubs generated from proto/
mkdir -p "$work/py"
"$API_PYTHON" -m grpc_tools.protoc -I "$root/proto" \
  -I /usr/share/gocode/src/github.com/gogo/googleapis \
  --python_out="$work/py" --grpc_python_out="$work/py" \
  "$root"/proto/sequences/v1/*.proto \
  /usr/share/gocode/src/github.com/gogo/googleapis/google/rpc/status.proto \
  /usr/share/gocode/src/github.com/gogo/googleapis/google/rpc/error_details.proto
"$API_PYTHON" "$here/python_client.py" "$work/py" "$addr" "$token" || fail "python client"
echo "third_party_clients_test: OK"
