#!/bin/sh
# kind-with-registry.sh — a local Kubernetes for raftkv: a kind cluster with 1 control plane and N workers
# (default 4, at least 3: the chart puts each of its 3 replicas on its own worker) wired to a local image
# registry on localhost:5001, the layout of kind's "local registry" guide and of the original assignment.
#
#   ./kind-with-registry.sh                 create (or check and complete) the registry and the cluster "raftkv"
#   ./kind-with-registry.sh --name NAME     another cluster name (default raftkv, never kind's own "kind")
#   ./kind-with-registry.sh --workers 5     more workers (only when the cluster is created)
#   ./kind-with-registry.sh --delete        delete the cluster and the registry container
#
# Then: images/build.sh localhost:5001/raftkv:dev && docker push localhost:5001/raftkv:dev
#       helm install raftkv ./helm/raftkv --set image.tag=dev     (or: raftctl up --target kind)
#
# Env: KIND_CLUSTER_NAME (default raftkv), REGISTRY_NAME (kind-registry), REGISTRY_PORT (5001),
#      REGISTRY_IMAGE (registry:2), KIND_NODE_IMAGE (kind's default when empty).
# An existing cluster is never reused blindly: every run checks that each node's containerd reads
# /etc/containerd/certs.d (a cluster made without this script does not: it is refused, with the way out),
# warns when it has fewer than 3 workers, and repairs what is missing (a stopped or missing registry, a node
# without the registry config, the registry not attached to the "kind" network, the ConfigMap); nothing else.
set -eu

CLUSTER=${KIND_CLUSTER_NAME:-raftkv}
REG_NAME=${REGISTRY_NAME:-kind-registry}
REG_PORT=${REGISTRY_PORT:-5001}
REG_IMAGE=${REGISTRY_IMAGE:-registry:2}
NODE_IMAGE=${KIND_NODE_IMAGE:-}
WORKERS=4
ACTION=up

die() { echo "kind-with-registry.sh: $*" >&2; exit 1; }
say() { echo "==> $*"; }

while [ $# -gt 0 ]; do
  case $1 in
    --workers) [ $# -ge 2 ] || die "--workers needs a number"; WORKERS=$2; shift 2 ;;
    --name) [ $# -ge 2 ] || die "--name needs a cluster name"; CLUSTER=$2; shift 2 ;;
    --delete) ACTION=delete; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (try --help)" ;;
  esac
done
case $WORKERS in
  ''|*[!0-9]*) die "--workers must be a number, got '$WORKERS'" ;;
esac
[ "$WORKERS" -ge 3 ] || die "--workers must be at least 3 (one per Raft replica), got $WORKERS"

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (needed: docker, kind, kubectl)"
done
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (is dockerd running? may you use it?)"

cluster_exists() { kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; }

if [ "$ACTION" = delete ]; then
  if cluster_exists; then say "deleting kind cluster $CLUSTER"; kind delete cluster --name "$CLUSTER"; fi
  if docker inspect "$REG_NAME" >/dev/null 2>&1; then
    say "removing registry container $REG_NAME"; docker rm -f "$REG_NAME" >/dev/null
  fi
  exit 0
fi

# 1. The registry container (restart=always), published on the host's loopback only.
state=$(docker inspect -f '{{.State.Running}}' "$REG_NAME" 2>/dev/null || echo missing)
case $state in
  true) say "registry $REG_NAME already running on localhost:$REG_PORT" ;;
  false) say "starting stopped registry $REG_NAME"; docker start "$REG_NAME" >/dev/null ;;
  *)
    say "creating registry $REG_NAME on localhost:$REG_PORT"
    docker run -d --restart=always -p "127.0.0.1:$REG_PORT:5000" --network bridge \
      --name "$REG_NAME" "$REG_IMAGE" >/dev/null ;;
esac

# 2. The cluster: containerd told to read per-registry hosts.toml files from /etc/containerd/certs.d.
if cluster_exists; then
  say "kind cluster $CLUSTER already exists: checking it (its node count is left as it is)"
else
  say "creating kind cluster $CLUSTER: 1 control plane + $WORKERS workers"
  config=$(mktemp)
  trap 'rm -f "$config"' EXIT
  {
    echo "kind: Cluster"
    echo "apiVersion: kind.x-k8s.io/v1alpha4"
    echo "containerdConfigPatches:"
    echo "  - |-"
    echo "    [plugins.\"io.containerd.grpc.v1.cri\".registry]"
    echo "      config_path = \"/etc/containerd/certs.d\""
    echo "nodes:"
    echo "  - role: control-plane"
    i=0
    while [ "$i" -lt "$WORKERS" ]; do echo "  - role: worker"; i=$((i + 1)); done
  } >"$config"
  if [ -n "$NODE_IMAGE" ]; then
    kind create cluster --name "$CLUSTER" --config "$config" --image "$NODE_IMAGE" --wait 180s
  else
    kind create cluster --name "$CLUSTER" --config "$config" --wait 180s
  fi
fi

# 3. Every node resolves localhost:$REG_PORT to the registry container over the "kind" network. Its
#    containerd must read hosts.toml files from /etc/containerd/certs.d (our config patch above; recent kind
#    node images do by default): a cluster made by a plain `kind create cluster` with an older kind does not,
#    and patching a running node's containerd is not this script's business — refuse it, saying what to do.
#    `containerd config dump` is the effective configuration (file, imports and built-in defaults).
REG_DIR="/etc/containerd/certs.d/localhost:$REG_PORT"
NODES=$(kind get nodes --name "$CLUSTER")
[ -n "$NODES" ] || die "kind cluster $CLUSTER has no nodes (is it running? docker start its containers)"
workers=0
for node in $NODES; do
  case $node in *control-plane*) ;; *) workers=$((workers + 1)) ;; esac
  docker exec "$node" sh -c 'containerd config dump 2>/dev/null | grep -q /etc/containerd/certs.d' ||
    die "kind cluster $CLUSTER was not created by this script: node $node's containerd does not read" \
        "/etc/containerd/certs.d, so it cannot pull localhost:$REG_PORT/* — delete it (kind delete cluster" \
        "--name $CLUSTER) or use another name (--name NAME; raftctl: --kind-cluster NAME)"
done
if [ "$workers" -lt 3 ]; then
  echo "kind-with-registry.sh: WARNING: cluster $CLUSTER has $workers worker(s); the chart puts each of its 3" \
       "replicas on its own worker (required anti-affinity), so pods would stay Pending — recreate it with" \
       "--workers 3 or more, or install with --set antiAffinity=soft" >&2
fi
for node in $NODES; do
  docker exec "$node" mkdir -p "$REG_DIR"
  printf '[host."http://%s:5000"]\n' "$REG_NAME" | docker exec -i "$node" cp /dev/stdin "$REG_DIR/hosts.toml"
done
say "nodes configured to pull localhost:$REG_PORT/* from $REG_NAME"

# 4. Attach the registry to the cluster's network (once).
if [ "$(docker inspect -f '{{json .NetworkSettings.Networks.kind}}' "$REG_NAME")" = null ]; then
  docker network connect kind "$REG_NAME"
  say "registry attached to the kind network"
fi

# 5. Advertise the registry to tools (KEP-1755 "local-registry-hosting").
kubectl --context "kind-$CLUSTER" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "localhost:$REG_PORT"
    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"
EOF
say "ready: kubectl --context kind-$CLUSTER get nodes"
kubectl --context "kind-$CLUSTER" get nodes -o wide
