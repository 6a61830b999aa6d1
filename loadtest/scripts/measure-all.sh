#!/usr/bin/env bash
# Every measurement behind docs/scaling.md, in one run: the side-by-side scenarios (reference
# Node server vs yws), the scaling runs (1-3 gateways over Redis, 2 over a Redis Cluster) and
# the join time of a compacted vs an uncompacted 20 MiB document.
# Reports land in OUT_DIR (default target/loadtest/measure-<time>); a summary is printed.
# Takes about 17 minutes; run it on a quiet machine.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out=${OUT_DIR:-$ROOT/target/loadtest/measure-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
(cd "$ROOT" && cargo build --release -q -p yws-gateway -p yws-compactor -p yws-load)
export YWS_LOAD_BIN="$ROOT/target/release/yws-load"
for scenario in fanout-sweep hot-room many-small-rooms idle join-storm; do
  echo "==== side by side: $scenario"
  OUT_DIR="$out/$scenario" "$ROOT/loadtest/scripts/side-by-side.sh" "$ROOT/loadtest/scenarios/$scenario.toml" --quiet \
    > "$out/$scenario.txt" 2>&1 || echo "($scenario reported a problem; see $out/$scenario.txt)"
  tail -25 "$out/$scenario.txt"
done
echo "==== scaling"
OUT_DIR="$out/scaling" "$ROOT/loadtest/scripts/scaling.sh" "$ROOT/loadtest/scenarios/cross-node.toml" \
  > "$out/scaling.txt" 2>&1 || echo "(scaling reported a problem; see $out/scaling.txt)"
cat "$out/scaling/summary.jsonl" 2>/dev/null || tail -20 "$out/scaling.txt"
echo "==== join time: compacted vs uncompacted 20 MiB document"
OUT_DIR="$out/compaction-join" "$ROOT/loadtest/scripts/compaction-join.sh" \
  > "$out/compaction-join.txt" 2>&1 || echo "(compaction-join reported a problem; see $out/compaction-join.txt)"
sed -n '/^join time/,$p' "$out/compaction-join.txt"
echo "reports in $out"
