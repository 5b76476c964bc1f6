#!/usr/bin/env bash
# Creates and destroys machines through one daemon and prints the daemon's resident set
# (VmRSS of /proc/PID/status) as it goes, then RSS after 4,000 cycles minus RSS after
# 1,000: memory must follow what is live, so that difference stays small (goal: within
# 256 KiB). A measurement, not a test: run it by hand.
#
#   gobs-app/scripts/rss-churn.sh [CYCLES] [EVERY]     (defaults: 4000, 500)
#
# Builds gobs-app in release mode; the state lives in a temporary directory (dummy
# provider, `buffered` store so the run is not bound by fsync) that is removed at the end.
set -euo pipefail

cycles=${1:-4000}
every=${2:-500}
root=$(cd "$(dirname "$0")/../.." && pwd)
cargo build --release --quiet -p gobs-app --manifest-path "$root/Cargo.toml"
bin="$root/target/release/gobs-app"

state=$(mktemp -d "${TMPDIR:-/tmp}/gobs-rss-churn.XXXXXX")
printf '[store]\ndurability = "buffered"\n' > "$state/config.toml"
env -u GOBS_CONFIG -u GOBS_STATE_DIR -u RUST_LOG "$bin" --state-dir "$state" daemon \
    >/dev/null 2>"$state/daemon.log" &
daemon=$!
cleanup() {
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
threads() { awk '/^Threads:/ { print $2 }' "/proc/$daemon/status"; }
gobs() { "$bin" --state-dir "$state" "$@" >/dev/null; }

echo "cycles  rss_kib  threads"
printf '%6d  %7d  %7d\n' 0 "$(rss)" "$(threads)"
at_1000=""
for i in $(seq "$cycles"); do
    gobs create-machine "churn-$i"
    gobs destroy-machine "churn-$i"
    if [ $((i % every)) -eq 0 ]; then
        printf '%6d  %7d  %7d\n' "$i" "$(rss)" "$(threads)"
    fi
    if [ "$i" -eq 1000 ]; then at_1000=$(rss); fi
done
if [ -n "$at_1000" ]; then
    end=$(rss)
    echo "RSS after $cycles cycles minus RSS after 1000: $((end - at_1000)) KiB"
fi
