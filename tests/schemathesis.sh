#!/usr/bin/env bash
# The OpenAPI document tells the truth: schemathesis, with every check, against a
# real keymint process (in-memory storage, cheap argon2 so the run is about the
# contract, not hashing). Fails on any failure schemathesis reports.
#
# Usage: bash tests/schemathesis.sh [extra schemathesis options]
# Needs schemathesis on PATH (.ci/run installs the pinned version).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
server=
keys_server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null
    [ -n "$keys_server" ] && kill "$keys_server" 2>/dev/null
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cargo build -q --bin keymint
bin=target/debug/keymint
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"

# A stand-in for GitHub's key endpoint (this machine has no internet): one key
# set with no keys, so every generated alert is refused for its unknown key id
# (401), as it would be against GitHub's real set.
mkdir -p "$work/keys/meta/public_keys"
echo '{"public_keys": []}' > "$work/keys/meta/public_keys/secret_scanning"
keys_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cd "$work/keys" && exec python3 -m http.server "$keys_port" --bind 127.0.0.1 >/dev/null 2>&1) &
keys_server=$!

KEYMINT_SERVER__LISTEN="127.0.0.1:$port" \
KEYMINT_DATABASE__URL="memory:" \
KEYMINT_LEAKS__GITHUB_KEYS_URL="http://127.0.0.1:$keys_port/meta/public_keys/secret_scanning" \
KEYMINT_HASHING__MEMORY_KIB=64 KEYMINT_HASHING__ITERATIONS=1 \
KEYMINT_KEYS__MAX_ACTIVE_PER_ORG=100000 \
KEYMINT_VERIFY__MAX_FAILURES_PER_CLIENT=0 KEYMINT_VERIFY__MAX_FAILURES_PER_KEY=0 \
KEYMINT_LOG__LEVEL=warn \
    "$bin" > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 300); do curl -fs "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "$base/readyz" >/dev/null || { echo "schemathesis: keymint did not start"; cat "$work/server.log"; exit 1; }

org=$(python3 -c 'import uuid; print(uuid.uuid4())')
token=$("$bin" dev-token --org "$org" --sub schemathesis --ttl 3600)

# Every check. Exclusions, each with its reason:
# - the /api/v1 mirror is left out (--exclude-path-regex): its operations are the
#   /api/v2 ones under a second prefix, and stateful checks such as
#   use_after_free / ensure_resource_availability link operations by path, so a key
#   deleted through one prefix and read through the other is flagged although the
#   answer (404, the same key) is right. The mirror is tested in tests/api.
# One worker: with two, Python 3.11.7's ast module (used by hypothesis from
# several threads) fails now and then with "AST constructor recursion depth
# mismatch", an error of the tool, not of Keymint (fixed in later CPythons).
# - use_after_free, and 422 as an expected answer to a schema-valid create:
#   both explained in tests/schemathesis.toml.
# - hypothesis's too_slow health check: the text fields' patterns are generated
#   from Unicode's tables (the service's exact rule, some 800 ranges), and a
#   create body has three of them, so drawing one takes longer than hypothesis
#   likes; every case is still generated and checked.
status=0
schemathesis --config-file tests/schemathesis.toml run "$base/openapi.json" \
    --checks all \
    --exclude-checks use_after_free \
    --exclude-path-regex '^/api/v1/' \
    --header "Authorization: Bearer $token" \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-40}" \
    --seed "${SCHEMATHESIS_SEED:-20261126}" \
    --generation-deterministic \
    --suppress-health-check too_slow \
    --workers 1 \
    --no-color \
    --report junit --report-dir "$work/report" \
    "$@" || status=$?
if grep -q "panicked" "$work/server.log"; then
    echo "schemathesis: the server panicked"; cat "$work/server.log"; exit 1
fi
exit $status
