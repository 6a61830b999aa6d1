#!/usr/bin/env bash
# Chaos run: a yws cluster under load while processes die.
#
# Starts Redis (AOF on; or a 3-master Redis Cluster with CLUSTER=1), GATEWAYS gateways and
# COMPACTORS compactors on free loopback ports, and runs yws-load with clients that reconnect
# as the y-websocket client does (backoff, resync through sync step 1/2, keep editing). While
# they edit, the script
#   - SIGKILLs a random gateway every KILL_EVERY seconds and restarts it on its port,
#   - SIGKILLs a compactor once (restarting it),
#   - restarts Redis once (SHUTDOWN, start again from its AOF; in a cluster: one master),
#   - pauses Redis once with DEBUG SLEEP (longer than the command timeout),
#   - with CLUSTER=1 (3 masters with REPLICAS [1] replicas each): SIGKILLs a master once (its
#     replica takes over; the old master comes back as a replica) and reshards once
#     (`redis-cli --cluster reshard`: 200 slots from one master to another under the load),
#   - with SENTINEL=1 (a primary, a replica and three Sentinels; gateways get REDIS_SENTINELS):
#     SIGKILLs the primary once (the replica takes over; the old primary returns) and runs a
#     `SENTINEL FAILOVER` once,
# and stops injecting faults QUIET seconds before the clients stop writing. At the end every
# client of every room must hold the same document with every update (yws-load's convergence
# check: 0 missing); the script prints the faults injected, reconnects, closes by code and the
# peak memory (VmHWM) of every kind of process, and exits non-zero when anything diverged.
#
#   loadtest/scripts/chaos.sh [extra yws-load flags]
# Environment (defaults in brackets):
#   DURATION [240]  seconds of editing   GATEWAYS [3]  COMPACTORS [2]  CLUSTER [0]  REPLICAS [1]
#   SENTINEL [0]
#   ROOMS [40]  CLIENTS [4] per room  RATE [2] updates/s per client  AWARENESS [0.5]/s
#   KILL_EVERY [20]  QUIET [20]  SEED [random] for the fault schedule
#   YWS_BIN_DIR [target/release, built if missing]  YWS_LOAD_BIN  OUT_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

duration=${DURATION:-240}
gateways=${GATEWAYS:-3}
compactors=${COMPACTORS:-2}
cluster=${CLUSTER:-0}
replicas=${REPLICAS:-1}
sentinel=${SENTINEL:-0}
rooms=${ROOMS:-40}
clients=${CLIENTS:-4}
rate=${RATE:-2}
awareness=${AWARENESS:-0.5}
kill_every=${KILL_EVERY:-20}
quiet=${QUIET:-20}
RANDOM=${SEED:-$$}
out=${OUT_DIR:-$ROOT/target/loadtest/chaos-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
if [ -n "${YWS_BIN_DIR:-}" ]; then
  bin_dir=$YWS_BIN_DIR
else
  (cd "$ROOT" && cargo build --release -q --bin yws-gateway --bin yws-compactor) >&2
  bin_dir=$ROOT/target/release
fi
load_bin=$(yws_load_bin)
prefix=chaos$$

declare -A PID PORT HWM
faults_gateway=0 faults_compactor=0 faults_redis_restart=0 faults_redis_pause=0
faults_failover=0 faults_reshard=0
log() { printf '[%5ss] %s\n' "$((SECONDS - t_start))" "$*" | tee -a "$out/faults.log"; }

# Peak RSS (VmHWM, kB) of a process, remembered per role before it dies.
note_hwm() {
  local name=$1 pid=${PID[$1]:-} role=${1%%-*} kb
  [ -n "$pid" ] && [ -r "/proc/$pid/status" ] || return 0
  kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
  [ -n "$kb" ] && [ "$kb" -gt "${HWM[$role]:-0}" ] && HWM[$role]=$kb
  return 0
}

start_proc() { # NAME LOG COMMAND…
  local name=$1 logf=$2; shift 2
  "$@" >>"$logf" 2>&1 &
  PID[$name]=$!
  STARTED_PIDS+=("$!")
}

kill9() { # NAME
  note_hwm "$1"
  kill -KILL "${PID[$1]}" 2>/dev/null || true
  wait "${PID[$1]}" 2>/dev/null || true
}

# --- Redis -----------------------------------------------------------------------------------
redis_ports=()
redis_args() { # PORT
  local dir="$out/redis-$1"
  mkdir -p "$dir"
  local args=(--port "$1" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync everysec
    --save '' --enable-debug-command local --client-output-buffer-limit "pubsub 256mb 64mb 60")
  if [ "$cluster" = 1 ]; then
    args+=(--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000)
  fi
  printf '%s\n' "${args[@]}"
}
start_redis() { # PORT
  local args
  mapfile -t args < <(redis_args "$1")
  start_proc "redis-$1" "$out/redis-$1.log" redis-server "${args[@]}"
  wait_for_port "$1" 20 || { echo "redis-server on $1 did not start" >&2; exit 1; }
}
# A free port below 55536 whose cluster bus port (+10000) is free too.
free_cluster_port() {
  python3 -c '
import random, socket
for _ in range(200):
    p = random.randrange(20000, 30000)
    try:
        for q in (p, p + 10000):
            s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
        print(p); break
    except OSError:
        pass'
}
if [ "$cluster" = 1 ]; then
  for _ in $(seq $((3 * (1 + replicas)))); do redis_ports+=("$(free_cluster_port)"); done
  for p in "${redis_ports[@]}"; do start_redis "$p"; done
  redis-cli --cluster create "${redis_ports[@]/#/127.0.0.1:}" --cluster-replicas "$replicas" --cluster-yes >"$out/cluster-create.log" 2>&1
  for _ in $(seq 100); do
    redis-cli -p "${redis_ports[0]}" cluster info | grep -q '^cluster_state:ok' && break
    sleep 0.2
  done
  # The seeds are the three masters, as a user would configure them.
  redis_env=(REDIS_CLUSTER_NODES="$(printf '127.0.0.1:%s,' "${redis_ports[@]:0:3}" | sed 's/,$//')")
elif [ "$sentinel" = 1 ]; then
  redis_ports=("$(free_port)" "$(free_port)")
  for p in "${redis_ports[@]}"; do start_redis "$p"; done
  redis-cli -p "${redis_ports[1]}" replicaof 127.0.0.1 "${redis_ports[0]}" >/dev/null
  sentinel_ports=("$(free_port)" "$(free_port)" "$(free_port)")
  for s in "${sentinel_ports[@]}"; do
    printf 'port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor mymaster 127.0.0.1 %s 2\nsentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 10000\n' \
      "$s" "$out" "${redis_ports[0]}" >"$out/sentinel-$s.conf"
    start_proc "sentinel-$s" "$out/sentinel-$s.log" redis-server "$out/sentinel-$s.conf" --sentinel
  done
  for _ in $(seq 150); do
    redis-cli -p "${sentinel_ports[0]}" sentinel replicas mymaster 2>/dev/null | grep -qx "${redis_ports[1]}" &&
      [ "$(redis-cli -p "${sentinel_ports[0]}" sentinel sentinels mymaster 2>/dev/null | grep -c '^name$')" -ge 2 ] && break
    sleep 0.2
  done
  redis_env=(REDIS_SENTINELS="$(printf '127.0.0.1:%s,' "${sentinel_ports[@]}" | sed 's/,$//')")
else
  redis_ports=("$(free_port)")
  start_redis "${redis_ports[0]}"
  redis_env=(REDIS_URL="redis://127.0.0.1:${redis_ports[0]}")
fi
# The primary the Sentinels name now (SENTINEL=1).
sentinel_primary() {
  redis-cli -p "${sentinel_ports[0]}" sentinel get-master-addr-by-name mymaster 2>/dev/null | sed -n 2p
}

# --- gateways and compactors ------------------------------------------------------------------
start_gateway() { # I
  start_proc "gateway-$1" "$out/gateway-$1.log" env HOST=127.0.0.1 PORT="${PORT[gateway-$1]}" \
    "${redis_env[@]}" YWS_REDIS_PREFIX="$prefix" LOG_FORMAT=text LOG_LEVEL=info "$bin_dir/yws-gateway"
}
start_compactor() { # I
  start_proc "compactor-$1" "$out/compactor-$1.log" env "${redis_env[@]}" YWS_REDIS_PREFIX="$prefix" \
    YWS__ADMIN__HOST=127.0.0.1 YWS__ADMIN__PORT="${PORT[compactor-$1]}" LOG_FORMAT=text \
    LOG_LEVEL=info "$bin_dir/yws-compactor"
}
urls="" gpids=""
for ((i = 1; i <= gateways; i++)); do
  PORT[gateway-$i]=$(free_port)
  start_gateway "$i"
  urls+="${urls:+,}ws://127.0.0.1:${PORT[gateway-$i]}"
done
for ((i = 1; i <= compactors; i++)); do
  PORT[compactor-$i]=$(free_port)
  start_compactor "$i"
done
for ((i = 1; i <= gateways; i++)); do
  wait_for_port "${PORT[gateway-$i]}" 30 || { echo "gateway-$i did not start (see $out/gateway-$i.log)" >&2; exit 1; }
done

# --- load ------------------------------------------------------------------------------------
t_start=$SECONDS
"$load_bin" --urls "$urls" --rooms "$rooms" --clients-per-room "$clients" --rate "$rate" \
  --awareness-rate "$awareness" --duration "$duration" --warmup 5 --drain 20 --reconnect true \
  --connect-timeout 15 --room-prefix "$prefix" --json "$out/load.json" --name chaos --quiet "$@" \
  >"$out/load.log" 2>&1 &
load_pid=$!
STARTED_PIDS+=("$load_pid")

# --- faults ----------------------------------------------------------------------------------
# Editing starts after the clients connected; faults run from then until QUIET s before the end.
sleep 8
fault_end=$((SECONDS + duration - quiet))
compactor_at=$((SECONDS + (duration - quiet) * 3 / 10))
restart_at=$((SECONDS + (duration - quiet) / 2))
pause_at=$((SECONDS + (duration - quiet) * 7 / 10))
failover_at=0 reshard_at=0 failed_port=""
if [ "$cluster" = 1 ] || [ "$sentinel" = 1 ]; then
  failover_at=$((SECONDS + (duration - quiet) * 4 / 10))
  reshard_at=$((SECONDS + (duration - quiet) * 6 / 10))
fi
# Masters that are up now: "port id" per line, from any live node's view.
live_masters() {
  local p
  for p in "${redis_ports[@]}"; do
    redis-cli -p "$p" cluster nodes 2>/dev/null | awk '$3 ~ /master/ && $3 !~ /fail/ && $9 != "" {split($2, a, "[:@]"); print a[2], $1}' && return 0
  done
}
next_kill=$((SECONDS + kill_every))
while ((SECONDS < fault_end)) && kill -0 "$load_pid" 2>/dev/null; do
  if ((SECONDS >= next_kill)); then
    i=$((RANDOM % gateways + 1))
    log "SIGKILL gateway-$i (port ${PORT[gateway-$i]})"
    kill9 "gateway-$i"
    sleep 1
    start_gateway "$i"
    faults_gateway=$((faults_gateway + 1))
    next_kill=$((SECONDS + kill_every))
  fi
  if ((compactor_at > 0 && SECONDS >= compactor_at)); then
    i=$((RANDOM % compactors + 1))
    log "SIGKILL compactor-$i"
    kill9 "compactor-$i"
    sleep 2
    start_compactor "$i"
    faults_compactor=$((faults_compactor + 1))
    compactor_at=0
  fi
  if ((restart_at > 0 && SECONDS >= restart_at)); then
    p=${redis_ports[$((RANDOM % ${#redis_ports[@]}))]}
    [ "$p" = "$failed_port" ] && { sleep 0.5; continue; } # down already: pick again
    log "restart redis on $p (SHUTDOWN, then start from its AOF)"
    note_hwm "redis-$p"
    redis-cli -p "$p" shutdown >/dev/null 2>&1 || true
    wait "${PID[redis-$p]}" 2>/dev/null || true
    sleep 2
    start_redis "$p"
    faults_redis_restart=$((faults_redis_restart + 1))
    restart_at=0
  fi
  if ((failover_at > 0 && SECONDS >= failover_at)); then
    if [ "$sentinel" = 1 ]; then
      p=$(sentinel_primary)
    else
      read -r p _ < <(live_masters | shuf -n 1 --random-source=<(yes "$RANDOM"))
    fi
    log "SIGKILL redis master on $p (its replica takes over; it comes back as a replica)"
    kill9 "redis-$p"
    failed_port=$p
    faults_failover=$((faults_failover + 1))
    failover_at=0
  fi
  if [ -n "$failed_port" ] && ((SECONDS >= ${failover_back:=$((SECONDS + 10))})); then
    log "restart redis on $failed_port (rejoins as a replica)"
    start_redis "$failed_port"
    failed_port=""
  fi
  if ((reshard_at > 0 && SECONDS >= reshard_at)) && [ "$sentinel" = 1 ]; then
    log "SENTINEL FAILOVER (the primary on $(sentinel_primary) is demoted)"
    redis-cli -p "${sentinel_ports[0]}" sentinel failover mymaster >/dev/null 2>&1 || log "SENTINEL FAILOVER refused"
    faults_reshard=$((faults_reshard + 1))
    reshard_at=0
  fi
  if ((reshard_at > 0 && SECONDS >= reshard_at)); then
    mapfile -t masters < <(live_masters | head -2)
    if [ "${#masters[@]}" = 2 ]; then
      from=${masters[0]#* } to=${masters[1]#* } p=${masters[0]%% *}
      log "reshard: 200 slots from the master on $p to the master on ${masters[1]%% *}"
      redis-cli --cluster reshard "127.0.0.1:$p" --cluster-from "$from" --cluster-to "$to" \
        --cluster-slots 200 --cluster-yes >>"$out/reshard.log" 2>&1 || log "reshard failed (see reshard.log)"
      faults_reshard=$((faults_reshard + 1))
    else
      log "reshard skipped: fewer than two live masters"
    fi
    reshard_at=0
  fi
  if ((pause_at > 0 && SECONDS >= pause_at)); then
    p=${redis_ports[$((RANDOM % ${#redis_ports[@]}))]}
    log "pause redis on $p for 3 s (DEBUG SLEEP)"
    redis-cli -p "$p" debug sleep 3 >/dev/null 2>&1 || log "DEBUG SLEEP refused"
    faults_redis_pause=$((faults_redis_pause + 1))
    pause_at=0
  fi
  sleep 0.5
done
log "faults stopped; waiting for the clients to finish"
status=0
wait "$load_pid" || status=$?
for name in "${!PID[@]}"; do note_hwm "$name"; done
if [ "$status" != 0 ]; then
  # Each gateway's copy of every room that failed, and its state vector, for the post-mortem.
  mapfile -t failed_rooms < <(python3 -c 'import json,sys; [print(r["room"]) for r in json.load(open(sys.argv[1]))["steps"][-1]["convergence"]["failed_rooms"]]' "$out/load.json" 2>/dev/null)
  for r in "${failed_rooms[@]}"; do
    for ((i = 1; i <= gateways; i++)); do
      curl -s -m 10 -o "$out/doc-$r-gateway-$i.bin" "http://127.0.0.1:${PORT[gateway-$i]}/api/rooms/$r" || true
    done
  done
  if [ "${#failed_rooms[@]}" -gt 0 ] && [ -d tests/interop/node_modules/yjs ]; then
    (cd tests/interop && node -e '
      const Y = require("yjs"), fs = require("fs");
      for (const f of process.argv.slice(1)) {
        try { const sv = Y.decodeStateVector(Y.encodeStateVectorFromUpdate(fs.readFileSync(f)));
              console.log(`state vector of ${f.split("/").pop()}: ${JSON.stringify([...sv].sort((a, b) => a[0] - b[0]))}`);
        } catch (e) { console.log(`${f}: ${e.message}`); }
      }' "$out"/doc-*.bin) | tee "$out/failed-rooms.txt" || true
  fi
fi

# --- report ----------------------------------------------------------------------------------
python3 - "$out/load.json" "$status" "$faults_gateway" "$faults_compactor" "$faults_redis_restart" \
  "$faults_redis_pause" "${HWM[gateway]:-0}" "${HWM[compactor]:-0}" "${HWM[redis]:-0}" \
  "$faults_failover" "$faults_reshard" <<'PY'
import json, sys
path, status, fg, fc, fr, fp, hg, hc, hr, ff, fs = sys.argv[1:12]
try:
    step = json.load(open(path))["steps"][-1]
except Exception as e:  # noqa: BLE001 - report what we have
    print(f"no load report ({e}); yws-load exited with {status}")
    sys.exit(1)
c, conv = step["counters"], step["convergence"]
print(f"faults: {fg} gateway SIGKILLs, {fc} compactor SIGKILL, {fr} Redis restart, {fp} Redis pause, "
      f"{ff} master failover, {fs} reshard (SENTINEL FAILOVER with SENTINEL=1)")
print(f"updates sent {c['sent']}, deliveries {c['deliveries']}, reconnects (resyncs) {c['resyncs']}, "
      f"disconnects {c['disconnects']}, connect failures {c['connect_failures']}")
print("closes by code: " + ", ".join(f"{k[7:] if k.startswith('closed_') else k} {c.get(k, 0)}"
      for k in ["closed_1001", "closed_1008", "closed_1011", "closed_1012", "closed_1013",
                "closed_other", "dropped"]))
print(f"peak RSS: gateway {int(hg) // 1024} MiB, compactor {int(hc) // 1024} MiB, redis {int(hr) // 1024} MiB")
ok = conv["converged_rooms"] == conv["rooms"] and conv["missing"] == 0 and conv["rooms"] > 0
for room in conv.get("failed_rooms", []):
    for g in room.get("groups", []):
        who = ", ".join(f"client {c['id']} (url {c['url_index']}, {'synced' if c['synced_at_end'] else 'NOT synced'} at end, "
                        f"last sync {c['synced_s_ago'] if c['synced_s_ago'] is None else round(c['synced_s_ago'], 1)} s ago, {c['sessions']} sessions)"
                        for c in g["clients"])
        print(f"  {room['room']}: {who} lack {g['lacking']} updates, by writer {g['lacking_by_writer']}, "
              f"sent {g['lacking_sent_s_ago']} s before the check")
print(f"convergence: {conv['converged_rooms']}/{conv['rooms']} rooms, missing {conv['missing']} "
      f"of {conv['expected_deliveries']} expected deliveries -> {'PASS' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
PY
echo "reports and logs in $out"
