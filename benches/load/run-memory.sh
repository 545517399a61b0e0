#!/usr/bin/env bash
# Resident memory and throughput under hashing storms, against the raw argon2
# rate measured in the same run:
#   1. raw argon2 rate (every core, the crate's own hashing);
#   2. create storm: wrk, 16 connections; peak RSS sampled every 100 ms;
#   3. idle: RSS after 5 s of nothing;
#   4. cold-verify storm: every request a distinct real key, none cached;
#   5. wrong-secret storm: guesses at known lookup ids (budgets off, so every
#      guess is hashed: the worst case for memory);
#   6. idle again, and the raw argon2 rate again.
# Usage: benches/load/run-memory.sh [BINARY] [SECONDS]   (needs wrk)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-./target/release/keymint}
secs=${2:-20}
rate_bin=./target/release/examples/argon2_rate
[ -x "$rate_bin" ] || cargo build --release -q --example argon2_rate
[ "$bin" != ./target/release/keymint ] || cargo build --release -q --bin keymint
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port=18280
url=http://127.0.0.1:$port

rss() { awk '/VmRSS/ {printf "%d", $2/1024}' "/proc/$server/status"; }
# watch FILE: samples RSS every 100 ms into FILE until killed.
watch() { while kill -0 "$server" 2>/dev/null; do rss >> "$1"; echo >> "$1"; sleep 0.1; done; }
peak() { sort -n "$1" | tail -1; }

"$rate_bin" 10 | tee "$work/rate1"

KEYMINT_SERVER__LISTEN="127.0.0.1:$port" KEYMINT_DATABASE__URL="sqlite://$work/db" KEYMINT_LOG__LEVEL=warn \
    KEYMINT_KEYS__MAX_ACTIVE_PER_ORG=1000000 KEYMINT_VERIFY__MAX_FAILURES_PER_KEY=0 \
    KEYMINT_VERIFY__MAX_FAILURES_PER_CLIENT=0 "$bin" > "$work/log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -fs "$url/readyz" >/dev/null && break; sleep 0.1; done
TOKEN=$("$bin" dev-token --org 3c90c3cc-0d44-4b50-8888-8dd25736052a --ttl 3600); export TOKEN
sleep 1
echo "idle at start: $(rss) MB"

watch "$work/create.rss" & watcher=$!
OUT_FILE="$work/keys" wrk -t1 -c16 -d"${secs}s" --timeout 10s --latency -s benches/load/capture.lua "$url" \
    > "$work/create"
kill "$watcher"
echo "create storm (${secs}s, 16 connections): $(awk '/Requests\/sec/ {print $2}' "$work/create") creates/s," \
     "$(wc -l < "$work/keys") keys; peak RSS $(peak "$work/create.rss") MB"
sleep 5
echo "idle after the create storm: $(rss) MB"

watch "$work/cold.rss" & watcher=$!
KEYS_FILE="$work/keys" wrk -t1 -c16 -d"${secs}s" --latency -s benches/load/verify.lua "$url" > "$work/cold"
kill "$watcher"
echo "cold-verify storm: $(awk '/Requests\/sec/ {print $2}' "$work/cold") verifications/s" \
     "($(awk '/not VALID/ {print $3}' "$work/cold") not VALID, most of them repeats once every key is cached);" \
     "peak RSS $(peak "$work/cold.rss") MB"

# Guesses: each known key's lookup id with another secret. The checksum is
# recomputed by the service's own format, so every guess costs a lookup and a hash.
python3 - "$work/keys" > "$work/guesses" <<'PY'
import sys, zlib, secrets
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
for line in open(sys.argv[1]):
    key = line.strip()
    payload = key[:-6 - 43] + "".join(secrets.choice(B62) for _ in range(43))
    crc, digits = zlib.crc32(payload.encode()), ""
    for _ in range(6):
        digits = B62[crc % 62] + digits
        crc //= 62
    print(payload + digits)
PY
watch "$work/guess.rss" & watcher=$!
KEYS_FILE="$work/guesses" wrk -t1 -c16 -d"${secs}s" --latency -s benches/load/verify.lua "$url" > "$work/guess"
kill "$watcher"
echo "wrong-secret storm: $(awk '/Requests\/sec/ {print $2}' "$work/guess") verifications/s" \
     "($(awk '/not VALID/ {print $3}' "$work/guess") answered not VALID); peak RSS $(peak "$work/guess.rss") MB"
sleep 5
echo "idle 5 s after the verify storms: $(rss) MB"
sleep 15
echo "idle 20 s after the verify storms: $(rss) MB"
kill "$server"; wait "$server" 2>/dev/null || true; server=

"$rate_bin" 10 | tee "$work/rate2"
raw=$(cat "$work/rate1" "$work/rate2" | awk '{s += $4; n++} END {printf "%.1f", s / n}')
create=$(awk '/Requests\/sec/ {print $2}' "$work/create")
echo "create / raw argon2 (mean of both raw runs, $raw/s): $(awk -v c="$create" -v r="$raw" 'BEGIN {printf "%.3f", c / r}')"
