#!/usr/bin/env bash
# The deployment examples, run for real: deploy/nginx.conf and deploy/Caddyfile,
# each with TLS in front of a real Keymint that trusts it
# (server.trusted_proxies): each client behind the proxy gets a failure budget
# of its own, a client cannot pick another's by sending X-Forwarded-For itself,
# /metrics is not exposed, plain HTTP is redirected (nginx), and the log names
# the real client. Also checks deploy/keymint.service with systemd-analyze.
#
# Clients are told apart by source address: loopback answers on all of
# 127.0.0.0/8, so curl --interface 127.0.0.2 is another client. Needs nginx,
# caddy, openssl, curl, jq and systemd-analyze; BINARY (default
# target/debug/keymint).
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${BINARY:-target/debug/keymint}
work=$(mktemp -d)
keymint_pid=
nginx_pid=
caddy_pid=
cleanup() {
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null
    [ -n "$caddy_pid" ] && kill "$caddy_pid" 2>/dev/null
    [ -n "$keymint_pid" ] && kill "$keymint_pid" 2>/dev/null
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "proxy: $*" >&2
    for log in keymint.log nginx-error.log caddy.log; do [ -f "$work/$log" ] && { echo "--- $log" >&2; tail -n 20 "$work/$log" >&2; }; done
    exit 1
}
[ -x "$binary" ] || fail "no binary at $binary (cargo build)"

echo "== systemd unit: deploy/keymint.service"
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify wants the unit's programs to exist: point it at the built binary.
    sed "s#/usr/local/bin/keymint#$PWD/$binary#g" deploy/keymint.service > "$work/keymint.service"
    systemd-analyze verify "$work/keymint.service" || fail "systemd-analyze verify refused the unit"
    exposure=$(systemd-analyze security --offline=yes "$work/keymint.service" 2>/dev/null | sed -n 's/.*Overall exposure level for keymint.service: \([0-9.]*\).*/\1/p')
    echo "proxy: the unit verifies; systemd-analyze security rates its exposure $exposure (0 best, 10 worst)"
    awk -v e="$exposure" 'BEGIN { exit !(e != "" && e + 0 <= 2.0) }' || fail "the unit's exposure $exposure is above 2.0"
else
    echo "proxy: systemd-analyze not found; unit not checked" >&2
    exit 1
fi

echo "== nginx with TLS in front of Keymint: deploy/nginx.conf"
# Keymint's own port: one nothing else on the machine holds.
upstream=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
# The example as shipped, with only what a test must change: ports, certificate
# paths, Keymint's address and the name.
sed -e "s#listen 80;#listen 127.0.0.1:18081;#" -e "s#listen 443 ssl http2;#listen 127.0.0.1:18443 ssl http2;#" \
    -e "/listen \[::\]/d" \
    -e "s#/etc/letsencrypt/live/keymint.example.com/fullchain.pem#$work/cert.pem#" \
    -e "s#/etc/letsencrypt/live/keymint.example.com/privkey.pem#$work/key.pem#" \
    -e "s#server 127.0.0.1:8080;#server 127.0.0.1:$upstream;#" \
    -e "s#keymint.example.com#localhost#g" deploy/nginx.conf > "$work/site.conf"
cmp -s <(grep -c 'proxy_set_header X-Forwarded-For' deploy/nginx.conf) <(echo 1) || fail "the example forwards no client address"
mkdir -p "$work/nginx"
cat > "$work/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    include $work/site.conf;
}
CONF
nginx -t -c "$work/nginx.conf" -e "$work/nginx-error.log" 2>"$work/nginx-test.log" || { cat "$work/nginx-test.log" >&2; fail "nginx refused the example"; }

# Three failures per client a minute; the per-key budget out of the way.
KEYMINT_SERVER__LISTEN=127.0.0.1:$upstream KEYMINT_DATABASE__URL=memory: \
KEYMINT_SERVER__TRUSTED_PROXIES=127.0.0.1 \
KEYMINT_VERIFY__MAX_FAILURES_PER_CLIENT=3 KEYMINT_VERIFY__MAX_FAILURES_PER_KEY=1000 \
    "$binary" serve > "$work/keymint.log" 2>&1 &
keymint_pid=$!
nginx -c "$work/nginx.conf" -e "$work/nginx-error.log" &
nginx_pid=$!
for _ in $(seq 1 100); do curl -fs http://127.0.0.1:$upstream/healthz >/dev/null 2>&1 && break; sleep 0.1; done
for _ in $(seq 1 100); do curl -fsk https://127.0.0.1:18443/healthz >/dev/null 2>&1 && break; sleep 0.1; done

tls=(--cacert "$work/cert.pem" --resolve localhost:18443:127.0.0.1)
base=https://localhost:18443
api=$base/api/v2/api-keys
[ "$(curl -s "${tls[@]}" -o /dev/null -w '%{http_code} %{http_version}' https://localhost:18443/healthz)" = "200 2" ] \
    || fail "/healthz over TLS (HTTP/2) did not answer 200"
[ "$(curl -s -H 'Host: localhost' -o /dev/null -w '%{http_code} %{redirect_url}' http://127.0.0.1:18081/healthz)" = "301 https://localhost/healthz" ] \
    || fail "plain HTTP is not redirected to https"
for metrics in /metrics /metrics/; do
    [ "$(curl -s "${tls[@]}" -o /dev/null -w '%{http_code}' "https://localhost:18443$metrics")" = 404 ] \
        || fail "$metrics is reachable through the proxy"
done

org=3c90c3cc-0d44-4b50-8888-8dd25736052a
token=$(KEYMINT_DATABASE__URL=memory: "$binary" dev-token --org "$org")
created=$(curl -fs "${tls[@]}" -X POST "$api" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d '{"name": "gone"}')
gone_id=$(jq -r .id <<<"$created")
gone=$(jq -r .private_key <<<"$created")
curl -fs "${tls[@]}" -X DELETE "$api/$gone_id" -H "Authorization: Bearer $token" -o /dev/null
# A well-formed key that is no longer anywhere: each presentation is a failure.
# budgets PROXY BASE CLIENT FORGED OTHER CURL-ARGS...: four failures from CLIENT
# (which names FORGED in X-Forwarded-For) spend its three, and only its own.
budgets() {
    local proxy=$1 base=$2 client=$3 forged=$4 other=$5; shift 5
    local tls=("$@") codes
    verify() { # source address, extra curl args...
        local source=$1; shift
        curl -s "${tls[@]}" --interface "$source" -X POST "$base/api/v2/api-keys/verify" -H "x-api-key: $gone" "$@" | jq -r .code
    }
    codes=$(for _ in 1 2 3 4; do verify "$client" -H "X-Forwarded-For: $forged"; done | paste -sd' ')
    [ "$codes" = "NOT_FOUND NOT_FOUND NOT_FOUND RATE_LIMITED" ] \
        || fail "$proxy: client $client (naming itself $forged) should spend its own 3 failures: $codes"
    [ "$(verify "$forged")" = NOT_FOUND ] || fail "$proxy: the address $client forged was charged for its failures"
    [ "$(verify "$other")" = NOT_FOUND ] \
        || fail "$proxy: another client behind the same proxy was refused by the first one's budget"
    grep -q "client_ip.\{0,3\}$client\b" "$work/keymint.log" \
        || fail "$proxy: the log does not name the real client $client"
}
budgets nginx "$base" 127.0.0.2 127.0.0.99 127.0.0.3 "${tls[@]}"
echo "proxy: nginx (TLS, HTTP/2) → Keymint: budgets per client behind the proxy, forged X-Forwarded-For ignored, http redirected, /metrics hidden"

echo "== Caddy with TLS in front of Keymint: deploy/Caddyfile"
# Caddy's own local CA instead of a public one, its state in the work
# directory, no admin endpoint; the site block is the example's.
export XDG_DATA_HOME="$work/caddy-data" XDG_CONFIG_HOME="$work/caddy-config"
{
    printf '{\n\tadmin off\n\tskip_install_trust\n\tauto_https disable_redirects\n\thttp_port 18082\n\thttps_port 18444\n}\n\n'
    sed -e 's#^keymint.example.com {#https://localhost:18444 {\n\ttls internal#' -e "s#reverse_proxy 127.0.0.1:8080#reverse_proxy 127.0.0.1:$upstream#" deploy/Caddyfile
} > "$work/Caddyfile"
caddy validate --config "$work/Caddyfile" --adapter caddyfile > "$work/caddy-validate.log" 2>&1 \
    || { cat "$work/caddy-validate.log" >&2; fail "caddy refused the example"; }
caddy run --config "$work/Caddyfile" --adapter caddyfile > "$work/caddy.log" 2>&1 &
caddy_pid=$!
ca="$XDG_DATA_HOME/caddy/pki/authorities/local/root.crt"
ctls=(--cacert "$ca" --resolve localhost:18444:127.0.0.1)
for _ in $(seq 1 100); do [ -f "$ca" ] && curl -fs "${ctls[@]}" https://localhost:18444/healthz >/dev/null 2>&1 && break; sleep 0.1; done
[ "$(curl -s "${ctls[@]}" -o /dev/null -w '%{http_code}' https://localhost:18444/healthz)" = 200 ] \
    || fail "caddy: /healthz over TLS did not answer 200"
for metrics in /metrics /metrics/; do
    [ "$(curl -s "${ctls[@]}" -o /dev/null -w '%{http_code}' "https://localhost:18444$metrics")" = 404 ] \
        || fail "caddy: $metrics is reachable through the proxy"
done
budgets caddy https://localhost:18444 127.0.0.4 127.0.0.98 127.0.0.5 "${ctls[@]}"
echo "proxy: Caddy (TLS) → Keymint: budgets per client behind the proxy, forged X-Forwarded-For ignored, /metrics hidden"
