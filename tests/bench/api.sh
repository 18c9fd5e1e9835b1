#!/usr/bin/env bash
# API benchmarks with a load tool no one here wrote (ghz, from the Go module proxy):
#   api-enroll@<rate>   unary Enroll latency p50/p99 at fixed request rates (open loop)
#   api-batch-enroll    BatchEnroll of 1,000 items, latency (BENCH_BATCH_CALLS calls, default 20),
#                       and the API process's CPU per call (cpu_ms_per_call: user+system from
#                       /proc over the calls and the settle after them, so the read model's fold
#                       of the calls' events counts; far less noisy than latency on a busy machine)
#   api-batch-enroll-native  the same calls from a compiled C++ client (sequences-bench)
# Prints RESULT lines like sequences-bench. Called by tests/bench/run.sh with:
#   BENCH_BOOTSTRAP, BENCH_OUT, SEQUENCES_BUILD_DIR, BENCH_RATES, BENCH_RATE_SECONDS
# and optionally BENCH_API_BEFORE (another sequence-api binary, measured alongside: below).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ghz=$("$root/tests/bench/ghz.sh")
source <("$root/tests/e2e/api/clients.sh" --env)
out=${BENCH_OUT:?}
token=bench-token
metadata='{"authorization": "Bearer '$token'", "x-sequences-company": "bench", "x-sequences-user": "u1"}'
H=(-plaintext -H "authorization: Bearer $token" -H 'x-sequences-company: bench' -H 'x-sequences-user: u1')
source "$root/tests/support/log_port.sh"

# Variants: this build's sequence-api (figures api-enroll, api-batch-enroll), and with
# BENCH_API_BEFORE=<a sequence-api binary> also that one (figures api-enroll-before,
# api-batch-enroll-before). Both run at once on the same broker, each with its own topics and
# data; ghz loads one at a time, alternating which goes first, so both see the same machine.
variants=(after)
declare -A binary=([after]="$SEQUENCES_BUILD_DIR/services/sequence-api/sequence-api")
declare -A suffix=([after]="" [before]="-before")
declare -A addr parent pid
if [ -n "${BENCH_API_BEFORE:-}" ]; then
  variants=(before after)
  binary[before]=$BENCH_API_BEFORE
fi
stop_all() {
  for v in "${!pid[@]}"; do kill -TERM "${pid[$v]}" 2>/dev/null || true; done
  for v in "${!pid[@]}"; do wait "${pid[$v]}" 2>/dev/null || true; done
}
trap stop_all EXIT
for v in "${variants[@]}"; do
  prefix="bench.api.$(date +%s).$v."
  rm -rf "$out/api-data-$v"
  log=$out/api${suffix[$v]}.log
  "${binary[$v]}" --bootstrap_servers="$BENCH_BOOTSTRAP" --topic_prefix="$prefix" \
    --listen=127.0.0.1:0 --data_dir="$out/api-data-$v" --auth_token="$token" >"$log" 2>&1 &
  pid[$v]=$!
  port=$(wait_for_logged_port "$log" serving port "${pid[$v]}") || {
    echo "api.sh: sequence-api ($v) did not start" >&2
    exit 1
  }
  addr[$v]=127.0.0.1:$port
  parent[$v]=$("$GRPCURL" "${H[@]}" -d '{"parent": "companies/bench", "request_id": "bench-seq",
    "sequence": {"display_name": "bench", "entity_kind": "ENTITY_KIND_DEAL",
    "steps": [{"id": "s1", "delay": {"unit": "DELAY_UNIT_DAYS", "amount": 30},
    "activity": {"activity_type": "call", "subject": "Call", "assignee": {"item_owner": true}}}]}}' \
    "${addr[$v]}" sequences.v1.SequenceService/CreateSequence |
    sed -n 's/.*"name": "\(companies\/bench\/sequences\/[^"]*\)".*/\1/p' | head -1)
done

summary() {  # NAME RATE GHZ_JSON... -> one RESULT line over every call of the reports
  /usr/bin/python3 - "$@" <<'PY'
import json, sys
name, rate, reports = sys.argv[1], float(sys.argv[2]), [json.load(open(p)) for p in sys.argv[3:]]
calls = [d for r in reports for d in r.get("details") or []]
lat = sorted(d["latency"] / 1e6 for d in calls)
def pct(p):  # nearest rank
    return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] if lat else 0
figures = {"latency_ms_p50": pct(50), "latency_ms_p99": pct(99),
           "latency_ms_max": lat[-1] if lat else 0, "requests": len(calls),
           "ok": sum(d["status"] == "OK" for d in calls),
           "achieved_rps": sum(r.get("rps", 0) for r in reports) / max(1, len(reports))}
if rate > 0:
    figures["rate_per_s"] = rate
import os
if os.environ.get("CPU_MS_PER_CALL"):
    figures["cpu_ms_per_call"] = float(os.environ["CPU_MS_PER_CALL"])
print("RESULT " + json.dumps({"name": name, "figures": figures}))
PY
}
# Before each measured run: the other variant's read model may still be folding what the last
# run wrote, which would take CPU from this one.
settle() { sleep "${BENCH_API_SETTLE_SECONDS:-3}"; }
# The variants in the order of round $1: alternating, so neither always runs first.
ordered() {
  if [ $(($1 % 2)) -eq 0 ]; then printf '%s\n' "${variants[@]}"; else printf '%s\n' "${variants[@]}" | tac; fi
}

# Warm-up, not reported: the first calls of a fresh process (connections, the read model's
# first folds, the broker's first produce to new topics) would otherwise land in the first rate.
for v in "${variants[@]}"; do
  "$ghz" --insecure --connections=4 -c 50 --rps 200 -n 1000 \
    --call sequences.v1.EnrollmentService/Enroll --metadata "$metadata" \
    -d '{"parent": "'"${parent[$v]}"'", "item": {"entity_kind": "ENTITY_KIND_DEAL", "item_id": "w-{{.RequestNumber}}", "request_id": "w-{{.RequestNumber}}"}}' \
    "${addr[$v]}" >/dev/null 2>>"$out/bench.log" || true
done

round=0
for rate in ${BENCH_RATES:-500 1000 2000 4000}; do
  n=$((rate * ${BENCH_RATE_SECONDS:-10}))
  for v in $(ordered $round); do
    settle
    "$ghz" --insecure --skipFirst=100 --connections=4 -c 200 --rps "$rate" -n "$n" \
      --call sequences.v1.EnrollmentService/Enroll --metadata "$metadata" \
      -d '{"parent": "'"${parent[$v]}"'", "item": {"entity_kind": "ENTITY_KIND_DEAL", "item_id": "r'"$rate"'-{{.RequestNumber}}", "request_id": "r'"$rate"'-{{.RequestNumber}}", "merge_data": {"person.first_name": "Ada"}}}' \
      --format=json -o "$out/ghz-enroll${suffix[$v]}-$rate.json" "${addr[$v]}" >/dev/null 2>>"$out/bench.log" || true
    summary "api-enroll${suffix[$v]}" "$rate" "$out/ghz-enroll${suffix[$v]}-$rate.json"
  done
  round=$((round + 1))
done

# User+system CPU of process $1 so far, in ms (fields 14 and 15 of /proc/<pid>/stat, after the
# command name in parentheses).
clk_tck=$(getconf CLK_TCK)
cpu_ms() { sed 's/.*) //' "/proc/$1/stat" | awk -v hz="$clk_tck" '{print ($12 + $13) * 1000 / hz}'; }
declare -A cpu_spent=([before]=0 [after]=0)

# 1,000 items per call; each call's items are unique through the half and the request number.
items() {
  /usr/bin/python3 -c '
import json, sys
h = sys.argv[1]
print(",".join(json.dumps({"entity_kind": "ENTITY_KIND_DEAL", "item_id": f"b{h}-{{{{.RequestNumber}}}}-{i}",
  "request_id": f"b{h}-{{{{.RequestNumber}}}}-{i}"}) for i in range(1000)))' "$1"
}
# Two halves per variant, in the order A B B A when there are two.
calls=${BENCH_BATCH_CALLS:-20}
for half in 1 2; do
  items=$(items "$half")
  for v in $(ordered $((round + half))); do
    settle
    cpu0=$(cpu_ms "${pid[$v]}")
    "$ghz" --insecure -c 1 -n $((calls / 2)) --call sequences.v1.EnrollmentService/BatchEnroll \
      --metadata "$metadata" -d '{"parent": "'"${parent[$v]}"'", "items": ['"$items"']}' \
      --format=json -o "$out/ghz-batch${suffix[$v]}-$half.json" "${addr[$v]}" >/dev/null 2>>"$out/bench.log" || true
    settle  # the fold of the last call's events belongs to these calls
    cpu_spent[$v]=$(awk -v a="${cpu_spent[$v]}" -v b="$cpu0" -v c="$(cpu_ms "${pid[$v]}")" \
      'BEGIN {print a + c - b}')
  done
done
# The same calls from a compiled client (api_client.h): ghz's latency includes encoding 1,000 items
# and decoding 1,000 results by reflection, which a C++ caller of the API does not pay.
for v in $(ordered "$round"); do
  settle
  "$SEQUENCES_BUILD_DIR/tests/bench/sequences-bench" api-batch-enroll-native --api="${addr[$v]}" \
    --api_parent="${parent[$v]}" --api_token="$token" --api_company=bench --item_tag="n$v" \
    --batch=1000 --repeats="$calls" --name_suffix="${suffix[$v]}" 2>>"$out/bench.log" || true
done
for v in "${variants[@]}"; do
  CPU_MS_PER_CALL=$(awk -v t="${cpu_spent[$v]}" -v n="$(( (calls / 2) * 2 ))" 'BEGIN {print t / n}') \
    summary "api-batch-enroll${suffix[$v]}" 0 "$out/ghz-batch${suffix[$v]}-1.json" "$out/ghz-batch${suffix[$v]}-2.json"
done
