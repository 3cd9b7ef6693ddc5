{{/*
Labels of every object: { "root": $, "component": "mirror" }.
*/}}
{{- define "mirrorgate.labels" -}}
{{ include "mirrorgate.selectorLabels" . }}
app.kubernetes.io/part-of: mirrorgate
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end }}

{{/*
What selectors match (the same as manifests/, so a kustomize install can be moved under Helm).
*/}}
{{- define "mirrorgate.selectorLabels" -}}
app.kubernetes.io/name: mirrorgate
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "mirrorgate.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/*
The port of a listen address (":5000", "0.0.0.0:5000", "[::]:5000").
*/}}
{{- define "mirrorgate.port" -}}
{{ regexReplaceAll "^.*:" . "" }}
{{- end }}

{{- define "mirrorgate.mirrorPort" -}}
{{ include "mirrorgate.port" (dig "mirror" "listen" ":5000" .Values.config) }}
{{- end }}

{{- define "mirrorgate.webhookPort" -}}
{{ include "mirrorgate.port" (dig "webhook" "listen" ":8443" .Values.config) }}
{{- end }}

{{/* Names the configuration gives (with the product's defaults). */}}
{{- define "mirrorgate.webhookServiceName" -}}
{{ dig "webhook" "serviceName" "mirrorgate-webhook" .Values.config }}
{{- end }}

{{- define "mirrorgate.webhookConfigurationName" -}}
{{ dig "webhook" "webhookConfigurationName" "mirrorgate" .Values.config }}
{{- end }}

{{- define "mirrorgate.mirrorHost" -}}
{{- $host := dig "webhook" "mirrorHost" "" .Values.config -}}
{{- if not $host -}}
{{- fail "config.webhook.mirrorHost: set the host the nodes pull from (the Ingress and certificates are made for it)" -}}
{{- end -}}
{{ $host }}
{{- end }}

{{- define "mirrorgate.storagePath" -}}
{{- $path := dig "mirror" "storage" "path" "" .Values.config -}}
{{- if not (hasPrefix "/" $path) -}}
{{- fail "config.mirror.storage.path must be an absolute path: the cache volume is mounted there" -}}
{{- end -}}
{{ $path }}
{{- end }}

{{/* "true" when content and metadata are in object storage: replicas, no volume claim. */}}
{{- define "mirrorgate.objectStorage" -}}
{{- if dig "mirror" "storage" "s3" "" .Values.config -}}true{{- end -}}
{{- end }}

{{/* The mirror's replica count; more than one only on object storage (they would share nothing otherwise). */}}
{{- define "mirrorgate.mirrorReplicas" -}}
{{- if and (gt (int .Values.mirror.replicas) 1) (not (include "mirrorgate.objectStorage" .)) -}}
{{- fail "mirror.replicas above 1 needs config.mirror.storage.s3: replicas share a bucket, not a ReadWriteOnce volume" -}}
{{- end -}}
{{ int .Values.mirror.replicas }}
{{- end }}

{{- define "mirrorgate.htpasswdPath" -}}
{{ dig "mirror" "auth" "htpasswd" "" .Values.config }}
{{- end }}

{{/* Where the Secret of mirror.tls.secretName is mounted. */}}
{{- define "mirrorgate.mirrorTlsDir" -}}
/etc/mirrorgate/mirror-tls
{{- end }}

{{/*
The configuration file: .Values.config with the mirror probe's URL (the mirror's Service in this namespace) and,
with mirror.tls.secretName, mirror.tls (the mounted files) filled in where not set.
*/}}
{{- define "mirrorgate.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- if not (hasKey $config "webhook") }}{{ $_ := set $config "webhook" dict }}{{ end -}}
{{- if not (hasKey $config.webhook "mirrorProbe") }}{{ $_ := set $config.webhook "mirrorProbe" dict }}{{ end -}}
{{- if not (hasKey $config.webhook.mirrorProbe "url") -}}
{{- $_ := set $config.webhook.mirrorProbe "url" (printf "http://mirrorgate-mirror.%s.svc:%s/v2/" .Release.Namespace (include "mirrorgate.mirrorPort" .)) -}}
{{- end -}}
{{- if not (hasKey $config "mirror") }}{{ $_ := set $config "mirror" dict }}{{ end -}}
{{- if .Values.mirror.tls.secretName -}}
{{- if not (hasKey $config.mirror "tls") -}}
{{- $dir := include "mirrorgate.mirrorTlsDir" . -}}
{{- $_ := set $config.mirror "tls" (dict "cert" (printf "%s/tls.crt" $dir) "key" (printf "%s/tls.key" $dir)) -}}
{{- end -}}
{{- else if hasKey $config.mirror "tls" -}}
{{- fail "config.mirror.tls needs mirror.tls.secretName: the Secret whose files it names" -}}
{{- end -}}
{{ toYaml $config }}
{{- end }}

{{/* Pod template annotations: a changed configuration rolls the pods that read it. */}}
{{- define "mirrorgate.podAnnotations" -}}
checksum/config: {{ include "mirrorgate.config" .root | sha256sum }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The restricted Pod Security profile's container settings. */}}
{{- define "mirrorgate.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end }}

{{/* The Secret holding the webhook's serving certificate and its CA (ca.crt). */}}
{{- define "mirrorgate.webhookTlsSecretName" -}}
{{- if .Values.certManager.enabled -}}
mirrorgate-webhook-serving
{{- else -}}
{{ dig "webhook" "tlsSecretName" "mirrorgate-webhook-tls" .Values.config }}
{{- end -}}
{{- end }}
