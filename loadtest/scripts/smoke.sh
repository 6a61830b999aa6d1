#!/usr/bin/env bash
# CI smoke: a few seconds of load against URL (4 rooms x 3 clients, 5 updates/s, 3 s).
# Exits non-zero when a room does not converge, a delivery is missing or a client never syncs.
#   loadtest/scripts/smoke.sh ws://127.0.0.1:1234 [extra yws-load flags]
#   loadtest/scripts/smoke.sh reference      # starts the pinned reference server itself
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
url=${1:?usage: smoke.sh URL [yws-load flags]}
shift
bin=$(yws_load_bin)
out=${OUT_DIR:-$ROOT/target/loadtest/smoke}
mkdir -p "$out"
args=(--scenario "$ROOT/loadtest/scenarios/smoke.toml" --json "$out/smoke.json" --quiet)
if [ "$url" = reference ]; then
  ensure_reference
  port=$(free_port)
  start_reference "$port" "$out/reference.log"
  status=0
  "$bin" "${args[@]}" --urls "ws://127.0.0.1:$port" --server-pid "$LAST_PID" "$@" || status=$?
  exit "$status"
fi
exec "$bin" "${args[@]}" --urls "$url" "$@"
