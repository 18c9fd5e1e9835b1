#!/usr/bin/env bash
# The Kubernetes manifests of deploy/k8s are valid against the Kubernetes API schemas (offline:
# kubernetes-validate bundles them), strictly (an unknown field fails), for the oldest and newest
# Kubernetes versions we target; then the checks a schema cannot make (k8s_manifests_test.py).
#
#   deploy/tests/k8s_manifests_test.sh <sequence-api binary> <step-executor binary>
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
api=${1:?sequence-api binary}
executor=${2:?step-executor binary}
source <("$root/deploy/local/ops-tools.sh" --env)
validate=$(dirname "$OPS_PYTHON")/kubernetes-validate
versions=(1.30.0 1.37.0)
files=("$root"/deploy/k8s/*.yaml "$root"/deploy/k8s/examples/*.yaml)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A kind without a schema is only a warning for kubernetes-validate: count it as a failure.
schema_check() {
  local version=$1 out
  shift
  out=$("$validate" --strict -k "$version" "$@" 2>&1) || { echo "$out"; return 1; }
  if grep -E '^(WARN|ERROR)' <<<"$out"; then return 1; fi
}

for v in "${versions[@]}"; do
  schema_check "$v" "${files[@]}" || { echo "FAIL: deploy/k8s does not validate against Kubernetes $v"; exit 1; }
done
echo "ok: ${#files[@]} files validate against Kubernetes ${versions[*]} (strict)"

# The validator is live: a manifest with a wrong type and one with a misspelt field are refused.
sed 's/^  replicas: 2$/  replicas: two/' "$root/deploy/k8s/20-sequence-api.yaml" >"$tmp/wrong-type.yaml"
sed 's/readinessProbe:/readinesProbe:/' "$root/deploy/k8s/30-step-executor.yaml" >"$tmp/unknown-field.yaml"
for broken in "$tmp/wrong-type.yaml" "$tmp/unknown-field.yaml"; do
  if schema_check "${versions[-1]}" "$broken" >/dev/null; then
    echo "FAIL: the validator accepted a broken manifest ($(basename "$broken"))"
    exit 1
  fi
done
echo "ok: broken manifests are refused"

"$OPS_PYTHON" "$root/deploy/tests/k8s_manifests_test.py" "$api" "$executor"
