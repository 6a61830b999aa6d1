#!/usr/bin/env bash
# Reconnect storm against the reference server: runs loadtest/scenarios/reconnect-storm.toml,
# kills the server KILL_AT seconds into the run (default 10) and restarts it on the same port
# RESTART_AFTER seconds later (default 2). Every client must reconnect with backoff, resync
# through sync step 1 (pushing the state the restarted server lost) and converge.
#   loadtest/scripts/reconnect-storm.sh [extra yws-load flags]
# Against a yws cluster, pass its gateway URLs with --urls and set KILL_PID to one gateway's
# pid instead: that process is killed (not restarted) and clients fail over to the others.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bin=$(yws_load_bin)
out=${OUT_DIR:-$ROOT/target/loadtest/reconnect-storm-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
kill_at=${KILL_AT:-10}
restart_after=${RESTART_AFTER:-2}
scenario="$ROOT/loadtest/scenarios/reconnect-storm.toml"

if [ -n "${KILL_PID:-}" ]; then
  "$bin" --scenario "$scenario" --json "$out/report.json" "$@" &
  load_pid=$!
  STARTED_PIDS+=("$load_pid")
  sleep "$kill_at"
  echo "killing gateway $KILL_PID"
  kill -9 "$KILL_PID"
  wait "$load_pid"
  exit $?
fi

ensure_reference
port=$(free_port)
start_reference "$port" "$out/reference.log"
ref_pid=$LAST_PID
"$bin" --scenario "$scenario" --urls "ws://127.0.0.1:$port" --json "$out/report.json" "$@" &
load_pid=$!
STARTED_PIDS+=("$load_pid")
sleep "$kill_at"
echo "killing the reference server (pid $ref_pid)"
kill -9 "$ref_pid"; wait "$ref_pid" 2>/dev/null || true
sleep "$restart_after"
start_reference "$port" "$out/reference-restarted.log"
echo "restarted it (pid $LAST_PID)"
status=0
wait "$load_pid" || status=$?
echo "report in $out/report.json"
exit "$status"
