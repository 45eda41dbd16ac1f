#!/usr/bin/env bash
# exhibit mount vs libewf's ewfmount on the same E01 (ewfacquire -c fast of SOURCE): sequential
# read of the whole media file (MOUNT/disk.raw vs MOUNT/ewf1) with one reader, and with two
# readers each reading one half at the same time. Page cache dropped before every run; the
# mount is made fresh for every run (so no decoded chunk survives between runs). Also the peak
# resident memory (VmHWM) of each mount process over the run. Root only (FUSE mounts). Writes a Markdown table to stdout (and to $OUT if set).
#
#   bench/mount.sh SOURCE [REPEATS]      (REPEATS default 3; median and fastest reported)
#   EXHIBIT=target/release/exhibit
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/stats.sh
SOURCE=${1:?usage: bench/mount.sh SOURCE [REPEATS]}
REPEATS=${2:-3}
EXHIBIT=${EXHIBIT:-$PWD/target/release/exhibit}
[[ $(id -u) -eq 0 ]] || { echo "mount.sh: run as root" >&2; exit 2; }
command -v ewfmount >/dev/null || { echo "mount.sh: ewfmount missing (ewf-tools)" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/exhibit-test-bench-mount-XXXXXX")
PID=""
cleanup() {
    [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    for d in "$WORK"/mnt-*; do mountpoint -q "$d" 2>/dev/null && umount -l "$d"; done
    rm -rf "$WORK"
}
trap cleanup EXIT
size=$(stat -c %s "$SOURCE")
ewfacquire -u -q -c fast -t "$WORK/ev" "$SOURCE" </dev/null >/dev/null 2>&1
E01=$WORK/ev.E01

# start TOOL DIR: mounts; sets FILE (the media file) and PID (exhibit's process). Not in a
# command substitution: its subshell would run the EXIT trap and unmount at once.
start() {
    local tool=$1 dir=$2
    mkdir -p "$dir"
    case $tool in
        exhibit)
            "$EXHIBIT" mount "$E01" "$dir" 2>"$WORK/log.mount" &
            PID=$!
            for _ in $(seq 200); do [[ -e $dir/disk.raw ]] && break; sleep 0.05; done
            FILE=$dir/disk.raw ;;
        ewfmount)
            ewfmount "$E01" "$dir" >/dev/null 2>&1
            FILE=$dir/ewf1 ;;
    esac
}
stop() {
    local dir=$1
    if [[ -n $PID ]]; then kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; fi
    mountpoint -q "$dir" && umount "$dir"
    rmdir "$dir"
}
declare -A times peak
# hwm PID: the peak resident set of a process in KiB (0 when it is gone).
hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
run() { # run TOOL READERS: appends the seconds to times[TOOL-READERS]
    local tool=$1 readers=$2 dir=$WORK/mnt-$1
    start "$tool" "$dir"
    local file=$FILE
    sync; echo 3 >/proc/sys/vm/drop_caches
    local t0 t1 half=$(((size / 2 + 1048575) / 1048576))
    t0=$(now)
    if ((readers == 1)); then
        dd if="$file" of=/dev/null bs=1M status=none
    else
        dd if="$file" of=/dev/null bs=1M count="$half" status=none &
        local first=$!
        dd if="$file" of=/dev/null bs=1M skip="$half" status=none
        wait "$first"
    fi
    t1=$(now)
    local pid=$PID kib
    [[ $tool == ewfmount ]] && pid=$(pgrep -n -f "ewfmount $E01" || echo 0)
    kib=$(hwm "$pid")
    ((kib > ${peak[$tool-$readers]:-0})) && peak[$tool-$readers]=$kib
    stop "$dir"
    times[$tool-$readers]+="$(echo "$t1 - $t0" | bc) "
}
for _ in $(seq "$REPEATS"); do
    for tool in ewfmount exhibit; do
        for readers in 1 2; do
            run "$tool" "$readers"
        done
    done
done
{
    echo "Sequential read of the media through the mount, $((size >> 20)) MiB, E01 by \`ewfacquire -c fast\`, page cache dropped, fresh mount each run, $REPEATS runs; exhibit with its default 64 MiB chunk cache; peak RSS: the mount process's VmHWM, highest of the runs"
    echo
    echo "| tool | readers | fastest s | median s | MB/s (median) | vs ewfmount | peak RSS MiB |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for readers in 1 2; do
        base=$(echo "${times[ewfmount-$readers]}" | median)
        for tool in ewfmount exhibit; do
            m=$(echo "${times[$tool-$readers]}" | median)
            f=$(echo "${times[$tool-$readers]}" | fastest)
            printf '| %s mount | %d | %.2f | %.2f | %.0f | %.2f× | %.0f |\n' "$tool" "$readers" "$f" "$m" \
                "$(echo "$size / $m / 1000000" | bc -l)" "$(echo "$base / $m" | bc -l)" \
                "$(echo "${peak[$tool-$readers]:-0} / 1024" | bc -l)"
        done
    done
} | tee "${OUT:-/dev/null}"
