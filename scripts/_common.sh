# shellcheck shell=bash
# Shared helpers for the eks-canary scripts (sourced, not run). No secrets are ever
# printed: nothing here echoes credentials or runs with xtrace.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT

# The six Lambda functions: crate name = binary name = zip name = the suffix of the
# function name in the shared stack.
FUNCTIONS=(render-template deploy-canary shift-weights health-check rollback cleanup)
export FUNCTIONS

ASL_FILE="statemachine/canary-deployment.asl.json"
CLI_KEY="tools/canary-linux-x86_64"
export ASL_FILE CLI_KEY

# The key of one build of the CLI, by its sha256 (scripts/package uploads it there; a
# pipeline stack pins it with its checksum).
cli_pinned_key() { printf 'tools/by-sha256/%s/canary-linux-x86_64' "$1"; }

log() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
# die with the usage text: bad arguments.
bad_usage() { printf 'error: %s\n\n' "$1" >&2; usage >&2; exit 2; }

need() {
  local cmd
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null 2>&1 || die "\`$cmd\` is needed and was not found on PATH"
  done
}

# Reads the value of an option that takes an argument: opt_value "$1" "${2-}".
opt_value() {
  [[ -n "${2-}" && "${2:0:2}" != "--" ]] || bad_usage "$1 needs a value"
  printf '%s' "$2"
}

# aws with the optional --region the caller chose.
AWS_REGION_ARGS=()
awsr() { aws "${AWS_REGION_ARGS[@]}" "$@"; }

stack_exists() {
  local status
  status="$(awsr cloudformation describe-stacks --stack-name "$1" \
    --query 'Stacks[0].StackStatus' --output text 2>/dev/null)" || return 1
  [[ -n "$status" && "$status" != "DELETE_COMPLETE" ]]
}

stack_output() {
  awsr cloudformation describe-stacks --stack-name "$1" \
    --query "Stacks[0].Outputs[?OutputKey=='$2'].OutputValue | [0]" --output text
}

delete_stack() {
  if stack_exists "$1"; then
    log "deleting stack $1"
    awsr cloudformation delete-stack --stack-name "$1"
    awsr cloudformation wait stack-delete-complete --stack-name "$1"
  else
    log "stack $1: not there"
  fi
}

# Deletes every object version and delete marker of a bucket (a versioned bucket is
# not empty until both are gone). Idempotent; a missing bucket is not an error.
empty_bucket() {
  local bucket="$1" batch
  if ! awsr s3api head-bucket --bucket "$bucket" >/dev/null 2>&1; then
    log "bucket $bucket: not there"
    return 0
  fi
  log "emptying s3://$bucket (all versions)"
  batch="$(mktemp)"
  while true; do
    # shellcheck disable=SC2016 # a JMESPath literal, not a shell expansion
    awsr s3api list-object-versions --bucket "$bucket" --max-items 1000 --output json \
      --query '{Objects: [Versions, DeleteMarkers][][].{Key: Key, VersionId: VersionId}, Quiet: `true`}' \
      >"$batch"
    if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d.get("Objects") else 1)' "$batch"; then
      # list-object-versions' NextToken line, if any, is not JSON: keep the first document.
      python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.pop("NextToken",None); json.dump(d,open(sys.argv[1],"w"))' "$batch"
      awsr s3api delete-objects --bucket "$bucket" --delete "file://$batch" >/dev/null
    else
      break
    fi
  done
  rm -f "$batch"
}
