#!/usr/bin/env bash
# Scaling runs: the same load against 1, 2 and 3 gateways over one Redis, and against
# 2 gateways over a local 3-master Redis Cluster, each started by deploy/local-cluster.sh.
# For every run it reports: deliveries/s, fan-out latency (cross-node for 2+ gateways),
# gateway CPU per 1,000 deliveries (all gateways together, and per node), and Redis
# commands per update (from INFO commandstats before/after).
#
#   loadtest/scripts/scaling.sh [SCENARIO.toml] [yws-load flags]   (default: cross-node.toml)
#   OUT_DIR=… to keep the reports elsewhere (default target/loadtest/scaling-<time>)
#   RUNS="redis-2-gateways …" to run only some of: redis-1-gateway redis-2-gateways
#   redis-3-gateways redis-cluster-2-gateways (default: all four)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
scenario=${1:-$ROOT/loadtest/scenarios/cross-node.toml}
shift || true
bin=$(yws_load_bin)
out=${OUT_DIR:-$ROOT/target/loadtest/scaling-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
cluster="$ROOT/deploy/local-cluster.sh"
state="$ROOT/.yws-run/local-cluster/state"
pids="$ROOT/.yws-run/local-cluster/pids"

stop_cluster() { "$cluster" stop >/dev/null 2>&1 || true; }
trap 'stop_cluster; stop_started' EXIT

# Sum of one field of INFO commandstats over the given Redis ports: total calls.
redis_calls() {
  local total=0 port n
  for port in "$@"; do
    n=$(redis-cli -p "$port" info commandstats | sed -n 's/^cmdstat_[^:]*:calls=\([0-9]*\).*/\1/p' | paste -sd+ | bc)
    total=$((total + ${n:-0}))
  done
  echo "$total"
}

run() {
  local name=$1 gateways=$2; shift 2
  case " ${RUNS:-$name} " in *" $name "*) ;; *) return 0 ;; esac
  stop_cluster
  # A freshly created Redis Cluster can refuse the first connections: one more try.
  "$cluster" start "$gateways" --detach "$@" >"$out/$name.cluster.log" 2>&1 ||
    { sleep 2; stop_cluster; "$cluster" start "$gateways" --detach "$@" >>"$out/$name.cluster.log" 2>&1; }
  # shellcheck disable=SC1090
  source "$state"
  local urls="" gpids="" i ports=("$redis_port")
  for ((i = 0; i < gateways; i++)); do
    urls+="${urls:+,}ws://127.0.0.1:$((gateway_port + i))"
    gpids+="${gpids:+,}$(cut -d" " -f1 "$pids/gateway-$((i + 1)).pid")"
  done
  [ "$mode" = redis-cluster ] && ports=("$redis_port" $((redis_port + 1)) $((redis_port + 2)))
  local before after
  before=$(redis_calls "${ports[@]}")
  "$bin" --scenario "$scenario" --urls "$urls" --server-pid "$gpids" --json "$out/$name.json" \
    --name "$name" --quiet "${EXTRA[@]}" || echo "$name: yws-load reported a problem (see $out/$name.json)"
  after=$(redis_calls "${ports[@]}")
  python3 - "$out/$name.json" "$((after - before))" "$gateways" <<'PY'
import json, sys
report, redis_calls, gateways = json.load(open(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3])
step = report["steps"][-1]
sent = step["counters"]["sent"]
lat = step.get("latency") or {}
cpu = step.get("server_cpu_ms_per_1k_deliveries")
print(json.dumps({
    "run": report.get("name") or sys.argv[1],
    "gateways": gateways,
    "deliveries_per_s": round(step.get("deliveries_per_s", 0)),
    "p50_ms": lat.get("p50_ms"), "p99_ms": lat.get("p99_ms"), "max_ms": lat.get("max_ms"),
    "gateway_cpu_ms_per_1k_deliveries_total": cpu,
    "gateway_cpu_ms_per_1k_deliveries_per_node": round(cpu / gateways, 3) if cpu else None,
    "redis_commands_per_update": round(redis_calls / max(sent, 1), 2),
    "converged": step["convergence"]["converged_rooms"] == step["convergence"]["rooms"],
    "missing": step["convergence"]["missing"],
}))
PY
}

EXTRA=("$@")
: >"$out/summary.jsonl"
run redis-1-gateway 1 | tee -a "$out/summary.jsonl"
run redis-2-gateways 2 | tee -a "$out/summary.jsonl"
run redis-3-gateways 3 | tee -a "$out/summary.jsonl"
run redis-cluster-2-gateways 2 --redis-cluster | tee -a "$out/summary.jsonl"
echo "reports in $out"
