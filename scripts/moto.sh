#!/usr/bin/env bash
# Starts moto_server (the local AWS emulator) on a free loopback port.
#
#   scripts/moto.sh -- CMD ARGS...   run CMD with AWS_ENDPOINT_URL etc. set, then stop moto
#   eval "$(scripts/moto.sh)"        start moto in the background and export its settings
#                                    (stop it later with: kill "$MOTO_PID")
#   . scripts/moto.sh                the same, from a sourcing shell
#
# Exported: AWS_ENDPOINT_URL, AWS_REGION, AWS_DEFAULT_REGION, fake AWS credentials,
# MOTO_PORT, MOTO_PID, MOTO_LOG. $MOTO_SERVER overrides the program (default moto_server).
# Rust tests do not need this: they start their own (crates/canary-testkit).

_moto_start() {
  local program="${MOTO_SERVER:-moto_server}"
  if ! command -v "$program" >/dev/null 2>&1; then
    echo "moto.sh: \`$program\` not found (pip install 'moto[server]')" >&2
    return 1
  fi
  local port
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')" || return 1
  local log="${TMPDIR:-/tmp}/moto-$port.log"
  "$program" -H 127.0.0.1 -p "$port" >"$log" 2>&1 </dev/null &
  local pid=$!
  for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/" 2>/dev/null; then
      MOTO_PORT="$port"
      MOTO_PID="$pid"
      MOTO_LOG="$log"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "moto.sh: moto_server exited; its log ($log):" >&2
      tail -n 20 "$log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "moto.sh: moto_server did not answer on port $port within 30 s" >&2
  kill "$pid" 2>/dev/null
  return 1
}

_moto_exports() {
  cat <<EOF
export AWS_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export MOTO_PORT=$MOTO_PORT
export MOTO_PID=$MOTO_PID
export MOTO_LOG=$MOTO_LOG
EOF
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  # Sourced: export into the calling shell.
  _moto_start && eval "$(_moto_exports)" && echo "moto_server at $AWS_ENDPOINT_URL (pid $MOTO_PID)" >&2
  return $?
fi

set -u
_moto_start || exit 1
if [ "${1:-}" = "--" ]; then
  shift
  eval "$(_moto_exports)"
  trap 'kill "$MOTO_PID" 2>/dev/null; wait "$MOTO_PID" 2>/dev/null' EXIT
  echo "moto_server at $AWS_ENDPOINT_URL (pid $MOTO_PID)" >&2
  "$@"
  exit $?
fi
_moto_exports
