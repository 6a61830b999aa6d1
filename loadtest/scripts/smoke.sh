#!/usr/bin/env bash
# CI smoke: a few seconds of load against URL (4 rooms x 3 clients, 5 updates/s, 3 s).
# Exits non-zero when a room does not converge, a delivery is missing or a client never syncs.
#   loadtest/scripts/smoke.sh ws://127.0.0.1:1234 [extra yws-load flags]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
url=${1:?usage: smoke.sh URL [yws-load flags]}
shift
bin=$(yws_load_bin)
out=${OUT_DIR:-$ROOT/target/loadtest/smoke}
mkdir -p "$out"
exec "$bin" --scenario "$ROOT/loadtest/scenarios/smoke.toml" --urls "$url" \
  --json "$out/smoke.json" --quiet "$@"
