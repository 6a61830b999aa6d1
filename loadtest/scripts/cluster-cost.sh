#!/usr/bin/env bash
# What one update costs in cluster mode, and what a standalone gateway pays for the same load.
#
# For each load it runs a standalone gateway (no Redis: the baseline), then 1 and 2 gateways
# over one redis-server and 2 gateways over a local 3-master Redis Cluster (each started by
# deploy/local-cluster.sh, with a compactor), and prints one row per run:
#   redis_cpu_us_per_update   Redis process CPU (utime+stime from /proc/PID/stat, all Redis
#                             processes) over the run, divided by the log entries written (XADD)
#   script_us_per_call        EVALSHA/FCALL usec_per_call from INFO commandstats over the run
#   client_cmds_per_update    commands the gateways and compactor send (not those a script
#                             runs), counted with MONITOR during a short second run of the same
#                             load, divided by the XADDs seen in it
#   gw_cpu_us_per_delivery    gateway CPU (all gateways) per delivery, from yws-load
#   vs_standalone             that figure over the standalone gateway's on the same load
#   p99_ms                    fan-out p99 (cross-node for 2 gateways: clients alternate)
#
#   loadtest/scripts/cluster-cost.sh [yws-load flags]
# Environment:
#   LOADS="rooms-300x10 hot-room-200 rooms-300x10-awareness"  which loads (default: all three)
#   RUNS="standalone redis-1-gateway redis-2-gateways redis-cluster-2-gateways"
#   DURATION=20       seconds of writing per measured run
#   YWS_BIN_DIR       gateway/compactor binaries (default target/release; e.g. an older build
#                     for a before/after table in the same run)
#   OUT_DIR           reports (default target/loadtest/cluster-cost-<time>)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bin=$(yws_load_bin)
bin_dir=${YWS_BIN_DIR:-$ROOT/target/release}
if [ -z "${YWS_BIN_DIR:-}" ]; then
  (cd "$ROOT" && cargo build --release -q --bin yws-gateway --bin yws-compactor) >&2
fi
export YWS_BIN_DIR=$bin_dir
out=${OUT_DIR:-$ROOT/target/loadtest/cluster-cost-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
duration=${DURATION:-20}
cluster="$ROOT/deploy/local-cluster.sh"
state="$ROOT/.yws-run/local-cluster/state"
pids="$ROOT/.yws-run/local-cluster/pids"
EXTRA=("$@")

stop_cluster() { "$cluster" stop >/dev/null 2>&1 || true; }
trap 'stop_cluster; stop_started' EXIT

# load NAME → yws-load flags
load_flags() {
  case $1 in
    rooms-300x10) echo "--rooms 300 --clients-per-room 10 --rate 1 --awareness-rate 0" ;;
    hot-room-200) echo "--rooms 1 --clients-per-room 200 --rate 2 --awareness-rate 0" ;;
    rooms-300x10-awareness) echo "--rooms 300 --clients-per-room 10 --rate 1 --awareness-rate 1" ;;
    *) echo "unknown load $1" >&2; return 64 ;;
  esac
}

# CPU ticks (utime+stime) of the given pids, summed.
cpu_ticks() {
  local total=0 pid f
  for pid in "$@"; do
    # Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
    f=$(sed 's/^.*) //' "/proc/$pid/stat")
    total=$((total + $(awk '{print $12 + $13}' <<<"$f")))
  done
  echo "$total"
}

# name=value pairs of INFO commandstats summed over ports: "xadd_calls script_calls script_usec"
redis_stats() {
  local port
  for port in "$@"; do redis-cli -p "$port" info commandstats; done | awk -F'[:,=]' '
    /^cmdstat_xadd:/ { x += $3 }
    /^cmdstat_(evalsha|eval|fcall|fcall_ro):/ { c += $3; u += $5 }
    END { printf "%d %d %d\n", x, c, u }'
}

# yws-load for NAME against URLS sampling GPIDS, JSON into FILE, for SECONDS of writing.
load_run() {
  local load=$1 urls=$2 gpids=$3 file=$4 seconds=$5
  # shellcheck disable=SC2046
  "$bin" $(load_flags "$load") --payload-bytes 32 --duration "$seconds" --warmup 3 --drain 5 \
    --connect-concurrency 200 --urls "$urls" --server-pid "$gpids" --json "$file" \
    --name "$(basename "$file" .json)" --quiet "${EXTRA[@]}" >"${file%.json}.log" 2>&1 ||
    echo "$(basename "$file" .json): yws-load reported a problem (see $file)" >&2
}

row() { # prints the JSON row of one run
  python3 - "$@" <<'PY'
import json, sys
(load, setup, report, gateways, redis_ticks, xadds, script_calls, script_usec,
 client_cmds, monitor_xadds, standalone) = sys.argv[1:12]
r = json.load(open(report))
step = r["steps"][-1]
lat = step.get("latency") or {}
cpu = step.get("server_cpu_ms_per_1k_deliveries")  # = µs per delivery
ticks, xadds = int(redis_ticks), int(xadds)
hz = 100
row = {
    "load": load, "setup": setup, "gateways": int(gateways),
    "updates": step["counters"]["sent"],
    "deliveries_per_s": round(step.get("deliveries_per_s", 0)),
    "redis_cpu_us_per_update": round(ticks / hz * 1e6 / xadds, 1) if xadds else None,
    "script_us_per_call": round(int(script_usec) / int(script_calls), 2) if int(script_calls) else None,
    "client_cmds_per_update": round(int(client_cmds) / int(monitor_xadds), 2) if int(monitor_xadds) else None,
    "gw_cpu_us_per_delivery": round(cpu, 2) if cpu else None,
    "vs_standalone": round(cpu / float(standalone), 2) if cpu and standalone else None,
    "p50_ms": lat.get("p50_ms"), "p99_ms": lat.get("p99_ms"),
    "converged": step["convergence"]["converged_rooms"] == step["convergence"]["rooms"],
    "missing": step["convergence"]["missing"],
}
print(json.dumps(row))
PY
}

run_standalone() {
  local load=$1 port pid
  port=$(free_port)
  HOST=127.0.0.1 PORT="$port" "$bin_dir/yws-gateway" >"$out/$load.standalone.log" 2>&1 &
  pid=$!
  STARTED_PIDS+=("$pid")
  wait_for_port "$port" 20 || { echo "standalone gateway did not start" >&2; return 1; }
  load_run "$load" "ws://127.0.0.1:$port" "$pid" "$out/$load.standalone.json" "$duration"
  stop_pid "$pid"
  row "$load" standalone "$out/$load.standalone.json" 1 0 0 0 0 0 0 "$(standalone_of "$load")"
}

# The standalone gateway's CPU per delivery on LOAD in this run (empty when not run).
standalone_of() {
  [ -f "$out/$1.standalone.json" ] || return 0
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["steps"][-1].get("server_cpu_ms_per_1k_deliveries") or "")' "$out/$1.standalone.json"
}

run_cluster() {
  local load=$1 setup=$2 gateways=$3; shift 3
  stop_cluster
  "$cluster" start "$gateways" --detach "$@" >"$out/$load.$setup.cluster.log" 2>&1 ||
    { sleep 2; stop_cluster; "$cluster" start "$gateways" --detach "$@" >>"$out/$load.$setup.cluster.log" 2>&1; }
  # shellcheck disable=SC1090
  source "$state"
  local urls="" gpids="" i ports=("$redis_port") rpids=() f
  for ((i = 0; i < gateways; i++)); do
    urls+="${urls:+,}ws://127.0.0.1:$((gateway_port + i))"
    gpids+="${gpids:+,}$(cut -d" " -f1 "$pids/gateway-$((i + 1)).pid")"
  done
  [ "$mode" = redis-cluster ] && ports=("$redis_port" $((redis_port + 1)) $((redis_port + 2)))
  for f in "$pids"/redis*.pid; do rpids+=("$(cut -d" " -f1 "$f")"); done
  local t0 t1 s0 s1
  t0=$(cpu_ticks "${rpids[@]}"); s0=$(redis_stats "${ports[@]}")
  load_run "$load" "$urls" "$gpids" "$out/$load.$setup.json" "$duration"
  t1=$(cpu_ticks "${rpids[@]}"); s1=$(redis_stats "${ports[@]}")
  read -r x0 c0 u0 <<<"$s0"; read -r x1 c1 u1 <<<"$s1"
  # Second, short run of the same load with MONITOR on every Redis: which commands clients send.
  local mon=() p
  for p in "${ports[@]}"; do
    redis-cli -p "$p" monitor >"$out/$load.$setup.monitor.$p" 2>/dev/null &
    mon+=($!)
  done
  load_run "$load" "$urls" "$gpids" "$out/$load.$setup.monitor.json" 6
  kill "${mon[@]}" 2>/dev/null || true
  wait "${mon[@]}" 2>/dev/null || true
  local client_cmds monitor_xadds
  # Lines of commands run by a script say "[db lua]"; clients' say "[db addr:port]".
  client_cmds=$(cat "$out/$load.$setup.monitor."* | grep -v ' lua\] ' | grep -c '^[0-9]' || true)
  monitor_xadds=$(cat "$out/$load.$setup.monitor."* | grep -ci '\] "xadd"' || true)
  rm -f "$out/$load.$setup.monitor."*
  row "$load" "$setup" "$out/$load.$setup.json" "$gateways" "$((t1 - t0))" "$((x1 - x0))" \
    "$((c1 - c0))" "$((u1 - u0))" "$client_cmds" "$monitor_xadds" "$(standalone_of "$load")"
  stop_cluster
}

want() { case " ${RUNS:-standalone redis-1-gateway redis-2-gateways redis-cluster-2-gateways} " in *" $1 "*) return 0 ;; esac; return 1; }

: >"$out/summary.jsonl"
for load in ${LOADS:-rooms-300x10 hot-room-200 rooms-300x10-awareness}; do
  want standalone && run_standalone "$load" | tee -a "$out/summary.jsonl"
  want redis-1-gateway && run_cluster "$load" redis-1-gateway 1 | tee -a "$out/summary.jsonl"
  want redis-2-gateways && run_cluster "$load" redis-2-gateways 2 | tee -a "$out/summary.jsonl"
  want redis-cluster-2-gateways && run_cluster "$load" redis-cluster-2-gateways 2 --redis-cluster | tee -a "$out/summary.jsonl"
done
python3 - "$out/summary.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cols = ["load", "setup", "redis_cpu_us_per_update", "client_cmds_per_update", "script_us_per_call",
        "gw_cpu_us_per_delivery", "vs_standalone", "p99_ms", "missing"]
print("| " + " | ".join(cols) + " |")
print("|" + " --- |" * len(cols))
for r in rows:
    print("| " + " | ".join("" if r.get(c) is None else str(r.get(c)) for c in cols) + " |")
PY
echo "reports in $out"
