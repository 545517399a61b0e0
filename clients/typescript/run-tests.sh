#!/usr/bin/env bash
# The TypeScript client's whole check, against a real Keymint process:
#   npm ci → build → typecheck → OpenAPI drift check → tests.
# KEYMINT_BIN: the keymint binary (default: this checkout's target/debug/keymint).
# Exits nonzero on the first failure.
set -euo pipefail

# Resolved before changing directory, so a relative path (target/debug/keymint) works.
KEYMINT_BIN="$(realpath -m "${KEYMINT_BIN:-$(dirname "$0")/../../target/debug/keymint}")"
export KEYMINT_BIN
cd "$(dirname "$0")"
if [[ ! -x "$KEYMINT_BIN" ]]; then
  echo "run-tests.sh: no keymint binary at $KEYMINT_BIN (set KEYMINT_BIN)" >&2
  exit 2
fi

echo "== npm ci"
npm ci --no-audit --no-fund

echo "== build"
npm run build

echo "== typecheck"
npm run typecheck

echo "== drift check against a real keymint ($KEYMINT_BIN)"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
# From an empty directory, so that no config/ folder of a checkout is read.
(cd "$work" && exec env KEYMINT_SERVER__LISTEN="127.0.0.1:$port" \
  KEYMINT_DATABASE__URL="sqlite://$work/keymint.db?mode=rwc" KEYMINT_LOG__LEVEL=warn \
  "$KEYMINT_BIN" serve >"$work/keymint.log" 2>&1) &
server_pid=$!
ready=""
for _ in $(seq 1 300); do
  if node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' \
    "http://127.0.0.1:$port/readyz"; then ready=1; break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
  sleep 0.2
done
if [[ -z "$ready" ]]; then
  echo "keymint did not become ready:" >&2
  cat "$work/keymint.log" >&2
  exit 1
fi
KEYMINT_URL="http://127.0.0.1:$port" npm run check:drift
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=""

echo "== tests (each test file starts its own keymint)"
npm test
