{{/*
_helpers.tpl — names, labels and the derived values every template shares.

Names (docs/contracts.md §6): StatefulSet `raftkv.statefulsetName` (default `raft`), headless Service
`raftkv.headlessServiceName` (default `raft-service`), client Service `raftkv.serviceName` (default the
fullname, `raftkv` for release `raftkv`), token Secret `<release>-token`, client Pod or Job
`<fullname>-client-<hash>` (`raftkv.clientName`). Pod `<statefulset>-<i>` is Raft node
`<statefulset>-<i>`, reachable at `<statefulset>-<i>.<headless>.<namespace>.svc.<clusterDomain>:8000`.
*/}}

{{- define "raftkv.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "raftkv.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "raftkv.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "raftkv.statefulsetName" -}}
{{- .Values.statefulset.name -}}
{{- end -}}

{{- define "raftkv.headlessServiceName" -}}
{{- .Values.headlessService.name -}}
{{- end -}}

{{- define "raftkv.serviceName" -}}
{{- default (include "raftkv.fullname" .) .Values.service.name -}}
{{- end -}}

{{/* The Secret that holds the cluster token (contract: `<release>-token`, key `token`). */}}
{{- define "raftkv.tokenSecretName" -}}
{{- if .Values.auth.existingSecret -}}
{{- .Values.auth.existingSecret -}}
{{- else -}}
{{- printf "%s-token" .Release.Name -}}
{{- end -}}
{{- end -}}

{{- define "raftkv.tokenSecretKey" -}}
{{- if .Values.auth.existingSecret -}}
{{- .Values.auth.existingSecretKey -}}
{{- else -}}
token
{{- end -}}
{{- end -}}

{{- define "raftkv.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Release identity: the part of every label set that selectors use. */}}
{{- define "raftkv.instanceLabels" -}}
app.kubernetes.io/name: {{ include "raftkv.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Descriptive labels that no selector uses (may change between chart versions). */}}
{{- define "raftkv.metaLabels" -}}
helm.sh/chart: {{ include "raftkv.chart" . }}
app.kubernetes.io/version: {{ default .Chart.AppVersion .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: raftkv
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels every object carries (objects add their own app.kubernetes.io/component). */}}
{{- define "raftkv.labels" -}}
{{ include "raftkv.instanceLabels" . }}
{{ include "raftkv.metaLabels" . }}
{{- end -}}

{{/* Selector of the node pods (immutable in a StatefulSet: never add to it). */}}
{{- define "raftkv.selectorLabels" -}}
{{ include "raftkv.instanceLabels" . }}
app.kubernetes.io/component: node
{{- end -}}

{{/* Selector of the client pods (the client Pod and the helm test Pod). */}}
{{- define "raftkv.clientSelectorLabels" -}}
{{ include "raftkv.instanceLabels" . }}
app.kubernetes.io/component: client
{{- end -}}

{{- define "raftkv.annotations" -}}
{{- with .Values.commonAnnotations }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{/* RAFTKV_PEER_TEMPLATE, expanded by the node: {name} = id without "-N", {i} = 0..replicas-1. */}}
{{- define "raftkv.peerTemplate" -}}
{{- printf "%s://{name}-{i}.{service}.{namespace}.svc.%s:{port}" (include "raftkv.scheme" .) .Values.clusterDomain -}}
{{- end -}}

{{/* The client's endpoints, short pod DNS names as in the original assignment: "http://raft-0.raft-service:8000,...". */}}
{{- define "raftkv.clientEndpoints" -}}
{{- $root := . -}}
{{- $urls := list -}}
{{- range $i := until (int .Values.replicaCount) -}}
{{- $urls = append $urls (printf "%s://%s-%d.%s:8000" (include "raftkv.scheme" $root) (include "raftkv.statefulsetName" $root) $i (include "raftkv.headlessServiceName" $root)) -}}
{{- end -}}
{{- join "," $urls -}}
{{- end -}}

{{/* Largest number of voters that may be down while a majority stays: (N-1)/2. */}}
{{- define "raftkv.maxUnavailable" -}}
{{- div (sub (int .Values.replicaCount) 1) 2 -}}
{{- end -}}

{{/* Token env vars (RAFTKV_TOKEN for the node, RAFTCTL_TOKEN for raftctl): pass (dict "root" $ "name" "RAFTKV_TOKEN").
The value may be a comma-separated list (rotation): the node accepts every token and sends the first, raftctl
sends the first. Without a cluster token, raftctl gets the read-write client tokens (clientAuth). */}}
{{- define "raftkv.tokenEnv" -}}
{{- if .root.Values.auth.enabled -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "raftkv.tokenSecretName" .root }}
      key: {{ include "raftkv.tokenSecretKey" .root }}
{{- else if and .root.Values.clientAuth.enabled (eq .name "RAFTCTL_TOKEN") -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "raftkv.clientTokensSecretName" .root }}
      key: tokens
{{- end -}}
{{- end -}}

{{/* The cluster token(s) given in values ("" when generated or from an existing Secret): auth.tokens joined
with commas, else auth.token. */}}
{{- define "raftkv.inlineToken" -}}
{{- if .Values.auth.tokens -}}
{{- join "," .Values.auth.tokens -}}
{{- else -}}
{{- .Values.auth.token -}}
{{- end -}}
{{- end -}}

{{/* The Secret with the client tokens (keys `tokens`, `readTokens`). */}}
{{- define "raftkv.clientTokensSecretName" -}}
{{- .Values.clientAuth.existingSecret | default (printf "%s-client-tokens" .Release.Name) -}}
{{- end -}}

{{/* The Secret with the node certificate (tls.crt, tls.key, ca.crt). */}}
{{- define "raftkv.tlsSecretName" -}}
{{- .Values.tls.existingSecret | default (printf "%s-tls" .Release.Name) -}}
{{- end -}}

{{/* http or https, for every URL the chart builds. */}}
{{- define "raftkv.scheme" -}}
{{- ternary "https" "http" .Values.tls.enabled -}}
{{- end -}}

{{/* Checks the schema cannot express (or that must hold even with --skip-schema-validation); one clear line each. */}}
{{- define "raftkv.validateValues" -}}
{{- $n := int .Values.replicaCount -}}
{{- if or (lt $n 1) (eq (mod $n 2) 0) -}}
{{- fail (printf "replicaCount must be odd and at least 1 (1, 3, 5, 7 or 9), got %d: a Raft cluster of N voters needs a majority of N, so an even N tolerates no more failures than N-1" $n) -}}
{{- end -}}
{{- if and .Values.auth.enabled .Values.auth.existingSecret .Values.auth.token -}}
{{- fail "auth.token and auth.existingSecret are mutually exclusive: set one of them" -}}
{{- end -}}
{{- if and .Values.auth.enabled .Values.auth.existingSecret .Values.auth.tokens -}}
{{- fail "auth.tokens and auth.existingSecret are mutually exclusive: set one of them" -}}
{{- end -}}
{{- if and .Values.auth.token .Values.auth.tokens -}}
{{- fail "auth.token and auth.tokens are mutually exclusive: for a rotation list every token in auth.tokens" -}}
{{- end -}}
{{- if and .Values.clientAuth.existingSecret (or .Values.clientAuth.tokens .Values.clientAuth.readTokens) -}}
{{- fail "clientAuth.tokens/readTokens and clientAuth.existingSecret are mutually exclusive: set one of them" -}}
{{- end -}}
{{- if not (has .Values.client.kind (list "Pod" "Job")) -}}
{{- fail (printf "client.kind must be Pod or Job, got %v" .Values.client.kind) -}}
{{- end -}}
{{- $grace := int .Values.statefulset.terminationGracePeriodSeconds -}}
{{- $sleep := int (default 0 .Values.statefulset.preStopSleepSeconds) -}}
{{- if gt (add $sleep 20) $grace -}}
{{- fail (printf "statefulset.preStopSleepSeconds (%d) must leave 20 s of statefulset.terminationGracePeriodSeconds (%d) for the leadership handover after SIGTERM: lower it to %d or raise the grace period to %d" $sleep $grace (max 0 (sub $grace 20)) (add $sleep 20)) -}}
{{- end -}}
{{- include "raftkv.replicaGuard" (dict "root" . "live" (lookup "apps/v1" "StatefulSet" .Release.Namespace (include "raftkv.statefulsetName" .))) -}}
{{- end -}}

{{/*
replicaCount defines the voter set only when the cluster is first created (docs/membership.md). On a live
release the members are in the Raft log, and changing the flags of running pods would split the cluster
(old pods with N voters, new pods with M), so a replicaCount that differs from the live StatefulSet's replicas
is refused: membership changes go through the log (`raftctl member add/promote/remove`, `raftctl scale`).
Pass (dict "root" $ "live" <the StatefulSet `lookup` returned, or empty>). `lookup` returns nothing in
`helm template` / --dry-run=client, so the guard only acts against a real cluster.
*/}}
{{- define "raftkv.replicaGuard" -}}
{{- $live := .live | default dict -}}
{{- $spec := get $live "spec" | default dict -}}
{{- if hasKey $spec "replicas" -}}
{{- $was := int (get $spec "replicas") -}}
{{- $want := int .root.Values.replicaCount -}}
{{- if ne $was $want -}}
{{- fail (printf "replicaCount cannot change on a live release (the StatefulSet runs %d replicas, replicaCount=%d): the Raft log, not the chart, defines the members once the cluster exists, and changing every pod's flags at once could elect two leaders. Change membership through the log with `raftctl scale` or `raftctl member add/promote/remove` (docs/membership.md); a helm upgrade must keep replicaCount equal to the StatefulSet's replicas (%d)" $was $want $was) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The client workload's pod spec, shared by the client Pod (bare with client.kind=Pod, the Job's template with
client.kind=Job) and the `helm test` Pod: an init container waits until the client Service answers /readyz (some
node is Ready: it knows a leader and has applied its commit index), then `raftctl verify --sequential` runs the assignment's
workload against every replica's pod DNS name and exits 0 or 1.
*/}}
{{- define "raftkv.clientPodSpec" -}}
restartPolicy: Never
automountServiceAccountToken: false
enableServiceLinks: false
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
initContainers:
  - name: wait-ready
    image: {{ include "raftkv.image" . }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    command:
      - raftkv-wait-ready
      - --timeout
      - {{ .Values.client.waitTimeoutSeconds | quote }}
      {{- if .Values.tls.enabled }}
      - --cacert
      - /tls/ca.crt
      {{- end }}
      - {{ printf "%s://%s:%d/readyz" (include "raftkv.scheme" .) (include "raftkv.serviceName" .) (int .Values.service.port) | quote }}
    resources:
      {{- toYaml .Values.client.resources | nindent 6 }}
    securityContext:
      {{- toYaml .Values.containerSecurityContext | nindent 6 }}
    volumeMounts:
      - name: tmp
        mountPath: /tmp
      {{- if .Values.tls.enabled }}
      - name: tls
        mountPath: /tls
        readOnly: true
      {{- end }}
containers:
  - name: raftctl
    image: {{ include "raftkv.image" . }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    command:
      - raftctl
      - verify
      - --sequential
      - --endpoints
      - {{ include "raftkv.clientEndpoints" . | quote }}
      {{- range .Values.client.extraArgs }}
      - {{ . | quote }}
      {{- end }}
    env:
      - name: HOME
        value: /tmp
      {{- with (include "raftkv.tokenEnv" (dict "root" . "name" "RAFTCTL_TOKEN")) }}
      {{- . | nindent 6 }}
      {{- end }}
      {{- if .Values.tls.enabled }}
      - name: RAFTCTL_CACERT
        value: /tls/ca.crt
      {{- end }}
    resources:
      {{- toYaml .Values.client.resources | nindent 6 }}
    securityContext:
      {{- toYaml .Values.containerSecurityContext | nindent 6 }}
    volumeMounts:
      - name: tmp
        mountPath: /tmp
      {{- if .Values.tls.enabled }}
      - name: tls
        mountPath: /tls
        readOnly: true
      {{- end }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
  {{- if .Values.tls.enabled }}
  # only the CA: the client trusts the nodes' certificates, it presents none
  - name: tls
    secret:
      secretName: {{ include "raftkv.tlsSecretName" . }}
      items:
        - key: ca.crt
          path: ca.crt
  {{- end }}
{{- end -}}

{{/* The client Pod's labels (on the bare client Pod, in the Job's template and on the helm test Pod). */}}
{{- define "raftkv.clientPodLabels" -}}
{{ include "raftkv.clientSelectorLabels" . }}
{{ include "raftkv.metaLabels" . }}
{{- end -}}

{{/* "<fullname>-client-<8 hex digits of sha256 of .hashed>", at most 63 characters (a Job's name becomes the
value of its pods' job-name label): pass (dict "root" $ "hashed" text). */}}
{{- define "raftkv.clientHashedName" -}}
{{- printf "%s-client-%s" (include "raftkv.fullname" .root | trunc 47 | trimSuffix "-") (.hashed | sha256sum | trunc 8) -}}
{{- end -}}

{{/* The client Job's name: the hash of its Pod template (labels and spec) is part of it, because a Job's
template is immutable and `helm upgrade` could not patch a changed one; a new name makes Helm delete the old
Job and create the new one. */}}
{{- define "raftkv.clientJobName" -}}
{{- $template := printf "%s\n%s" (include "raftkv.clientPodLabels" .) (include "raftkv.clientPodSpec" .) -}}
{{- include "raftkv.clientHashedName" (dict "root" . "hashed" $template) -}}
{{- end -}}

{{/* The bare client Pod's name: the hash of its spec is part of it, because a Pod's spec is immutable (its
labels are not, so they stay out of the hash and are patched in place); a changed spec gets a new name, and
Helm deletes the old Pod and creates the new one on `helm upgrade`. */}}
{{- define "raftkv.clientPodName" -}}
{{- include "raftkv.clientHashedName" (dict "root" . "hashed" (include "raftkv.clientPodSpec" .)) -}}
{{- end -}}

{{/* The name of the client object of kind client.kind (Pod or Job). */}}
{{- define "raftkv.clientName" -}}
{{- if eq .Values.client.kind "Job" -}}
{{- include "raftkv.clientJobName" . -}}
{{- else -}}
{{- include "raftkv.clientPodName" . -}}
{{- end -}}
{{- end -}}
