{{/* The /tmp emptyDir's size: tmpSizeLimit, or by values.yaml's own rule, the largest
bundle (limits.maxBundleSize, the server's 2 GiB by default) times the uploads one pod takes
at once (gunicorn.workers x gunicorn.threads), plus with S3 storage the server's copies of
small files (storage.s3.smallFileCacheBytes, the server's 256 MiB by default). */}}
{{- define "nbgrader-exchange.tmpSizeLimit" -}}
{{- if .Values.tmpSizeLimit }}
{{- .Values.tmpSizeLimit }}
{{- else }}
{{- $bundle := 2147483648 }}
{{- if and (not (kindIs "invalid" .Values.limits.maxBundleSize)) (ne (toString .Values.limits.maxBundleSize) "") }}
{{- $bundle = int64 .Values.limits.maxBundleSize }}
{{- end }}
{{- $bytes := mul $bundle (int .Values.gunicorn.workers) (int .Values.gunicorn.threads) }}
{{- if eq .Values.storage.type "s3" }}
{{- $cache := 268435456 }}
{{- $given := .Values.storage.s3.smallFileCacheBytes }}
{{- if and (not (kindIs "invalid" $given)) (ne (toString $given) "") }}
{{- $cache = int64 $given }}
{{- end }}
{{- $bytes = add $bytes $cache }}
{{- end }}
{{- if eq (mod $bytes 1073741824) 0 }}
{{- printf "%dGi" (div $bytes 1073741824) }}
{{- else if eq (mod $bytes 1048576) 0 }}
{{- printf "%dMi" (div $bytes 1048576) }}
{{- else }}
{{- printf "%d" $bytes }}
{{- end }}
{{- end }}
{{- end }}
