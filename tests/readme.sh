#!/usr/bin/env bash
# The README's walkthrough, run as written: starts Keymint as the Quick start
# does (`cargo run`, on 127.0.0.1:8080), pastes every `sh` block of the
# Walkthrough section in order into one bash, and checks what each step answered.
# Only the database is moved to a temporary directory, so the clone's ./data
# stays untouched. Needs curl and jq.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# The table of contents names every section, so it cannot fall behind.
python3 - <<'PY'
import re, sys
text = open("README.md", encoding="utf-8").read()
contents = text.split("\n## Contents\n", 1)[1].split("\n## ", 1)[0]
for title in re.findall(r"^#{2,3} (.+)$", text, re.M):
    if title != "Contents" and f"[{title}](#" not in contents:
        sys.exit(f"readme: the section '{title}' is missing from Contents")
PY

if curl -fs http://127.0.0.1:8080/healthz >/dev/null 2>&1; then
    echo "readme: something already answers on 127.0.0.1:8080; stop it first" >&2
    exit 1
fi
cargo build -q
# `keymint` in the pasted blocks is the debug binary just built: it stands in
# for the Quick start's `cargo install --path .`.
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug"
[ -x "$bin/keymint" ] || { echo "readme: no keymint binary in $bin" >&2; exit 1; }
export PATH="$bin:$PATH"
KEYMINT_DATABASE__URL="sqlite://$work/keymint.db" cargo run -q > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 300); do curl -fs http://127.0.0.1:8080/readyz >/dev/null 2>&1 && break; sleep 0.1; done

# Every ```sh block between "## Walkthrough" and the next "## " heading.
awk '/^## Walkthrough/ {on = 1; next} /^## / {on = 0} on && /^```sh$/ {code = 1; next} code && /^```$/ {code = 0; print ""; next} on && code' \
    README.md > "$work/walkthrough.sh"
[ -s "$work/walkthrough.sh" ] || { echo "readme: no walkthrough found" >&2; exit 1; }
bash -euo pipefail "$work/walkthrough.sh" > "$work/out" 2>&1 || { cat "$work/out"; exit 1; }

check() { grep -q -- "$1" "$work/out" || { echo "readme: expected $2"; cat "$work/out"; exit 1; }; }
check '"private_key": "sk_live_' "the create response with its private key"
check '"type":"string_too_short"' "the 422 naming the empty name"
check '"code":"VALID"' "the presented key to verify"
check '"name":"billing-v2"' "the rename"
check '"action":"rotated"' "the rotations in the audit trail"
check '"is_revoked":true' "the revocation"
check '204$' "the delete's 204"
check '"credits":{"remaining":999}' "the metered key's first verification"
check 'RATE_LIMITED' "the burst over 10 a second refused"
check '"remaining":14[0-9][0-9],"refill"' "the top-up"
check '"secret":"whsec_"' "the webhook's secret, shown once"
check '{"imported":\[0\],"failed":\[{"index":1,"type":"string_too_short"}\]}' "the import, one item refused"
check '{"code":"VALID","name":"legacy billing"}' "the imported key verifying"
check '"type":"keymint_private_key","regex"' "the secret-scanning pattern"
check '{"status":"received"}' "the self-report's 202"
check '^REVOKED$' "the reported key refused"
check '"action":"leaked","leak":{"source":"self_report"' "the leak in the audit trail"
check '^200 text/html; charset=utf-8$' "the console's page"
# Count occurrences, not lines: one response may hold several.
[ "$(grep -o '"private_key":"sk_live_' "$work/out" | wc -l)" -eq 2 ] || { echo "readme: expected two rotations"; cat "$work/out"; exit 1; }
echo "readme: the walkthrough ran as written ($(grep -c . "$work/walkthrough.sh") lines)"
