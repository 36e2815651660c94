#!/usr/bin/env bash
# The ORIGINAL design's promotion (and rollback) work, re-created for the benchmark:
# regenerate the kubeconfig, rewrite every listener protocol's route of the
# VirtualRouter to the kept version at 100 (get, edit with jq, apply), then delete the
# other version's VirtualNode, Deployment and Service with kubectl.
#
# Usage: remove_old_version.sh EVENT.json   (deployment.is_healthy: true keeps the new
# version, false keeps the old one). Environment as for deploy_and_switch.sh.
set -euo pipefail
event="$(cat "$1")"
work="${WORK:?WORK is not set}"
field() { jq -r "$1" <<<"$event"; }

cluster="$(field .cluster_name)"
namespace="$(field .kubernetes_namespace)"
service="$(field .microservice_name)"
new_version="$(field '.deployment.new_version | tonumber')"
old_version=$((new_version - 1))
if [[ "$(field .deployment.is_healthy)" == "false" ]]; then
  keep=$old_version; drop=$new_version
else
  keep=$new_version; drop=$old_version
fi

aws eks update-kubeconfig --name "$cluster" --kubeconfig "$work/kubeconfig" >/dev/null
k() { kubectl --kubeconfig "$work/kubeconfig" --server "$SIM_SERVER" --cache-dir "$work/kube-cache" -n "$namespace" "$@"; }

for protocol in $(k get VirtualRouter "$service" -o json | jq -r '.spec.listeners[].portMapping.protocol'); do
  k get VirtualRouter "$service" -o json \
    | jq --arg p "${protocol}Route" --arg keep "$service-$keep" \
      '.spec.routes[][$p].action.weightedTargets = [{"virtualNodeRef": {"name": $keep}, "weight": 100}]
       | del(.metadata.resourceVersion) | del(.spec.meshRef)' \
    | k apply -f - >/dev/null
done
k delete VirtualNode "$service-$drop" >/dev/null
k delete "deploy/$service-$drop" "svc/$service-$drop" >/dev/null
echo true
