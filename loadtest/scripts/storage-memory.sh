#!/usr/bin/env bash
# Redis memory with object storage: ROOMS rooms of ~DOC_BYTES each, before and after the
# compactor evicts them, in one run on loopback:
#
#  1. starts an empty redis-server and records used_memory;
#  2. writes each room's document as one log entry (a Yjs update made by the yjs package of
#     tests/interop: one Y.Text of DOC_BYTES characters) straight into Redis, queued for
#     compaction, and records used_memory (logs only);
#  3. starts yws-compactor with storage.url = file://OUT_DIR/store and
#     storage.evict_after_ms = EVICT_AFTER_MS; waits until every room is compacted (snapshot
#     object written and recorded, log trimmed and deleted) and records used_memory (snapshots
#     in Redis and in storage);
#  4. waits until every room was evicted, records used_memory with the compactor still
#     connected, stops the compactor (its connections' buffers go) and records used_memory
#     again (target: within 5% of the empty Redis) and the number of keys left;
#  5. prints the figures and writes OUT_DIR/summary.json.
#
#   loadtest/scripts/storage-memory.sh
#
# Environment: ROOMS (10000), DOC_BYTES (20000), EVICT_AFTER_MS (120000: the rooms must all be
# compacted before the first is idle that long), OUT_DIR (default
# target/loadtest/storage-memory-<time>), YWS_BIN_DIR (a directory holding yws-compactor; by
# default it is built with `cargo build --release`). Redis memory does not depend on how the
# compactor was built, so a debug build measures the same figures. Every wait is bounded; every
# process started here is stopped, by pid, on exit.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rooms=${ROOMS:-10000}
doc_bytes=${DOC_BYTES:-20000}
evict_after_ms=${EVICT_AFTER_MS:-120000}
out=${OUT_DIR:-$ROOT/target/loadtest/storage-memory-$(date +%Y%m%d-%H%M%S)}
for v in rooms doc_bytes evict_after_ms; do
  case ${!v} in '' | *[!0-9]*) echo "storage-memory: $v must be a number" >&2; exit 64 ;; esac
done
for tool in redis-server redis-cli curl python3 node timeout; do
  command -v "$tool" >/dev/null || { echo "storage-memory: $tool is needed" >&2; exit 1; }
done
[ -d "$ROOT/tests/interop/node_modules/yjs" ] ||
  { echo "storage-memory: run npm ci in tests/interop first (the yjs package)" >&2; exit 1; }
mkdir -p "$out/redis" "$out/store"

say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if [ -n "${YWS_BIN_DIR:-}" ]; then
  compactor_bin=$YWS_BIN_DIR/yws-compactor
else
  say "building the release compactor"
  (cd "$ROOT" && cargo build --release -q -p yws-compactor) >&2
  target=${CARGO_TARGET_DIR:-$ROOT/target}
  case $target in /*) ;; *) target=$ROOT/$target ;; esac
  compactor_bin=$target/release/yws-compactor
fi
[ -x "$compactor_bin" ] || { echo "storage-memory: $compactor_bin is missing" >&2; exit 1; }
cp "$compactor_bin" "$out/yws-compactor"

redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$out/redis" --save '' \
  --appendonly no --protected-mode yes --maxmemory-policy noeviction --daemonize no \
  >"$out/redis.log" 2>&1 &
STARTED_PIDS+=("$!")
wait_for_port "$redis_port" 10 || { echo "redis-server did not listen (see $out/redis.log)" >&2; exit 1; }
rcli() { timeout 60 redis-cli -h 127.0.0.1 -p "$redis_port" "$@"; }
info_memory() { rcli INFO memory | tr -d '\r' | sed -n "s/^$1:\([0-9]*\)\$/\1/p"; }
used_memory() { info_memory used_memory; }

# wait_until SECONDS WHAT COMMAND…: polls COMMAND every second, fails after SECONDS.
wait_until() {
  local seconds=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + seconds))
  until "$@"; do
    if ((SECONDS >= deadline)); then echo "storage-memory: timed out waiting for $what" >&2; return 1; fi
    sleep 1
  done
}

sleep 1
empty=$(used_memory)
say "redis 127.0.0.1:$redis_port, empty: used_memory $empty"

# --- 2. seed -------------------------------------------------------------------------------
NODE_PATH="$ROOT/tests/interop/node_modules" node -e '
const Y = require("yjs");
const doc = new Y.Doc();
doc.getText("text").insert(0, "x".repeat(Number(process.argv[1])));
process.stdout.write(Buffer.from(Y.encodeStateAsUpdate(doc)));
' "$doc_bytes" >"$out/update.bin"
update_bytes=$(stat -c %s "$out/update.bin")
python3 - "$out/update.bin" "$rooms" "$out/seed.resp" <<'PY'
import sys, time
update = open(sys.argv[1], "rb").read()
rooms, now = int(sys.argv[2]), int(time.time() * 1000)
def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)
with open(sys.argv[3], "wb") as f:
    for i in range(rooms):
        room = "mem-%d" % i
        f.write(cmd("XADD", "yws:{%s}:log" % room, "*", "u", update, "n", "bench", "t", now))
        f.write(cmd("ZADD", "yws:compact", now, room))
PY
rcli --pipe <"$out/seed.resp" >"$out/seed.log"
seeded=$(used_memory)
say "seeded $rooms rooms of one $update_bytes-byte update: used_memory $seeded"

# --- 3. compaction ---------------------------------------------------------------------------
admin_port=$(free_port)
env REDIS_URL="redis://127.0.0.1:$redis_port" YWS_STORAGE_URL="file://$out/store" \
  YWS__STORAGE__EVICT_AFTER_MS="$evict_after_ms" YWS__COMPACTOR__POLL_INTERVAL_MS=50 \
  YWS__COMPACTOR__BATCH=256 YWS__COMPACTOR__COMPACT_AFTER_MS=300 \
  YWS__COMPACTOR__CLEANUP_AFTER_MS=300 YWS__ADMIN__HOST=127.0.0.1 YWS__ADMIN__PORT="$admin_port" \
  LOG_LEVEL=warn "$out/yws-compactor" >"$out/compactor.log" 2>&1 &
compactor_pid=$!
STARTED_PIDS+=("$compactor_pid")
metric() {
  curl -fsS -m 5 "http://127.0.0.1:$admin_port/metrics" |
    awk -v n="$1" '$1 == n { v = $2 } END { print (v == "" ? 0 : v) }'
}
started=$SECONDS
all_compacted() { [ "$(metric 'yws_compactor_logs_deleted_total')" -ge "$rooms" ]; }
wait_until 1800 "every room compacted" all_compacted
compact_s=$((SECONDS - started))
compacted=$(used_memory)
objects=$(find "$out/store" -name '*.bin' | wc -l)
store_bytes=$(du -sb "$out/store" | cut -f1)
say "compacted in ${compact_s}s: used_memory $compacted; $objects objects, $store_bytes bytes stored"

# --- 4. eviction -----------------------------------------------------------------------------
all_evicted() { [ "$(metric 'yws_compactor_rooms_evicted_total')" -ge "$rooms" ]; }
wait_until $((evict_after_ms / 1000 + 1800)) "every room evicted" all_evicted
sleep 1
evicted_connected=$(used_memory)
clients=$(info_memory mem_clients_normal)
say "evicted: used_memory $evicted_connected with the compactor connected ($clients in client buffers)"
stop_pid "$compactor_pid"
sleep 1
evicted=$(used_memory)
dataset=$(info_memory used_memory_dataset)
scripts=$(info_memory used_memory_scripts_eval)
keys=$(rcli DBSIZE)
say "compactor stopped: used_memory $evicted (dataset $dataset, scripts $scripts), $keys keys left"

python3 - "$out/summary.json" "$rooms" "$update_bytes" "$empty" "$seeded" "$compacted" "$evicted" "$keys" "$compact_s" "$store_bytes" "$evicted_connected" "$dataset" "$scripts" <<'PY'
import json, sys
path = sys.argv[1]
(rooms, update, empty, seeded, compacted, evicted, keys, compact_s, stored, connected, dataset,
 scripts) = map(int, sys.argv[2:14])
summary = {
    "rooms": rooms, "update_bytes": update, "used_memory_empty": empty,
    "used_memory_logs": seeded, "used_memory_compacted": compacted,
    "used_memory_evicted_compactor_connected": connected,
    "used_memory_evicted": evicted, "used_memory_dataset_evicted": dataset,
    "used_memory_scripts_evicted": scripts, "keys_left": keys,
    "compaction_seconds": compact_s, "stored_bytes": stored,
    "evicted_vs_empty_percent": round(100.0 * (evicted - empty) / empty, 2),
}
json.dump(summary, open(path, "w"), indent=2)
print(json.dumps(summary, indent=2))
PY
say "results in $out"
