#!/usr/bin/env bash
# API benchmarks with a load tool no one here wrote (ghz, from the Go module proxy):
#   api-enroll@<rate>   unary Enroll latency p50/p99 at fixed request rates (open loop)
#   api-batch-enroll    BatchEnroll of 1,000 items, latency
# Prints RESULT lines like sequences-bench. Called by tests/bench/run.sh with:
#   BENCH_BOOTSTRAP, BENCH_OUT, SEQUENCES_BUILD_DIR, BENCH_RATES, BENCH_RATE_SECONDS
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${SEQUENCES_CACHE:-$HOME/.cache/sequences}
ghz_version=v0.120.0
if [ ! -x "$cache/bin/ghz" ]; then
  echo "api.sh: installing ghz $ghz_version into $cache/bin" >&2
  GOPATH=$cache/go GOBIN=$cache/bin GOFLAGS=-mod=mod go install \
    "github.com/bojand/ghz/cmd/ghz@$ghz_version" >&2
fi
source <("$root/tests/e2e/api/clients.sh" --env)
ghz=$cache/bin/ghz
out=${BENCH_OUT:?}
prefix="bench.api.$(date +%s)."
token=bench-token
rm -rf "$out/api-data"

"$SEQUENCES_BUILD_DIR/services/sequence-api/sequence-api" --bootstrap_servers="$BENCH_BOOTSTRAP" \
  --topic_prefix="$prefix" --listen=127.0.0.1:0 --data_dir="$out/api-data" --auth_token="$token" \
  >"$out/api.log" 2>&1 &
api_pid=$!
trap 'kill -TERM $api_pid 2>/dev/null; wait $api_pid 2>/dev/null' EXIT
source "$root/tests/support/log_port.sh"
port=$(wait_for_logged_port "$out/api.log" serving port "$api_pid") || {
  echo "api.sh: sequence-api did not start" >&2
  exit 1
}
addr=127.0.0.1:$port

H=(-plaintext -H "authorization: Bearer $token" -H 'x-sequences-company: bench' -H 'x-sequences-user: u1')
name=$("$GRPCURL" "${H[@]}" -d '{"parent": "companies/bench", "request_id": "bench-seq",
  "sequence": {"display_name": "bench", "entity_kind": "ENTITY_KIND_DEAL",
  "steps": [{"id": "s1", "delay": {"unit": "DELAY_UNIT_DAYS", "amount": 30},
  "activity": {"activity_type": "call", "subject": "Call", "assignee": {"item_owner": true}}}]}}' \
  "$addr" sequences.v1.SequenceService/CreateSequence |
  sed -n 's/.*"name": "\(companies\/bench\/sequences\/[^"]*\)".*/\1/p' | head -1)

metadata='{"authorization": "Bearer '$token'", "x-sequences-company": "bench", "x-sequences-user": "u1"}'
summary() {  # ghz JSON report -> RESULT line
  /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import json, sys
report, name, rate = json.load(open(sys.argv[1])), sys.argv[2], float(sys.argv[3])
lat = {d["percentage"]: d["latency"] / 1e6 for d in report.get("latencyDistribution") or []}
codes = report.get("statusCodeDistribution") or {}
figures = {"latency_ms_p50": lat.get(50, 0), "latency_ms_p99": lat.get(99, 0),
           "latency_ms_max": report.get("slowest", 0) / 1e6, "requests": report.get("count", 0),
           "ok": codes.get("OK", 0), "achieved_rps": report.get("rps", 0)}
if rate > 0:
    figures["rate_per_s"] = rate
print("RESULT " + json.dumps({"name": name, "figures": figures}))
PY
}

# Warm-up, not reported: the first calls of a fresh process (connections, the read model's
# first folds, the broker's first produce to new topics) would otherwise land in the first rate.
"$ghz" --insecure --connections=4 -c 50 --rps 200 -n 1000 \
  --call sequences.v1.EnrollmentService/Enroll --metadata "$metadata" \
  -d '{"parent": "'"$name"'", "item": {"entity_kind": "ENTITY_KIND_DEAL", "item_id": "w-{{.RequestNumber}}", "request_id": "w-{{.RequestNumber}}"}}' \
  "$addr" >/dev/null 2>>"$out/bench.log" || true

for rate in ${BENCH_RATES:-500 1000 2000 4000}; do
  n=$((rate * ${BENCH_RATE_SECONDS:-10}))
  "$ghz" --insecure --skipFirst=100 --connections=4 -c 200 --rps "$rate" -n "$n" \
    --call sequences.v1.EnrollmentService/Enroll --metadata "$metadata" \
    -d '{"parent": "'"$name"'", "item": {"entity_kind": "ENTITY_KIND_DEAL", "item_id": "r'"$rate"'-{{.RequestNumber}}", "request_id": "r'"$rate"'-{{.RequestNumber}}", "merge_data": {"person.first_name": "Ada"}}}' \
    --format=json -o "$out/ghz-enroll-$rate.json" "$addr" >/dev/null 2>>"$out/bench.log" || true
  summary "$out/ghz-enroll-$rate.json" api-enroll "$rate"
done

# 1,000 items per call; each call's items are unique through the request number.
items=$(/usr/bin/python3 -c '
import json
print(",".join(json.dumps({"entity_kind": "ENTITY_KIND_DEAL", "item_id": f"b{{{{.RequestNumber}}}}-{i}",
  "request_id": f"b{{{{.RequestNumber}}}}-{i}"}) for i in range(1000)))')
"$ghz" --insecure -c 1 -n 20 --call sequences.v1.EnrollmentService/BatchEnroll \
  --metadata "$metadata" -d '{"parent": "'"$name"'", "items": ['"$items"']}' \
  --format=json -o "$out/ghz-batch.json" "$addr" >/dev/null 2>>"$out/bench.log" || true
summary "$out/ghz-batch.json" api-batch-enroll 0
