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
awsr() { aws ${AWS_REGION_ARGS[@]+"${AWS_REGION_ARGS[@]}"} "$@"; }

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

# Whether bucket $1 exists: 0 yes, 1 no (404). Any other answer (no credentials, 403,
# no network) is an error that stops the script, never "not there".
bucket_exists() {
  local err
  if err="$(awsr s3api head-bucket --bucket "$1" 2>&1 >/dev/null)"; then
    return 0
  fi
  case "$err" in
    *"Not Found"*|*NoSuchBucket*|*"(404)"*) return 1 ;;
    *) die "cannot tell whether bucket $1 exists: $err" ;;
  esac
}

# The helpers below go round "list a page, delete it" until nothing is left, at most this
# many rounds (a page is up to 1,000 keys or 100 images): past it they stop with an error
# instead of looping for ever.
CLEANUP_MAX_ROUNDS="${EKS_CANARY_CLEANUP_MAX_ROUNDS:-10000}"

# Python that reads one list-object-versions page ($1) and writes the DeleteObjects
# request for all of it ($2); prints "<versions> <delete markers>".
_PAGE_TO_BATCH='
import json, sys
text = open(sys.argv[1]).read().strip()
page = json.loads(text) if text else {}
versions = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions") or []]
markers = [{"Key": m["Key"], "VersionId": m["VersionId"]} for m in page.get("DeleteMarkers") or []]
objects = versions + markers
if len(objects) > 1000:
    sys.exit(f"list-object-versions answered {len(objects)} keys for --max-keys 1000")
json.dump({"Objects": objects, "Quiet": True}, open(sys.argv[2], "w"))
print(len(versions), len(markers))
'
# Python that reads a DeleteObjects answer ($1) for bucket $2 and fails, naming the keys
# and S3's reasons, when any key was not deleted.
_CHECK_DELETED='
import json, sys
text = open(sys.argv[1]).read().strip()
errors = (json.loads(text) if text else {}).get("Errors") or []
for e in errors[:10]:
    print("error: s3://%s/%s (version %s) was not deleted: %s: %s"
          % (sys.argv[2], e.get("Key"), e.get("VersionId"), e.get("Code"), e.get("Message")), file=sys.stderr)
if errors:
    sys.exit(f"error: {len(errors)} keys of s3://{sys.argv[2]} were not deleted")
'

# Deletes every object version and every delete marker of a bucket (a versioned bucket
# is not empty until both are gone), one page of up to 1,000 keys per round (the most one
# DeleteObjects takes). Idempotent; a missing bucket is not an error. A key S3 refuses to
# delete stops it, naming the key and S3's reason.
empty_bucket() {
  local bucket="$1" page batch result rounds=0 versions=0 markers=0 counts nv nm
  if ! bucket_exists "$bucket"; then
    log "bucket $bucket: not there"
    return 0
  fi
  log "emptying s3://$bucket (every version and delete marker)"
  page="$(mktemp)" batch="$(mktemp)" result="$(mktemp)"
  while true; do
    [[ $rounds -lt $CLEANUP_MAX_ROUNDS ]] \
      || die "s3://$bucket is still not empty after $rounds rounds ($versions versions and $markers delete markers deleted; EKS_CANARY_CLEANUP_MAX_ROUNDS=$CLEANUP_MAX_ROUNDS)"
    rounds=$((rounds + 1))
    # One ListObjectVersions call (--no-paginate): versions and delete markers together
    # count towards --max-keys, so the page fits one DeleteObjects.
    awsr s3api list-object-versions --bucket "$bucket" --max-keys 1000 --no-paginate --output json >"$page"
    counts="$(python3 -c "$_PAGE_TO_BATCH" "$page" "$batch")"
    read -r nv nm <<<"$counts"
    [[ $((nv + nm)) -gt 0 ]] || break
    awsr s3api delete-objects --bucket "$bucket" --delete "file://$batch" --output json >"$result"
    python3 -c "$_CHECK_DELETED" "$result" "$bucket" || exit 1
    versions=$((versions + nv)) markers=$((markers + nm))
  done
  rm -f "$page" "$batch" "$result"
  log "s3://$bucket: deleted $versions object versions and $markers delete markers"
}

# Empties bucket $1 (every version and delete marker) and deletes it. S3 may still
# deliver a last access log into a bucket being emptied: emptied again, up to 3 times.
delete_bucket() {
  local attempt err
  for attempt in 1 2 3; do
    empty_bucket "$1"
    bucket_exists "$1" || return 0
    log "deleting bucket $1"
    if err="$(awsr s3api delete-bucket --bucket "$1" 2>&1)"; then
      return 0
    fi
    case "$err" in
      *BucketNotEmpty*) log "bucket $1 got new objects while being deleted (attempt $attempt of 3)" ;;
      *) die "could not delete bucket $1: $err" ;;
    esac
  done
  die "bucket $1 is still not empty after 3 attempts"
}

# Python that reads a BatchDeleteImage answer from stdin for repository $1 and fails,
# naming the images and ECR's reasons, when any was not deleted.
_CHECK_IMAGES_DELETED='
import json, sys
failures = json.load(sys.stdin).get("failures") or []
for f in failures[:10]:
    print("error: image %s of %s was not deleted: %s: %s"
          % (f.get("imageId"), sys.argv[1], f.get("failureCode"), f.get("failureReason")), file=sys.stderr)
if failures:
    sys.exit(f"error: {len(failures)} images of {sys.argv[1]} were not deleted")
'

# Deletes every image of ECR repository $1, up to 100 per round (the most one
# BatchDeleteImage takes). A missing repository is not an error; any other failure of
# ECR, or an image it refuses to delete, stops it with ECR's reason.
delete_images() {
  local repo="$1" ids err rounds=0 deleted=0 n
  if ! err="$(awsr ecr describe-repositories --repository-names "$repo" --output json 2>&1 >/dev/null)"; then
    case "$err" in
      *RepositoryNotFoundException*) log "repository $repo: not there"; return 0 ;;
      *) die "cannot read ECR repository $repo: $err" ;;
    esac
  fi
  log "deleting the images of $repo"
  while true; do
    [[ $rounds -lt $CLEANUP_MAX_ROUNDS ]] \
      || die "repository $repo still has images after $rounds rounds ($deleted deleted; EKS_CANARY_CLEANUP_MAX_ROUNDS=$CLEANUP_MAX_ROUNDS)"
    rounds=$((rounds + 1))
    ids="$(awsr ecr list-images --repository-name "$repo" --max-results 100 --no-paginate \
      --query 'imageIds' --output json)"
    n="$(python3 -c 'import json,sys; print(len(json.loads(sys.argv[1] or "[]") or []))' "$ids")"
    [[ "$n" -gt 0 ]] || break
    awsr ecr batch-delete-image --repository-name "$repo" --image-ids "$ids" --output json \
      | python3 -c "$_CHECK_IMAGES_DELETED" "$repo" || exit 1
    deleted=$((deleted + n))
  done
  log "$repo: deleted $deleted images"
}
