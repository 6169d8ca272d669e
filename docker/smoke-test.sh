#!/usr/bin/env bash
# `make docker-test`: build the CPU image, run it, wait for its health check, train the book's
# chapter-5 line fit through the API, then stop it with SIGTERM and check that a job running at that
# moment was recorded as interrupted. Needs Docker or podman (not the CI box, which has neither).
#
# Environment: IMAGE (default pytorch-playground:smoke-test), SMOKE_PORT (host port, default 18000),
# BUILD_ARGS (extra build arguments, e.g. "--build-arg TORCH_VERSION=2.14.1", or
# "--build-arg CPU_BASE_IMAGE=localhost/python:3.12-slim-bookworm" for a base made offline),
# DOCKER (the engine's command: docker, the default, or podman).
#
# With podman the image is built in Docker's format (its default OCI format drops HEALTHCHECK), and
# where no systemd runs podman's health-check timers this script runs the image's health check itself.
set -euo pipefail

cd "$(dirname "$0")/.."
IMAGE="${IMAGE:-pytorch-playground:smoke-test}"
PORT="${SMOKE_PORT:-18000}"
NAME="playground-smoke-$$"
VOLUME="playground-smoke-$$"
TOKEN="smoke-$$-$RANDOM"
DOCKER="${DOCKER:-docker}"
BUILD_FORMAT=()
case "$(basename "$DOCKER")" in
  podman*) BUILD_FORMAT=(--format docker) ;;
esac
# Every engine call goes through this: `docker` below means the chosen engine.
docker() { command "$DOCKER" "$@"; }

log() { printf '\n==> %s\n' "$*"; }
fail() {
  printf '\nsmoke test FAILED: %s\n' "$*" >&2
  docker logs --tail 50 "$NAME" >&2 || true
  exit 1
}
cleanup() {
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  docker volume rm "$VOLUME" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Calls the API from inside the container with the image's own Python, so the host needs only
# Docker. Prints the response body; exits non-zero on an HTTP error.
api() {
  local method="$1" path="$2" body="${3:-}"
  docker exec -e TOKEN="$TOKEN" "$NAME" python -c '
import os, sys, urllib.request
method, path, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request("http://127.0.0.1:8000" + path, method=method, data=body.encode() or None)
req.add_header("Authorization", "Bearer " + os.environ["TOKEN"])
req.add_header("Content-Type", "application/json")
with urllib.request.urlopen(req, timeout=10) as resp:
    sys.stdout.write(resp.read().decode())
' "$method" "$path" "$body"
}

# Reads one field of a JSON document on stdin: json_field status, json_field result.w
json_field() {
  docker exec -i "$NAME" python -c '
import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value[key]
print(value)
' "$1"
}

wait_healthy() {
  local status=""
  for _ in $(seq 1 90); do
    if [ ${#BUILD_FORMAT[@]} -gt 0 ]; then  # podman: no systemd timer may run the check; run it now
      docker healthcheck run "$NAME" >/dev/null 2>&1 || true
    fi
    status="$(docker inspect -f '{{.State.Health.Status}}' "$NAME")"
    case "$status" in
      healthy) return 0 ;;
      unhealthy) fail "the health check reports unhealthy" ;;
    esac
    sleep 2
  done
  fail "not healthy after 180 s (last status: $status)"
}

wait_status() {  # wait_status JOB_ID WANTED...: prints the job once its status is one of WANTED
  local job="$1"; shift
  local doc status
  for _ in $(seq 1 120); do
    doc="$(api GET "/api/jobs/$job")"
    status="$(json_field status <<<"$doc")"
    for wanted in "$@"; do
      if [ "$status" = "$wanted" ]; then printf '%s' "$doc"; return 0; fi
    done
    sleep 1
  done
  fail "job $job is '$status' after 120 s, expected one of: $*"
}

log "$DOCKER build -t $IMAGE ."
# shellcheck disable=SC2086  # BUILD_ARGS is a list of words on purpose
docker build -t "$IMAGE" "${BUILD_FORMAT[@]}" ${BUILD_ARGS:-} .
docker image ls "$IMAGE"

log "docker run (port 127.0.0.1:$PORT, volume $VOLUME, API token set)"
# A short health interval so the test need not wait 30 s for the first probe.
docker run -d --name "$NAME" -p "127.0.0.1:$PORT:8000" -v "$VOLUME:/data" \
  -e PLAYGROUND_API_TOKEN="$TOKEN" --health-interval=2s --health-start-period=120s "$IMAGE" >/dev/null
wait_healthy
uid="$(docker exec "$NAME" id -u)"
[ "$uid" != 0 ] || fail "the server runs as root"
if command -v curl >/dev/null 2>&1; then
  curl -fsS "http://127.0.0.1:$PORT/api/health" && echo
fi

log "the book's linear fit (chapter 5, 5000 epochs, lr 1e-2 on scaled input)"
job="$(api POST /api/jobs '{"kind": "linear", "params": {}, "seed": 0}' | json_field id)"
doc="$(wait_status "$job" succeeded failed diverged)"
[ "$(json_field status <<<"$doc")" = succeeded ] || fail "linear job: $doc"
w="$(json_field result.w <<<"$doc")"
b="$(json_field result.b <<<"$doc")"
echo "w=$w b=$b (book: w=5.3671, b=-17.3012)"
docker exec "$NAME" python -c "import sys; w, b = map(float, sys.argv[1:]); sys.exit(not (abs(w - 5.3671) < 1e-3 and abs(b + 17.3012) < 1e-3))" "$w" "$b" \
  || fail "the fit differs from the book: w=$w b=$b"
docker exec "$NAME" test -s /data/playground.sqlite3 || fail "no database in the /data volume"

log "SIGTERM while a job runs: docker stop, then the job must read 'interrupted'"
long="$(api POST /api/jobs '{"kind": "linear", "params": {"epochs": 100000}, "seed": 0}' | json_field id)"
wait_status "$long" running >/dev/null
start=$SECONDS
docker stop -t 30 "$NAME" >/dev/null
exit_code="$(docker inspect -f '{{.State.ExitCode}}' "$NAME")"
echo "stopped in $((SECONDS - start)) s, exit code $exit_code"
[ "$exit_code" = 0 ] || fail "the server exited with $exit_code on SIGTERM (137 means Docker had to SIGKILL it)"
docker start "$NAME" >/dev/null
wait_healthy
doc="$(wait_status "$long" interrupted)"
echo "job $long: interrupted"

log "smoke test passed"
