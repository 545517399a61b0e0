#!/usr/bin/env bash
# What unauthenticated request bodies can make a Keymint process hold: CONNS
# connections (default 700) each send a request head and all but the last byte
# of its body, and hold it there. Three floods, one after another, against one
# release process on SQLite:
#   github-unsigned  POST /api/v2/secret-scanning/github, 1 MiB, no signature headers
#   github-signed    the same with GitHub's real key id and a well-formed signature
#                    (the headers pass; the body budget is what bounds them)
#   verify           POST /api/v2/api-keys/verify, 16 KiB (the body limit)
# Prints, for each, the answers received while the bodies were held, and the
# process's resident memory before, at its peak during the flood (sampled every
# 50 ms from /proc), and 15 s after the connections closed.
# Usage: benches/load/run-body-flood.sh BINARY [CONNS]
# Needs python3 and openssl.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$1 conns=${2:-700}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n 8192

# A stand-in for GitHub's key endpoint, publishing a P-256 key made here.
openssl ecparam -name prime256v1 -genkey -noout -out "$work/github.pem" 2>/dev/null
openssl ec -in "$work/github.pem" -pubout -out "$work/github.pub" 2>/dev/null
mkdir -p "$work/www/meta/public_keys"
python3 - "$work/github.pub" > "$work/www/meta/public_keys/secret_scanning" <<'PY'
import json, sys
print(json.dumps({"public_keys": [{"key_identifier": "bench", "key": open(sys.argv[1]).read(), "is_current": True}]}))
PY
(cd "$work/www" && exec python3 -m http.server 18392 --bind 127.0.0.1 >/dev/null 2>&1) &
pids+=($!)
printf '[]' > "$work/empty"
signature=$(openssl dgst -sha256 -sign "$work/github.pem" "$work/empty" | base64 -w0)

port=18393
KEYMINT_SERVER__LISTEN="127.0.0.1:$port" KEYMINT_DATABASE__URL="sqlite://$work/db" KEYMINT_LOG__LEVEL=error \
    KEYMINT_LEAKS__GITHUB_KEYS_URL="http://127.0.0.1:18392/meta/public_keys/secret_scanning" \
    "$bin" > "$work/log" 2>&1 &
server=$!
pids+=($server)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done

python3 - "$server" "$port" "$conns" "$signature" <<'PY'
import asyncio, collections, sys, time
pid, port, conns, signature = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def rss_mb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0

async def hold(path, headers, length, answers, opened):
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as e:
        answers[f"connect failed: {e.__class__.__name__}"] += 1
        return None
    head = f"POST {path} HTTP/1.1\r\nHost: keymint\r\n{headers}Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    writer.write(head.encode())
    body = b"[" + b" " * (length - 2)  # all but the last byte
    try:
        for start in range(0, len(body), 65536):
            writer.write(body[start:start + 65536])
            await asyncio.wait_for(writer.drain(), timeout=20)
    except ConnectionResetError:
        # Answered and closed while the body was still coming: the reset
        # discards the answer on this side.
        answers["reset while sending (answered early)"] += 1
        return None
    except (OSError, asyncio.TimeoutError):
        pass
    opened.append(writer)
    try:
        line = await asyncio.wait_for(reader.readline(), timeout=3)
        status = line.decode(errors="replace").split(" ")[1] if line else "closed"
    except ConnectionResetError:
        status = "reset (answered early)"
    except (OSError, asyncio.TimeoutError, IndexError):
        status = "no answer (body held)"
    answers[status] += 1
    return writer

async def flood(name, path, headers, length):
    before = rss_mb()
    peak = before
    done = False
    async def sample():
        nonlocal peak
        while not done:
            peak = max(peak, rss_mb())
            await asyncio.sleep(0.05)
    sampler = asyncio.create_task(sample())
    answers, opened = collections.Counter(), []
    started = time.monotonic()
    await asyncio.gather(*(hold(path, headers, length, answers, opened) for _ in range(conns)))
    await asyncio.sleep(2)
    held_for = time.monotonic() - started
    done = True
    await sampler
    for writer in opened:
        writer.close()
    await asyncio.sleep(15)
    after = rss_mb()
    print(f"{name}: {conns} connections x {length} bytes declared, held {held_for:.1f} s; "
          f"answers {dict(answers)}; RSS before {before:.1f} MB, peak {peak:.1f} MB "
          f"(+{peak - before:.1f} MB), 15 s after closing {after:.1f} MB", flush=True)

async def main():
    signed = f"Github-Public-Key-Identifier: bench\r\nGithub-Public-Key-Signature: {signature}\r\n"
    await flood("github-unsigned", "/api/v2/secret-scanning/github", "", 1024 * 1024)
    await flood("github-signed", "/api/v2/secret-scanning/github", signed, 1024 * 1024)
    await flood("verify", "/api/v2/api-keys/verify", "", 16 * 1024)

asyncio.run(main())
PY
