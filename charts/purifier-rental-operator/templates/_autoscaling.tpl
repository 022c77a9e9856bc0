{{- /*
Shared by the HorizontalPodAutoscaler, the KEDA ScaledObject and the prometheus-adapter rules, so the
three name the same metric, window and labels.
*/ -}}

{{- /* Fails the render on autoscaling values that cannot work, naming the value. */ -}}
{{- define "purifier-rental-operator.mypage.autoscalingChecks" -}}
{{- $as := .Values.mypage.autoscaling }}
{{- if gt (int $as.minReplicas) (int $as.maxReplicas) }}
{{- fail "mypage.autoscaling.minReplicas must not exceed maxReplicas" }}
{{- end }}
{{- if and (not $as.targetCPUUtilizationPercentage) (not $as.targetRequestsPerSecond) }}
{{- fail "mypage.autoscaling needs a metric: set targetCPUUtilizationPercentage or targetRequestsPerSecond" }}
{{- end }}
{{- if and $as.keda.enabled $as.targetRequestsPerSecond (not $as.keda.prometheusServerAddress) }}
{{- fail "mypage.autoscaling.keda.prometheusServerAddress is required for targetRequestsPerSecond with KEDA" }}
{{- end }}
{{- end }}

{{- /* The custom metric prometheus-adapter's request-rate rule serves (see values.yaml). */ -}}
{{- define "purifier-rental-operator.mypage.requestRateMetric" -}}
rental_mypage_requests_per_second
{{- end }}

{{- /*
MyPage's request rate straight from Prometheus (KEDA's query): the same series and window as the
adapter rule, selected by the labels a ServiceMonitor scrape of MyPage's metrics Service attaches.
*/ -}}
{{- define "purifier-rental-operator.mypage.requestRateQuery" -}}
sum(rate(rental_mypage_requests_total{namespace="{{ .Release.Namespace }}",service="{{ include "purifier-rental-operator.mypage.metricsServiceName" . }}"}[{{ .Values.metrics.prometheusAdapter.rateWindow }}]))
{{- end }}

{{- /*
A requests-per-second target as text both readers take: a Kubernetes quantity for the HPA, a float
for KEDA's threshold ("10", "0.5").
*/ -}}
{{- define "purifier-rental-operator.mypage.requestRateTarget" -}}
{{- .Values.mypage.autoscaling.targetRequestsPerSecond | toString }}
{{- end }}
