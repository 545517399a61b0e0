#!/usr/bin/env bash
# What each official middleware adds to a request: FastAPI's require_api_key,
# Express's and Hono's requireApiKey, each app serving /bare (no check),
# /guarded (one verification per request over HTTP, answered from Keymint's
# own cache: the key is warm) and /cached (the client's local cache of valid
# verdicts). One Keymint (BINARY, SQLite), one key; wrk -t1 -c16 for SECONDS
# per route, the apps in turn, ROUNDS rounds. Everything on this machine.
# Usage: benches/load/run-middleware.sh BINARY [SECONDS] [ROUNDS]
# Needs wrk, the Python client's venv (clients/python/run-tests.sh makes it;
# uvicorn is added here) and the TypeScript client built (npm ci, npm run build).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "$1"); secs=${2:-10}; rounds=${3:-3}
venv=$(ls -d "${XDG_CACHE_HOME:-$HOME/.cache}"/keymint-python/venv-* | head -1)
"$venv/bin/python" -m pip install -q --disable-pip-version-check uvicorn==0.34.0
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
org=3c90c3cc-0d44-4b50-8888-8dd25736052a
kport=18590 aport=18591

(cd "$work" && KEYMINT_SERVER__LISTEN="127.0.0.1:$kport" KEYMINT_DATABASE__URL="sqlite://$work/db" \
    KEYMINT_LOG__LEVEL=warn exec "$bin") > "$work/keymint.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$kport/readyz" >/dev/null && break; sleep 0.1; done
token=$(cd "$work" && "$bin" dev-token --org "$org" --ttl 3600)
key=$(curl -fs -X POST "http://127.0.0.1:$kport/api/v2/api-keys" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d '{"name":"middleware"}' | sed -E 's/.*"private_key":"([^"]+)".*/\1/')
export KEYMINT_URL="http://127.0.0.1:$kport"

start_app() {
    # Started so that $! is the app itself (exec in a plain subshell): a kill
    # must not leave it running on the port for the next app.
    if curl -fs "http://127.0.0.1:$aport/bare" >/dev/null 2>&1; then echo "something already serves :$aport"; exit 1; fi
    if [ "$1" = fastapi ]; then
        (cd benches/middleware && exec "$venv/bin/python" -m uvicorn fastapi_bench:app \
            --host 127.0.0.1 --port "$aport" --log-level warning --no-access-log) > "$work/app.log" 2>&1 &
    else
        node benches/middleware/node_bench.mjs "$1" "$aport" > "$work/app.log" 2>&1 &
    fi
    app=$!
    pids+=("$app")
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$aport/bare" >/dev/null 2>&1 && break; sleep 0.1; done
    curl -fs -H "x-api-key: $key" "http://127.0.0.1:$aport/guarded" >/dev/null || { cat "$work/app.log"; exit 1; }
}

printf '%-8s %-8s %10s %9s %9s\n' app route "req/s" p50 p99
for round in $(seq 1 "$rounds"); do
    for app_name in fastapi express hono; do
        start_app "$app_name"
        for route in bare guarded cached; do
            out=$(wrk -t1 -c16 -d"${secs}s" --latency -H "x-api-key: $key" "http://127.0.0.1:$aport/$route")
            non2xx=$(awk '/Non-2xx/ {print $4}' <<<"$out")
            [ -z "$non2xx" ] || { echo "$app_name /$route: $non2xx non-2xx answers"; exit 1; }
            printf '%-8s %-8s %10s %9s %9s\n' "$app_name" "/$route" "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
                "$(awk '$1 == "50%" {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")"
        done
        kill "$app"; wait "$app" 2>/dev/null || true
    done
done
