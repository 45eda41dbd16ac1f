#!/usr/bin/env bash
# exhibit convert vs libewf's ewfexport on the same E01 (ewfacquire -c fast of SOURCE):
#   E01 -> raw        ewfexport -f raw (MD5)                  vs  exhibit convert --format raw --hash md5
#   E01 -> E01 fast   ewfexport -f encase6 -c fast -d sha1    vs  exhibit convert --format e01 --compression fast --hash md5,sha1
# (the same hashes as the peer), and exhibit with its default three hashes for each.
# Each tool runs once per repetition, interleaved; page cache dropped before every run; the
# time includes the `sync` that puts the output on disk. Writes a Markdown table to stdout
# (and to $OUT if set).
#
#   bench/convert.sh SOURCE [REPEATS]      (REPEATS default 3; median and fastest reported)
#   EXHIBIT=target/release/exhibit
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/stats.sh
SOURCE=${1:?usage: bench/convert.sh SOURCE [REPEATS]}
REPEATS=${2:-3}
EXHIBIT=${EXHIBIT:-$PWD/target/release/exhibit}
[[ $(id -u) -eq 0 ]] || { echo "convert.sh: run as root (drop_caches)" >&2; exit 2; }
command -v ewfexport >/dev/null || { echo "convert.sh: ewfexport missing (ewf-tools)" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/exhibit-test-bench-convert-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
size=$(stat -c %s "$SOURCE")
ewfacquire -u -q -c fast -t "$WORK/ev" "$SOURCE" </dev/null >/dev/null 2>&1
E01=$WORK/ev.E01

declare -A times
run() { # run TOOL FORMAT: appends the seconds to times[TOOL-FORMAT]
    local tool=$1 format=$2 out=$WORK/out
    rm -rf "$out"; mkdir -p "$out"
    sync; echo 3 >/proc/sys/vm/drop_caches
    local t0 t1
    t0=$(now)
    case $tool-$format in
        ewfexport-raw) ewfexport -u -q -f raw -t "$out/img" "$E01" >/dev/null 2>&1 ;;
        ewfexport-e01) ewfexport -u -q -f encase6 -c fast -d sha1 -t "$out/img" "$E01" >/dev/null 2>&1 ;;
        exhibit-raw) "$EXHIBIT" convert "$E01" -o "$out/img" --format raw --hash md5 >/dev/null 2>"$WORK/log.exhibit" ;;
        exhibit-e01) "$EXHIBIT" convert "$E01" -o "$out/img" --format e01 --compression fast --hash md5,sha1 >/dev/null 2>"$WORK/log.exhibit" ;;
        exhibit3-raw) "$EXHIBIT" convert "$E01" -o "$out/img" --format raw >/dev/null 2>"$WORK/log.exhibit" ;;
        exhibit3-e01) "$EXHIBIT" convert "$E01" -o "$out/img" --format e01 --compression fast >/dev/null 2>"$WORK/log.exhibit" ;;
    esac || { echo "convert.sh: $tool to $format failed: $(tail -n 1 "$WORK/log.exhibit" 2>/dev/null)" >&2; exit 2; }
    sync
    t1=$(now)
    times[$tool-$format]+="$(echo "$t1 - $t0" | bc) "
}
for _ in $(seq "$REPEATS"); do
    for format in raw e01; do
        for tool in ewfexport exhibit exhibit3; do
            run "$tool" "$format"
        done
    done
done
{
    echo "Convert an E01 (\`ewfacquire -c fast\` of the source, $((size >> 20)) MiB), page cache dropped, \`sync\` included, $REPEATS runs"
    echo
    echo "| tool | to | fastest s | median s | MB/s (median) | vs ewfexport |"
    echo "|---|---|---:|---:|---:|---:|"
    for format in raw e01; do
        base=$(echo "${times[ewfexport-$format]}" | median)
        for tool in ewfexport exhibit exhibit3; do
            m=$(echo "${times[$tool-$format]}" | median)
            f=$(echo "${times[$tool-$format]}" | fastest)
            case $tool-$format in
                ewfexport-raw) what='`ewfexport -f raw` (MD5)' ;;
                ewfexport-e01) what='`ewfexport -f encase6 -c fast -d sha1` (MD5, SHA-1)' ;;
                exhibit-raw) what='`exhibit convert --format raw --hash md5` (MD5, checked against the stored MD5)' ;;
                exhibit-e01) what='`exhibit convert --format e01 --compression fast --hash md5,sha1` (MD5, SHA-1, checked)' ;;
                exhibit3-raw) what='`exhibit convert --format raw` (MD5, SHA-1, SHA-256, checked)' ;;
                exhibit3-e01) what='`exhibit convert --format e01 --compression fast` (MD5, SHA-1, SHA-256, checked)' ;;
            esac
            printf '| %s | %s | %.2f | %.2f | %.0f | %.2f× |\n' "$what" "$format" "$f" "$m" \
                "$(echo "$size / $m / 1000000" | bc -l)" "$(echo "$base / $m" | bc -l)"
        done
    done
} | tee "${OUT:-/dev/null}"
