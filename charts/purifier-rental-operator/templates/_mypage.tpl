{{- /*
How MyPage may be reached, by auth mode. In header mode MyPage believes whatever customer id the
header carries, and in none mode it checks nobody: in both, nothing but what sits in front of it (the
authenticating proxy, an Ingress) may reach it. So a Service that publishes it outside the cluster is
refused, and header mode needs the proxy's pods named for the NetworkPolicy (mypage-networkpolicy.yaml).
*/ -}}

{{- /* Does the chart render MyPage's NetworkPolicy? */ -}}
{{- define "purifier-rental-operator.mypage.networkPolicyRendered" -}}
{{- if and .Values.mypage.enabled (or (eq .Values.mypage.auth.mode "header") .Values.mypage.networkPolicy.enabled) }}true{{ end }}
{{- end }}

{{- /* Fails the render on a MyPage exposure that would bypass its auth mode, naming the values. */ -}}
{{- define "purifier-rental-operator.mypage.exposureChecks" -}}
{{- $mode := .Values.mypage.auth.mode }}
{{- $type := .Values.mypage.service.type }}
{{- if and (has $mode (list "header" "none")) (has $type (list "LoadBalancer" "NodePort")) }}
{{- $why := "MyPage checks nobody in that mode, so anyone who reaches it reads every customer's rentals" }}
{{- if eq $mode "header" }}
{{- $why = "MyPage trusts the identity header, so it must be reachable only through the authenticating proxy" }}
{{- end }}
{{- fail (printf "mypage.service.type=%s is refused with mypage.auth.mode=%s: %s; use mypage.service.type=ClusterIP behind the proxy or an Ingress" $type $mode $why) }}
{{- end }}
{{- $proxy := .Values.mypage.auth.proxy.podSelector }}
{{- if and (include "purifier-rental-operator.mypage.networkPolicyRendered" .) (not (or $proxy.matchLabels $proxy.matchExpressions)) }}
{{- fail (printf "mypage.auth.proxy.podSelector is required with mypage.auth.mode=%s%s: MyPage's NetworkPolicy admits only those pods to its http port" $mode (ternary "" " and mypage.networkPolicy.enabled" (eq $mode "header"))) }}
{{- end }}
{{- end }}
