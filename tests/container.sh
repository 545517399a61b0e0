#!/usr/bin/env bash
# Builds the container image from ./Containerfile with buildah and smoke-tests
# it: the binary inside, as the image's unprivileged user, serves /healthz,
# passes its own health check, mints a token and creates and verifies a key,
# and writes nothing outside its data volume.
#
# The base is made here from Debian's packages with debootstrap and tagged as
# the upstream name the Containerfile starts from, so nothing is pulled from a
# registry. Needs root, buildah and debootstrap (apt-get install buildah
# debootstrap), and a built binary: BINARY (default target/release/keymint).
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${BINARY:-target/release/keymint}
base=docker.io/library/debian:bookworm-slim
image=localhost/keymint:ci
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# vfs and chroot need neither overlayfs nor user namespaces, which a CI
# sandbox may not offer.
bah=(buildah --storage-driver vfs)
# Ports nothing else on the machine holds (a developer's own Keymint, say).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
metrics_port=$(free_port)
secret=container-smoke-test-secret-0123456789abcdef
work=$(mktemp -d)
ctr=
server=
cleanup() {
    # The server runs in a session of its own: buildah, its chroot helpers and
    # Keymint end together.
    [ -n "$server" ] && kill -- "-$server" 2>/dev/null
    wait 2>/dev/null || true
    if [ -n "$ctr" ]; then "${bah[@]}" umount "$ctr" >/dev/null 2>&1 || true; "${bah[@]}" rm "$ctr" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "container: $*" >&2; [ -f "$work/server.log" ] && tail -n 20 "$work/server.log" >&2; exit 1; }

[ -x "$binary" ] || fail "no binary at $binary (cargo build --release --locked)"

if ! "${bah[@]}" inspect --type image "$base" >/dev/null 2>&1; then
    echo "container: making $base with debootstrap from $mirror"
    debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 \
        || { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap failed"; }
    # What the upstream slim image leaves out too: package caches and lists.
    rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
    tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
    rm -rf "$work/rootfs"
    basectr=$("${bah[@]}" from scratch)
    "${bah[@]}" add "$basectr" "$work/rootfs.tar" / >/dev/null
    "${bah[@]}" config --cmd /bin/bash "$basectr"
    "${bah[@]}" commit --quiet "$basectr" "$base" >/dev/null
    "${bah[@]}" rm "$basectr" >/dev/null
    rm -f "$work/rootfs.tar"
fi

# The context is the Containerfile's own: .dockerignore lets in the binary only.
echo "container: building $image from Containerfile (binary: $binary)"
"${bah[@]}" build --quiet --isolation chroot --format docker --build-arg "BINARY=$binary" \
    -f Containerfile -t "$image" . > "$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; fail "build failed"; }

config=$("${bah[@]}" inspect --type image "$image" | jq -c '.Docker.config')
for check in '.User == "10001:10001"' '.Volumes | has("/var/lib/keymint")' '.ExposedPorts | has("8080/tcp")' \
    '.Env | index("KEYMINT_METRICS__LISTEN=0.0.0.0:9090") != null' \
    '.Env | index("KEYMINT_PROFILE=production") != null' '.Healthcheck.Test == ["CMD", "/usr/local/bin/keymint", "health"]' \
    '.Entrypoint == ["/usr/local/bin/keymint"] and .Cmd == ["serve"]'; do
    jq -e "$check" <<<"$config" >/dev/null || fail "the image's configuration fails $check: $config"
done

ctr=$("${bah[@]}" from --quiet "$image")
root=$("${bah[@]}" mount "$ctr")
touch "$work/marker"
sleep 1
# What every command in the container is run with: the token secret and the
# test's ports.
envs=(--env "KEYMINT_AUTH__HS256_SECRET=$secret" --env "KEYMINT_SERVER__LISTEN=127.0.0.1:$port"
    --env "KEYMINT_METRICS__LISTEN=127.0.0.1:$metrics_port")
run() { "${bah[@]}" run --isolation chroot "${envs[@]}" "$ctr" -- "$@"; }

[ "$(run id -u)" = 10001 ] || fail "the image does not run as uid 10001"

if curl -s "http://127.0.0.1:$port/" >/dev/null 2>&1; then fail "something already listens on 127.0.0.1:$port"; fi
# chroot isolation shares the host's network, so the host reaches the listener.
# The data volume as `docker run -v` gives one: a directory the image's user owns.
install -d -o 10001 -g 10001 -m 0700 "$work/data"
setsid "${bah[@]}" run --isolation chroot --volume "$work/data:/var/lib/keymint" "${envs[@]}" \
    "$ctr" -- /usr/local/bin/keymint serve > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$port/healthz" >/dev/null || fail "/healthz did not answer"
# The health check exactly as the image runs it: no URL, so it asks where the
# configuration listens.
run /usr/local/bin/keymint health >/dev/null || fail "the image's health check failed"
run /usr/local/bin/keymint health --ready --url "http://127.0.0.1:$port" >/dev/null || fail "the image's readiness check failed"
grep -q '"level":"INFO"' "$work/server.log" || fail "the production profile did not log JSON"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/metrics")" = 404 ] || fail "/metrics is on the API's port"
scraped=$(curl -fs "http://127.0.0.1:$metrics_port/metrics") || fail "no metrics on their own port"
grep -q '^keymint_http_requests_total' <<<"$scraped" || fail "the metrics port serves no request counts"

org=3c90c3cc-0d44-4b50-8888-8dd25736052a
token=$(run /usr/local/bin/keymint dev-token --org "$org")
created=$(curl -fs -X POST "http://127.0.0.1:$port/api/v2/api-keys" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d '{"name": "from the image"}') || fail "creating a key failed"
key=$(jq -r .private_key <<<"$created")
verdict=$(curl -fs -X POST "http://127.0.0.1:$port/api/v2/api-keys/verify" -H "x-api-key: $key" | jq -r .code)
[ "$verdict" = VALID ] || fail "the created key did not verify: $verdict"

kill -- "-$server"; wait "$server" 2>/dev/null || true
for _ in $(seq 1 50); do pgrep -g "$server" >/dev/null 2>&1 || break; sleep 0.1; done
server=
[ "$(stat -c %u "$work/data/keymint.db" 2>/dev/null)" = 10001 ] || fail "no database of uid 10001's in the data volume"
# A read-only root filesystem is enough if nothing else was written.
written=$(find "$root" -xdev -newer "$work/marker" -not -path "$root/var/lib/keymint*" \
    -not -path "$root/proc*" -not -path "$root/dev*" -not -path "$root/sys*" -not -path "$root/run*" \
    -not -path "$root/tmp" -not -path "$root/etc/hosts" -not -path "$root/etc/resolv.conf" -not -path "$root" -print)
[ -z "$written" ] || fail "wrote outside /var/lib/keymint: $written"

size=$("${bah[@]}" images --format '{{.Size}}' "$image")
echo "container: $image ($size) built; as uid 10001 it answered /healthz, both health checks and a create, writing only its volume"
