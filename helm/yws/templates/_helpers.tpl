{{/* Names ------------------------------------------------------------------------------ */}}

{{- define "yws.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's base name; components append -gateway, -compactor, -redis (≤ 63). */}}
{{- define "yws.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "yws.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "yws.gatewayName" -}}{{ include "yws.fullname" . }}-gateway{{- end }}
{{- define "yws.compactorName" -}}{{ include "yws.fullname" . }}-compactor{{- end }}
{{/* A StatefulSet's name is at most 52 characters (its pods get a controller-revision-hash
label of name + 11 characters). */}}
{{- define "yws.redisName" -}}{{ include "yws.fullname" . | trunc 46 | trimSuffix "-" }}-redis{{- end }}

{{- define "yws.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "yws.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "yws.secretName" -}}
{{- default (include "yws.fullname" .) .Values.existingSecret }}
{{- end }}

{{/* Labels -------------------------------------------------------------------------------
Usage: include "yws.labels" (dict "ctx" $ "component" "gateway") */}}

{{- define "yws.selectorLabels" -}}
app.kubernetes.io/name: {{ include "yws.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{- define "yws.labels" -}}
helm.sh/chart: {{ include "yws.chart" .ctx }}
{{ include "yws.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: yws
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Image ------------------------------------------------------------------------------- */}}

{{- define "yws.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Redis --------------------------------------------------------------------------------- */}}

{{/* Fails on combinations that cannot work. Included by every template that uses Redis. */}}
{{- define "yws.validate" -}}
{{- $r := .Values.redis }}
{{- $sources := 0 }}
{{- if $r.bundled.enabled }}{{ $sources = add1 $sources }}{{ end }}
{{- if and $r.url (not $r.sentinels) }}{{ $sources = add1 $sources }}{{ end }}
{{- if $r.clusterNodes }}{{ $sources = add1 $sources }}{{ end }}
{{- if $r.sentinels }}{{ $sources = add1 $sources }}{{ end }}
{{- if gt $sources 1 }}
{{- fail "redis: choose one of redis.bundled.enabled, redis.url, redis.clusterNodes and redis.sentinels (with sentinels, redis.url only carries the primary's credentials)" }}
{{- end }}
{{- if and (eq $sources 0) (not .Values.existingSecret) }}
{{- fail "redis: the gateways need Redis to share rooms: enable redis.bundled, or set redis.url, redis.clusterNodes, or existingSecret with the key redis-url" }}
{{- end }}
{{- if and .Values.existingSecret (or $r.url $r.bundled.password .Values.auth.jwt.secret .Values.auth.jwt.publicKey .Values.admin.token) }}
{{- fail "existingSecret is set: put redis-url, redis-password, the auth keys and admin-token in that Secret, not in values" }}
{{- end }}
{{- if and (eq .Values.auth.jwt.mode "secret") (not .Values.auth.jwt.secret) (not .Values.existingSecret) }}
{{- fail "auth.jwt.mode is secret: set auth.jwt.secret (or existingSecret with auth-jwt-secret)" }}
{{- end }}
{{- if and .Values.admin.enabled (not .Values.admin.token) (not .Values.existingSecret) }}
{{- fail "admin.enabled: set admin.token (or existingSecret with admin-token)" }}
{{- end }}
{{- if and (eq .Values.auth.jwt.mode "publicKey") (not .Values.auth.jwt.publicKey) (not .Values.existingSecret) }}
{{- fail "auth.jwt.mode is publicKey: set auth.jwt.publicKey (or existingSecret with auth-jwt-public-key.pem)" }}
{{- end }}
{{- end }}

{{/* redis.conf of the bundled Redis. */}}
{{- define "yws.redisConf" -}}
{{- $r := .Values.redis.bundled }}
bind * -::*
port 6379
# Reached only inside the cluster; set redis.bundled.password to require a password.
protected-mode no
dir /data
# Every update is appended to a stream: keep them all (AOF), and never evict a key.
appendonly yes
appendfsync {{ $r.appendfsync }}
aof-use-rdb-preamble yes
{{- with $r.maxmemory }}
maxmemory {{ . }}
{{- end }}
maxmemory-policy noeviction
# Gateways subscribe to every room they serve on one connection. Updates above
# redis.inline_publish_bytes (256 KiB) are published by reference, so a subscriber's buffer
# holds small messages only; the hard limit leaves room for bursts without letting a stalled
# gateway hold unbounded memory.
client-output-buffer-limit pubsub 64mb 32mb 60
{{- end }}

{{- define "yws.bundledRedisUrl" -}}
{{- $r := .Values.redis.bundled }}
{{- if $r.password -}}
redis://:{{ $r.password }}@{{ include "yws.redisName" . }}:6379
{{- else -}}
redis://{{ include "yws.redisName" . }}:6379
{{- end }}
{{- end }}

{{/* The Redis environment of both binaries. */}}
{{- define "yws.redisEnv" -}}
- name: YWS_REDIS_PREFIX
  value: {{ .Values.redis.prefix | quote }}
{{- if .Values.redis.clusterNodes }}
- name: REDIS_CLUSTER_NODES
  value: {{ join "," .Values.redis.clusterNodes | quote }}
{{- else if .Values.redis.sentinels }}
- name: REDIS_SENTINELS
  value: {{ join "," .Values.redis.sentinels | quote }}
- name: REDIS_SENTINEL_MASTER
  value: {{ .Values.redis.sentinelMaster | quote }}
# The primary's credentials (redis.url, or redis-url of existingSecret) and the Sentinels'
# password, each only if given.
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "yws.secretName" . }}
      key: redis-url
      optional: true
- name: REDIS_SENTINEL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "yws.secretName" . }}
      key: redis-sentinel-password
      optional: true
{{- else }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "yws.secretName" . }}
      key: redis-url
{{- end }}
{{- end }}

{{/* The object storage environment of both binaries (storage.url set). */}}
{{- define "yws.storageEnv" -}}
{{- with .Values.storage }}
{{- if .url }}
- name: YWS_STORAGE_URL
  value: {{ .url | quote }}
- name: YWS__STORAGE__EVICT_AFTER_MS
  value: {{ .evictAfterMs | int64 | quote }}
{{- range $name, $value := .env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* envFrom of both binaries: the storage credentials Secret. */}}
{{- define "yws.storageEnvFrom" -}}
{{- if and .Values.storage.url .Values.storage.credentialsSecret }}
envFrom:
  - secretRef:
      name: {{ .Values.storage.credentialsSecret }}
{{- end }}
{{- end }}

{{/* gateway.toml ------------------------------------------------------------------------
A TOML value from a values scalar. Numbers from values files are floats: whole ones are
written as integers (the gateway's fields are integers). */}}
{{- define "yws.tomlValue" -}}
{{- if kindIs "string" . -}}
{{ toJson . }}
{{- else if kindIs "bool" . -}}
{{ . }}
{{- else if or (kindIs "float64" .) (kindIs "int" .) (kindIs "int64" .) -}}
{{- if eq (float64 .) (floor .) -}}{{ int64 . }}{{- else -}}{{ . }}{{- end -}}
{{- else -}}
{{ fail (printf "gateway.config: unsupported value %v" .) }}
{{- end -}}
{{- end }}

{{/* One [section] of gateway.toml from a map, keys sorted. */}}
{{- define "yws.tomlSection" -}}
[{{ .name }}]
{{- range $key := keys .values | sortAlpha }}
{{ $key }} = {{ include "yws.tomlValue" (index $.values $key) }}
{{- end }}
{{- end }}

{{/* Seconds of the gateway's shutdown deadline, rounded up. */}}
{{- define "yws.shutdownSeconds" -}}
{{- $ms := .Values.gateway.config.server.shutdown_timeout_ms | default 10000 | int64 }}
{{- div (add $ms 999) 1000 }}
{{- end }}

{{- define "yws.gatewayTerminationGrace" -}}
{{- $min := add (int64 .Values.gateway.preStopSleepSeconds) (int64 (include "yws.shutdownSeconds" .)) }}
{{- if .Values.gateway.terminationGracePeriodSeconds }}
{{- $set := int64 .Values.gateway.terminationGracePeriodSeconds }}
{{- if le $set $min }}
{{- fail (printf "gateway.terminationGracePeriodSeconds (%d) must be larger than preStopSleepSeconds + shutdown_timeout_ms (%d s), or the kubelet kills gateways mid-drain" $set $min) }}
{{- end }}
{{- $set }}
{{- else }}
{{- add $min 5 }}
{{- end }}
{{- end }}

{{/* Pod placement defaults ---------------------------------------------------------------- */}}

{{- define "yws.gatewayAffinity" -}}
{{- if .Values.gateway.affinity }}
{{- toYaml .Values.gateway.affinity }}
{{- else }}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "yws.selectorLabels" (dict "ctx" . "component" "gateway") | nindent 12 }}
{{- end }}
{{- end }}

{{- define "yws.gatewayTopologySpread" -}}
{{- if .Values.gateway.topologySpreadConstraints }}
{{- toYaml .Values.gateway.topologySpreadConstraints }}
{{- else }}
- maxSkew: 1
  topologyKey: topology.kubernetes.io/zone
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "yws.selectorLabels" (dict "ctx" . "component" "gateway") | nindent 6 }}
{{- end }}
{{- end }}
