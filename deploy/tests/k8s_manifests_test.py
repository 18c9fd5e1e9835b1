#!/usr/bin/env python3
"""What the Kubernetes manifests promise beyond their schema (deploy/tests/k8s_manifests_test.sh
validates the schema with kubernetes-validate first).

  k8s_manifests_test.py <sequence-api binary> <step-executor binary>

Each failed check is printed; exit 1 if any. The checks are those a schema cannot make and a
cluster would only show at run time: selectors that match the pods, named ports that exist,
$(VAR) references that are defined (Kubernetes leaves an undefined one verbatim), ConfigMap and
Secret keys that exist, flags the binaries accept, and the operational promises of issue #16
(two API replicas with probes and secrets from Secrets, an executor StatefulSet whose instance id
is the pod name and whose --data_dir is on its persistent volume).
"""
import glob
import os
import re
import sys

import yaml

import service_flags

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
K8S = os.path.join(ROOT, "deploy/k8s")

failures = []


def check(cond, message):
    if not cond:
        failures.append(message)
    return cond


def load(paths):
    docs = []
    for path in paths:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    docs.append((os.path.relpath(path, ROOT), doc))
    return docs


def name_of(doc):
    return f"{doc['kind']}/{doc['metadata']['name']}"


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def containers(workload):
    return workload["spec"]["template"]["spec"]["containers"]


def arg_value(container, flag):
    for a in container.get("command", []) + container.get("args", []):
        if a.startswith(f"--{flag}="):
            return a.split("=", 1)[1]
    return None


def env_entry(container, name):
    for e in container.get("env", []):
        if e["name"] == name:
            return e
    return None


def probe_path(container, probe):
    return container.get(probe, {}).get("httpGet", {}).get("path")


def main(api_binary, executor_binary):
    manifests = load(sorted(glob.glob(os.path.join(K8S, "*.yaml"))))
    examples = load(sorted(glob.glob(os.path.join(K8S, "examples", "*.yaml"))))
    check(manifests, f"no manifests in {K8S}")
    by_kind = {}
    for path, doc in manifests:
        by_kind.setdefault(doc["kind"], []).append(doc)
        if doc["kind"] != "Namespace":
            check(doc["metadata"].get("namespace") == "sequences",
                  f"{path} {name_of(doc)}: not in namespace sequences")

    configmaps = {d["metadata"]["name"]: set(d.get("data", {})) for d in by_kind.get("ConfigMap", [])}
    secrets = {d["metadata"]["name"]: set(d.get("stringData", {})) | set(d.get("data", {}))
               for _, d in examples if d["kind"] == "Secret"}
    workloads = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
    jobs = [d for _, d in examples if d["kind"] == "Job"]
    binaries = {"sequence-api": api_binary, "step-executor": executor_binary}

    # Every workload: its selector selects its own pods; references inside each container resolve
    # (the example Jobs too: Kubernetes makes their selectors).
    for w in workloads + jobs:
        wn = name_of(w)
        pod_labels = w["spec"]["template"]["metadata"].get("labels", {})
        if w["kind"] != "Job":
            check(matches(w["spec"]["selector"]["matchLabels"], pod_labels),
                  f"{wn}: selector does not match its pod template's labels")
        volumes = {v["name"]: v for v in w["spec"]["template"]["spec"].get("volumes", [])}
        claims = {c["metadata"]["name"] for c in w["spec"].get("volumeClaimTemplates", [])}
        for v in volumes.values():
            if "secret" in v:
                sn = v["secret"]["secretName"]
                if check(sn in secrets, f"{wn}: volume {v['name']}: Secret {sn} not in examples/"):
                    for item in v["secret"].get("items", []):
                        check(item["key"] in secrets[sn], f"{wn}: Secret {sn} has no key {item['key']}")
        for c in containers(w):
            cn = f"{wn} container {c['name']}"
            defined = set()
            for e in c.get("env", []):
                defined.add(e["name"])
                ref = e.get("valueFrom", {})
                if "configMapKeyRef" in ref:
                    r = ref["configMapKeyRef"]
                    check(r["key"] in configmaps.get(r["name"], set()),
                          f"{cn}: env {e['name']}: ConfigMap {r['name']} has no key {r['key']}")
                if "secretKeyRef" in ref:
                    r = ref["secretKeyRef"]
                    check(r["key"] in secrets.get(r["name"], set()),
                          f"{cn}: env {e['name']}: Secret {r['name']} (examples/) has no key {r['key']}")
            argv = c.get("command", []) + c.get("args", [])
            for a in argv:
                for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", a):
                    check(var in defined, f"{cn}: {a} refers to $({var}), not in its env")
            ports = {p["name"] for p in c.get("ports", [])}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                port = c.get(probe, {}).get("httpGet", {}).get("port")
                if port is not None:
                    check(port in ports or isinstance(port, int), f"{cn}: {probe} port {port} not declared")
            for m in c.get("volumeMounts", []):
                check(m["name"] in volumes or m["name"] in claims,
                      f"{cn}: mount {m['name']} is neither a volume nor a claim template")
            for flag in ("auth_token", "token_keys", "kafka_sasl_password"):
                check(arg_value(c, flag) is None, f"{cn}: secret passed as --{flag} (visible in ps)")
            binary = binaries.get(c["name"])
            if check(binary is not None, f"{cn}: no binary known for this container"):
                unknown = service_flags.unknown_flags(binary, argv[1:])
                check(len(service_flags.flag_names(argv)) >= 5, f"{cn}: fewer than 5 flags found")
                check(not unknown, f"{cn}: flags {unknown} unknown to {os.path.basename(binary)}")

    # Services and PodDisruptionBudgets select the pods of a workload, by ports that exist.
    def selected(selector):
        return [w for w in workloads
                if matches(selector, w["spec"]["template"]["metadata"].get("labels", {}))]

    for s in by_kind.get("Service", []):
        ws = selected(s["spec"].get("selector", {}))
        if check(len(ws) == 1, f"{name_of(s)}: selects {len(ws)} workloads, want 1"):
            ports = {p["name"] for c in containers(ws[0]) for p in c.get("ports", [])}
            for p in s["spec"]["ports"]:
                check(p["targetPort"] in ports or isinstance(p["targetPort"], int),
                      f"{name_of(s)}: targetPort {p['targetPort']} is no container port")
    pdb_targets = set()
    for p in by_kind.get("PodDisruptionBudget", []):
        ws = selected(p["spec"]["selector"]["matchLabels"])
        check(len(ws) == 1, f"{name_of(p)}: selects {len(ws)} workloads, want 1")
        pdb_targets.update(name_of(w) for w in ws)
    for w in workloads:
        check(name_of(w) in pdb_targets, f"{name_of(w)}: no PodDisruptionBudget")

    # The API: a Deployment of two or more, probed, its secrets from Secrets.
    apis = [d for d in by_kind.get("Deployment", []) if d["metadata"]["name"] == "sequence-api"]
    if check(len(apis) == 1, "no Deployment sequence-api"):
        api = apis[0]
        check(api["spec"]["replicas"] >= 2, "sequence-api: fewer than 2 replicas")
        c = containers(api)[0]
        check(probe_path(c, "readinessProbe") == "/readyz", "sequence-api: readiness is not /readyz")
        check(probe_path(c, "livenessProbe") == "/healthz", "sequence-api: liveness is not /healthz")
        check(any(p.get("name") == "grpc" for p in c.get("ports", [])), "sequence-api: no grpc port")
        for var in ("SEQUENCES_API_TOKEN", "SEQUENCES_TOKEN_KEYS"):
            e = env_entry(c, var)
            check(e is not None and "secretKeyRef" in e.get("valueFrom", {}),
                  f"sequence-api: {var} does not come from a Secret")

    # The executor: a StatefulSet whose pod name is the instance id, its state on its own volume,
    # governed by a headless Service.
    execs = [d for d in by_kind.get("StatefulSet", []) if d["metadata"]["name"] == "step-executor"]
    if check(len(execs) == 1, "no StatefulSet step-executor"):
        ex = execs[0]
        c = containers(ex)[0]
        check(arg_value(c, "instance_id") == "$(POD_NAME)",
              "step-executor: --instance_id is not $(POD_NAME)")
        e = env_entry(c, "POD_NAME")
        check(e is not None and e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
              == "metadata.name", "step-executor: POD_NAME is not the pod's metadata.name")
        claims = {t["metadata"]["name"] for t in ex["spec"].get("volumeClaimTemplates", [])}
        data_dir = arg_value(c, "data_dir")
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        check(data_dir is not None and mounts.get(data_dir) in claims,
              f"step-executor: --data_dir {data_dir} is not on a volume claim template")
        check(probe_path(c, "readinessProbe") == "/readyz", "step-executor: readiness is not /readyz")
        check(probe_path(c, "livenessProbe") == "/healthz", "step-executor: liveness is not /healthz")
        governing = [s for s in by_kind.get("Service", [])
                     if s["metadata"]["name"] == ex["spec"].get("serviceName")]
        check(len(governing) == 1 and governing[0]["spec"].get("clusterIP") == "None",
              "step-executor: serviceName is not a headless Service")

    for f in failures:
        print("FAIL", f)
    if failures:
        return 1
    print(f"ok: {len(manifests)} resources in deploy/k8s, {len(workloads) + len(jobs)} workloads "
          f"checked (examples/ included)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
