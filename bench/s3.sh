#!/usr/bin/env bash
# exhibit acquire into a single-node Garage on loopback vs the same acquisition to a local file,
# on the same source, in one run (issue #14: the upload should keep at least 80 % of the local
# speed, with memory bounded by the parts in flight):
#   local raw:  exhibit acquire SOURCE -o WORK/local/disk                  (+ sync)
#   s3 raw:     exhibit acquire SOURCE -o s3://bench/disk                  (objects complete, checked)
#   local E01:  exhibit acquire SOURCE -o WORK/local/disk --format e01     (+ sync)
#   s3 E01:     exhibit acquire SOURCE -o s3://bench/disk --format e01
# Each of the four twice: "shared", everything on both cores as it comes; and "own core", exhibit
# pinned to CPU 0 (local runs too) and every Garage thread to CPU 1, so the server's hashing and
# storing does not come out of exhibit's CPU, the way a server on another machine would not
# (on a two-core machine that leaves exhibit one core for both kinds of run).
# Page cache dropped before every run; local times include the final `sync`; the bucket's
# objects of each s3 run go under a prefix of their own, so no run is refused (they stay until
# the end: the work directory needs about (4 x REPEATS + 1) x the source size free). Peak RSS
# and exhibit's CPU seconds from /usr/bin/time, Garage's CPU seconds from /proc. Garage's data
# directory lives in the work directory, so both write to the same file system. Writes a
# Markdown table to stdout (and to $OUT if set). Root only (drop_caches).
#
#   bench/s3.sh SOURCE [REPEATS]      (REPEATS default 3; median reported)
#   EXHIBIT=target/release/exhibit    GARAGE=$(scripts/install-garage.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/stats.sh
SOURCE=${1:?usage: bench/s3.sh SOURCE [REPEATS]}
REPEATS=${2:-3}
EXHIBIT=${EXHIBIT:-$PWD/target/release/exhibit}
GARAGE=${GARAGE:-$(scripts/install-garage.sh)}
TIME=/usr/bin/time
[[ $(id -u) -eq 0 ]] || { echo "s3.sh: run as root" >&2; exit 2; }
[[ -x $TIME ]] || { echo "s3.sh: /usr/bin/time missing (Debian package: time)" >&2; exit 2; }
[[ -x $GARAGE ]] || { echo "s3.sh: Garage missing (scripts/install-garage.sh)" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/exhibit-test-bench-s3-XXXXXX")
GARAGE_PID=""
cleanup() {
    # Under set -e a killed server's wait status (137) would become the script's exit status.
    if [[ -n $GARAGE_PID ]]; then
        kill -9 "$GARAGE_PID" 2>/dev/null || true
        wait "$GARAGE_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
S3_PORT=$(port) RPC_PORT=$(port) ADMIN_PORT=$(port)
mkdir -p "$WORK/garage/meta" "$WORK/garage/data" "$WORK/local"
cat >"$WORK/garage/garage.toml" <<TOML
metadata_dir = "$WORK/garage/meta"
data_dir = "$WORK/garage/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$(openssl rand -hex 32)"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$S3_PORT"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:$ADMIN_PORT"
TOML
g() { "$GARAGE" -c "$WORK/garage/garage.toml" "$@"; }
RUST_LOG=garage=warn "$GARAGE" -c "$WORK/garage/garage.toml" server >"$WORK/garage/log" 2>&1 &
GARAGE_PID=$!
for _ in $(seq 100); do g status >/dev/null 2>&1 && break; sleep 0.1; done
node=$(g node id -q | cut -d@ -f1)
g layout assign -z dc1 -c 100G "$node" >/dev/null
g layout apply --version 1 >/dev/null
KEY_ID=GK$(openssl rand -hex 12)
SECRET=$(openssl rand -hex 32)
g key import --yes -n bench "$KEY_ID" "$SECRET" >/dev/null
g bucket create bench >/dev/null
g bucket allow --read --write --owner bench --key "$KEY_ID" >/dev/null
export AWS_ACCESS_KEY_ID=$KEY_ID AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=garage
export AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL_S3
size=$(stat -c %s "$SOURCE")

declare -A times rss cpu server
garage_cpu() { # Garage's user + system seconds so far
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$GARAGE_PID/stat"
}
run() { # run WHAT PLACEMENT: appends to times/rss/cpu/server[WHAT/PLACEMENT]
    local what=$1 placement=$2 fmt out pin=()
    case $what in *e01) fmt=e01 ;; *) fmt=raw ;; esac
    case $what in local*) out=$WORK/local/disk ;; *) out=s3://bench/run$RANDOM$RANDOM/disk ;; esac
    [[ $placement == own ]] && pin=(taskset -c 0)
    rm -rf "$WORK/local"/*
    sync; echo 3 >/proc/sys/vm/drop_caches
    local t0 t1 g0 g1
    g0=$(garage_cpu)
    t0=$(now)
    "${pin[@]}" "$TIME" -f '%M %U %S' -o "$WORK/rss" "$EXHIBIT" acquire "$SOURCE" -o "$out" \
        --format "$fmt" --quiet || { echo "s3.sh: $what ($placement) failed" >&2; exit 2; }
    sync
    t1=$(now)
    g1=$(garage_cpu)
    local key=$what/$placement m u sy
    read -r m u sy < <(tail -n 1 "$WORK/rss")
    times[$key]+="$(echo "$t1 - $t0" | bc) "
    rss[$key]+="$m "
    cpu[$key]+="$(echo "$u + $sy" | bc) "
    server[$key]+="$(echo "$g1 - $g0" | bc) "
}
for placement in shared own; do
    if [[ $placement == own ]]; then
        taskset -a -p 2 "$GARAGE_PID" >/dev/null
    fi
    for _ in $(seq "$REPEATS"); do
        for what in local-raw s3-raw local-e01 s3-e01; do run "$what" "$placement"; done
    done
done
{
    echo "Acquire into a single-node Garage on loopback (sqlite metadata, default settings, data on the work directory's file system) vs to a local file, $((size >> 20)) MiB source, page cache dropped, \`sync\` included, $REPEATS runs each; CPU seconds are user + system"
    echo
    echo "| cores | what | median s | MB/s (median) | vs local | exhibit CPU s | Garage CPU s | peak RSS MiB (median) |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    for placement in shared own; do
        for what in local-raw s3-raw local-e01 s3-e01; do
            key=$what/$placement
            m=$(echo "${times[$key]}" | median)
            base=$(echo "${times[local-${what#*-}/$placement]}" | median)
            r=$(echo "${rss[$key]}" | median)
            c=$(echo "${cpu[$key]}" | median)
            g=$(echo "${server[$key]}" | median)
            case $what in
                local-raw) label='raw to a local file' ;;
                s3-raw) label='raw to `s3://` (4 parts in flight)' ;;
                local-e01) label='E01 (`fast`) to local files' ;;
                s3-e01) label='E01 (`fast`) to `s3://`' ;;
            esac
            case $placement in
                shared) where='both shared' ;;
                own) where='exhibit CPU 0, Garage CPU 1' ;;
            esac
            case $what in local*) g='' ;; esac
            printf '| %s | %s | %.2f | %.0f | %.2f× | %.2f | %s | %.0f |\n' "$where" "$label" "$m" \
                "$(echo "$size / $m / 1000000" | bc -l)" "$(echo "$base / $m" | bc -l)" "$c" "$g" \
                "$(echo "$r / 1024" | bc -l)"
        done
    done
} | tee "${OUT:-/dev/null}"
