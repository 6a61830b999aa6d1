#!/usr/bin/env bash
# Join time of a room loaded cold from object storage vs warm from Redis, in one run, on
# loopback, for each document size in SIZES and each store (a directory, file://, and an
# S3-protocol server process, s3s-fs):
#
#  1. starts redis-server, one yws-gateway (room-unload grace 1 s) and one yws-compactor, both
#     with storage.url set to the store;
#  2. seeds one room per size with yws-load --seed-bytes and waits until the compactor stored
#     its snapshot (the snapshot hash names an object) and trimmed the log;
#  3. warm: JOINS single joins, each after the gateway unloaded the room (a load from Redis);
#  4. cold: JOINS single joins, each after the gateway unloaded the room and the room's keys
#     were removed from Redis as an eviction removes them (a cold load from storage);
#  5. prints join time (yws-load sync_time: connect → the whole document received) p50 / p99
#     per size, store and phase, and writes runs.jsonl and summary.json into OUT_DIR.
#
#   loadtest/scripts/storage-cold-join.sh
#
# Environment: SIZES (bytes, "1048576 20971520"), JOINS (10), STORES ("file s3"), OUT_DIR
# (default target/loadtest/storage-cold-join-<time>), YWS_BIN_DIR (a directory holding
# yws-gateway, yws-compactor and yws-load; by default built with `cargo build --release`),
# S3S_FS (the s3s-fs binary; default: on PATH or in ~/.cargo/bin — scripts/test.sh installs
# it). Every wait is bounded; every process started here is stopped, by pid, on exit.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

read -r -a sizes <<<"${SIZES:-1048576 20971520}"
read -r -a stores <<<"${STORES:-file s3}"
joins=${JOINS:-10}
out=${OUT_DIR:-$ROOT/target/loadtest/storage-cold-join-$(date +%Y%m%d-%H%M%S)}
for v in "${sizes[@]}" "$joins"; do
  case $v in '' | *[!0-9]*) echo "storage-cold-join: $v is not a number" >&2; exit 64 ;; esac
done
for tool in redis-server redis-cli curl python3 timeout; do
  command -v "$tool" >/dev/null || { echo "storage-cold-join: $tool is needed" >&2; exit 1; }
done
mkdir -p "$out/bin"
: >"$out/runs.jsonl"
say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

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
  [ -x "$src/$b" ] || { echo "storage-cold-join: $src/$b is missing" >&2; exit 1; }
  cp "$src/$b" "$out/bin/$b"
done
s3s_fs=${S3S_FS:-$(command -v s3s-fs || echo "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs")}

# wait_until SECONDS WHAT COMMAND…: polls COMMAND every 0.2 s, fails after SECONDS.
wait_until() {
  local seconds=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + seconds))
  until "$@"; do
    if ((SECONDS >= deadline)); then echo "storage-cold-join: timed out waiting for $what" >&2; return 1; fi
    sleep 0.2
  done
}
http_ok() { curl -fsS -m 5 -o /dev/null "$1" 2>/dev/null; }

# run_store STORE: one redis, gateway and compactor on STORE; every size, warm then cold.
run_store() {
  local store=$1 dir=$out/$1 url env_vars=() pids=() redis_port gw_port admin_port
  mkdir -p "$dir/redis" "$dir/data"
  case $store in
    file) url="file://$dir/data" ;;
    s3)
      [ -x "$s3s_fs" ] || { echo "storage-cold-join: s3s-fs not found (set S3S_FS)" >&2; return 1; }
      mkdir -p "$dir/data/bench"
      local s3_port
      s3_port=$(free_port)
      "$s3s_fs" --host 127.0.0.1 --port "$s3_port" --access-key bench-access --secret-key bench-secret \
        "$dir/data" >"$dir/s3s-fs.log" 2>&1 &
      pids+=("$!")
      STARTED_PIDS+=("$!")
      wait_for_port "$s3_port" 15 || { echo "s3s-fs did not listen (see $dir/s3s-fs.log)" >&2; return 1; }
      url="s3://bench/docs"
      env_vars=(AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port" AWS_ALLOW_HTTP=true
        AWS_ACCESS_KEY_ID=bench-access AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1)
      ;;
    *) echo "storage-cold-join: unknown store $store (file, s3)" >&2; return 1 ;;
  esac
  redis_port=$(free_port)
  redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$dir/redis" --save '' \
    --appendonly no --protected-mode yes --daemonize no >"$dir/redis.log" 2>&1 &
  pids+=("$!")
  STARTED_PIDS+=("$!")
  wait_for_port "$redis_port" 10 || { echo "redis-server did not listen" >&2; return 1; }
  rcli() { timeout 60 redis-cli -h 127.0.0.1 -p "$redis_port" "$@"; }
  gw_port=$(free_port)
  env "${env_vars[@]}" HOST=127.0.0.1 PORT="$gw_port" REDIS_URL="redis://127.0.0.1:$redis_port" \
    YWS_STORAGE_URL="$url" YWS__REDIS__UNLOAD_GRACE_MS=1000 YWS__REDIS__COMPACT_AFTER_MS=500 \
    LOG_LEVEL=warn "$out/bin/yws-gateway" >"$dir/gateway.log" 2>&1 &
  local gw_pid=$!
  pids+=("$gw_pid")
  STARTED_PIDS+=("$gw_pid")
  admin_port=$(free_port)
  env "${env_vars[@]}" REDIS_URL="redis://127.0.0.1:$redis_port" YWS_STORAGE_URL="$url" \
    YWS__COMPACTOR__POLL_INTERVAL_MS=100 YWS__COMPACTOR__COMPACT_AFTER_MS=500 \
    YWS__ADMIN__HOST=127.0.0.1 YWS__ADMIN__PORT="$admin_port" \
    LOG_LEVEL=warn "$out/bin/yws-compactor" >"$dir/compactor.log" 2>&1 &
  pids+=("$!")
  STARTED_PIDS+=("$!")
  wait_until 30 "the gateway's /readyz" http_ok "http://127.0.0.1:$gw_port/readyz"
  wait_until 30 "the compactor's /readyz" http_ok "http://127.0.0.1:$admin_port/readyz"
  metric() {
    curl -fsS -m 5 "http://127.0.0.1:$gw_port/metrics" |
      awk -v n="$1" '$1 == n { v = $2 } END { print (v == "" ? 0 : v) }'
  }
  unloaded() { [ "$(metric yws_gateway_rooms)" = 0 ] && [ "$(metric yws_gateway_connections)" = 0 ]; }

  local size room phase i
  for size in "${sizes[@]}"; do
    room="cold$size-0"
    say "$store: seeding $room with $size bytes"
    timeout 600 "$out/bin/yws-load" --urls "ws://127.0.0.1:$gw_port" --rooms 1 --clients-per-room 1 \
      --rate 0 --duration 0 --seed-bytes "$size" --connect-timeout 120 --room-prefix "cold$size" \
      --name "seed-$store-$size" --json "$dir/seed-$size.json" --quiet >"$dir/seed-$size.log" 2>&1 ||
      { echo "seeding failed (see $dir/seed-$size.log)" >&2; return 1; }
    stored() { [ -n "$(rcli HGET "yws:{$room}:snap" obj)" ] && [ "$(rcli XLEN "yws:{$room}:log")" = 0 ]; }
    wait_until 300 "the snapshot of $room stored" stored
    for phase in warm cold; do
      for ((i = 0; i < joins; i++)); do
        wait_until 60 "the room to unload" unloaded
        if [ "$phase" = cold ]; then
          rcli DEL "yws:{$room}:snap" "yws:{$room}:log" "yws:{$room}:meta" "yws:{$room}:aw" >/dev/null
        fi
        local name="$store-$size-$phase-$i"
        timeout 600 "$out/bin/yws-load" --urls "ws://127.0.0.1:$gw_port" --rooms 1 --clients-per-room 1 \
          --rate 0 --duration 0 --connect-timeout 300 --room-prefix "cold$size" --name "$name" \
          --json "$dir/$name.json" --quiet >"$dir/$name.log" 2>&1 ||
          { echo "join failed (see $dir/$name.log)" >&2; return 1; }
        python3 - "$dir/$name.json" "$store" "$size" "$phase" "$out/runs.jsonl" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
def find(node):
    if isinstance(node, dict):
        if "sync_time" in node:
            return node["sync_time"]
        for v in node.values():
            r = find(v)
            if r is not None:
                return r
    if isinstance(node, list):
        for v in node:
            r = find(v)
            if r is not None:
                return r
    return None
sync = find(report) or {}
row = {"store": sys.argv[2], "bytes": int(sys.argv[3]), "phase": sys.argv[4],
       "sync_ms": sync.get("max_ms")}
open(sys.argv[5], "a").write(json.dumps(row) + "\n")
PY
      done
    done
    say "$store $size: cold loads counted by the gateway: $(metric yws_storage_cold_loads_total)"
  done
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}"; done
}

for store in "${stores[@]}"; do run_store "$store"; done

python3 - "$out/runs.jsonl" "$out/summary.json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]
summary = []
for key in sorted({(r["store"], r["bytes"], r["phase"]) for r in rows}):
    ms = [r["sync_ms"] for r in rows if (r["store"], r["bytes"], r["phase"]) == key and r["sync_ms"] is not None]
    if ms:
        summary.append({"store": key[0], "bytes": key[1], "phase": key[2], "joins": len(ms),
                        "p50_ms": round(pct(ms, 0.5), 1), "p99_ms": round(pct(ms, 0.99), 1)})
json.dump(summary, open(sys.argv[2], "w"), indent=2)
print(f"{'store':6} {'bytes':>10} {'phase':5} {'joins':>5} {'p50 ms':>8} {'p99 ms':>8}")
for s in summary:
    print(f"{s['store']:6} {s['bytes']:>10} {s['phase']:5} {s['joins']:>5} {s['p50_ms']:>8} {s['p99_ms']:>8}")
PY
say "results in $out"
