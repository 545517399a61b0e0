#!/usr/bin/env bash
# What a newcomer waits for: clones the repository into a fresh directory and
# times its first `cargo run` until /healthz answers on 127.0.0.1:8080, then
# stops it. The clone (and its target/) is left in DIR for a look at
# target/cargo-timings if run with TIMINGS=1.
#   bash benches/build/first-run.sh [DIR]     (default /tmp/keymint-first-run)
set -euo pipefail
source_repo=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-/tmp/keymint-first-run}
if curl -fs http://127.0.0.1:8080/healthz >/dev/null 2>&1; then
    echo "first-run: something already answers on 127.0.0.1:8080; stop it first" >&2
    exit 1
fi
rm -rf "$dir"
git clone -q "$source_repo" "$dir"
cd "$dir"
start=$(date +%s.%N)
if [ "${TIMINGS:-0}" = 1 ]; then cargo build --timings -q; fi
cargo run -q > "$dir/run.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; pkill -f "$dir/target/debug/keymint" 2>/dev/null || true' EXIT
until curl -fs http://127.0.0.1:8080/healthz >/dev/null 2>&1; do
    kill -0 "$server" 2>/dev/null || { tail -n 20 "$dir/run.log" >&2; exit 1; }
    sleep 0.5
done
echo "first-run: $(git rev-parse --short HEAD): /healthz answered $(echo "$(date +%s.%N) - $start" | bc) s after cargo run began"
