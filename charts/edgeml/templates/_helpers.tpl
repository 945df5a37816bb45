{{/* Chart name, truncated to the DNS label limit. */}}
{{- define "edgeml.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name. */}}
{{- define "edgeml.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "edgeml.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "edgeml.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "edgeml.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "edgeml.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: edgeml
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels that select the operator's pods. */}}
{{- define "edgeml.selectorLabels" -}}
app.kubernetes.io/name: {{ include "edgeml.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The operator's service account. */}}
{{- define "edgeml.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "edgeml.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* An image reference from {repository, tag, digest}: repository@digest when a digest
is set (it wins over the tag), else repository:tag, the tag defaulting to appVersion.
Call with (dict "image" .Values.image "root" $). */}}
{{- define "edgeml.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (.image.tag | default .root.Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The names of imagePullSecrets, comma-separated (the operator sets them on the
pods it creates). */}}
{{- define "edgeml.imagePullSecretNames" -}}
{{- $names := list }}
{{- range .Values.imagePullSecrets }}
{{- $names = append $names .name }}
{{- end }}
{{- join "," $names }}
{{- end }}

{{/* kopf's peering needs kopf's own CRDs, which this chart does not install (every
kopf operator of a cluster shares them; Helm would delete a templated CRD on uninstall,
and crds/ cannot be switched off): refuse to render peering objects without them. */}}
{{- define "edgeml.requireKopfPeeringCRDs" -}}
{{- if not (.Capabilities.APIVersions.Has "kopf.dev/v1") }}
{{- fail "operator.leaderElection.enabled=false uses kopf's peering, whose CRDs (kopf.dev/v1 KopfPeering, ClusterKopfPeering) are not installed: install them once per cluster with `kubectl apply --server-side -f https://raw.githubusercontent.com/edgeml/edgeml/main/crds/kopf.dev_peerings.yaml` (or crds/kopf.dev_peerings.yaml of the repository), or keep the default leader election (a Lease, no CRDs). With `helm template`, pass --api-versions kopf.dev/v1." }}
{{- end }}
{{- end }}
