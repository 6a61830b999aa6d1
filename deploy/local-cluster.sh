#!/usr/bin/env bash
# A local yws cluster without Docker: redis-server (or a 3-master Redis Cluster), N gateways
# and one compactor, all on 127.0.0.1, state in .yws-run/local-cluster/ at the repository root.
#
# Usage:
#   deploy/local-cluster.sh start [N] [--detach] [--redis-cluster] [--build] [--storage DIR]
#       Starts Redis, N gateways (default 2) on consecutive ports from YWS_GATEWAY_PORT
#       (default 1234) and one compactor, waits until they are ready and prints the URLs.
#       In the foreground it then waits; Ctrl-C stops everything it started. --detach returns
#       instead (stop it with `stop`). --redis-cluster starts three cluster-enabled
#       redis-servers and joins them (redis-cli --cluster create); the services get
#       REDIS_CLUSTER_NODES instead of REDIS_URL. --build runs cargo build even when the
#       binaries exist (otherwise only missing binaries are built). --storage DIR keeps the
#       documents in object storage in the directory DIR (created if missing; YWS_STORAGE_URL
#       file://DIR for gateways and compactor): snapshots are written there, idle rooms leave
#       Redis, and `clean` (which deletes Redis' data) leaves DIR alone.
#   deploy/local-cluster.sh stop      stops a cluster started with --detach
#   deploy/local-cluster.sh status    shows what runs and whether it is ready
#   deploy/local-cluster.sh clean     stops, then deletes .yws-run/local-cluster (Redis data too)
#
# Environment:
#   YWS_GATEWAY_PORT    first gateway port (1234)
#   YWS_REDIS_PORT      Redis port; cluster mode: the first of three (default: the first free
#                       port from 6379, or of three free ones from 7000 in cluster mode)
#   YWS_COMPACTOR_PORT  compactor /healthz /readyz /metrics (9464)
#   YWS_REDIS_PREFIX    key prefix (yws)
#   YWS_BIN_DIR         where the binaries are (target/release)
#   LOG_FORMAT, LOG_LEVEL   passed to the services (text, info)
#   YWS__SECTION__KEY   reach the process whose section it is (gateway: SERVER, ROOMS, LOG,
#                       REDIS, AUTH, STORAGE; compactor: ADMIN, LOG, REDIS, STORAGE)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="$ROOT/.yws-run/local-cluster"
PID_DIR="$RUN_DIR/pids"
LOG_DIR="$RUN_DIR/logs"
STATE="$RUN_DIR/state"
BIN_DIR="${YWS_BIN_DIR:-$ROOT/target/release}"
GATEWAY_PORT="${YWS_GATEWAY_PORT:-1234}"
COMPACTOR_PORT="${YWS_COMPACTOR_PORT:-9464}"
PREFIX="${YWS_REDIS_PREFIX:-yws}"
LOG_FORMAT="${LOG_FORMAT:-text}"
LOG_LEVEL="${LOG_LEVEL:-info}"
# The gateway's default shutdown deadline is 10 s; give it a little more before SIGKILL.
GATEWAY_STOP_SECONDS="${YWS_GATEWAY_STOP_SECONDS:-15}"

say() { printf '%s\n' "$*"; }
die() { printf 'local-cluster: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

# --- small helpers ------------------------------------------------------------------------

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The HTTP status of GET http://127.0.0.1:PORT/PATH, or nothing (bash only, no curl).
http_status() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
    read -r -t 3 _ code _ <&3 || exit 1
    printf '%s' "$code"
  ) 2>/dev/null || true
}

# Waits until COMMAND succeeds, at most SECONDS.
wait_for() {
  local seconds="$1"; shift
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

http_ready() { [ "$(http_status "$1" /readyz)" = 200 ]; }

# Waits until NAME answers /readyz on PORT with 200; fails early when it exits.
wait_ready() {
  local name="$1" port="$2" deadline=$((SECONDS + 30))
  until http_ready "$port"; do
    if ! running_pid "$PID_DIR/$name.pid" >/dev/null; then
      printf 'local-cluster: %s exited; last lines of %s:\n' "$name" "${LOG_DIR#"$ROOT"/}/$name.log" >&2
      tail -n 5 "$LOG_DIR/$name.log" | sed 's/^/    /' >&2
      exit 1
    fi
    ((SECONDS < deadline)) || die "$name is not ready on $port after 30 s (log: $LOG_DIR/$name.log)"
    sleep 0.2
  done
}
redis_pong() { [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]; }

# A process started by this script: its pid file exists and the process still runs the
# program named in the file (a recycled pid is never signalled).
running_pid() {
  local file="$1" pid name
  [ -f "$file" ] || return 1
  read -r pid name <"$file" || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$name" || return 1
  printf '%s' "$pid"
}

# Starts NAME (its log in logs/NAME.log, its pid in pids/NAME.pid) in a session of its own,
# so Ctrl-C reaches only this script, which then stops everything in order.
spawn() {
  local name="$1" match="$2"; shift 2
  setsid "$@" </dev/null >"$LOG_DIR/$name.log" 2>&1 &
  local pid=$!
  printf '%s %s\n' "$pid" "$match" >"$PID_DIR/$name.pid"
}

# YWS__ variables of sections a binary does not know make it exit 64: drop them.
env_without_sections() {
  local keep="$1" var args=()
  for var in $(compgen -e); do
    case "$var" in
      YWS__*) [[ "$var" =~ ^YWS__($keep)__ ]] || args+=(-u "$var") ;;
    esac
  done
  if [ "${#args[@]}" -gt 0 ]; then printf '%s\n' "${args[@]}"; fi
}

stop_one() {
  local file="$1" seconds="$2" pid name
  name="$(basename "$file" .pid)"
  if pid="$(running_pid "$file")"; then
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_for "$seconds" eval "! kill -0 $pid 2>/dev/null"; then
      say "  $name (pid $pid) did not stop within ${seconds}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    say "  stopped $name (pid $pid)"
  fi
  rm -f "$file"
}

# Gateways first (they drain: clients get 1012), then the compactor, then Redis.
stop_all() {
  [ -d "$PID_DIR" ] || return 0
  local f stoppers=()
  for f in "$PID_DIR"/gateway-*.pid; do
    [ -e "$f" ] || continue
    stop_one "$f" "$GATEWAY_STOP_SECONDS" &
    stoppers+=($!)
  done
  # Only these: a plain `wait` would also wait for the services this shell started.
  if [ "${#stoppers[@]}" -gt 0 ]; then wait "${stoppers[@]}"; fi
  [ -e "$PID_DIR/compactor.pid" ] && stop_one "$PID_DIR/compactor.pid" 60
  for f in "$PID_DIR"/redis*.pid; do [ -e "$f" ] && stop_one "$f" 20; done
  rm -f "$STATE"
  return 0
}

any_running() {
  local f
  for f in "$PID_DIR"/*.pid; do
    [ -e "$f" ] && running_pid "$f" >/dev/null && return 0
  done
  return 1
}

# --- binaries -------------------------------------------------------------------------------

workspace_has_bin() {
  (cd "$ROOT" && cargo metadata --no-deps --format-version 1 2>/dev/null) | grep -q "\"name\":\"$1\""
}

ensure_binaries() {
  local force="$1" bins=()
  if [ "$force" = 1 ] || [ ! -x "$BIN_DIR/yws-gateway" ]; then bins+=(--bin yws-gateway); fi
  if [ "$force" = 1 ] || [ ! -x "$BIN_DIR/yws-compactor" ]; then
    if command -v cargo >/dev/null && workspace_has_bin yws-compactor; then bins+=(--bin yws-compactor); fi
  fi
  if [ "${#bins[@]}" -gt 0 ]; then
    command -v cargo >/dev/null || die "cargo is needed to build ${bins[*]} (or set YWS_BIN_DIR)"
    [ "$BIN_DIR" = "$ROOT/target/release" ] || die "$BIN_DIR lacks the binaries (YWS_BIN_DIR is only used, never built)"
    say "building: cargo build --release ${bins[*]}"
    (cd "$ROOT" && cargo build --release --locked "${bins[@]}")
  fi
  [ -x "$BIN_DIR/yws-gateway" ] || die "$BIN_DIR/yws-gateway is missing"
}

# --- start ----------------------------------------------------------------------------------

first_free_port() {
  local port="$1" span="$2" i free
  while ((port < 65000)); do
    free=1
    for ((i = 0; i < span; i++)); do
      # cluster nodes also use port + 10000 for the cluster bus
      if port_in_use $((port + i)) || { ((span > 1)) && port_in_use $((port + i + 10000)); }; then
        free=0; break
      fi
    done
    ((free)) && { printf '%s' "$port"; return 0; }
    port=$((port + span))
  done
  return 1
}

start_redis() {
  local port="$1"
  mkdir -p "$RUN_DIR/redis"
  spawn redis "redis-server" redis-server --bind 127.0.0.1 --port "$port" \
    --dir "$RUN_DIR/redis" --appendonly yes --appendfsync everysec \
    --maxmemory-policy noeviction --client-output-buffer-limit "pubsub 64mb 32mb 60" \
    --protected-mode yes --daemonize no
  wait_for 10 redis_pong "$port" || die "redis-server did not answer on $port (log: $LOG_DIR/redis.log)"
}

start_redis_cluster() {
  local first="$1" i port nodes=()
  for i in 0 1 2; do
    port=$((first + i))
    mkdir -p "$RUN_DIR/redis-cluster/$port"
    spawn "redis-$port" "redis-server" redis-server --bind 127.0.0.1 --port "$port" \
      --dir "$RUN_DIR/redis-cluster/$port" --cluster-enabled yes \
      --cluster-config-file nodes.conf --cluster-node-timeout 5000 \
      --appendonly yes --appendfsync everysec --maxmemory-policy noeviction \
      --client-output-buffer-limit "pubsub 64mb 32mb 60" --protected-mode yes --daemonize no
    nodes+=("127.0.0.1:$port")
  done
  for i in 0 1 2; do
    wait_for 10 redis_pong $((first + i)) || die "redis-server did not answer on $((first + i)) (log: $LOG_DIR/redis-$((first + i)).log)"
  done
  # A cluster kept in .yws-run from an earlier run re-forms by itself.
  if redis-cli -p "$first" cluster info | grep -q '^cluster_known_nodes:1'; then
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$LOG_DIR/cluster-create.log" 2>&1 ||
      die "redis-cli --cluster create failed (log: $LOG_DIR/cluster-create.log)"
  fi
  wait_for 20 eval "redis-cli -p $first cluster info | grep -q '^cluster_state:ok'" ||
    die "the Redis Cluster did not reach cluster_state:ok"
}

cmd_start() {
  local n=2 detach=0 cluster=0 build=0 storage="" arg
  while (($#)); do
    arg="$1"
    shift
    case "$arg" in
      --detach | -d) detach=1 ;;
      --redis-cluster) cluster=1 ;;
      --build) build=1 ;;
      --storage)
        if ! (($#)) || [ -z "$1" ]; then die "--storage needs a directory"; fi
        storage="$1"
        shift
        ;;
      '' | *[!0-9]*) die "unknown argument: $arg (see deploy/local-cluster.sh help)" ;;
      *) n="$arg" ;;
    esac
  done
  local storage_env=()
  if [ -n "$storage" ]; then
    mkdir -p "$storage" || die "cannot create the storage directory $storage"
    storage="$(cd "$storage" && pwd)"
    storage_env=("YWS_STORAGE_URL=file://$storage")
  fi
  ((n >= 1)) || die "N must be at least 1"
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    die "redis-server and redis-cli are needed (Debian: apt-get install redis-server)"
  fi
  command -v setsid >/dev/null || die "setsid (util-linux) is needed"
  mkdir -p "$PID_DIR" "$LOG_DIR"
  any_running && die "a local cluster is already running (deploy/local-cluster.sh status | stop)"
  rm -f "$PID_DIR"/*.pid

  ensure_binaries "$build"
  local compactor=1
  [ -x "$BIN_DIR/yws-compactor" ] || compactor=0

  local i port redis_port redis_env
  for ((i = 0; i < n; i++)); do
    port=$((GATEWAY_PORT + i))
    port_in_use "$port" && die "port $port is in use (set YWS_GATEWAY_PORT)"
  done
  if ((compactor)) && port_in_use "$COMPACTOR_PORT"; then
    die "port $COMPACTOR_PORT is in use (set YWS_COMPACTOR_PORT)"
  fi

  # From here on, a failure stops whatever was started.
  trap 'stop_all >/dev/null' EXIT
  trap 'exit 130' INT TERM

  if ((cluster)); then
    redis_port="${YWS_REDIS_PORT:-$(first_free_port 7000 3)}"
    start_redis_cluster "$redis_port"
    redis_env=("REDIS_CLUSTER_NODES=127.0.0.1:$redis_port,127.0.0.1:$((redis_port + 1)),127.0.0.1:$((redis_port + 2))")
  else
    redis_port="${YWS_REDIS_PORT:-$(first_free_port 6379 1)}"
    port_in_use "$redis_port" && die "port $redis_port is in use (set YWS_REDIS_PORT)"
    start_redis "$redis_port"
    redis_env=("REDIS_URL=redis://127.0.0.1:$redis_port")
  fi

  local gateway_unset compactor_unset
  mapfile -t gateway_unset < <(env_without_sections 'SERVER|ROOMS|LOG|REDIS|AUTH|STORAGE')
  mapfile -t compactor_unset < <(env_without_sections 'ADMIN|LOG|REDIS|STORAGE')

  for ((i = 1; i <= n; i++)); do
    port=$((GATEWAY_PORT + i - 1))
    spawn "gateway-$i" "yws-gateway" env "${gateway_unset[@]}" \
      HOST=127.0.0.1 PORT="$port" "${redis_env[@]}" "${storage_env[@]}" YWS_REDIS_PREFIX="$PREFIX" \
      LOG_FORMAT="$LOG_FORMAT" LOG_LEVEL="$LOG_LEVEL" "$BIN_DIR/yws-gateway"
  done
  if ((compactor)); then
    spawn compactor "yws-compactor" env "${compactor_unset[@]}" \
      "${redis_env[@]}" "${storage_env[@]}" YWS_REDIS_PREFIX="$PREFIX" YWS__ADMIN__HOST=127.0.0.1 \
      YWS__ADMIN__PORT="$COMPACTOR_PORT" LOG_FORMAT="$LOG_FORMAT" LOG_LEVEL="$LOG_LEVEL" \
      "$BIN_DIR/yws-compactor"
  fi

  for ((i = 1; i <= n; i++)); do
    wait_ready "gateway-$i" $((GATEWAY_PORT + i - 1))
  done
  if ((compactor)); then wait_ready compactor "$COMPACTOR_PORT"; fi

  {
    echo "mode=$([ "$cluster" = 1 ] && echo redis-cluster || echo redis)"
    echo "redis_port=$redis_port"
    echo "gateways=$n"
    echo "gateway_port=$GATEWAY_PORT"
    echo "compactor=$compactor"
    echo "compactor_port=$COMPACTOR_PORT"
    echo "storage=$(printf '%q' "$storage")"
  } >"$STATE"

  print_urls
  if ((!compactor)); then
    say "  compactor:  skipped: $BIN_DIR/yws-compactor does not exist (not built, or not in this workspace yet)"
  fi

  if ((detach)); then
    trap - EXIT INT TERM
    say "running in the background: deploy/local-cluster.sh status | stop (logs: ${LOG_DIR#"$ROOT"/})"
    return 0
  fi

  trap 'say ""; say "stopping..."; stop_all; trap - EXIT; exit 0' INT TERM
  say "logs: ${LOG_DIR#"$ROOT"/}; Ctrl-C stops everything"
  local reported="" f name
  while sleep 1; do
    for f in "$PID_DIR"/*.pid; do
      [ -e "$f" ] || continue
      name="$(basename "$f" .pid)"
      if ! running_pid "$f" >/dev/null && [[ " $reported " != *" $name "* ]]; then
        say "$name exited; last lines of its log:"
        tail -n 5 "$LOG_DIR/$name.log" | sed 's/^/    /'
        reported="$reported $name"
      fi
    done
  done
}

# What `start` wrote to the state file.
mode=redis redis_port="" gateways=0 gateway_port="$GATEWAY_PORT" compactor=0 compactor_port="$COMPACTOR_PORT"
load_state() {
  # shellcheck disable=SC1090
  [ -f "$STATE" ] && . "$STATE"
  return 0
}

print_urls() {
  load_state
  local i
  say "yws local cluster ($mode):"
  if [ "$mode" = redis-cluster ]; then
    say "  redis:      127.0.0.1:$redis_port,127.0.0.1:$((redis_port + 1)),127.0.0.1:$((redis_port + 2)) (Redis Cluster, data in ${RUN_DIR#"$ROOT"/}/redis-cluster)"
  else
    say "  redis:      redis://127.0.0.1:$redis_port (data in ${RUN_DIR#"$ROOT"/}/redis)"
  fi
  for ((i = 1; i <= gateways; i++)); do
    say "  gateway-$i:  ws://127.0.0.1:$((gateway_port + i - 1))/<room>   http://127.0.0.1:$((gateway_port + i - 1))/metrics"
  done
  if [ "$compactor" = 1 ]; then
    say "  compactor:  http://127.0.0.1:$compactor_port/metrics"
  fi
  if [ -n "${storage:-}" ]; then
    say "  storage:    file://$storage (snapshots; idle rooms leave Redis)"
  fi
}

# --- status, stop, clean --------------------------------------------------------------------

cmd_status() {
  if ! [ -d "$PID_DIR" ] || ! any_running; then
    say "no local cluster is running"
    return 1
  fi
  [ -f "$STATE" ] && print_urls
  load_state
  local f name pid port ready
  say "processes:"
  for f in "$PID_DIR"/*.pid; do
    [ -e "$f" ] || continue
    name="$(basename "$f" .pid)"
    if pid="$(running_pid "$f")"; then
      ready=""
      case "$name" in
        gateway-*) port=$((gateway_port + ${name#gateway-} - 1)); ready="readyz $(http_status "$port" /readyz)" ;;
        compactor) ready="readyz $(http_status "$compactor_port" /readyz)" ;;
        redis*) ready="" ;;
      esac
      say "  $name  pid $pid  running  $ready"
    else
      say "  $name  not running (log: ${LOG_DIR#"$ROOT"/}/$name.log)"
    fi
  done
}

cmd_stop() {
  if ! [ -d "$PID_DIR" ] || ! any_running; then
    say "no local cluster is running"
    rm -f "$PID_DIR"/*.pid "$STATE" 2>/dev/null || true
    return 0
  fi
  say "stopping the local cluster"
  stop_all
}

cmd_clean() {
  cmd_stop
  rm -rf "$RUN_DIR"
  say "removed ${RUN_DIR#"$ROOT"/}"
}

case "${1:-help}" in
  start) shift; cmd_start "$@" ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  clean) cmd_clean ;;
  help | -h | --help) usage ;;
  *) usage >&2; exit 2 ;;
esac
