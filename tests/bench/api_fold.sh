#!/usr/bin/env bash
# The API's read-model fold, two sequence-api binaries in one run: both fold the same log while a
# third API instance (this build's) takes BatchEnroll calls and a step-executor fires every step,
# so neither measured process serves a call; each one's CPU (user+system, /proc) from before the
# first call until both have folded everything is the fold's cost. Prints one RESULT line:
#   api-fold  cpu_ms_before, cpu_ms_after, ratio (after / before), records (folded by each)
# BENCH_API_BEFORE=<binary> is required (the same binary on both sides measures the noise).
#
#   BENCH_BOOTSTRAP=127.0.0.1:9092 BENCH_API_BEFORE=/tmp/sequence-api-main tests/bench/api_fold.sh
#
# Workload: BENCH_FOLD_CALLS (default 20) BatchEnrolls of 1,000 deals with an owner into a
# sequence of three call steps due at once: per deal its enroll request and five executor events
# (started, three steps, completed), each folded by both.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${SEQUENCES_BUILD_DIR:-$root/build}
bootstrap=${BENCH_BOOTSTRAP:?}
before_bin=${BENCH_API_BEFORE:?BENCH_API_BEFORE must name the sequence-api binary to compare with}
after_bin=$build/services/sequence-api/sequence-api
out=${BENCH_OUT:-$(mktemp -d /tmp/api-fold.XXXXXX)}
ghz=$("$root/tests/bench/ghz.sh")
source <("$root/tests/e2e/api/clients.sh" --env)
source "$root/tests/support/log_port.sh"
token=bench-token
metadata='{"authorization": "Bearer '$token'", "x-sequences-company": "bench", "x-sequences-user": "u1"}'
H=(-plaintext -H "authorization: Bearer $token" -H 'x-sequences-company: bench' -H 'x-sequences-user: u1')
prefix="bench.fold.$(date +%s)."
declare -A pid
stop_all() { for p in "${pid[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop_all EXIT
start_api() {  # NAME BINARY
  rm -rf "$out/$1"
  "$2" --bootstrap_servers="$bootstrap" --topic_prefix="$prefix" --listen=127.0.0.1:0 \
    --data_dir="$out/$1" --auth_token=$token --http_port=0 >"$out/$1.log" 2>&1 &
  pid[$1]=$!
}
start_api driver "$after_bin"
addr=127.0.0.1:$(wait_for_logged_port "$out/driver.log" serving port "${pid[driver]}")
start_api before "$before_bin"
start_api after "$after_bin"
"$build/services/step-executor/step-executor" --bootstrap_servers="$bootstrap" \
  --topic_prefix="$prefix" --group_id="${prefix}executors" --instance_id=a \
  --data_dir="$out/executor" >"$out/executor.log" 2>&1 &
pid[executor]=$!
for v in before after; do wait_for_logged_port "$out/$v.log" serving port "${pid[$v]}" >/dev/null; done
step() {  # ID: a call task due at once
  echo '{"id": "'"$1"'", "delay": {"unit": "DELAY_UNIT_MINUTES", "amount": 0}, "activity":
    {"activity_type": "call", "subject": "Call", "assignee": {"item_owner": true}}}'
}
parent=$("$GRPCURL" "${H[@]}" -d '{"parent": "companies/bench", "request_id": "fold-seq",
    "sequence": {"display_name": "fold", "entity_kind": "ENTITY_KIND_DEAL",
    "steps": ['"$(step s1)"', '"$(step s2)"', '"$(step s3)"']}}' \
    "$addr" sequences.v1.SequenceService/CreateSequence |
  sed -n 's/.*"name": "\(companies\/bench\/sequences\/[^"]*\)".*/\1/p' | head -1)
sleep 5  # both fold the sequence and settle
clk_tck=$(getconf CLK_TCK)
cpu_ms() { awk -v t="$clk_tck" '{print ($14 + $15) * 1000 / t}' "/proc/$1/stat"; }
before0=$(cpu_ms "${pid[before]}")
after0=$(cpu_ms "${pid[after]}")
# 1,000 items per call (unique by the request number); the request goes in a file (over the
# 128 KiB limit of one command-line argument).
/usr/bin/python3 - "$parent" >"$out/batch.json" <<'PY'
import json, sys
items = [{"entity_kind": "ENTITY_KIND_DEAL", "item_id": f"f-{{{{.RequestNumber}}}}-{i}",
          "owner_id": "o1", "request_id": f"f-{{{{.RequestNumber}}}}-{i}"} for i in range(1000)]
print(json.dumps({"parent": sys.argv[1], "items": items}))
PY
"$ghz" --insecure -c 1 -n "${BENCH_FOLD_CALLS:-20}" \
  --call sequences.v1.EnrollmentService/BatchEnroll --metadata "$metadata" \
  -D "$out/batch.json" "$addr" >/dev/null
# Until both have folded the same count twice in a row, 3 s apart (at most 6 minutes).
folded() {
  local url
  url=$(grep -o '"url":"[^"]*' "$out/$1.log" | head -1 | sed 's/.*"//')
  curl -s "$url/metrics" | awk '/^sequences_api_read_model_folded_records_total/ {print $2}'
}
last=""
for _ in $(seq 1 120); do
  sleep 3
  now="$(folded before) $(folded after)"
  [ "$now" = "$last" ] && break
  last=$now
done
read -r records_before records_after <<<"$now"
if [ "$records_before" != "$records_after" ]; then
  echo "api_fold.sh: the two folded different counts ($now)" >&2
  exit 1
fi
/usr/bin/python3 - "$(cpu_ms "${pid[before]}")" "$before0" "$(cpu_ms "${pid[after]}")" "$after0" \
  "$records_after" <<'PY'
import json, sys
b = float(sys.argv[1]) - float(sys.argv[2])
a = float(sys.argv[3]) - float(sys.argv[4])
print("RESULT " + json.dumps({"name": "api-fold", "figures": {
    "cpu_ms_before": b, "cpu_ms_after": a, "ratio": a / b, "records": float(sys.argv[5])}}))
PY
