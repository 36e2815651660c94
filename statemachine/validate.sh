#!/usr/bin/env bash
# Validates the state machine definition with asl-validator (npm), installed into
# <repo>/.tools (never globally) with `npm ci` from statemachine/package.json and
# package-lock.json, so every run uses the same versions; reinstalled when the lock
# file changes. Usage: statemachine/validate.sh [file.asl.json ...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
tools="$root/.tools"
bin="$tools/node_modules/.bin/asl-validator"
if [[ ! -x "$bin" ]] || ! cmp -s "$here/package-lock.json" "$tools/package-lock.json"; then
  command -v npm >/dev/null || { echo "npm is not installed: install Node.js 20.16 or newer with npm (https://nodejs.org), which the lock file's packages need" >&2; exit 1; }
  echo "installing asl-validator into $tools (npm ci, statemachine/package-lock.json)" >&2
  mkdir -p "$tools"
  cp "$here/package.json" "$here/package-lock.json" "$tools/"
  npm ci --silent --no-audit --no-fund --prefix "$tools" >&2
fi
files=("$@")
if [[ ${#files[@]} -eq 0 ]]; then
  files=("$here/canary-deployment.asl.json")
fi
for f in "${files[@]}"; do
  "$bin" --json-path "$f"
done
