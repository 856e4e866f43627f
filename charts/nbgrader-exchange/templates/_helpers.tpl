{{/* Names, labels, checks and the environment shared by the server and the migration step. */}}

{{- define "nbgrader-exchange.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "nbgrader-exchange.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "nbgrader-exchange.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "nbgrader-exchange.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nbgrader-exchange.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "nbgrader-exchange.labels" -}}
helm.sh/chart: {{ include "nbgrader-exchange.chart" . }}
{{ include "nbgrader-exchange.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "nbgrader-exchange.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "nbgrader-exchange.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "nbgrader-exchange.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret the pods read: the operator's own, or the chart's. */}}
{{- define "nbgrader-exchange.secretName" -}}
{{- default (include "nbgrader-exchange.fullname" .) .Values.existingSecret }}
{{- end }}

{{/* The copy of the secrets the migration Job reads: it runs before the release's own
Secret exists on a first install, so it gets a hook Secret of its own. */}}
{{- define "nbgrader-exchange.migrationSecretName" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecret }}
{{- else }}
{{- printf "%s-migrate" (include "nbgrader-exchange.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}
{{- end }}

{{/* "true" when the pods need the data volume: SQLite keeps its file there, local storage
its blobs. */}}
{{- define "nbgrader-exchange.usesDataVolume" -}}
{{- if or (eq .Values.database.type "sqlite") (eq .Values.storage.type "local") }}true{{ end }}
{{- end }}

{{/* The URL path prefix JupyterHub's proxy routes to the service. */}}
{{- define "nbgrader-exchange.servicePrefix" -}}
{{- printf "/services/%s/" .Values.hub.serviceName }}
{{- end }}

{{/* Every value combination the chart refuses, each with the sentence that says why. */}}
{{- define "nbgrader-exchange.validate" -}}
{{- $replicas := int .Values.replicas }}
{{- if not (has .Values.database.type (list "sqlite" "postgresql")) }}
{{- fail (printf "database.type=%q: expected sqlite or postgresql." .Values.database.type) }}
{{- end }}
{{- if not (has .Values.storage.type (list "local" "s3")) }}
{{- fail (printf "storage.type=%q: expected local or s3." .Values.storage.type) }}
{{- end }}
{{- if lt $replicas 1 }}
{{- fail (printf "replicas=%d: at least one pod must serve the exchange." $replicas) }}
{{- end }}
{{- if and (gt $replicas 1) (eq .Values.database.type "sqlite") }}
{{- fail (printf "replicas=%d needs database.type=postgresql: SQLite is one file on one pod's volume and cannot be shared between replicas. Set database.type=postgresql with database.url (or DATABASE_URL in existingSecret), or replicas=1." $replicas) }}
{{- end }}
{{- if and (gt $replicas 1) (eq .Values.storage.type "local") }}
{{- fail (printf "replicas=%d needs storage.type=s3: local storage is one pod's volume and cannot be shared between replicas. Set storage.type=s3 with storage.s3.bucket, or replicas=1." $replicas) }}
{{- end }}
{{- if and (eq .Values.database.type "postgresql") (not .Values.database.url) (not .Values.existingSecret) }}
{{- fail "database.type=postgresql needs database.url (postgresql://user:password@host:5432/name) or existingSecret holding DATABASE_URL." }}
{{- end }}
{{- if and .Values.existingSecret .Values.database.url }}
{{- fail "database.url is not used when existingSecret is set: put DATABASE_URL into that Secret instead." }}
{{- end }}
{{- if and .Values.existingSecret (or .Values.storage.s3.accessKeyId .Values.storage.s3.secretAccessKey) }}
{{- fail "storage.s3.accessKeyId/secretAccessKey are not used when existingSecret is set: put EXCHANGE_S3_ACCESS_KEY_ID and EXCHANGE_S3_SECRET_ACCESS_KEY into that Secret instead." }}
{{- end }}
{{- if and .Values.existingSecret .Values.secretKey }}
{{- fail "secretKey is not used when existingSecret is set: put SECRET_KEY into that Secret instead." }}
{{- end }}
{{- if and .Values.existingSecret .Values.hub.apiToken }}
{{- fail "hub.apiToken is not used when existingSecret is set: put JUPYTERHUB_API_TOKEN into that Secret instead." }}
{{- end }}
{{- if and (eq .Values.storage.type "s3") (not .Values.storage.s3.bucket) }}
{{- fail "storage.type=s3 needs storage.s3.bucket." }}
{{- end }}
{{- if not (has .Values.storage.s3.addressingStyle (list "path" "virtual" "auto")) }}
{{- fail (printf "storage.s3.addressingStyle=%q: expected path, virtual or auto." .Values.storage.s3.addressingStyle) }}
{{- end }}
{{- if ne (empty .Values.storage.s3.accessKeyId) (empty .Values.storage.s3.secretAccessKey) }}
{{- fail "storage.s3.accessKeyId and storage.s3.secretAccessKey go together: set both, or neither to use existingSecret or the pod's cloud identity." }}
{{- end }}
{{- if ne (empty .Values.hub.apiTokenSecret.name) (empty .Values.hub.apiTokenSecret.key) }}
{{- fail "hub.apiTokenSecret needs both name and key (for Zero to JupyterHub's generated token: name hub, key hub.services.<serviceName>.apiToken)." }}
{{- end }}
{{- if and .Values.hub.apiTokenSecret.name .Values.hub.apiToken }}
{{- fail "Set hub.apiToken or hub.apiTokenSecret, not both." }}
{{- end }}
{{- if not (regexMatch "^[a-zA-Z0-9][a-zA-Z0-9_.-]*$" .Values.hub.serviceName) }}
{{- fail (printf "hub.serviceName=%q: letters, digits, '_', '-' and '.' only, as JupyterHub service names." .Values.hub.serviceName) }}
{{- end }}
{{- include "nbgrader-exchange.validateExtraEnv" . }}
{{- if and .Values.hub.publicUrl (not (regexMatch "^https?://[^/]+" .Values.hub.publicUrl)) }}
{{- fail (printf "hub.publicUrl=%q: expected an absolute URL such as https://hub.example.edu." .Values.hub.publicUrl) }}
{{- end }}
{{- end }}

{{/* The data the chart's Secret holds. SECRET_KEY and a generated hub token are read back
from the live Secret on upgrade (lookup), so they are made once and kept. */}}
{{- define "nbgrader-exchange.secretData" -}}
{{- $live := lookup "v1" "Secret" .Release.Namespace (include "nbgrader-exchange.fullname" .) | default dict }}
{{- $liveData := get $live "data" | default dict }}
{{- $secretKey := "" }}
{{- if .Values.secretKey }}
{{- $secretKey = .Values.secretKey | b64enc }}
{{- else if hasKey $liveData "SECRET_KEY" }}
{{- $secretKey = get $liveData "SECRET_KEY" }}
{{- else }}
{{- $secretKey = randAlphaNum 64 | b64enc }}
{{- end }}
SECRET_KEY: {{ $secretKey | quote }}
{{- if and .Values.hub.apiUrl (not .Values.hub.apiTokenSecret.name) }}
{{- $token := "" }}
{{- if .Values.hub.apiToken }}
{{- $token = .Values.hub.apiToken | b64enc }}
{{- else if hasKey $liveData "JUPYTERHUB_API_TOKEN" }}
{{- $token = get $liveData "JUPYTERHUB_API_TOKEN" }}
{{- else }}
{{- $token = randAlphaNum 64 | lower | b64enc }}
{{- end }}
JUPYTERHUB_API_TOKEN: {{ $token | quote }}
{{- end }}
{{- if eq .Values.database.type "postgresql" }}
DATABASE_URL: {{ .Values.database.url | b64enc | quote }}
{{- end }}
{{- if and (eq .Values.storage.type "s3") .Values.storage.s3.accessKeyId }}
EXCHANGE_S3_ACCESS_KEY_ID: {{ .Values.storage.s3.accessKeyId | b64enc | quote }}
EXCHANGE_S3_SECRET_ACCESS_KEY: {{ .Values.storage.s3.secretAccessKey | b64enc | quote }}
{{- end }}
{{- end }}

{{/* ALLOWED_HOSTS: the in-cluster names of the Service, the public hub host, the ingress
hosts, and the operator's own. */}}
{{- define "nbgrader-exchange.allowedHosts" -}}
{{- $fullname := include "nbgrader-exchange.fullname" . }}
{{- $hosts := list $fullname (printf "%s.%s" $fullname .Release.Namespace) (printf "%s.%s.svc" $fullname .Release.Namespace) (printf "%s.%s.svc.cluster.local" $fullname .Release.Namespace) }}
{{- if .Values.hub.publicUrl }}
{{- $hosts = append $hosts (urlParse .Values.hub.publicUrl).hostname }}
{{- end }}
{{- if .Values.ingress.enabled }}
{{- range .Values.ingress.hosts }}
{{- $hosts = append $hosts .host }}
{{- end }}
{{- end }}
{{- $hosts = concat $hosts .Values.allowedHosts }}
{{- $hosts | uniq | join "," }}
{{- end }}

{{- define "nbgrader-exchange.csrfTrustedOrigins" -}}
{{- $origins := list }}
{{- if .Values.hub.publicUrl }}
{{- $url := urlParse .Values.hub.publicUrl }}
{{- $origins = append $origins (printf "%s://%s" $url.scheme $url.host) }}
{{- end }}
{{- if .Values.ingress.enabled }}
{{- range .Values.ingress.hosts }}
{{- $origins = append $origins (printf "https://%s" .host) }}
{{- end }}
{{- end }}
{{- $origins = concat $origins .Values.csrfTrustedOrigins }}
{{- $origins | uniq | join "," }}
{{- end }}

{{/* "true" when browsers reach the pages over HTTPS: https.enabled, or with `auto` an
https:// hub.publicUrl or an ingress with tls. */}}
{{- define "nbgrader-exchange.https" -}}
{{- $enabled := .Values.https.enabled }}
{{- if eq (toString $enabled) "auto" }}
{{- if or (hasPrefix "https://" .Values.hub.publicUrl) (and .Values.ingress.enabled .Values.ingress.tls) }}true{{ else }}false{{ end }}
{{- else }}
{{- $enabled | toString }}
{{- end }}
{{- end }}

{{/* The environment, exactly the variables exchange_site/settings.py reads. Called with
(dict "root" $ "secret" NAME "migrate" bool): the migration step gets only what migrations
need, from the Secret named. */}}
{{- define "nbgrader-exchange.env" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $secret := .secret }}
- name: EXCHANGE_DATA_DIR
  value: /data
- name: SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: SECRET_KEY
{{- if eq $v.database.type "postgresql" }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: DATABASE_URL
- name: EXCHANGE_DB_PREPARED_STATEMENTS
  value: {{ $v.database.preparedStatements | toString | quote }}
{{- end }}
- name: ALLOWED_HOSTS
  value: {{ include "nbgrader-exchange.allowedHosts" $root | quote }}
{{- with include "nbgrader-exchange.csrfTrustedOrigins" $root }}
- name: CSRF_TRUSTED_ORIGINS
  value: {{ . | quote }}
{{- end }}
- name: EXCHANGE_BEHIND_PROXY
  value: {{ $v.behindProxy | toString | quote }}
{{- $https := include "nbgrader-exchange.https" $root }}
- name: EXCHANGE_HTTPS
  value: {{ $https | quote }}
{{- if eq $https "true" }}
{{- $hsts := $v.https.hstsSeconds }}
{{- if ne (toString $hsts) "" }}
- name: EXCHANGE_HSTS_SECONDS
  value: {{ (kindIs "float64" $hsts | ternary (int64 $hsts) $hsts) | toString | quote }}
{{- end }}
- name: EXCHANGE_HSTS_INCLUDE_SUBDOMAINS
  value: {{ $v.https.hstsIncludeSubdomains | toString | quote }}
- name: EXCHANGE_HSTS_PRELOAD
  value: {{ $v.https.hstsPreload | toString | quote }}
{{- end }}
- name: EXCHANGE_STORAGE
  value: {{ $v.storage.type | quote }}
{{- if eq $v.storage.type "s3" }}
- name: EXCHANGE_S3_BUCKET
  value: {{ $v.storage.s3.bucket | quote }}
- name: EXCHANGE_S3_ADDRESSING_STYLE
  value: {{ $v.storage.s3.addressingStyle | quote }}
{{- with $v.storage.s3.endpointUrl }}
- name: EXCHANGE_S3_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- with $v.storage.s3.region }}
- name: EXCHANGE_S3_REGION
  value: {{ . | quote }}
{{- end }}
{{- if and (not .migrate) (or $v.storage.s3.accessKeyId $v.existingSecret) }}
{{- range list "EXCHANGE_S3_ACCESS_KEY_ID" "EXCHANGE_S3_SECRET_ACCESS_KEY" }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ . }}
      {{- if $v.existingSecret }}
      optional: true
      {{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- range $name, $value := dict "EXCHANGE_MAX_FILE_SIZE" $v.limits.maxFileSize "EXCHANGE_MAX_BUNDLE_SIZE" $v.limits.maxBundleSize "EXCHANGE_MAX_BUNDLE_FILES" $v.limits.maxBundleFiles "EXCHANGE_SIGNED_URL_SECONDS" $v.limits.signedUrlSeconds "EXCHANGE_HUB_TOKEN_CACHE_SECONDS" $v.hub.tokenCacheSeconds "EXCHANGE_CACHE_URL" $v.cache.url "EXCHANGE_ROSTER_CANVAS_LOGIN_COLUMN" $v.roster.canvasLoginColumn "EXCHANGE_RENDER_MAX_SIZE" $v.previews.maxSize "EXCHANGE_RENDER_SECONDS" $v.previews.seconds "EXCHANGE_RENDER_MEMORY" $v.previews.memory "EXCHANGE_RENDER_CONCURRENCY" $v.previews.concurrency "EXCHANGE_UPLOADS_PER_MINUTE" $v.limits.uploadsPerMinute "EXCHANGE_SUBMISSION_QUOTA" $v.limits.submissionQuota "EXCHANGE_SESSION_SECONDS" $v.sessionSeconds "EXCHANGE_API_TOKEN_DAYS" $v.apiTokenDays "EXCHANGE_API_TOKEN_CACHE_SECONDS" $v.apiTokenCacheSeconds "EXCHANGE_BLOB_CACHE_BYTES" (eq $v.storage.type "s3" | ternary $v.storage.s3.smallFileCacheBytes "") }}
{{- if not (kindIs "invalid" $value) }}
{{- if ne (toString $value) "" }}
- name: {{ $name }}
  {{- /* Numbers from YAML are floats to Helm: 536870912 would print as 5.36870912e+08. */}}
  value: {{ (kindIs "float64" $value | ternary (int64 $value) $value) | toString | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- with $v.hub.apiUrl }}
- name: JUPYTERHUB_API_URL
  value: {{ . | quote }}
{{- if not $.migrate }}
- name: JUPYTERHUB_API_TOKEN
  valueFrom:
    secretKeyRef:
      {{- if $v.hub.apiTokenSecret.name }}
      name: {{ $v.hub.apiTokenSecret.name }}
      key: {{ $v.hub.apiTokenSecret.key }}
      {{- else }}
      name: {{ $secret }}
      key: JUPYTERHUB_API_TOKEN
      {{- end }}
{{- end }}
{{- end }}
{{- if $v.hub.apiUrl }}
{{- /* What JupyterHub gives the services it manages; an external service sets it itself. */}}
- name: JUPYTERHUB_SERVICE_NAME
  value: {{ $v.hub.serviceName | quote }}
- name: JUPYTERHUB_SERVICE_PREFIX
  value: {{ include "nbgrader-exchange.servicePrefix" $root | quote }}
- name: JUPYTERHUB_BASE_URL
  value: {{ $v.hub.baseUrl | quote }}
{{- if $v.hub.oauthLogin }}
- name: JUPYTERHUB_CLIENT_ID
  value: {{ printf "service-%s" $v.hub.serviceName | quote }}
- name: JUPYTERHUB_OAUTH_CALLBACK_URL
  value: {{ printf "%soauth_callback" (include "nbgrader-exchange.servicePrefix" $root) | quote }}
{{- end }}
{{- with $v.hub.publicUrl }}
- name: EXCHANGE_HUB_URL
  value: {{ printf "%s/%s" (trimSuffix "/" .) (trimPrefix "/" $v.hub.baseUrl) | quote }}
{{- end }}
- name: EXCHANGE_HUB_REQUIRE_ACCESS_SCOPE
  value: {{ $v.hub.requireAccessScope | toString | quote }}
- name: EXCHANGE_HUB_GROUP_ROSTER
  value: {{ $v.hub.groupRoster | toString | quote }}
{{- end }}
- name: EXCHANGE_HUB_ADMINS_ARE_STAFF
  value: {{ $v.hub.adminsAreStaff | toString | quote }}
{{- with $v.hub.staffGroup }}
- name: EXCHANGE_HUB_STAFF_GROUP
  value: {{ . | quote }}
{{- end }}
- name: LOG_LEVEL
  value: {{ $v.logLevel | quote }}
{{- if not .withoutExtra }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end }}

{{/* extraEnv is for libraries' variables: a name the chart sets from values is refused. */}}
{{- define "nbgrader-exchange.validateExtraEnv" -}}
{{- $own := list }}
{{- range (include "nbgrader-exchange.env" (dict "root" . "secret" "" "migrate" false "withoutExtra" true) | fromYamlArray) }}
{{- $own = append $own .name }}
{{- end }}
{{- $seen := list }}
{{- range .Values.extraEnv }}
{{- if has .name $seen }}
{{- fail (printf "extraEnv sets %s twice." .name) }}
{{- end }}
{{- $seen = append $seen .name }}
{{- end }}
{{- range $own }}
{{- if has . $seen }}
{{- fail (printf "extraEnv sets %s, which the chart sets from its values: use the value in values.yaml instead." .) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The command that brings the database schema up to date (and the cache table, when the
token cache lives in the database). Both are idempotent. */}}
{{- define "nbgrader-exchange.migrateCommand" -}}
- sh
- -c
- python manage.py migrate --noinput && python manage.py createcachetable
{{- end }}
