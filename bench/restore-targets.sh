#!/usr/bin/env bash
# exhibit restore vs the usual pipe on the same E01 (ewfacquire -c fast of SOURCE), onto loop
# devices with direct I/O over files on the work directory's file system:
#   peer:     ewfexport -t - E01 | dd of=TARGET bs=1M oflag=direct   (no read-back)
#   exhibit:  exhibit restore E01 --to TARGET --yes                  (with the O_DIRECT read-back)
#   exhibit:  the same onto three targets at once
# Page cache dropped before every run; times include the final `sync`. Writes a Markdown table
# to stdout (and to $OUT if set). Root only (loop devices, drop_caches).
#
#   bench/restore-targets.sh SOURCE [REPEATS]      (REPEATS default 3; median reported)
#   EXHIBIT=target/release/exhibit
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/stats.sh
SOURCE=${1:?usage: bench/restore-targets.sh SOURCE [REPEATS]}
REPEATS=${2:-3}
EXHIBIT=${EXHIBIT:-$PWD/target/release/exhibit}
[[ $(id -u) -eq 0 ]] || { echo "restore-targets.sh: run as root" >&2; exit 2; }
command -v ewfexport >/dev/null || { echo "restore-targets.sh: ewfexport missing (ewf-tools)" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/exhibit-test-bench-restore-XXXXXX")
LOOPS=()
cleanup() {
    for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
size=$(stat -c %s "$SOURCE")
ewfacquire -u -q -c fast -t "$WORK/ev" "$SOURCE" </dev/null >/dev/null 2>&1
E01=$WORK/ev.E01
for i in 1 2 3; do
    truncate -s "$size" "$WORK/target$i"
    LOOPS+=("$(losetup --find --show --direct-io=on "$WORK/target$i")")
done

declare -A times
run() { # run WHAT: appends the seconds to times[WHAT]
    local what=$1
    sync; echo 3 >/proc/sys/vm/drop_caches
    local t0 t1
    t0=$(now)
    case $what in
        peer) # ewfexport ends its standard output with a status line: only the media goes to the
            # target, and ewfexport's broken pipe on that line is not a failure (dd's status is).
            (set +o pipefail; ewfexport -u -q -f raw -t - "$E01" 2>/dev/null |
                dd of="${LOOPS[0]}" bs=1M iflag=fullblock,count_bytes count="$size" oflag=direct status=none) ;;
        one) "$EXHIBIT" restore "$E01" --to "${LOOPS[0]}" --yes --quiet --record "$WORK/r.yaml" ;;
        three) "$EXHIBIT" restore "$E01" --to "${LOOPS[0]}" --to "${LOOPS[1]}" --to "${LOOPS[2]}" \
            --yes --quiet --record "$WORK/r.yaml" ;;
    esac || { echo "restore-targets.sh: $what failed" >&2; exit 2; }
    sync
    t1=$(now)
    rm -f "$WORK/r.yaml"
    times[$what]+="$(echo "$t1 - $t0" | bc) "
}
for _ in $(seq "$REPEATS"); do
    for what in peer one three; do run "$what"; done
done
{
    echo "Restore an E01 (\`ewfacquire -c fast\` of the source, $((size >> 20)) MiB) onto loop devices with direct I/O, page cache dropped, \`sync\` included, $REPEATS runs"
    echo
    echo "| what | read-back | median s | MB/s (median, per target) | vs the pipe |"
    echo "|---|---|---:|---:|---:|"
    base=$(echo "${times[peer]}" | median)
    for what in peer one three; do
        m=$(echo "${times[$what]}" | median)
        case $what in
            peer) label='`ewfexport -t -` piped into `dd oflag=direct`, one target'; rb=no ;;
            one) label='`exhibit restore`, one target'; rb='yes (O_DIRECT, hashed, compared)' ;;
            three) label='`exhibit restore`, three targets at once'; rb='yes, every target' ;;
        esac
        printf '| %s | %s | %.2f | %.0f | %.2f× |\n' "$label" "$rb" "$m" \
            "$(echo "$size / $m / 1000000" | bc -l)" "$(echo "$base / $m" | bc -l)"
    done
    one=$(echo "${times[one]}" | median)
    three=$(echo "${times[three]}" | median)
    echo
    printf 'Three targets took %.2f× the time of one.\n' "$(echo "$three / $one" | bc -l)"
} | tee "${OUT:-/dev/null}"
