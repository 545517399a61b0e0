#!/usr/bin/env bash
# Keys hashed at password cost (argon2id, OWASP's m=19 MiB, t=2, p=1: every key
# of releases before 0.2) on a deployment that now stores SHA-256: the first
# verification of each runs argon2 and rewrites its hash (counted), the next
# ones do not. KEYS keys (default 500) are made under hashing.algorithm=argon2id,
# then verified twice in order, each pass by a fresh process (nothing cached),
# each key presented once by curl, 16 at a time.
# Usage: benches/load/run-old-hashes.sh BINARY [KEYS]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "$1"); keys=${2:-500}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cargo build --release -q --example fill_keys
port=18490 base=http://127.0.0.1:18490
start() {
    KEYMINT_SERVER__LISTEN="127.0.0.1:$port" KEYMINT_DATABASE__URL="sqlite://$work/old.db" KEYMINT_LOG__LEVEL=warn \
        "$@" "$bin" > "$work/server.log" 2>&1 &
    server=$!
    pids+=("$server")
    for _ in $(seq 1 200); do curl -fs "$base/readyz" >/dev/null && return; sleep 0.1; done
    echo "keymint did not start"; cat "$work/server.log"; exit 1
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; }

echo "=== $keys keys hashed with argon2id at password cost"
start env KEYMINT_HASHING__ALGORITHM=argon2id
./target/release/examples/fill_keys "$base" "$keys" 10 8 "$work/keys.txt"
stop
for pass in 1 2; do
    echo "=== pass $pass: a fresh process (hashing.algorithm=sha256) verifies every key once"
    start env
    started=$(date +%s.%N)
    while read -r key; do echo "{\"key\":\"$key\"}"; done < "$work/keys.txt" \
        | xargs -d '\n' -P 16 -I{} curl -s -o /dev/null -w '%{http_code}\n' -X POST "$base/api/v2/api-keys/verify" \
            -H 'Content-Type: application/json' -d {} > "$work/codes"
    ended=$(date +%s.%N)
    echo "answered $(grep -c '^200$' "$work/codes") of $keys with 200 in $(echo "$ended - $started" | bc) s"
    curl -s "$base/metrics" | grep -E '^keymint_(key_hash_checks_total|key_rehashes_total|verifications_total\{code="VALID"\})'
    stop
done
