#!/usr/bin/env bash
# How long one GitHub secret-scanning alert batch takes to answer: TOKENS tokens
# (default 1000) of each kind: garbage (no I/O), well-formed strangers (a lookup
# each), genuine keys in use (verified once before: the verification cache
# proves them) and genuine keys never verified (the worst case: each costs an
# argon2 verification); each genuine one is then revoked and audited. The
# batches are signed with a P-256 key made here and published by a local
# stand-in for GitHub's key endpoint. Prints each answer's
# time (curl's time_total) and the process's peak RSS.
# Usage: benches/load/run-github.sh BINARY [TOKENS]
# Needs curl, openssl and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$1 tokens=${2:-1000}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

openssl ecparam -name prime256v1 -genkey -noout -out "$work/github.pem" 2>/dev/null
openssl ec -in "$work/github.pem" -pubout -out "$work/github.pub" 2>/dev/null
mkdir -p "$work/www/meta/public_keys"
python3 - "$work/github.pub" > "$work/www/meta/public_keys/secret_scanning" <<'PY'
import json, sys
print(json.dumps({"public_keys": [{"key_identifier": "bench", "key": open(sys.argv[1]).read(), "is_current": True}]}))
PY
(cd "$work/www" && exec python3 -m http.server 18390 --bind 127.0.0.1 >/dev/null 2>&1) &
pids+=($!)

port=18391 base=http://127.0.0.1:18391
KEYMINT_SERVER__LISTEN="127.0.0.1:$port" KEYMINT_DATABASE__URL="sqlite://$work/db" KEYMINT_LOG__LEVEL=error \
    KEYMINT_KEYS__MAX_ACTIVE_PER_ORG=100000 \
    KEYMINT_LEAKS__GITHUB_KEYS_URL="http://127.0.0.1:18390/meta/public_keys/secret_scanning" \
    "$bin" > "$work/log" 2>&1 &
server=$!
pids+=($server)
for _ in $(seq 1 100); do curl -fs "$base/readyz" >/dev/null && break; sleep 0.1; done
token=$("$bin" dev-token --org 3c90c3cc-0d44-4b50-8888-8dd25736052a --ttl 3600)

seq 1 $((2 * tokens)) | xargs -P 4 -I{} curl -fs -X POST "$base/api/v2/api-keys" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d '{"name":"leaky {}"}' -o "$work/key{}.json"

python3 - "$work" "$tokens" <<'PY'
import json, random, string, sys, zlib
work, n = sys.argv[1], int(sys.argv[2])
alphabet = string.digits + string.ascii_uppercase + string.ascii_lowercase
def base62(value, width):
    out = ""
    for _ in range(width):
        out = alphabet[value % 62] + out
        value //= 62
    return out
def stranger():
    body = "sk_live_" + "".join(random.choice(alphabet) for _ in range(16)) + "_" + "".join(random.choice(alphabet) for _ in range(43))
    return body + base62(zlib.crc32(body.encode()), 6)
def alert(token, i):
    return {"token": token, "type": "keymint_private_key", "url": f"https://github.com/o/r/blob/main/f{i}.env", "source": "commit"}
keys = [json.load(open(f"{work}/key{i}.json"))["private_key"] for i in range(1, 2 * n + 1)]
open(f"{work}/in-use.keys", "w").write("\n".join(keys[:n]) + "\n")
batches = [
    ("garbage", [f"sk_live_{i}" for i in range(n)]),
    ("strangers", [stranger() for _ in range(n)]),
    ("genuine-in-use", keys[:n]),
    ("genuine-cold", keys[n:]),
]
for name, found in batches:
    json.dump([alert(t, i) for i, t in enumerate(found)], open(f"{work}/{name}.json", "w"))
PY

# Keys in use have been verified recently, so this process has them cached.
xargs -P 4 -I{} curl -fs -o /dev/null -X POST "$base/api/v2/api-keys/verify" -H 'x-api-key: {}' < "$work/in-use.keys"

for name in garbage strangers genuine-in-use genuine-cold; do
    signature=$(openssl dgst -sha256 -sign "$work/github.pem" "$work/$name.json" | base64 -w0)
    out=$(curl -s -o "$work/$name.answer" -w '%{http_code} %{time_total}' -X POST "$base/api/v2/secret-scanning/github" \
        -H 'Content-Type: application/json' -H 'Github-Public-Key-Identifier: bench' \
        -H "Github-Public-Key-Signature: $signature" --data-binary "@$work/$name.json")
    positives=$({ grep -o true_positive "$work/$name.answer" || true; } | wc -l)
    echo "$name: $tokens tokens, status and seconds: $out, true_positive: $positives"
done
echo "peak RSS: $(grep VmHWM /proc/$server/status | awk '{print $2, $3}')"
