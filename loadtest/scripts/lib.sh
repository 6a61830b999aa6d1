# Helpers shared by the yws-load scripts (sourced, not run).
# Every process a script starts is recorded in STARTED_PIDS and stopped, by pid, on exit, in
# reverse start order (a service stops before what it depends on).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REFERENCE_JS="$ROOT/loadtest/reference/node_modules/@y/websocket-server/src/server.js"
STARTED_PIDS=()

stop_started() {
  local pid i
  for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
    pid=${STARTED_PIDS[i]}
    # Under `set -e` a failing last command would replace the script's exit status.
    if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
    fi
  done
  return 0
}
trap stop_started EXIT

# Scenarios hold up to 10,000 connections (idle.toml): raise the open-file limit to the hard
# limit for this script and the servers and generator it starts.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# A free loopback TCP port.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for_port PORT SECONDS: succeeds once something accepts on 127.0.0.1:PORT.
wait_for_port() {
  local port=$1 tries=$(( $2 * 10 ))
  while [ "$tries" -gt 0 ]; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
    tries=$(( tries - 1 ))
  done
  return 1
}

# The yws-load binary, built in release mode unless YWS_LOAD_BIN names one.
yws_load_bin() {
  if [ -n "${YWS_LOAD_BIN:-}" ]; then echo "$YWS_LOAD_BIN"; return; fi
  (cd "$ROOT" && cargo build --release -q -p yws-load) >&2
  echo "$ROOT/target/release/yws-load"
}

# Installs the pinned reference server if needed.
ensure_reference() {
  if [ ! -f "$REFERENCE_JS" ]; then
    (cd "$ROOT/loadtest/reference" && npm ci --no-audit --no-fund --loglevel=error) >&2
  fi
}

# start_reference PORT LOG: starts the reference server; sets LAST_PID.
start_reference() {
  HOST=127.0.0.1 PORT="$1" node "$REFERENCE_JS" >"$2" 2>&1 &
  LAST_PID=$!
  STARTED_PIDS+=("$LAST_PID")
  wait_for_port "$1" 20 || { echo "reference server did not listen on port $1 (see $2)" >&2; return 1; }
}

# stop_pid PID: stops one process this script started.
stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
