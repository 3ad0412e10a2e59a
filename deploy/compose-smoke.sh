#!/usr/bin/env bash
# `make compose-smoke`: build the images, start the compose stack, check that
# every service turns healthy and Prometheus scrapes all four, then tear down.
# Needs a container engine (Docker with compose, or podman + podman-compose /
# docker-compose on the podman socket). Without one it prints why and exits 0.
set -euo pipefail
cd "${BASH_SOURCE[0]%/*}/.."

skip() { echo "compose-smoke: SKIPPED: $*"; exit 0; }

compose=()
engine=docker
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  if docker compose version >/dev/null 2>&1; then compose=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then compose=(docker-compose)
  else skip "docker engine answers but neither 'docker compose' nor docker-compose is installed"; fi
elif command -v podman >/dev/null 2>&1 && podman info >/dev/null 2>&1; then
  engine=podman
  if command -v podman-compose >/dev/null 2>&1; then compose=(podman-compose)
  else skip "podman found but podman-compose is not installed (apt-get install podman-compose)"; fi
else
  skip "no container engine (docker daemon or podman) available on this machine"
fi

project="rs-smoke-$$"
export COMPOSE_PROJECT_NAME="$project"
# Throwaway secrets for the smoke run only; never reused.
SECRET_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
DASHBOARD_PASSWORD="$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')"
PROCESS_API_TOKEN="$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
export SECRET_KEY DASHBOARD_PASSWORD PROCESS_API_TOKEN
export WEBHOOK_URL="${WEBHOOK_URL:-https://webhook.smoke.test/hook}"
export GATEWAY_PORT="${GATEWAY_PORT:-18000}" PROMETHEUS_PORT="${PROMETHEUS_PORT:-19090}"

cleanup() { "${compose[@]}" -f docker-compose.yml down -v --remove-orphans >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "compose-smoke: building images with ${compose[*]}"
"${compose[@]}" -f docker-compose.yml build
"${compose[@]}" -f docker-compose.yml up -d

deadline=$((SECONDS + 180))
for svc in redis ingest offload notify gateway; do
  until [ "$("${compose[@]}" -f docker-compose.yml ps -q "$svc" | xargs -r "$engine" inspect -f '{{.State.Health.Status}}' 2>/dev/null)" = healthy ]; do
    if [ $SECONDS -ge $deadline ]; then
      "${compose[@]}" -f docker-compose.yml logs --tail=50 "$svc" || true
      echo "compose-smoke: FAILED: $svc not healthy within 180 s"; exit 1
    fi
    sleep 2
  done
  echo "compose-smoke: $svc healthy"
done

curl --fail --silent --show-error --max-time 5 "http://127.0.0.1:${GATEWAY_PORT}/health" >/dev/null
echo "compose-smoke: gateway /health OK"

until curl --fail --silent --max-time 5 "http://127.0.0.1:${PROMETHEUS_PORT}/api/v1/query?query=count(up%7Bjob%3D~%22ingest%7Coffload%7Cnotify%7Cgateway%22%7D%3D%3D1)" \
    | grep -q '"value":\[[0-9.]*,"4"\]'; do
  if [ $SECONDS -ge $deadline ]; then echo "compose-smoke: FAILED: Prometheus does not see 4 targets up"; exit 1; fi
  sleep 2
done
echo "compose-smoke: Prometheus scrapes all four services"
echo "compose-smoke: PASSED"
