{{/* The /tmp emptyDir's size: tmpSizeLimit, or by values.yaml's own rule, the largest
bundle (limits.maxBundleSize, the server's 2 GiB by default) times the uploads one pod takes
at once (gunicorn.workers x gunicorn.threads). */}}
{{- define "nbgrader-exchange.tmpSizeLimit" -}}
{{- if .Values.tmpSizeLimit }}
{{- .Values.tmpSizeLimit }}
{{- else }}
{{- $bundle := 2147483648 }}
{{- if and (not (kindIs "invalid" .Values.limits.maxBundleSize)) (ne (toString .Values.limits.maxBundleSize) "") }}
{{- $bundle = int64 .Values.limits.maxBundleSize }}
{{- end }}
{{- $bytes := mul $bundle (int .Values.gunicorn.workers) (int .Values.gunicorn.threads) }}
{{- if eq (mod $bytes 1073741824) 0 }}
{{- printf "%dGi" (div $bytes 1073741824) }}
{{- else }}
{{- printf "%d" $bytes }}
{{- end }}
{{- end }}
{{- end }}
