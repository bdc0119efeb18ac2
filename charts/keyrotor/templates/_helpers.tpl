{{/* The release's full name, at most 63 characters. */}}
{{- define "keyrotor.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "keyrotor.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "keyrotor.labels" -}}
{{ include "keyrotor.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: keyrotor
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "keyrotor.serviceAccountName" -}}
{{- default (include "keyrotor.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* Exactly what the controller uses; each feature adds its own rules. */}}
{{- define "keyrotor.rules" -}}
- apiGroups: [keyrotor.dev]
  resources: [apikeys, apikeyissuers]
  verbs: [get, list, watch]
- apiGroups: [keyrotor.dev]
  resources: [apikeys/status, apikeyissuers/status]
  verbs: [get, patch, update]
# Owner references with blockOwnerDeletion on the Secrets it creates (keys; issuers' verifiers).
- apiGroups: [keyrotor.dev]
  resources: [apikeys/finalizers, apikeyissuers/finalizers]
  verbs: [update]
# Secrets are written with server-side apply (create and patch); delete only to change a Secret's type.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- if .Values.features.readers }}
# spec.readers: a Role and RoleBinding per ApiKey, and the per-namespace ConfigMap the mount policy reads.
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [create]
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [keyrotor-readers]
  verbs: [get, patch, delete]
{{- end }}
{{- if .Values.features.workloadRestarts }}
# rolloutRestartTargets: the pod-template annotation kubectl rollout restart sets.
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [patch]
{{- end }}
{{- end -}}
