#!/usr/bin/env python3
"""Turns the benchmarks' RESULT lines into results.json, a table on stdout, and PNG plots.

Each system figure is paired with the baseline measured in the same run (PAIRS below) and
reported as a ratio, because absolute numbers on a shared 2-core loopback machine say little.
"""
import json
import os
import sys

# (figure, baseline, key in both, meaning of the ratio)
PAIRS = [
    ("executor-throughput", "kafka-passthrough", "records_per_s",
     "enrollments/s to first step committed vs. transactional pass-through records/s"),
    ("executor-timer-burst", "kafka-passthrough", "records_per_s",
     "due steps fired/s vs. transactional pass-through records/s"),
    ("executor-replay", "kafka-raw-consume", "records_per_s",
     "executor-events folded/s vs. raw read_committed consume/s"),
    ("executor-replay@baseline", "kafka-raw-consume", "records_per_s",
     "the baseline binary's (BENCH_REPLAY_BASELINE) replay vs. raw read_committed consume/s"),
    ("executor-replay", "executor-replay@baseline", "records_per_s",
     "this build's replay vs. the baseline binary's, same topic, alternating (after / before)"),
    ("executor-replay@fold_threads=0", "kafka-raw-consume", "records_per_s",
     "this build's replay folding on the reading thread alone vs. raw consume/s"),
    ("executor-replay", "executor-replay@fold_threads=0", "records_per_s",
     "folder threads (default) vs. the reading thread alone"),
    ("executor-replay", "executor-replay@baseline", "cpu_us_per_record",
     "this build's replay CPU per event vs. the baseline binary's (lower is better)"),
    ("executor-replay@fold_threads=0", "executor-replay@baseline,fold_threads=0", "records_per_s",
     "on the reading thread alone: this build's replay vs. the baseline binary's"),
    ("executor-replay@fold_threads=0", "executor-replay@baseline,fold_threads=0",
     "cpu_us_per_record", "on the reading thread alone: CPU per event vs. the baseline's"),
    ("executor-throughput", "executor-throughput@at_least_once", "records_per_s",
     "exactly_once vs. at_least_once enrollments/s (what transactions cost)"),
    ("executor-recovery", "executor-recovery@at_least_once", "restart_to_fire_s",
     "exactly_once vs. at_least_once restart-to-fire seconds"),
    # The adaptive batch (services/step-executor/batch_sizer.h): against the pass-through at the
    # batch size the executor chose in the same run (its mean batch) and at its ceiling, and
    # against the executor with a fixed batch of 500 (BENCH_FIXED_BATCH=1).
    ("executor-throughput", "kafka-passthrough@chosen", "records_per_s",
     "enrollments/s vs. the pass-through at the executor's mean batch size of the same run"),
    ("executor-throughput", "kafka-passthrough@5000", "records_per_s",
     "enrollments/s vs. the pass-through at 5,000 per transaction (the executor's ceiling)"),
    ("executor-throughput", "executor-throughput@fixed500", "records_per_s",
     "adaptive batch vs. a fixed batch of 500 enrollments/s (higher is better)"),
    ("executor-timer-burst", "executor-timer-burst@fixed500", "records_per_s",
     "adaptive batch vs. a fixed batch of 500 fired/s (higher is better)"),
    ("executor-timer-burst", "executor-timer-burst@fixed500", "lateness_ms_p99",
     "adaptive batch vs. a fixed batch of 500 burst lateness p99 (lower is better)"),
    ("executor-lateness-steady@1000", "executor-lateness-steady@fixed500@1000", "lateness_ms_p99",
     "adaptive batch vs. a fixed batch of 500 steady lateness p99 at 1,000/s (lower is better)"),
    ("executor-lateness-steady@5000", "executor-lateness-steady@fixed500@5000", "lateness_ms_p99",
     "adaptive batch vs. a fixed batch of 500 steady lateness p99 at 5,000/s (lower is better)"),
    ("executor-scaleout@2", "executor-scaleout@1", "records_per_s",
     "two executors in one group vs. one, same workload, same run (enrollments/s)"),
    ("executor-scaleout@3", "executor-scaleout@1", "records_per_s",
     "three executors in one group vs. one, same workload, same run (enrollments/s)"),
    ("executor-scaleout@2", "executor-scaleout@1", "median_per_s",
     "two executors vs. one, median second"),
    ("executor-scaleout@3", "executor-scaleout@1", "median_per_s",
     "three executors vs. one, median second"),
    ("executor-scaleout@2", "executor-scaleout@1", "cpu_ms_per_enrollment",
     "two executors vs. one, CPU per enrollment of all instances together"),
    ("executor-scaleout@3", "executor-scaleout@1", "cpu_ms_per_enrollment",
     "three executors vs. one, CPU per enrollment of all instances together"),
    ("api-batch-enroll", "kafka-produce-batch", "latency_ms_p50",
     "1,000-item BatchEnroll p50 vs. producing the same 1,000 records p50"),
    ("api-batch-enroll-native", "kafka-produce-batch", "latency_ms_p50",
     "1,000-item BatchEnroll p50 from a compiled client vs. producing the same 1,000 records p50"),
    ("api-batch-enroll-native", "api-batch-enroll", "latency_ms_p50",
     "1,000-item BatchEnroll p50 from a compiled client vs. from ghz (the client's share)"),
    # Send limits (docs/send-limits.md): automatic emails through the sender stage, limit never
    # reached, vs. the same emails as drafts (no stage), same run. 1 = the stage costs nothing.
    ("executor-limits-on-throughput", "executor-limits-off-throughput", "from_start_per_s",
     "limits on vs. off: enrollments/s from the executor's start to the last first email "
     "visible (higher is better)"),
    ("executor-limits-on-throughput", "executor-limits-off-throughput", "cpu_ms_per_enrollment",
     "limits on vs. off: executor CPU per enrollment (lower is better)"),
    ("executor-limits-on-lateness", "executor-limits-off-lateness", "lateness_ms_p50",
     "limits on vs. off: steady lateness p50 at 1000 enrollments/s (lower is better)"),
    ("executor-limits-on-lateness", "executor-limits-off-lateness", "lateness_ms_p99",
     "limits on vs. off: steady lateness p99 at 1000 enrollments/s (lower is better)"),
    # The same with a minimum gap between emails to one person (docs/min-gap.md) on as well: the
    # person stage in front of the sender stage, the gap looked up but never waited for.
    ("executor-limits-gap-throughput", "executor-limits-off-throughput", "from_start_per_s",
     "limits and gap on vs. off: enrollments/s from the executor's start to the last first "
     "email visible (higher is better)"),
    ("executor-limits-gap-throughput", "executor-limits-off-throughput", "cpu_ms_per_enrollment",
     "limits and gap on vs. off: executor CPU per enrollment (lower is better)"),
    ("executor-limits-gap-lateness", "executor-limits-off-lateness", "lateness_ms_p50",
     "limits and gap on vs. off: steady lateness p50 at 1000 enrollments/s (lower is better)"),
    ("executor-limits-gap-lateness", "executor-limits-off-lateness", "lateness_ms_p99",
     "limits and gap on vs. off: steady lateness p99 at 1000 enrollments/s (lower is better)"),
]

# Peers: the same workload built on another technology (tests/bench/peers/), same broker, same
# run. Each executor figure is reported against the peer's (ratio executor / peer), and each
# peer's rate against the pass-through.
PEERS = ["kafka-streams"]
for _peer in PEERS:
    _p = f"peer-{_peer}"
    PAIRS += [
        ("executor-throughput", f"{_p}-throughput", "records_per_s",
         f"executor vs. {_peer} peer enrollments/s to first step (higher is better)"),
        ("executor-throughput", f"{_p}-throughput", "cpu_ms_per_enrollment",
         f"executor vs. {_peer} peer CPU time per enrollment, start to last first step "
         "(lower is better; independent of the share of the machine each got)"),
        ("executor-throughput", f"{_p}-throughput", "median_per_s",
         f"executor vs. {_peer} peer median second of the same run (steady rate, no warm-up)"),
        ("executor-timer-burst", f"{_p}-timer-burst", "records_per_s",
         f"executor vs. {_peer} peer due steps fired/s (higher is better)"),
        ("executor-timer-burst", f"{_p}-timer-burst", "lateness_ms_p99",
         f"executor vs. {_peer} peer burst lateness p99 (lower is better)"),
        ("executor-memory", f"{_p}-memory", "peak_rss_mib",
         f"executor vs. {_peer} peer peak RSS holding the throughput run's enrollments "
         "(lower is better)"),
        ("executor-recovery", f"{_p}-recovery", "restart_to_fire_s",
         f"executor vs. {_peer} peer restart-to-fire seconds after kill -9 (lower is better)"),
        (f"{_p}-throughput", "kafka-passthrough", "records_per_s",
         f"{_peer} peer enrollments/s vs. transactional pass-through records/s"),
        (f"{_p}-timer-burst", "kafka-passthrough", "records_per_s",
         f"{_peer} peer due steps fired/s vs. transactional pass-through records/s"),
    ]
# The executor against the Temporal peer of the same run (tests/bench/peers/temporal/), ratio =
# executor / peer: above 1 for a rate means the executor is faster; below 1 for memory and
# recovery means it uses less or recovers sooner. The peer holds fewer enrollments than the
# executor (each figure's `enrollments`).
PAIRS += [
    ("executor-throughput", "peer-temporal-throughput", "records_per_s",
     "executor enrollments/s to first step vs. the Temporal peer's (fewer enrollments)"),
    ("executor-timer-burst", "peer-temporal-timer-burst", "records_per_s",
     "executor due steps fired/s vs. the Temporal peer's (fewer enrollments)"),
    ("executor-memory", "peer-temporal-memory", "rss_mib",
     "executor RSS vs. Temporal dev server + worker RSS (each holding its own enrollments)"),
    ("executor-recovery", "peer-temporal-recovery", "restart_to_fire_s",
     "executor restart-to-fire vs. the Temporal peer's (dev server and worker kill -9'd)"),
    ("executor-throughput", "peer-temporal-throughput@local_activity", "records_per_s",
     "executor enrollments/s to first step vs. the Temporal peer's with a local activity"),
]


def main():
    raw_path, out_dir = sys.argv[1], sys.argv[2]
    results = {}
    series = {}
    with open(raw_path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            name = r["name"]
            if "rate_per_s" in r["figures"]:
                name = f'{name}@{int(r["figures"]["rate_per_s"])}'
            results[name] = r["figures"]
            if "series" in r:
                series[name] = r["series"]

    comparisons = []
    for fig, base, key, meaning in PAIRS:
        if fig in results and base in results and key in results[fig] and results[base].get(key):
            comparisons.append({
                "figure": fig, "baseline": base, "key": key,
                "value": results[fig][key], "baseline_value": results[base][key],
                "ratio": results[fig][key] / results[base][key], "meaning": meaning,
            })
    # API enroll latency vs. producing the same events at the same rate.
    for name, figs in results.items():
        if name.startswith("api-enroll@"):
            rate = name.split("@")[1]
            base = results.get(f"kafka-produce-rate@{rate}")
            if base and base.get("latency_ms_p99"):
                comparisons.append({
                    "figure": name, "baseline": f"kafka-produce-rate@{rate}", "key": "latency_ms_p99",
                    "value": figs["latency_ms_p99"], "baseline_value": base["latency_ms_p99"],
                    "ratio": figs["latency_ms_p99"] / base["latency_ms_p99"],
                    "meaning": "unary Enroll p99 vs. acks=all produce p99 at the same rate",
                })

    # BENCH_API_BEFORE: this build's API against another binary measured alongside it.
    for name, figs in results.items():
        if name.startswith("api-enroll@") or name in ("api-batch-enroll", "api-batch-enroll-native"):
            before = name.replace("api-enroll", "api-enroll-before", 1) if "@" in name \
                else f"{name}-before"
            for key in ("latency_ms_p50", "latency_ms_p99", "cpu_ms_per_call"):
                if results.get(before, {}).get(key) and key in figs:
                    comparisons.append({
                        "figure": name, "baseline": before, "key": key,
                        "value": figs[key], "baseline_value": results[before][key],
                        "ratio": figs[key] / results[before][key],
                        "meaning": "this build's API vs. BENCH_API_BEFORE's, same run (lower is better)",
                    })

    # BENCH_ONLY=memory with BENCH_MEMORY_BEFORE: this build against the other, at each count.
    for name, figs in results.items():
        before = results.get(f"{name},before")
        if not name.startswith(("executor-memory@", "executor-throughput@")) or not before:
            continue
        for key in ("peak_rss_mib", "cpu_ms_per_enrollment", "records_per_s"):
            if before.get(key) and key in figs:
                comparisons.append({
                    "figure": name, "baseline": f"{name},before", "key": key,
                    "value": figs[key], "baseline_value": before[key],
                    "ratio": figs[key] / before[key],
                    "meaning": "this build vs. BENCH_MEMORY_BEFORE's, same run",
                })

    # Lateness at the same rate and phase: executor p99 vs. each peer's.
    for name, figs in results.items():
        if not name.startswith("executor-lateness-"):
            continue
        for peer in PEERS:
            base_name = name.replace("executor-", f"peer-{peer}-", 1)
            base = results.get(base_name)
            if base and base.get("lateness_ms_p99") and "lateness_ms_p99" in figs:
                comparisons.append({
                    "figure": name, "baseline": base_name, "key": "lateness_ms_p99",
                    "value": figs["lateness_ms_p99"], "baseline_value": base["lateness_ms_p99"],
                    "ratio": figs["lateness_ms_p99"] / base["lateness_ms_p99"],
                    "meaning": f"executor vs. {peer} peer lateness p99 (lower is better)",
                })

    # The highest request rate whose p99 stays under 50 ms, for the API and for the producer.
    def best_rate(prefix):
        rates = [int(n.split("@")[1]) for n, f in results.items()
                 if n.startswith(prefix + "@") and f.get("latency_ms_p99", 1e9) < 50]
        return max(rates) if rates else None
    api_best, produce_best = best_rate("api-enroll"), best_rate("kafka-produce-rate")
    if api_best and produce_best:
        results["api-enroll-best-rate"] = {"rate_p99_under_50ms": api_best}
        results["kafka-produce-best-rate"] = {"rate_p99_under_50ms": produce_best}
        comparisons.append({
            "figure": "api-enroll-best-rate", "baseline": "kafka-produce-best-rate",
            "key": "rate_p99_under_50ms", "value": api_best, "baseline_value": produce_best,
            "ratio": api_best / produce_best,
            "meaning": "highest tried rate with unary Enroll p99 < 50 ms vs. the same for produce",
        })

    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({"figures": results, "comparisons": comparisons}, f, indent=2, sort_keys=True)

    print(f'{"figure":34} {"baseline":34} {"key":19} {"value":>10} {"baseline":>10} {"ratio":>7}')
    for c in comparisons:
        print(f'{c["figure"]:34} {c["baseline"]:34} {c["key"]:19} {c["value"]:10.2f} '
              f'{c["baseline_value"]:10.2f} {c["ratio"]:7.3f}')
    print()
    for name in sorted(results):
        print(name, json.dumps(results[name], sort_keys=True))

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: matplotlib missing, no plots (deploy/local/install-deps.sh --bench)")
        return
    # The systems side by side: each figure the executor and a peer both have.
    side = [(what, key) for what, key in [("throughput", "records_per_s"),
                                          ("timer-burst", "records_per_s"),
                                          ("memory", "peak_rss_mib"),
                                          ("recovery", "restart_to_fire_s")]
            if f"executor-{what}" in results]
    systems = ["executor"] + [f"peer-{p}" for p in PEERS
                              if any(f"peer-{p}-{w}" in results for w, _ in side)]
    if len(systems) > 1 and side:
        fig, axes = plt.subplots(1, len(side), figsize=(4 * len(side), 4))
        for ax, (what, key) in zip(axes if len(side) > 1 else [axes], side):
            values = [results.get(f"{sname}-{what}", {}).get(key, 0) for sname in systems]
            ax.bar(range(len(systems)), values)
            ax.set_xticks(range(len(systems)))
            ax.set_xticklabels([sname.replace("peer-", "") for sname in systems], rotation=20)
            ax.set_title(f"{what}: {key}")
        plt.tight_layout()
        plt.savefig(os.path.join(out_dir, "systems-side-by-side.png"))
        plt.close()
    # The executor and its peers side by side (throughput and burst over time).
    for figure in ("throughput", "timer-burst"):
        names = [n for n in sorted(series) if "throughput_per_s" in series[n] and
                 (n == f"executor-{figure}" or (n.startswith("peer-") and n.endswith(f"-{figure}")))]
        if len(names) > 1:
            plt.figure(figsize=(7, 4))
            for n in names:
                plt.plot(range(len(series[n]["throughput_per_s"])), series[n]["throughput_per_s"],
                         label=f'{n} ({int(results[n].get("records", 0))})')
            plt.yscale("log")
            plt.xlabel("seconds")
            plt.ylabel("per second (log)")
            plt.legend()
            plt.title(f"{figure}: executor and peers")
            plt.tight_layout()
            plt.savefig(os.path.join(out_dir, f"peers-{figure}.png"))
            plt.close()
    for name, s in series.items():
        if "lateness_ms" in s:
            plt.figure(figsize=(7, 4))
            plt.hist(s["lateness_ms"], bins=60)
            plt.xlabel("lateness: fire time - due time (ms)")
            plt.ylabel("steps")
            plt.title(name)
            plt.tight_layout()
            plt.savefig(os.path.join(out_dir, f"{name}-lateness.png"))
            plt.close()
        if "rss_mib" in s:  # executor-memory: the resident set and its parts, one sample a second
            plt.figure(figsize=(7, 4))
            for part in ("rss", "heap_active", "heap_allocated", "heap_dirty", "rocksdb_cache_usage",
                         "rocksdb_memtables", "rss_file"):
                if f"{part}_mib" in s:
                    plt.plot(range(len(s[f"{part}_mib"])), s[f"{part}_mib"], label=part)
            plt.xlabel("seconds")
            plt.ylabel("MiB")
            plt.legend(fontsize="small")
            plt.title(name)
            plt.tight_layout()
            plt.savefig(os.path.join(out_dir, f"{name}-memory.png"))
            plt.close()
        if "throughput_per_s" in s:
            plt.figure(figsize=(7, 4))
            plt.plot(range(len(s["throughput_per_s"])), s["throughput_per_s"])
            plt.xlabel("seconds")
            plt.ylabel("per second")
            plt.title(name)
            plt.tight_layout()
            plt.savefig(os.path.join(out_dir, f"{name}-throughput.png"))
            plt.close()


if __name__ == "__main__":
    main()
