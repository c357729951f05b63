{{/* Object names are <fullname>-<component>; labels follow the recommended set. */}}

{{- define "ferrolb.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ferrolb.fullname" -}}
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

{{- define "ferrolb.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{ include "ferrolb.selectorLabels" . }}
{{- end }}

{{- define "ferrolb.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ferrolb.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ferrolb.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "ferrolb.controller.serviceAccountName" -}}
{{- if .Values.controller.serviceAccount.create }}
{{- default (printf "%s-controller" (include "ferrolb.fullname" .)) .Values.controller.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.controller.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ferrolb.speaker.serviceAccountName" -}}
{{- if .Values.speaker.serviceAccount.create }}
{{- default (printf "%s-speaker" (include "ferrolb.fullname" .)) .Values.speaker.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.speaker.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ferrolb.memberlistSecretName" -}}
{{- default (printf "%s-memberlist" (include "ferrolb.fullname" .)) .Values.speaker.memberlist.secretName }}
{{- end }}

{{/* Environment both binaries read (see their --help). */}}
{{- define "ferrolb.commonEnv" -}}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: FERROLB_LOAD_BALANCER_CLASS
  value: {{ .Values.loadBalancerClass | quote }}
- name: FERROLB_LOG_LEVEL
  value: {{ .Values.log.level | quote }}
- name: FERROLB_LOG_FORMAT
  value: {{ .Values.log.format | quote }}
{{- end }}

{{- define "ferrolb.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
seccompProfile:
  type: RuntimeDefault
{{- end }}
