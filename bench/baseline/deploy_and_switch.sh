#!/usr/bin/env bash
# The ORIGINAL design's per-step work, re-created for the benchmark (not eks-canary's):
# one invocation of its bash "deploy and switch traffic" function. It regenerates a
# kubeconfig with the AWS CLI, renders the WHOLE template with sed for the next weight,
# and runs `kubectl apply -f` on all of it. Prints the new percentage.
#
# Usage: deploy_and_switch.sh EVENT.json
#   EVENT.json  the execution document: deploy.json (config_file = the template, base64)
#               plus deployment.new_version and deployment.current_percentage
# Environment: WORK (the function's /tmp), SIM_SERVER (the simulated cluster's URL,
# which replaces moto's fake EKS endpoint), the AWS variables for moto.
set -euo pipefail
event="$(cat "$1")"
work="${WORK:?WORK is not set}"
field() { jq -r "$1" <<<"$event"; }

cluster="$(field .cluster_name)"
namespace="$(field .kubernetes_namespace)"
service="$(field .microservice_name)"
image="$(field .container_image)"
new_version="$(field '.deployment.new_version | tonumber')"
field .config_file | base64 -d >"$work/deployment.yml"

# A kubeconfig for the cluster, as the original wrote one at every step. moto answers
# DescribeCluster with a fake endpoint; kubectl is pointed at the simulator with --server
# below, and keeps the kubeconfig's `aws eks get-token` exec credential.
aws eks update-kubeconfig --name "$cluster" --kubeconfig "$work/kubeconfig" >/dev/null

if [[ "$new_version" -eq 1 ]]; then
  percentage=100
  routes="{\"virtualNodeRef\":{\"name\":\"$service-$new_version\"},\"weight\":1}"
else
  step="$(field '.percentage_step | tonumber')"
  current="$(field '.deployment.current_percentage | tonumber')"
  percentage=$((current + step))
  ((percentage > 100)) && percentage=100
  old_version=$((new_version - 1))
  routes="{\"virtualNodeRef\":{\"name\":\"$service-$new_version\"},\"weight\":$percentage},{\"virtualNodeRef\":{\"name\":\"$service-$old_version\"},\"weight\":$((100 - percentage))}"
fi

sed -i \
  -e "s@\${CANARY_VERSION}@$new_version@g" \
  -e "s@\${CONTAINER_IMAGE}@$image@g" \
  -e "s@\${CANARY_ROUTES}@$routes@g" \
  -e "s@\${KUBERNETES_NAMESPACE}@$namespace@g" \
  -e "s@\${MICROSERVICE_NAME}@$service@g" \
  "$work/deployment.yml"

kubectl --kubeconfig "$work/kubeconfig" --server "$SIM_SERVER" --cache-dir "$work/kube-cache" \
  apply -f "$work/deployment.yml" >/dev/null
echo "$percentage"
