{{/* Labels on every object; selectors use only app.kubernetes.io/name. */}}
{{- define "ferry-operator.labels" -}}
app.kubernetes.io/name: ferry-operator
app.kubernetes.io/part-of: ferry
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "ferry-operator.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
