#!/usr/bin/env bash
# Join time of a compacted vs an uncompacted 20 MiB document, in one run, on loopback:
#
#  1. starts redis-server and one yws-gateway (short room-unload grace), NO compactor;
#  2. seeds one room with a SEED_BYTES document written as SEED_UPDATES updates (yws-load
#     --seed-updates), so the room's Redis log holds SEED_UPDATES entries;
#  3. uncompacted: waits until the gateway unloaded the room (every join is a cold load from
#     Redis), then measures FIRST_JOINS single joins and STORMS storms of STORM_CLIENTS joiners
#     at once (join time = connect → sync step 2 received, i.e. the whole document);
#  4. starts yws-compactor, waits until the log is trimmed and the snapshot written;
#  5. compacted: the same joins again;
#  6. prints both, the ratios, and Redis log/snapshot sizes before and after; writes the
#     yws-load JSON reports, runs.jsonl and summary.json into OUT_DIR.
#
#   loadtest/scripts/compaction-join.sh [extra yws-load flags for the join runs]
#
# Environment: SEED_BYTES (20971520), SEED_UPDATES (4000), STORM_CLIENTS (20), FIRST_JOINS (5),
# STORMS (3), UNLOAD_GRACE_MS (1000), OUT_DIR (default target/loadtest/compaction-join-<time>),
# YWS_BIN_DIR (a directory holding yws-gateway, yws-compactor and yws-load; by default they
# are built with `cargo build --release`, honouring CARGO_TARGET_DIR). The binaries are copied
# into OUT_DIR/bin first, so a concurrent build cannot swap them mid-run. Every wait is bounded;
# every process started here is stopped, by pid, on exit.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

seed_bytes=${SEED_BYTES:-20971520}
seed_updates=${SEED_UPDATES:-4000}
storm_clients=${STORM_CLIENTS:-20}
first_joins=${FIRST_JOINS:-5}
storms=${STORMS:-3}
unload_grace_ms=${UNLOAD_GRACE_MS:-1000}
out=${OUT_DIR:-$ROOT/target/loadtest/compaction-join-$(date +%Y%m%d-%H%M%S)}
EXTRA=("$@")
for v in seed_bytes seed_updates storm_clients first_joins storms unload_grace_ms; do
  case ${!v} in '' | *[!0-9]*) echo "compaction-join: $v must be a number" >&2; exit 64 ;; esac
done
for tool in redis-server redis-cli curl python3 timeout; do
  command -v "$tool" >/dev/null || { echo "compaction-join: $tool is needed" >&2; exit 1; }
done
mkdir -p "$out/bin" "$out/redis" "$out/charts"
: >"$out/runs.jsonl"
: >"$out/redis-sizes.jsonl"

say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# --- binaries ------------------------------------------------------------------------------
if [ -n "${YWS_BIN_DIR:-}" ]; then
  src=$YWS_BIN_DIR
else
  say "building release binaries"
  (cd "$ROOT" && cargo build --release -q -p yws-gateway -p yws-compactor -p yws-load) >&2
  target=${CARGO_TARGET_DIR:-$ROOT/target}
  case $target in /*) ;; *) target=$ROOT/$target ;; esac
  src=$target/release
fi
for b in yws-gateway yws-compactor yws-load; do
  [ -x "$src/$b" ] || { echo "compaction-join: $src/$b is missing" >&2; exit 1; }
  cp "$src/$b" "$out/bin/$b"
done
load="$out/bin/yws-load"

# --- services ------------------------------------------------------------------------------
prefix=yws
room_prefix=join20m
room="$room_prefix-0"
log_key="$prefix:{$room}:log"
snap_key="$prefix:{$room}:snap"
meta_key="$prefix:{$room}:meta"

redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$out/redis" --save '' \
  --appendonly no --protected-mode yes --daemonize no >"$out/redis.log" 2>&1 &
STARTED_PIDS+=("$!")
wait_for_port "$redis_port" 10 || { echo "redis-server did not listen (see $out/redis.log)" >&2; exit 1; }
rcli() { timeout 30 redis-cli -h 127.0.0.1 -p "$redis_port" "$@"; }

# http_ok URL: succeeds when GET URL answers 200.
http_ok() { curl -fsS -m 5 -o /dev/null "$1" 2>/dev/null; }

# wait_until SECONDS WHAT COMMAND…: polls COMMAND every 0.2 s, fails after SECONDS.
wait_until() {
  local seconds=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + seconds))
  until "$@"; do
    if ((SECONDS >= deadline)); then echo "compaction-join: timed out waiting for $what" >&2; return 1; fi
    sleep 0.2
  done
}

gw_port=$(free_port)
env HOST=127.0.0.1 PORT="$gw_port" REDIS_URL="redis://127.0.0.1:$redis_port" YWS_REDIS_PREFIX="$prefix" \
  YWS__REDIS__UNLOAD_GRACE_MS="$unload_grace_ms" YWS__ROOMS__AWARENESS_TIMEOUT_MS=5000 \
  LOG_LEVEL=info "$out/bin/yws-gateway" >"$out/gateway.log" 2>&1 &
gw_pid=$!
STARTED_PIDS+=("$gw_pid")
wait_until 30 "the gateway's /readyz" http_ok "http://127.0.0.1:$gw_port/readyz"
say "redis 127.0.0.1:$redis_port, gateway ws://127.0.0.1:$gw_port (pid $gw_pid), no compactor"

# metric NAME: the gateway's sample of NAME (no labels), 0 when absent.
metric() {
  curl -fsS -m 5 "http://127.0.0.1:$gw_port/metrics" |
    awk -v n="$1" '$1 == n { v = $2 } END { print (v == "" ? 0 : v) }'
}
room_unloaded() { [ "$(metric yws_gateway_rooms)" = 0 ] && [ "$(metric yws_gateway_connections)" = 0 ]; }

# redis_sizes LABEL: appends the room's Redis footprint to redis-sizes.jsonl.
redis_sizes() {
  local xlen logmem snapmem snapdoc logbytes used
  xlen=$(rcli XLEN "$log_key")
  logmem=$(rcli MEMORY USAGE "$log_key" SAMPLES 0)
  snapmem=$(rcli MEMORY USAGE "$snap_key" SAMPLES 0)
  snapdoc=$(rcli HSTRLEN "$snap_key" doc)
  logbytes=$(rcli HGET "$meta_key" bytes)
  used=$(rcli INFO memory | tr -d '\r' | sed -n 's/^used_memory:\([0-9]*\)$/\1/p')
  printf '{"label":"%s","log_entries":%s,"log_memory_bytes":%s,"snapshot_memory_bytes":%s,"snapshot_doc_bytes":%s,"log_bytes_since_snapshot":%s,"redis_used_memory_bytes":%s}\n' \
    "$1" "${xlen:-0}" "${logmem:-null}" "${snapmem:-null}" "${snapdoc:-0}" "${logbytes:-null}" "${used:-null}" |
    tee -a "$out/redis-sizes.jsonl"
}

# join NAME PHASE CLIENTS: one join run on a cold room (waits for the unload first).
failures=0
join() {
  local name=$1 phase=$2 clients=$3 sum0 count0 sum1 count1 status=0
  wait_until 60 "the room to unload" room_unloaded
  sum0=$(metric yws_gateway_room_load_seconds_sum)
  count0=$(metric yws_gateway_room_load_seconds_count)
  local loadavg
  loadavg=$(cut -d' ' -f1 /proc/loadavg)
  timeout 600 "$load" --urls "ws://127.0.0.1:$gw_port" --rooms 1 --clients-per-room "$clients" \
    --rate 0 --duration 0 --connect-concurrency "$clients" --connect-timeout 300 \
    --room-prefix "$room_prefix" --name "$name" --server-pid "$gw_pid" \
    --json "$out/$name.json" --charts-dir "$out/charts" --quiet "${EXTRA[@]}" \
    >"$out/$name.log" 2>&1 || status=$?
  sum1=$(metric yws_gateway_room_load_seconds_sum)
  count1=$(metric yws_gateway_room_load_seconds_count)
  if [ "$status" != 0 ]; then
    failures=$((failures + 1))
    say "$name: yws-load exited with $status (see $out/$name.log)"
  fi
  python3 - "$out/$name.json" "$name" "$phase" "$clients" "$sum0" "$sum1" "$count0" "$count1" "$loadavg" "$status" \
    "$out/runs.jsonl" <<'PY'
import json, sys
path, name, phase, clients = sys.argv[1:5]
sum0, sum1, count0, count1, loadavg = map(float, sys.argv[5:10])
status, runs = int(sys.argv[10]), sys.argv[11]
row = {"run": name, "phase": phase, "clients": int(clients), "exit": status, "loadavg_1m": loadavg,
       "gateway_room_load_wait_s_mean": (sum1 - sum0) / (count1 - count0) if count1 > count0 else None}
try:
    report = json.load(open(path))
    step = report["steps"][0]
    samples = step["servers"][0]["samples"] if step.get("servers") else {}
    before, after = samples.get("before") or {}, samples.get("after_connect") or {}
    if "cpu_us" in before and "cpu_us" in after:
        row["gateway_cpu_connect_ms"] = (after["cpu_us"] - before["cpu_us"]) / 1e3
    row.update(ok=report["ok"], sync=step["sync_time"], synced=step["counters"]["synced_first"],
               step2_bytes_max=step["counters"]["step2_bytes_max"],
               converged=step["convergence"]["converged_rooms"] == step["convergence"]["rooms"])
except (OSError, ValueError, KeyError, IndexError) as e:
    row.update(ok=False, error=str(e))
with open(runs, "a") as f:
    f.write(json.dumps(row) + "\n")
s = row.get("sync") or {}
load = row["gateway_room_load_wait_s_mean"]
print(f"  {name}: {row.get('synced')}/{clients} synced, join p50 {s.get('p50_ms', 0):,.0f} ms, "
      f"p99 {s.get('p99_ms', 0):,.0f} ms, max {s.get('max_ms', 0):,.0f} ms; gateway room load "
      f"{'-' if load is None else f'{load * 1e3:,.0f} ms'}, gateway CPU "
      f"{row.get('gateway_cpu_connect_ms', 0):,.0f} ms; ok {row.get('ok')}")
PY
}

# measure PHASE: FIRST_JOINS single cold joins, then STORMS cold storms.
measure() {
  local phase=$1 i
  for ((i = 1; i <= first_joins; i++)); do
    join "$phase-first-$i" "$phase" 1
  done
  for ((i = 1; i <= storms; i++)); do
    join "$phase-storm-$i" "$phase" "$storm_clients"
  done
}

# --- 1. seed ---------------------------------------------------------------------------------
say "seeding $room: $seed_bytes bytes as $seed_updates updates"
timeout 900 "$load" --urls "ws://127.0.0.1:$gw_port" --rooms 1 --clients-per-room 1 --rate 0 \
  --duration 0 --seed-bytes "$seed_bytes" --seed-updates "$seed_updates" --connect-timeout 120 \
  --room-prefix "$room_prefix" --name seed --json "$out/seed.json" --charts-dir "$out/charts" \
  --quiet >"$out/seed.log" 2>&1 || { echo "seeding failed (see $out/seed.log)" >&2; exit 1; }
log_has_seed() { [ "$(rcli XLEN "$log_key")" -ge "$seed_updates" ]; }
wait_until 60 "$seed_updates log entries" log_has_seed
[ "$(rcli EXISTS "$snap_key")" = 0 ] || { echo "a snapshot exists before any compactor ran" >&2; exit 1; }
redis_sizes uncompacted

# --- 2. uncompacted joins -------------------------------------------------------------------
say "uncompacted: $first_joins first joins, then $storms storms of $storm_clients (each on a cold room)"
measure uncompacted
[ "$(rcli EXISTS "$snap_key")" = 0 ] || { echo "the log was compacted during the uncompacted phase" >&2; exit 1; }

# --- 3. compaction ----------------------------------------------------------------------------
compactor_port=$(free_port)
env REDIS_URL="redis://127.0.0.1:$redis_port" YWS_REDIS_PREFIX="$prefix" YWS__ADMIN__HOST=127.0.0.1 \
  YWS__ADMIN__PORT="$compactor_port" LOG_LEVEL=info "$out/bin/yws-compactor" >"$out/compactor.log" 2>&1 &
STARTED_PIDS+=("$!")
compaction_started=$(date +%s.%N)
say "compactor started (pid $!); waiting for the log to be compacted"
compacted() { [ "$(rcli XLEN "$log_key")" = 0 ] && [ "$(rcli EXISTS "$snap_key")" = 1 ]; }
wait_until 300 "the compaction of $room" compacted
compaction_s=$(python3 -c "import sys,time; print(round(time.time() - float(sys.argv[1]), 2))" "$compaction_started")
say "compacted $compaction_s s after the compactor started"
redis_sizes compacted

# --- 4. compacted joins ----------------------------------------------------------------------
say "compacted: $first_joins first joins, then $storms storms of $storm_clients (each on a cold room)"
measure compacted
redis_sizes end

# --- 5. summary ----------------------------------------------------------------------------------
python3 - "$out" "$compaction_s" "$seed_bytes" "$seed_updates" "$storm_clients" <<'PY'
import json, statistics, sys
out, compaction_s = sys.argv[1], float(sys.argv[2])
seed_bytes, seed_updates, storm_clients = map(int, sys.argv[3:6])
runs = [json.loads(l) for l in open(f"{out}/runs.jsonl")]
sizes = {r["label"]: r for r in map(json.loads, open(f"{out}/redis-sizes.jsonl"))}

def phase(name):
    firsts = [r for r in runs if r["phase"] == name and r["clients"] == 1]
    storms = [r for r in runs if r["phase"] == name and r["clients"] > 1]
    first_ms = [r["sync"]["p50_ms"] for r in firsts if r.get("sync") and r["sync"]["count"]]
    loads = [r["gateway_room_load_wait_s_mean"] * 1e3 for r in firsts if r.get("gateway_room_load_wait_s_mean") is not None]
    cpus = [r["gateway_cpu_connect_ms"] for r in firsts if r.get("gateway_cpu_connect_ms") is not None]
    def med(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None
    sync = [r.get("sync") or {} for r in storms]
    return {
        "first_join_ms": first_ms,
        "first_join_median_ms": statistics.median(first_ms) if first_ms else None,
        "first_join_gateway_load_ms": loads,
        "first_join_gateway_load_median_ms": statistics.median(loads) if loads else None,
        "first_join_gateway_cpu_ms": cpus,
        "first_join_gateway_cpu_median_ms": statistics.median(cpus) if cpus else None,
        "storm_gateway_cpu_ms": [r.get("gateway_cpu_connect_ms") for r in storms],
        "storm_gateway_cpu_median_ms": med(r.get("gateway_cpu_connect_ms") for r in storms),
        "storms": len(storms),
        "storm_synced": [r.get("synced") for r in storms],
        "storm_p50s_ms": [s.get("p50_ms") for s in sync], "storm_p99s_ms": [s.get("p99_ms") for s in sync],
        "storm_p50_ms": med(s.get("p50_ms") for s in sync),
        "storm_p99_ms": med(s.get("p99_ms") for s in sync),
        "storm_max_ms": max((s.get("max_ms") or 0 for s in sync), default=None),
        "storm_gateway_load_wait_mean_ms": med((r.get("gateway_room_load_wait_s_mean") or 0) * 1e3 for r in storms),
        "step2_bytes": max((r.get("step2_bytes_max") or 0) for r in runs if r["phase"] == name) if runs else None,
        "all_ok": all(r.get("ok") and r["exit"] == 0 and r.get("converged") for r in runs if r["phase"] == name),
        "loadavg_1m": [r["loadavg_1m"] for r in runs if r["phase"] == name],
    }

u, c = phase("uncompacted"), phase("compacted")
def ratio(key):
    return round(u[key] / c[key], 2) if u.get(key) and c.get(key) else None
summary = {
    "seed_bytes": seed_bytes, "seed_updates": seed_updates, "storm_clients": storm_clients,
    "uncompacted": u, "compacted": c, "compaction_s": compaction_s,
    "ratio_uncompacted_over_compacted": {k: ratio(k) for k in ("first_join_median_ms", "first_join_gateway_load_median_ms", "first_join_gateway_cpu_median_ms", "storm_p50_ms", "storm_p99_ms", "storm_max_ms")},
    "redis": sizes,
}
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)

def ms(v): return "-" if v is None else f"{v:,.0f}"
def mib(v): return "-" if v in (None, "null") else f"{v / 2**20:.2f} MiB"
print()
print(f"join time of a {seed_bytes / 2**20:.0f} MiB document (cold room: loaded from Redis by the gateway)")
print(f"medians over {len(u['first_join_ms'])} first joins and {u['storms']} storms of {storm_clients} clients; storm max: the worst join of all storms")
print(f"{'':<13}{'first join':>12}{'gateway load':>14}{'storm p50':>12}{'storm p99':>12}{'storm max':>12}")
for name, p in (("uncompacted", u), ("compacted", c)):
    print(f"{name:<13}{ms(p['first_join_median_ms']) + ' ms':>12}{ms(p['first_join_gateway_load_median_ms']) + ' ms':>14}"
          f"{ms(p['storm_p50_ms']) + ' ms':>12}{ms(p['storm_p99_ms']) + ' ms':>12}{ms(p['storm_max_ms']) + ' ms':>12}")
r = summary["ratio_uncompacted_over_compacted"]
fmt = lambda v: "-" if v is None else f"{v:.2f}x"
print(f"{'ratio u/c':<13}{fmt(r['first_join_median_ms']):>12}{fmt(r['first_join_gateway_load_median_ms']):>14}"
      f"{fmt(r['storm_p50_ms']):>12}{fmt(r['storm_p99_ms']):>12}{fmt(r['storm_max_ms']):>12}")
print(f"first joins (ms): uncompacted {', '.join(ms(v) for v in u['first_join_ms'])}; compacted {', '.join(ms(v) for v in c['first_join_ms'])}")
print(f"storm p50s (ms): uncompacted {', '.join(ms(v) for v in u['storm_p50s_ms'])}; compacted {', '.join(ms(v) for v in c['storm_p50s_ms'])}")
print(f"storm p99s (ms): uncompacted {', '.join(ms(v) for v in u['storm_p99s_ms'])}; compacted {', '.join(ms(v) for v in c['storm_p99s_ms'])}")
print(f"gateway CPU per first join (median): uncompacted {ms(u['first_join_gateway_cpu_median_ms'])} ms, compacted {ms(c['first_join_gateway_cpu_median_ms'])} ms ({fmt(r['first_join_gateway_cpu_median_ms'])}); "
      f"per storm: {ms(u['storm_gateway_cpu_median_ms'])} ms vs {ms(c['storm_gateway_cpu_median_ms'])} ms")
print(f"storms: {storm_clients} clients at once; synced {u['storm_synced']} / {c['storm_synced']}; sync step 2 {mib(c['step2_bytes'])}")
print(f"compaction took {compaction_s:.1f} s from compactor start")
print("redis (room keys):")
for label, s in sizes.items():
    print(f"  {label:<12} log XLEN {s['log_entries']:>6}, log MEMORY USAGE {mib(s['log_memory_bytes']):>11}, "
          f"snapshot MEMORY USAGE {mib(s['snapshot_memory_bytes']):>11} (doc {mib(s['snapshot_doc_bytes'])}), "
          f"redis used_memory {mib(s['redis_used_memory_bytes'])}")
print(f"load average (1 min) during runs: uncompacted {u['loadavg_1m']}, compacted {c['loadavg_1m']}")
print("all runs converged and passed" if u["all_ok"] and c["all_ok"] else "PROBLEM: a run failed; see runs.jsonl")
PY
say "reports in $out"
[ "$failures" = 0 ]
