{{/*
Names and labels shared by every template. ipp.fullname is the stem of every object name:
  <fullname>                  ServiceAccount, ClusterRoles, MutatingWebhookConfiguration
  <fullname>-controller       Deployment, Lease (leader election), PodDisruptionBudget
  <fullname>-webhook          webhook Service (and cert-manager Issuer/Certificate)
  <fullname>-webhook-tls      Secret with the webhook's CA and certificate
  <fullname>-metrics          metrics Service (ServiceMonitor target)
With the release named "ipp" (the documented install), fullname is "ipp".
*/}}

{{- define "ipp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ipp.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ipp.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ipp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ipp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "ipp.labels" -}}
helm.sh/chart: {{ include "ipp.chart" . }}
{{ include "ipp.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.additionalLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "ipp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ipp.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ipp.leaseName" -}}
{{- printf "%s-controller" (include "ipp.fullname" .) }}
{{- end }}

{{- define "ipp.webhookService" -}}
{{- printf "%s-webhook" (include "ipp.fullname" .) }}
{{- end }}

{{/* The Secret with the webhook certificate: written by the controller (self) or by cert-manager. */}}
{{- define "ipp.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "ipp.fullname" .) }}
{{- end }}

{{- define "ipp.clusterName" -}}
{{- required "clusterName is required: the name of this cluster, which tags every cloud instance (ipp.dev/cluster) and must be unique per account/project. Set it with --set clusterName=<name>." .Values.clusterName }}
{{- end }}

{{- define "ipp.simulated" -}}
{{- if has "simulated" .Values.providers }}true{{ end }}
{{- end }}

{{- define "ipp.gce" -}}
{{- if has "gce" .Values.providers }}true{{ end }}
{{- end }}

{{- define "ipp.aws" -}}
{{- if has "aws" .Values.providers }}true{{ end }}
{{- end }}

{{- define "ipp.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
Checks that no template can express in the schema alone; included once from the Deployment.
*/}}
{{- define "ipp.validate" -}}
{{- $_ := include "ipp.clusterName" . }}
{{- if include "ipp.aws" . }}
{{- $_ := required "aws.eks.endpoint is required with the aws provider: the EKS API server endpoint for node bootstrap (aws eks describe-cluster --query cluster.endpoint)" .Values.aws.eks.endpoint }}
{{- $_ := required "aws.eks.certificateAuthority is required with the aws provider: the cluster CA, base64 (aws eks describe-cluster --query cluster.certificateAuthority.data)" .Values.aws.eks.certificateAuthority }}
{{- $_ := required "aws.eks.serviceCidr is required with the aws provider: the cluster's service CIDR (aws eks describe-cluster --query cluster.kubernetesNetworkConfig.serviceIpv4Cidr)" .Values.aws.eks.serviceCidr }}
{{- end }}
{{- if and (not .Values.leaderElection.enabled) (gt (int .Values.replicas) 1) }}
{{- fail "leaderElection.enabled=false runs every replica as leader: set replicas to 1, or keep leader election on" }}
{{- end }}
{{- end }}
