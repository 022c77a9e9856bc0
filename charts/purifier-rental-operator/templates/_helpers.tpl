{{/*
Names and labels shared by every template. The full name prefixes every object the release owns;
component labels tell the operator's pods from MyPage's.
*/}}

{{- define "purifier-rental-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "purifier-rental-operator.fullname" -}}
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

{{- define "purifier-rental-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object of the release. */}}
{{- define "purifier-rental-operator.labels" -}}
helm.sh/chart: {{ include "purifier-rental-operator.chart" . }}
{{ include "purifier-rental-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: purifier-rental
{{- end }}

{{/* The labels selectors use: stable across upgrades (Deployment selectors are immutable). */}}
{{- define "purifier-rental-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "purifier-rental-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The operator's objects carry the release's full name; MyPage's add "-mypage". */}}
{{- define "purifier-rental-operator.operator.fullname" -}}
{{- include "purifier-rental-operator.fullname" . }}
{{- end }}

{{- define "purifier-rental-operator.mypage.fullname" -}}
{{- include "purifier-rental-operator.fullname" . | trunc 56 | trimSuffix "-" }}-mypage
{{- end }}

{{- define "purifier-rental-operator.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "purifier-rental-operator.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "purifier-rental-operator.mypage.serviceAccountName" -}}
{{- if .Values.mypage.serviceAccount.create }}
{{- default (include "purifier-rental-operator.mypage.fullname" .) .Values.mypage.serviceAccount.name }}
{{- else }}
{{- required "mypage.serviceAccount.name is required when mypage.serviceAccount.create is false" .Values.mypage.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The peering object's name: one per release unless set, so two releases never freeze each other. */}}
{{- define "purifier-rental-operator.peeringName" -}}
{{- default (include "purifier-rental-operator.fullname" .) .Values.operator.peering.name }}
{{- end }}

{{/* The Secret holding the partner API keys: the user's own, or the one this chart makes. */}}
{{- define "purifier-rental-operator.partnersSecretName" -}}
{{- default (printf "%s-partners" (include "purifier-rental-operator.fullname" .)) .Values.partners.existingSecret }}
{{- end }}

{{/* Does any partner key come from a Secret? (existing, or values the chart turns into one) */}}
{{- define "purifier-rental-operator.partnersSecretUsed" -}}
{{- if or .Values.partners.existingSecret .Values.partners.payment.apiKey .Values.partners.shipping.apiKey .Values.partners.sms.apiKey }}true{{ end }}
{{- end }}

{{- define "purifier-rental-operator.mypageSecretName" -}}
{{- default (printf "%s-mypage" (include "purifier-rental-operator.fullname" .)) .Values.mypage.auth.existingSecret }}
{{- end }}

{{- define "purifier-rental-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The pod and container security settings every pod of the chart runs with (restricted profile). */}}
{{- define "purifier-rental-operator.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001  # mounted Secrets (mode 0400) belong to the pod's group, so the process can read them
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "purifier-rental-operator.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* The metrics Services (63 characters at most); MyPage's is apart from the Service customers reach. */}}
{{- define "purifier-rental-operator.operator.metricsServiceName" -}}
{{- include "purifier-rental-operator.operator.fullname" . | trunc 55 | trimSuffix "-" }}-metrics
{{- end }}

{{- define "purifier-rental-operator.mypage.metricsServiceName" -}}
{{- include "purifier-rental-operator.fullname" . | trunc 48 | trimSuffix "-" }}-mypage-metrics
{{- end }}
