{{- define "rro.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rro.serviceAccountName" -}}
{{- default (include "rro.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "rro.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rro.labels" -}}
{{ include "rro.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Non-empty when the replicas run in a kopf peering: only then do they need its objects, rules and flags. */}}
{{- define "rro.peering" -}}
{{- if gt (int .Values.replicas) 1 }}true{{ end -}}
{{- end -}}
