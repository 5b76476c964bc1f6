#!/usr/bin/env bash
# Container machines through one daemon, as root: the time to create and destroy one
# (`create-machine` then `destroy-machine`, each a client command; median, min and max of
# CYCLES), then the daemon's resident set (VmRSS of /proc/PID/status) with none and with
# MACHINES machines up, and what each machine adds. Prints the load average beside the
# figures: on a shared host they move with it. A measurement, not a test: run it by hand.
#
#   sudo gobs-app/scripts/container-bench.sh [CYCLES] [MACHINES]     (defaults: 10, 100)
#
# Builds gobs-app in release mode. Needs what the container provider needs as root
# (iproute2, busybox-static, nftables); its bridge, subnet and state directory are its
# own (a temporary directory, removed at the end with every machine in it).
set -euo pipefail

cycles=${1:-10}
machines=${2:-100}
root=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "run as root: container machines need it" >&2; exit 1; }
cargo build --release --quiet -p gobs-app --manifest-path "$root/Cargo.toml"
bin="$root/target/release/gobs-app"

state=$(mktemp -d "${TMPDIR:-/tmp}/gobs-container-bench.XXXXXX")
chmod 700 "$state"
cat > "$state/config.toml" <<EOF
default_provider = "bench"
[providers.bench]
kind = "container"
bridge = "gbench$$"
subnet = "10.251.$(( $$ % 200 + 20 )).0/24"
EOF
env -u GOBS_CONFIG -u GOBS_STATE_DIR -u RUST_LOG "$bin" --state-dir "$state" daemon \
    >/dev/null 2>"$state/daemon.log" &
daemon=$!
gobs() { "$bin" --state-dir "$state" "$@" >/dev/null; }
cleanup() {
    for m in $("$bin" --state-dir "$state" list-machines --json 2>/dev/null \
        | grep -o '"name": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/'); do
        gobs destroy-machine "$m" || true
    done
    kill "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
    rm -rf "$state"
}
trap cleanup EXIT

for _ in $(seq 600); do
    [ -S "$state/daemon.sock" ] && break
    kill -0 "$daemon" 2>/dev/null || { cat "$state/daemon.log" >&2; exit 1; }
    sleep 0.1
done
[ -S "$state/daemon.sock" ] || { echo "the daemon never served" >&2; exit 1; }

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$daemon/status"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# One cycle first, unmeasured: it brings up the bridge, the listener and the firewall.
gobs create-machine warm
gobs destroy-machine warm

times=()
for i in $(seq "$cycles"); do
    start=$(now_ms)
    gobs create-machine "cd$i"
    gobs destroy-machine "cd$i"
    times+=($(( $(now_ms) - start )))
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
echo "create+destroy of a container machine through the daemon, $cycles cycles:"
echo "  median ${sorted[$(( cycles / 2 ))]} ms, min ${sorted[0]} ms, max ${sorted[$(( cycles - 1 ))]} ms"
echo "  load average: $(cut -d' ' -f1-3 /proc/loadavg)"

before=$(rss)
for i in $(seq "$machines"); do
    gobs create-machine "m$i"
done
after=$(rss)
echo "daemon RSS with 0 machines: $before KiB; with $machines machines: $after KiB"
echo "  per machine: $(( (after - before) / machines )) KiB"
echo "  load average: $(cut -d' ' -f1-3 /proc/loadavg)"
