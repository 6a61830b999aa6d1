#!/usr/bin/env bash
# Runs one scenario against the reference Node server and then against the yws gateway, on
# free loopback ports, and prints the ratios (yws-load compare).
#   loadtest/scripts/side-by-side.sh loadtest/scenarios/fanout-sweep.toml [extra yws-load flags]
# Environment: OUT_DIR (default target/loadtest/<scenario>-<time>), YWS_GATEWAY_BIN
# (default target/release/yws-gateway), YWS_LOAD_BIN (default: built here).
# The yws half is skipped, with a message, when the gateway binary is missing or does not
# start listening.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scenario=${1:?usage: side-by-side.sh SCENARIO.toml [yws-load flags]}
shift
[ -f "$scenario" ] || { echo "no scenario file $scenario" >&2; exit 64; }
name=$(basename "$scenario" .toml)
out=${OUT_DIR:-$ROOT/target/loadtest/$name-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
bin=$(yws_load_bin)
ensure_reference
status=0

echo "== reference (@y/websocket-server) =="
port=$(free_port)
start_reference "$port" "$out/reference.log"
ref_pid=$LAST_PID
"$bin" --scenario "$scenario" --urls "ws://127.0.0.1:$port" --server-pid "$ref_pid" \
  --json "$out/reference.json" --name "$name-reference" "$@" || status=$?
stop_pid "$ref_pid"

gateway=${YWS_GATEWAY_BIN:-$ROOT/target/release/yws-gateway}
echo "== yws gateway =="
if [ ! -x "$gateway" ]; then
  echo "SKIP yws: $gateway not found (cargo build --release -p yws-gateway, or set YWS_GATEWAY_BIN)"
  echo "reports in $out"
  exit "$status"
fi
port=$(free_port)
HOST=127.0.0.1 PORT="$port" "$gateway" >"$out/yws.log" 2>&1 &
yws_pid=$!
STARTED_PIDS+=("$yws_pid")
if ! wait_for_port "$port" 20; then
  echo "SKIP yws: $gateway did not listen on port $port within 20 s (see $out/yws.log)"
  exit "$status"
fi
"$bin" --scenario "$scenario" --urls "ws://127.0.0.1:$port" --server-pid "$yws_pid" \
  --json "$out/yws.json" --name "$name-yws" "$@" || status=$?
stop_pid "$yws_pid"

echo "== ratios (baseline: reference, candidate: yws) =="
"$bin" compare "$out/reference.json" "$out/yws.json" --json "$out/compare.json"
echo "reports in $out"
exit "$status"
