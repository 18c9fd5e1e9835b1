#!/usr/bin/env bash
# deploy/prometheus/alerts.yml is valid (promtool check rules) and each alert fires on the series
# that should fire it and stays silent on those that should not (promtool test rules
# alerts_test.yml); the example scrape configurations are valid. promtool comes from Debian's
# prometheus package (deploy/local/install-deps.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root/deploy/prometheus"
promtool check rules alerts.yml
promtool test rules alerts_test.yml
# The example scrape configurations parse and name the rules file.
promtool check config prometheus.yml
promtool check config prometheus-kubernetes.yml
