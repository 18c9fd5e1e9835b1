#!/usr/bin/env bash
# Installs the Debian packages this project builds and tests with. Idempotent: when every package is
# already installed it prints one line and exits in well under a second. Run as root or with sudo.
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build pkg-config clang-format
  # clang with libFuzzer and the sanitizer runtimes (libclang-rt-14-dev): tests/fuzz/run.sh (part of
  # the test command) and deploy/local/check.sh
  clang libclang-rt-14-dev
  # gRPC and protobuf (C++ runtime, codegen, and the grpc_cpp_plugin)
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  # googleapis' google/rpc/{status,error_details}.proto (for google.rpc.BadRequest error details);
  # Debian ships them in this package, so the repo does not vendor them
  golang-github-gogo-googleapis-dev
  # grpc/health/v1/health.proto, compiled into the proto target so server reflection can describe
  # grpc.health.v1.Health (grpcurl's health check with no local proto); Debian ships the file
  # only in this package
  golang-google-grpc-dev
  # Kafka client, state store, Abseil
  librdkafka-dev librocksdb-dev libabsl-dev
  # jemalloc, the step executor's allocator: glibc's malloc/free was a quarter of its CPU per
  # enrollment (tests/bench/README.md, "Enroll to first step: jemalloc")
  libjemalloc-dev
  # HMAC-SHA256 for the API's signed page and consistency tokens
  libssl-dev
  # Prometheus metrics over HTTP (/metrics, /healthz, /readyz): prometheus-cpp's core registry and
  # text serializer, served by CivetWeb (libs/service/http_server.h); the Prometheus server itself
  # (its scrape and query API) for the metrics e2e test, and promtool
  prometheus-cpp-dev libcivetweb-dev prometheus
  # tests: Catch2 (unit runner), rapidcheck (property tests)
  catch2 librapidcheck-dev
  # the system time-zone database that absl::LoadTimeZone reads
  tzdata
  # operators' tools: read topics by hand; the Kafka broker runs on Java 17 and is fetched by Maven
  kcat openjdk-17-jre-headless maven
  # scripts: curl for health probes, python3 for the grpcio client test; openssl makes the
  # certificates of the mutual-TLS test
  curl python3 python3-venv openssl
  # operations (deploy/): promtool checks and unit-tests deploy/prometheus/alerts.yml (and the
  # Prometheus server scrapes both services in an e2e test); systemd-analyze verifies
  # deploy/systemd/ units (systemd is present on Debian, listed for minimal images)
  prometheus systemd
)

# `install-deps.sh --bench` adds what tests/bench/ needs: matplotlib for the plots, perf for the
# profiles (tests/bench/README.md, "Profiling"), and a JDK (javac) for the Kafka Streams peer
# (tests/bench/peers/kafka-streams, built by Maven, listed above).
if [ "${1:-}" = "--bench" ]; then
  packages+=(python3-matplotlib linux-perf openjdk-17-jdk-headless)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} Debian packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
