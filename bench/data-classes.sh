#!/usr/bin/env bash
# E01 acquisition by data class: exhibit `fast` and `best` against ewfacquire `-c fast` and
# `-c best`, on a source of random data (what encrypted volumes and compressed media look
# like) and one of executables and libraries (/usr/lib concatenated), each attached
# read-only with direct I/O to a loop device as bench/compare.sh does.
#
# Each repetition runs every tool once per class (interleaved, so machine noise spreads
# evenly); the page cache is dropped before every run and the time includes the `sync` that
# puts the image on disk. Reported per class and tool: median and fastest seconds, MB/s
# (10^6 bytes/s, of the median), how many times faster than ewfacquire at the same level,
# CPU seconds (user+sys, median), the image size and its size against ewfacquire `fast`'s
# (the bound of issue 13: exhibit `fast` at most 2 % larger). Every exhibit image is checked
# once with ewfverify. A Markdown report goes to stdout (and to $OUT if set).
#
#   bench/data-classes.sh                  (root: loop devices, drop_caches)
#
# Settings (environment):
#   BENCH_SIZE=1G          size of each source (bytes or IEC suffix); 256M for a quick look
#   BENCH_REPS=3           repetitions (medians reported)
#   BENCH_CLASS_LIST="random executables"   (which sources; BENCH_CLASSES is left to compare.sh: 0 = off)
#   BENCH_DIR=${TMPDIR:-/tmp}/exhibit-bench-classes   work directory (sources and images;
#                          needs about 3.2 × BENCH_SIZE free)
#   EXHIBIT=target/release/exhibit
#   OUT=                   also write the report there
#   BENCH_KEEP_SOURCES=0   1 keeps the sources for the next run (same size: reused)
set -euo pipefail
export LC_ALL=C
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/bench/stats.sh"

size_arg=${BENCH_SIZE:-1G}
size=$(numfmt --from=iec "$size_arg")
reps=${BENCH_REPS:-3}
classes=${BENCH_CLASS_LIST:-random executables}
work=${BENCH_DIR:-${TMPDIR:-/tmp}/exhibit-bench-classes}
exhibit=${EXHIBIT:-$repo/target/release/exhibit}
keep=${BENCH_KEEP_SOURCES:-0}
tools="exhibit-fast exhibit-best ewfacquire-fast ewfacquire-best"

log() { echo "data-classes: $*" >&2; }
die() { log "$*"; exit 2; }
[[ $(id -u) -eq 0 ]] || die "run as root (loop devices, drop_caches)"
((reps >= 1)) || die "BENCH_REPS must be >= 1"
[[ -x $exhibit ]] || die "$exhibit missing (cargo build --release)"
"$repo/scripts/install-deps.sh" ewf-tools time openssl util-linux coreutils >&2 || die "could not install the peers"
TIME=/usr/bin/time
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p "$work"
out=$work/out
declare -A loop_of=()
cleanup() {
    local c src
    for c in "${!loop_of[@]}"; do
        src=$work/source-$c-$size.img
        # Detach only our device, and only while it still points at our file.
        if [[ $(losetup -n -O BACK-FILE "${loop_of[$c]}" 2>/dev/null | sed 's/ (deleted)$//') == "$src" ]]; then
            losetup -d "${loop_of[$c]}" || log "could not detach ${loop_of[$c]}"
        fi
    done
    rm -rf "$out"
    ((keep)) || rm -f "$work"/source-*.img
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need=$((size * 32 / 10 + (64 << 20)))
avail=$(($(stat -f -c '%a * %S' "$work")))
((avail > need)) || die "$work: need $((need >> 20)) MiB free, have $((avail >> 20)) MiB"

# make_source CLASS FILE: the same bytes on every Debian machine with the same /usr/lib.
make_source() {
    local class=$1 file=$2 tmp=$2.part
    case $class in
        random) # AES-128-CTR keystream under a fixed key, as bench/make-source.sh
            head -c "$size" /dev/zero | openssl enc -aes-128-ctr -nosalt \
                -K 000102030405060708090a0b0c0d0e0f -iv 0 >"$tmp" ;;
        executables) # every file under /usr/lib in byte order of its path, repeated if short
            : >"$tmp"
            local have=0 before
            while ((have < size)); do
                before=$have
                # (head closing the pipe early makes the pipeline fail: that is the point)
                find /usr/lib -type f -print0 | sort -z | xargs -0 cat 2>/dev/null \
                    | head -c $((size - have)) >>"$tmp" || true
                have=$(stat -c %s "$tmp")
                ((have > before)) || die "/usr/lib gave no bytes"
            done ;;
        *) die "unknown class $class (random, executables)" ;;
    esac
    truncate -s "$size" "$tmp"
    mv "$tmp" "$file"
}

for c in $classes; do
    src=$work/source-$c-$size.img
    if [[ -e $src && $(stat -c %s "$src") -eq $size ]]; then
        log "reusing $src"
    else
        log "making $size_arg of $c: $src"
        make_source "$c" "$src"
    fi
    loop_of[$c]=$(losetup -r --direct-io=on -f --show "$src")
    (($(blockdev --getsize64 "${loop_of[$c]}") == size)) || die "${loop_of[$c]} has the wrong size"
    log "$c: ${loop_of[$c]} (read-only, direct I/O)"
done

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# run CLASS TOOL REP: one measured run; appends to wall/cpu, records the image size once.
declare -A wall=() cpu=() bytes=() failed=()
run() {
    local c=$1 t=$2 rep=$3 dev=${loop_of[$1]} o=$out/img rc=0 t0 t1
    rm -rf "$out" && mkdir -p "$out"
    drop_caches
    local cmd
    case $t in
        exhibit-fast) cmd=("$exhibit" acquire "$dev" -o "$o" --format e01 --compression fast --hash md5,sha1 --quiet) ;;
        exhibit-best) cmd=("$exhibit" acquire "$dev" -o "$o" --format e01 --compression best --hash md5,sha1 --quiet) ;;
        ewfacquire-fast) cmd=(ewfacquire -u -c fast -d sha1 -t "$o" "$dev") ;;
        ewfacquire-best) cmd=(ewfacquire -u -c best -d sha1 -t "$o" "$dev") ;;
    esac
    t0=$(now)
    "$TIME" -f '%U %S' -o "$work/time" -- "${cmd[@]}" </dev/null >"$work/log" 2>&1 || rc=$?
    sync
    t1=$(now)
    if ((rc != 0)); then
        failed[$c-$t]="exit $rc: $(tail -n 1 "$work/log" | cut -c1-120)"
        log "$c $t failed (${failed[$c-$t]})"
        return
    fi
    wall[$c-$t]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') "
    cpu[$c-$t]+="$(awk '{ printf "%.2f", $1 + $2 }' "$work/time") "
    if ((rep == 1)); then
        bytes[$c-$t]=$(cat "$o".E?? | wc -c)
        if [[ $t == exhibit-* ]] && ! ewfverify -q "$o.E01" >"$work/log.verify" 2>&1; then
            failed[$c-$t]="ewfverify rejected the image"
            log "$c $t: ewfverify rejected the image"
        fi
    fi
}

for ((r = 1; r <= reps; r++)); do
    for c in $classes; do
        for t in $tools; do
            [[ -n ${failed[$c-$t]:-} ]] && continue
            log "repetition $r of $reps: $c, $t"
            run "$c" "$t" "$r"
        done
    done
done

report() {
    echo "E01 acquisition by data class: $((size >> 20)) MiB per source on a read-only direct-I/O loop"
    echo "device, page cache dropped before each run, \`sync\` included, medians of $reps runs"
    echo "($(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores; load average before $load_before, after"
    echo "$(cut -d' ' -f1-3 /proc/loadavg); $("$exhibit" --version 2>/dev/null | head -1); $(ewfacquire -V 2>&1 | head -1))."
    echo "*vs ewfacquire*: times faster than ewfacquire at the same level; *size vs ewfacquire fast*:"
    echo "the image against \`ewfacquire -c fast\`'s (issue 13's bound for exhibit fast: at most +2 %)."
    echo
    echo "| source | tool | median s | fastest s | MB/s | vs ewfacquire | CPU s | image bytes | size vs ewfacquire fast |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    local c t m f peer ref
    for c in $classes; do
        ref=${bytes[$c-ewfacquire-fast]:-}
        for t in $tools; do
            if [[ -z ${wall[$c-$t]:-} ]]; then
                echo "| $c | $t | ${failed[$c-$t]:-no result} | | | | | | |"
                continue
            fi
            m=$(echo "${wall[$c-$t]}" | median)
            f=$(echo "${wall[$c-$t]}" | fastest)
            peer=$(echo "${wall[$c-ewfacquire-${t#*-}]:-}" | median)
            echo "| $c | $t${failed[$c-$t]:+ (**${failed[$c-$t]}**)} | $(printf '%.2f' "$m") | $(printf '%.2f' "$f")" \
                "| $(awk -v b="$size" -v s="$m" 'BEGIN { printf "%.0f", b / s / 1e6 }')" \
                "| $(awk -v p="$peer" -v s="$m" 'BEGIN { if (p > 0) printf "%.2f×", p / s; else print "-" }')" \
                "| $(echo "${cpu[$c-$t]}" | median) | ${bytes[$c-$t]}" \
                "| $(awk -v b="${bytes[$c-$t]}" -v r="$ref" 'BEGIN { if (r > 0) printf "%+.2f %%", (b / r - 1) * 100; else print "-" }') |"
        done
    done
}
report >"$work/report.md"
[[ -n ${OUT:-} ]] && cp "$work/report.md" "$OUT"
cat "$work/report.md"
