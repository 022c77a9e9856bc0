{{/*
The RBAC rules of the operator and of MyPage (with the customer web app's writes), each with its
reason; rbac.yaml binds them cluster-wide or per watched namespace.
*/}}
{{- define "purifier-rental-operator.operatorRules" -}}
# Purifiers are the administrators' catalog: the operator reads them (which model, what fee, how much
# stock) and never changes their spec, nor deletes them.
- apiGroups: ["rental.purifier.io"]
  resources: ["purifiers"]
  verbs: ["get", "list", "watch"]
# Stock is reserved and released by rewriting a Purifier's status (its count and journal) under optimistic
# concurrency: a PUT to the status subresource guarded by resourceVersion.
- apiGroups: ["rental.purifier.io"]
  resources: ["purifiers/status"]
  verbs: ["get", "update", "patch"]
# Rentals are the customers' applications: watched to drive the saga; patched only to add and remove
# the compensation finalizer (a customer's delete must wait for the refund).
- apiGroups: ["rental.purifier.io"]
  resources: ["rentals"]
  verbs: ["get", "list", "watch", "patch"]
# A Rental's status (phase, conditions, payment and delivery summaries, history) is the operator's.
- apiGroups: ["rental.purifier.io"]
  resources: ["rentals/status"]
  verbs: ["get", "update", "patch"]
# Payments and Deliveries are created by the operator for each rental (owned by it, so garbage
# collection removes them with the Rental), watched, and patched to ask for a refund (spec.refund), a
# retry of a declined monthly charge (spec.attempt) or a cancellation (spec.cancelled).
- apiGroups: ["rental.purifier.io"]
  resources: ["payments", "deliveries"]
  verbs: ["get", "list", "watch", "create", "patch"]
# A rental keeps at most RENTAL_PAYMENT_HISTORY settled Payments: older ones are deleted once their
# outcome is in the Rental's status.billing, so a 60-month contract does not keep 60 objects. Only
# Payments, and each delete is guarded by the uid it was decided on.
- apiGroups: ["rental.purifier.io"]
  resources: ["payments"]
  verbs: ["delete"]
# Their status records what the partner systems answered.
- apiGroups: ["rental.purifier.io"]
  resources: ["payments/status", "deliveries/status"]
  verbs: ["get", "update", "patch"]
# Every step of the saga is reported as a Kubernetes Event on the object it concerns (and Kopf posts
# its own Events for errors). Events are only created, never read back or changed.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}
{{- define "purifier-rental-operator.mypageRules" -}}
# MyPage is a read model built from watch events: it lists and watches Rentals (which carry the
# payment and delivery summaries) and Purifiers (for the model names); the read side writes nothing.
- apiGroups: ["rental.purifier.io"]
  resources: ["rentals", "purifiers"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- define "purifier-rental-operator.webRules" -}}
# The customer web app runs in MyPage's process (web.enabled): applying creates a Rental for the
# signed-in customer, and cancelling patches one to set spec.cancelled. Only those two verbs on
# Rentals: no update, delete or status, and no other kind (the operator makes the Payments). What the
# writes may contain is held in by the ValidatingAdmissionPolicy of web-admission.yaml.
- apiGroups: ["rental.purifier.io"]
  resources: ["rentals"]
  verbs: ["create", "patch"]
{{- end }}
