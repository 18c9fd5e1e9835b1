#!/usr/bin/env python3
"""The Grafana dashboard and the alert rules use only metrics the services export.

Checks (each a reason to fail):
  - deploy/grafana/sequences.json is valid JSON and every panel query parses as PromQL
    (`promtool check rules` over a generated rules file, Grafana's $__ variables replaced);
  - every metric name in the dashboard's queries and in deploy/prometheus/alerts.yml is listed in
    deploy/prometheus/metrics.txt (a histogram only as _bucket/_sum/_count), or is Prometheus's own
    `up`;
  - every metric of metrics.txt appears on the dashboard (it shows all the main figures);
  - every alert has a runbook annotation naming a section of docs/operations.md that exists.

Run: deploy/tests/metric_names_test.py (needs PyYAML: deploy/local/ops-tools.sh; promtool:
deploy/local/install-deps.sh).
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
METRICS = os.path.join(ROOT, "deploy/prometheus/metrics.txt")
ALERTS = os.path.join(ROOT, "deploy/prometheus/alerts.yml")
DASHBOARD = os.path.join(ROOT, "deploy/grafana/sequences.json")

# Series Prometheus makes itself for each target.
BUILTIN = {"up"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
            "unless", "bool", "offset", "inf", "nan"}


def load_metrics(path):
    """name -> type, from `name type [labels]` lines."""
    metrics = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = line.split()
            if len(fields) < 2 or fields[1] not in ("counter", "gauge", "histogram"):
                raise SystemExit(f"{path}: bad line {line!r}")
            metrics[fields[0]] = fields[1]
    return metrics


def series_names(metrics):
    """Series name -> the metric it belongs to."""
    out = {}
    for name, kind in metrics.items():
        if kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                out[name + suffix] = name
        else:
            out[name] = name
    return out


def grafana_to_promql(expr):
    """Grafana's interval variables become a fixed range; other $vars sit inside label strings."""
    return re.sub(r"\$__(rate_interval|interval|range)", "5m", expr)


def metric_names(expr):
    """The metric (series) names a PromQL expression selects."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)   # string literals
    e = re.sub(r"'(?:[^'\\]|\\.)*'", "''", e)
    e = re.sub(r"\{[^}]*\}", " ", e)                # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)               # ranges and subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)\b(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def dashboard_exprs(dashboard):
    exprs = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    exprs.append((p.get("title", "?"), t["expr"]))
            walk(p.get("panels", []))

    walk(dashboard.get("panels", []))
    return exprs


def alert_exprs(rules):
    return [(r.get("alert") or r.get("record"), r["expr"])
            for g in rules["groups"] for r in g["rules"]]


def github_slug(heading):
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def runbook_failures(rules):
    out = []
    for g in rules["groups"]:
        for r in g["rules"]:
            if "alert" not in r:
                continue
            runbook = r.get("annotations", {}).get("runbook", "")
            path, _, anchor = runbook.partition("#")
            full = os.path.join(ROOT, path)
            if not path or not anchor or not os.path.isfile(full):
                out.append(f"alert {r['alert']}: runbook {runbook!r} is not <file>#<section>")
                continue
            with open(full) as f:
                slugs = {github_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", f.read(), re.M)}
            if anchor not in slugs:
                out.append(f"alert {r['alert']}: {path} has no section #{anchor}")
    return out


def promtool_parses(exprs):
    """Runs promtool check rules over recording rules made of these expressions."""
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": grafana_to_promql(e)}
        for i, (_, e) in enumerate(exprs)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump(rules, f)
        path = f.name
    try:
        r = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True)
        return r.returncode == 0, r.stdout + r.stderr
    finally:
        os.unlink(path)


def main():
    failures = []
    # The extractor itself, on an expression with every construct it must see through.
    sample = ('histogram_quantile(0.99, sum by (le, method) (rate(a_bucket{code=~"X|Y",'
              'job="$j"}[$__rate_interval]))) / on (instance) group_left (b) b_total offset 5m')
    got = metric_names(grafana_to_promql(sample))
    if got != {"a_bucket", "b_total"}:
        failures.append(f"metric_names({sample!r}) = {sorted(got)}, want a_bucket, b_total")

    metrics = load_metrics(METRICS)
    known = series_names(metrics)
    with open(DASHBOARD) as f:
        try:
            dashboard = json.load(f)
        except json.JSONDecodeError as e:
            raise SystemExit(f"FAIL {DASHBOARD}: not valid JSON: {e}")
    with open(ALERTS) as f:
        alerts = yaml.safe_load(f)

    used_on_dashboard = set()
    for source, exprs in (("dashboard", dashboard_exprs(dashboard)),
                          ("alerts.yml", alert_exprs(alerts))):
        if not exprs:
            failures.append(f"{source}: no queries found")
        for where, expr in exprs:
            names = metric_names(grafana_to_promql(expr))
            if not names:
                failures.append(f"{source} {where}: no metric found in {expr!r}")
            for name in sorted(names):
                if name in BUILTIN:
                    continue
                if name not in known:
                    hint = " (a histogram: use _bucket, _sum or _count)" if name in metrics else ""
                    failures.append(f"{source} {where}: {name} is not in metrics.txt{hint}")
                elif source == "dashboard":
                    used_on_dashboard.add(known[name])
        if source == "dashboard":
            ok, out = promtool_parses(exprs)
            if not ok:
                failures.append(f"dashboard queries do not parse as PromQL:\n{out}")

    failures += runbook_failures(alerts)
    for name in sorted(set(metrics) - used_on_dashboard):
        failures.append(f"dashboard: {name} (metrics.txt) is on no panel")

    for f in failures:
        print("FAIL", f)
    if failures:
        return 1
    print(f"ok: {len(dashboard_exprs(dashboard))} dashboard queries and "
          f"{len(alert_exprs(alerts))} alert rules use only the {len(metrics)} listed metrics")
    return 0


if __name__ == "__main__":
    sys.exit(main())
