{{/*
Backup restore and cluster identity (docs/operations.md). restore.enabled adds an init container to every node
pod: `raftkv restore --if-empty` seeds an EMPTY /data from the backup file in Secret restore.secretName (key
`snapshot`) with the voter set this pod will run with, and records the new cluster's id; a volume that already
holds data (any later start) is left alone. `raftctl snapshot restore FILE --target kind` creates the Secret and
sets these values. A Secret holds at most 1 MiB, which bounds the backup size on this path.
*/}}
{{- define "raftkv.validateRestore" -}}
{{- if .Values.restore.enabled -}}
{{- if not .Values.persistence.enabled -}}
{{- fail "restore.enabled needs persistence.enabled=true: a restore seeds each node's PersistentVolumeClaim" -}}
{{- end -}}
{{- if not .Values.restore.secretName -}}
{{- fail "restore.enabled needs restore.secretName: the Secret holding the backup file under key `snapshot` (raftctl snapshot restore --target kind creates <release>-restore)" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "raftkv.clusterIdEnv" -}}
{{- with .Values.node.clusterId }}
- name: RAFTKV_CLUSTER_ID
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "raftkv.restoreInitContainers" -}}
{{- if .Values.restore.enabled }}
initContainers:
  - name: restore
    image: {{ include "raftkv.image" . }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    command: ["raftkv"]
    args:
      - restore
      - --if-empty
      - --snapshot
      - /restore/snapshot
      {{- with .Values.restore.clusterId }}
      - --cluster-id
      - {{ . | quote }}
      {{- end }}
    env:
      - name: RAFTKV_ID
        valueFrom:
          fieldRef:
            fieldPath: metadata.name
      - name: RAFTKV_NAMESPACE
        valueFrom:
          fieldRef:
            fieldPath: metadata.namespace
      - name: RAFTKV_SERVICE
        value: {{ include "raftkv.headlessServiceName" . | quote }}
      - name: RAFTKV_REPLICAS
        value: {{ .Values.replicaCount | quote }}
      - name: RAFTKV_PEER_TEMPLATE
        value: {{ include "raftkv.peerTemplate" . | quote }}
      - name: RAFTKV_PORT
        value: "8000"
      - name: RAFTKV_DATA_DIR
        value: /data
    resources:
      {{- toYaml .Values.resources | nindent 6 }}
    securityContext:
      {{- toYaml .Values.containerSecurityContext | nindent 6 }}
    volumeMounts:
      - name: data
        mountPath: /data
      - name: tmp
        mountPath: /tmp
      - name: restore
        mountPath: /restore
        readOnly: true
{{- end }}
{{- end -}}

{{- define "raftkv.restoreVolumes" -}}
{{- if .Values.restore.enabled }}
- name: restore
  secret:
    secretName: {{ .Values.restore.secretName }}
    items:
      - key: snapshot
        path: snapshot
{{- end }}
{{- end -}}
