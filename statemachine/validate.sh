#!/usr/bin/env bash
# Validates the state machine definition with asl-validator (npm), installed on first
# use into <repo>/.tools (never globally). Usage: statemachine/validate.sh [file.asl.json ...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
tools="$root/.tools"
bin="$tools/node_modules/.bin/asl-validator"
if [[ ! -x "$bin" ]]; then
  echo "installing asl-validator into $tools" >&2
  npm install --silent --no-audit --no-fund --prefix "$tools" asl-validator >&2
fi
files=("$@")
if [[ ${#files[@]} -eq 0 ]]; then
  files=("$here/canary-deployment.asl.json")
fi
for f in "${files[@]}"; do
  "$bin" --json-path "$f"
done
