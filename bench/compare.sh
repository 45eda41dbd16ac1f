#!/usr/bin/env bash
# Measures exhibit against its peers on one source in one run and writes docs/benchmarks.md.
#
# The source is a file of mixed content (bench/make-source.sh: random, zeros and text in 64 MiB
# pieces) attached read-only to a loop device with direct I/O, so every tool reads a real block
# device. Each repetition runs every tool once (interleaved, so that noise from the machine
# spreads evenly); the page cache is dropped before every measured run; outputs go to one
# directory on the source's filesystem and are deleted between runs. Reported: medians of wall
# time (the tool alone, and the tool plus the `sync` that puts its output on disk: tools that
# leave gigabytes dirty in the page cache otherwise look faster than they are), MB/s (10^6
# bytes/s, of the tool plus sync), CPU time (user+sys from /usr/bin/time), and ratios.
#
# Root only (loop devices, drop_caches). Installs missing peers with scripts/install-deps.sh.
#
# Settings (environment):
#   BENCH_SIZE=2G           source size (bytes or IEC suffix); try 256M for a quick check
#   BENCH_REPS=3            repetitions per tool (median reported)
#   BENCH_DIR=${TMPDIR:-/tmp}/exhibit-bench   work directory (source and outputs; needs ~2.2x size free)
#   BENCH_OUT=docs/benchmarks.md              report (also printed)
#   EXHIBIT=target/release/exhibit            the binary; its rows are skipped when it is missing
#   BENCH_TOOLS="dc3dd dcfldd ewfacquire ddrescue exhibit exhibit-e01 exhibit-raw-e01 exhibit-rescue"   which rows to run
#   BENCH_VERIFY=1          also time ewfverify vs exhibit verify
#   BENCH_MOUNT=1           also run bench/mount.sh (exhibit mount vs ewfmount, sequential read of
#                           an E01 of the same source through the mount, one and two readers)
#   BENCH_CONVERT=1         also run bench/convert.sh (exhibit convert vs ewfexport: an E01 of the
#                           same source to raw and to E01)
#   BENCH_RESTORE=1         also run bench/restore-targets.sh (exhibit restore with its read-back,
#                           onto one and three loop devices, vs ewfexport -t - piped into dd)
#   BENCH_S3=1              also run bench/s3.sh (exhibit acquire raw and E01 into a single-node
#                           Garage on loopback vs the same to local files; needs Garage)
#   BENCH_RESCUE=1          also run bench/rescue.sh (exhibit rescue vs ddrescue on a faulty device,
#                           512- and 4096-byte sectors) and put its tables in the report
#   BENCH_KEEP_SOURCE=0     1 keeps the source file for the next run (same size: reused)
#   BENCH_NOTE="..."        a line for the report's notes (e.g. what else ran on the machine)
set -euo pipefail
export LC_ALL=C

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
size_arg=${BENCH_SIZE:-2G}
size=$(numfmt --from=iec "$size_arg")
reps=${BENCH_REPS:-3}
work=${BENCH_DIR:-${TMPDIR:-/tmp}/exhibit-bench}
report=${BENCH_OUT:-$repo/docs/benchmarks.md}
exhibit=${EXHIBIT:-$repo/target/release/exhibit}
tools=${BENCH_TOOLS:-dc3dd dcfldd ewfacquire ddrescue exhibit exhibit-e01 exhibit-raw-e01 exhibit-rescue}
do_rescue=${BENCH_RESCUE:-1}
do_mount=${BENCH_MOUNT:-1}
do_convert=${BENCH_CONVERT:-1}
do_restore=${BENCH_RESTORE:-1}
do_s3=${BENCH_S3:-1}
do_verify=${BENCH_VERIFY:-1}
keep_source=${BENCH_KEEP_SOURCE:-0}

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 2; }

[[ $(id -u) -eq 0 ]] || die "run as root (loop devices, drop_caches)"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
((reps >= 1)) || die "BENCH_REPS must be >= 1"

# ---------------------------------------------------------------- tools
"$repo/scripts/install-deps.sh" dc3dd dcfldd ewf-tools gddrescue time openssl util-linux coreutils >&2 \
    || die "could not install the peers"
TIME=/usr/bin/time
[[ -x $TIME ]] || die "/usr/bin/time missing (Debian package: time)"

notes=()
[[ -n ${BENCH_NOTE:-} ]] && notes+=("$BENCH_NOTE")
have_exhibit=0 have_e01=0 have_verify=0
# (Help texts are captured first: `grep -q` closing the pipe early would fail it under pipefail.)
acquire_help=$([[ -x $exhibit ]] && "$exhibit" acquire --help 2>&1 || true)
verify_help=$([[ -x $exhibit ]] && "$exhibit" verify --help 2>&1 || true)
if grep -qi '^usage:.*acquire' <<<"$acquire_help"; then
    have_exhibit=1
    if grep -q -- --format <<<"$acquire_help"; then have_e01=1; else
        notes+=("exhibit E01 row skipped: \`exhibit acquire --help\` has no \`--format\`."); fi
    if grep -qi '^usage:.*verify' <<<"$verify_help"; then have_verify=1; else
        notes+=("\`exhibit verify\` row skipped: no \`verify\` subcommand in this build."); fi
elif [[ -x $exhibit ]]; then
    notes+=("exhibit rows skipped: \`${exhibit#"$repo"/}\` has no \`acquire\` subcommand yet.")
else
    notes+=("exhibit rows skipped: \`${exhibit#"$repo"/}\` was not built (\`cargo build --release\`).")
fi

version_of() {
    case $1 in
        dc3dd) dc3dd --version 2>&1 | head -1 ;;
        dcfldd) dcfldd --version 2>&1 | head -1 ;;
        ewfacquire) ewfacquire -V 2>&1 | head -1 ;;
        ddrescue) ddrescue --version 2>&1 | head -1 ;;
        exhibit) "$exhibit" --version 2>/dev/null | head -1 || echo "exhibit (--version failed)" ;;
        md5sum) md5sum --version 2>&1 | head -1 ;;
        openssl) openssl version 2>&1 | head -1 ;;
    esac
}

# ---------------------------------------------------------------- source and loop device
mkdir -p "$work"
rm -f "$work"/log.* "$work"/time.* "$work"/base.out "$work"/report.md
src=$work/source-$size.img
out=$work/out
loop=""
cleanup() {
    if [[ -n $loop ]]; then
        # Detach only our device, and only while it still points at our file.
        if [[ $(losetup -n -O BACK-FILE "$loop" 2>/dev/null | sed 's/ (deleted)$//') == "$src" ]]; then
            losetup -d "$loop" || log "could not detach $loop"
        fi
    fi
    rm -rf "$out"
    ((keep_source)) || rm -f "$src"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need=$((size * 22 / 10 + (64 << 20)))
[[ -e $src && $(stat -c %s "$src") -eq $size ]] && need=$((need - size))
avail=$(($(stat -f -c '%a * %S' "$work")))
((avail > need)) || die "$work: need $((need >> 20)) MiB free, have $((avail >> 20)) MiB"

if [[ -e $src && $(stat -c %s "$src") -eq $size ]]; then
    log "reusing $src"
else
    log "making a $size_arg source of mixed content: $src"
    rm -f "$work"/source-*.img
    "$repo/bench/make-source.sh" "$size" "$src"
fi
loop=$(losetup -r --direct-io=on -f --show "$src")
log "source: $loop (read-only, direct I/O) on $src"
dev_size=$(blockdev --getsize64 "$loop")
((dev_size == size)) || die "$loop has $dev_size bytes, expected $size"

# ---------------------------------------------------------------- measuring
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# Command line for a tool, with OUT as its output base (outputs are under $out).
cmd_for() {
    local o=$out/$1
    case $1 in
        dc3dd) echo "dc3dd if=$loop hash=md5 hash=sha256 of=$o.raw log=$o.log" ;;
        dcfldd) echo "dcfldd if=$loop hash=md5,sha256 of=$o.raw" ;;
        ewfacquire) echo "ewfacquire -u -c fast -d sha1 -t $o $loop" ;;
        ddrescue) echo "ddrescue -d $loop $o.raw $o.map" ;;
        exhibit) echo "$exhibit acquire $loop -o $o --quiet" ;;
        exhibit-e01) echo "$exhibit acquire $loop -o $o --format e01 --hash md5,sha1 --quiet" ;;
        exhibit-raw-e01) echo "$exhibit acquire $loop -o $o --format raw,e01 --hash md5,sha1 --quiet" ;;
        exhibit-rescue) echo "$exhibit rescue $loop -o $o --quiet" ;;
    esac
}
describe() {
    case $1 in
        dc3dd) echo "raw|md5, sha256" ;;
        dcfldd) echo "raw|md5, sha256" ;;
        ewfacquire) echo "E01 (deflate fast)|md5, sha1" ;;
        ddrescue) echo "raw + map|none" ;;
        exhibit) echo "raw + map|md5, sha1, sha256" ;;
        exhibit-e01) echo "E01|md5, sha1" ;;
        exhibit-raw-e01) echo "raw + E01 (one read)|md5, sha1" ;;
        exhibit-rescue) echo "raw + map (rescue mode)|md5, sha1, sha256" ;;
        ewfverify) echo "read E01|md5, sha1" ;;
        exhibit-verify) echo "read E01|md5, sha1" ;;
        exhibit-verify-all) echo "read E01, record, logs|md5, sha1, sha256" ;;
    esac
}
# The raw output a tool leaves (checked against the source once), if any.
raw_of() {
    case $1 in dc3dd | dcfldd | ddrescue | exhibit | exhibit-raw-e01 | exhibit-rescue) echo "$out/$1.raw" ;; *) echo "" ;; esac
}

declare -A wall=() wsync=() cpu=() status=() cmdline=() outsize=()
# run_timed NAME CMD...: one measured run; appends to wall/wsync/cpu.
run_timed() {
    local name=$1; shift
    local tf=$work/time.$name rc=0 t0 t1
    drop_caches
    "$TIME" -f '%e %U %S' -o "$tf" -- "$@" </dev/null >"$work/log.$name" 2>&1 || rc=$?
    t0=$(date +%s.%N); sync; t1=$(date +%s.%N)
    if ((rc != 0)); then
        status[$name]="failed (exit $rc): $(grep -v '^Command exited' "$work/log.$name" | tail -n 2 | tr '\n' ' ' | cut -c1-160)"
        log "$name failed (exit $rc); see $work/log.$name"
        return 1
    fi
    read -r e u s <"$tf"
    wall[$name]+="$e "
    wsync[$name]+="$(echo "$e $t0 $t1" | awk '{ printf "%.2f", $1 + $3 - $2 }') "
    cpu[$name]+="$(echo "$u $s" | awk '{ printf "%.2f", $1 + $2 }') "
    log "$name: ${e}s wall, +sync $(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }')s, cpu $u+$s s"
}
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print ""; exit } if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Baseline: how fast one core hashes this file from the page cache (MD5 is the ceiling).
log "baseline hashes (file from page cache)"
cat "$src" >/dev/null
declare -A base=()
for b in "md5sum" "openssl md5" "openssl sha1" "openssl sha256"; do
    if [[ $b == md5sum ]]; then set -- md5sum "$src"; else set -- openssl dgst -"${b#openssl }" "$src"; fi
    ts=""
    for ((r = 0; r < reps; r++)); do
        "$TIME" -f '%e' -o "$work/time.base" -- "$@" >"$work/base.out"
        ts+="$(cat "$work/time.base") "
    done
    base[$b]=$(echo "$ts" | median)
    [[ $b == md5sum ]] && src_md5=$(cut -d' ' -f1 "$work/base.out")
done

selected=()
for t in $tools; do
    case $t in
        exhibit | exhibit-rescue) ((have_exhibit)) || continue ;;
        exhibit-e01 | exhibit-raw-e01) ((have_e01)) || continue ;;
        dc3dd | dcfldd | ewfacquire | ddrescue) ;;
        *) die "unknown tool in BENCH_TOOLS: $t" ;;
    esac
    selected+=("$t")
    cmdline[$t]=$(cmd_for "$t")
done

for ((r = 1; r <= reps; r++)); do
    log "repetition $r of $reps"
    for t in "${selected[@]}"; do
        [[ -n ${status[$t]:-} ]] && continue # failed before: do not retry
        rm -rf "$out" && mkdir -p "$out"
        # shellcheck disable=SC2086 # the command line is a plain word list, no quoting needed
        run_timed "$t" ${cmdline[$t]} || continue
        if ((r == 1)); then # check the output once: a fast wrong image is no result
            outsize[$t]=$(du -s --apparent-size -B1 "$out" | cut -f1)
            raw=$(raw_of "$t")
            if [[ -n $raw ]]; then
                if [[ ! -e $raw ]]; then status[$t]="no output $raw"
                elif [[ $(md5sum <"$raw" | cut -d' ' -f1) != "$src_md5" ]]; then status[$t]="output differs from the source"
                fi
            elif [[ $t == exhibit-e01 ]]; then
                ewfverify -q "$out/$t.E01" >"$work/log.check" 2>&1 || status[$t]="ewfverify rejected its E01"
            fi
            [[ -n ${status[$t]:-} ]] && log "$t: ${status[$t]}"
        fi
    done
done

# Verification: ewfverify vs exhibit verify, on E01 files made once.
verify_rows=()
if ((do_verify)); then
    rm -rf "$out" && mkdir -p "$out"
    ewfacquire -u -c fast -d sha1 -t "$out/ewf" "$loop" </dev/null >"$work/log.mk-ewf" 2>&1 || log "ewfacquire for verify failed"
    cmdline[ewfverify]="ewfverify -d sha1 $out/ewf.E01"
    verify_rows+=(ewfverify)
    if ((have_verify && have_e01)); then
        "$exhibit" acquire "$loop" -o "$out/exh" --format e01 --hash md5,sha1 --quiet </dev/null >"$work/log.mk-exh" 2>&1 \
            || log "exhibit E01 for verify failed"
        # Same hashes as `ewfverify -d sha1`; side files (record, hash logs) are checked too.
        cmdline[exhibit-verify]="$exhibit verify $out/exh.E01 --hash md5,sha1 --quiet"
        # What verify does by default: all three hashes, and the record and logs too.
        cmdline[exhibit-verify-all]="$exhibit verify $out/exh.E01 --quiet"
        verify_rows+=(exhibit-verify exhibit-verify-all)
    elif ((have_verify)); then
        notes+=("\`exhibit verify\` row skipped: it needs exhibit's own E01 (no \`--format e01\`).")
    fi
    for ((r = 1; r <= reps; r++)); do
        for t in "${verify_rows[@]}"; do
            [[ -n ${status[$t]:-} ]] && continue
            # shellcheck disable=SC2086
            run_timed "$t" ${cmdline[$t]} || true
        done
    done
fi

# CPU per stage: one more run of each exhibit acquisition, read from its record.
declare -A stages=()
for t in "${selected[@]}"; do
    [[ $t == exhibit* && -z ${status[$t]:-} ]] || continue
    rm -rf "$out" && mkdir -p "$out"
    drop_caches
    # shellcheck disable=SC2086
    ${cmdline[$t]} </dev/null >/dev/null 2>&1 || continue
    stages[$t]=$(awk '/^  cpu_seconds:/ { on = 1; next } on && /^    / { gsub(/^ +/, ""); printf "%s ", $0; next } on { exit }' "$out/$t.yaml")
done

# Rescue on a faulty device: bench/rescue.sh, same machine, same run.
rescue_tables=()
if ((do_rescue && have_exhibit)); then
    for ss in 512 4096; do
        log "rescue on a faulty device, ${ss}-byte sectors"
        if OUT="$work/rescue-$ss.md" "$repo/bench/rescue.sh" 128M 300 "$ss" 2 1 "$reps" >"$work/log.rescue-$ss" 2>&1; then
            rescue_tables+=("$work/rescue-$ss.md")
        else
            notes+=("bench/rescue.sh ($ss-byte sectors) failed: $(tail -n 1 "$work/log.rescue-$ss")")
        fi
    done
fi

# Mount: bench/mount.sh on the same source file, same run.
mount_table=""
if ((do_mount && have_exhibit)) && "$exhibit" mount --help >/dev/null 2>&1; then
    log "mount: exhibit mount vs ewfmount"
    if OUT="$work/mount.md" EXHIBIT="$exhibit" "$repo/bench/mount.sh" "$src" "$reps" >"$work/log.mount" 2>&1; then
        mount_table=$work/mount.md
    else
        notes+=("bench/mount.sh failed: $(tail -n 1 "$work/log.mount")")
    fi
fi

# Convert: bench/convert.sh on the same source file, same run.
convert_table=""
if ((do_convert && have_exhibit)) && "$exhibit" convert --help >/dev/null 2>&1; then
    log "convert: exhibit convert vs ewfexport"
    if OUT="$work/convert.md" EXHIBIT="$exhibit" "$repo/bench/convert.sh" "$src" "$reps" >"$work/log.convert" 2>&1; then
        convert_table=$work/convert.md
    else
        notes+=("bench/convert.sh failed: $(tail -n 1 "$work/log.convert")")
    fi
fi

# Restore: bench/restore-targets.sh on the same source file, same run.
restore_table=""
if ((do_restore && have_exhibit)) && "$exhibit" restore --help >/dev/null 2>&1; then
    log "restore: exhibit restore vs ewfexport | dd"
    if OUT="$work/restore.md" EXHIBIT="$exhibit" "$repo/bench/restore-targets.sh" "$src" "$reps" >"$work/log.restore" 2>&1; then
        restore_table=$work/restore.md
    else
        notes+=("bench/restore-targets.sh failed: $(tail -n 1 "$work/log.restore")")
    fi
fi

# S3: bench/s3.sh on the same source file, same run.
s3_table=""
if ((do_s3 && have_exhibit)) && grep -q -- --endpoint <<<"$acquire_help"; then
    log "s3: exhibit acquire into Garage vs to local files"
    if OUT="$work/s3.md" EXHIBIT="$exhibit" "$repo/bench/s3.sh" "$src" "$reps" >"$work/log.s3" 2>&1; then
        s3_table=$work/s3.md
    else
        notes+=("bench/s3.sh failed: $(tail -n 1 "$work/log.s3")")
    fi
fi

# ---------------------------------------------------------------- report
mb() { awk -v b="$size" -v s="$1" 'BEGIN { if (s > 0) printf "%.0f", b / s / 1e6; else print "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f×", a / b; else print "-" }'; }
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
fs_info=$(findmnt -n -o FSTYPE,SOURCE -T "$work" | tr -s ' ')
short() { sed -e "s#$out/#OUT/#g" -e "s#$loop#DEV#g" -e "s#$repo/##g" -e "s#$src#SOURCE#g" <<<"$1"; }

dc3dd_med=$(echo "${wsync[dc3dd]:-}" | median)
ewf_med=$(echo "${wsync[ewfacquire]:-}" | median)
ewfv_med=$(echo "${wsync[ewfverify]:-}" | median)

{
    echo "# Benchmarks"
    echo
    echo "Made by \`bench/compare.sh\` (BENCH_SIZE=$size_arg, BENCH_REPS=$reps) on $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo "Do not edit by hand: run the script again (as root) and commit its output."
    echo
    echo "## Machine"
    echo
    echo "- CPU: $cpu_model, $(nproc) cores; memory $(free -g | awk '/^Mem:/ { print $2 }') GiB"
    echo "- kernel: $(uname -r); work directory on: $fs_info"
    echo "- load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine makes results noisy)"
    echo "- source: $size bytes ($size_arg), 64 MiB pieces cycling random / zeros / text, on a read-only loop device with direct I/O"
    echo "- tools: $(for t in dc3dd dcfldd ewfacquire ddrescue; do printf '%s; ' "$(version_of "$t")"; done)$(if [[ -x $exhibit ]]; then version_of exhibit; else echo 'exhibit not built'; fi)"
    echo
    echo "## Acquisition"
    echo
    echo "Medians of $reps runs, page cache dropped before each. *s* is the tool alone; *s +sync* adds the"
    echo "\`sync\` after it (its output on disk); MB/s is of *s +sync*. *vs dc3dd* / *vs ewfacquire*: how many"
    echo "times faster than that peer (higher is better). CPU: user+sys seconds. Output MiB: all files the"
    echo "tool wrote (image, logs, map), so the E01 rows show the compression."
    echo
    echo "| tool | output | hashes | s | s +sync | MB/s | vs dc3dd | vs ewfacquire | CPU s | output MiB |"
    echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
    for t in "${selected[@]}"; do
        IFS='|' read -r what hashes <<<"$(describe "$t")"
        if [[ -n ${status[$t]:-} && -z ${wall[$t]:-} ]]; then
            echo "| $t | $what | $hashes | ${status[$t]} | | | | | | |"
            continue
        fi
        w=$(echo "${wall[$t]}" | median); ws=$(echo "${wsync[$t]}" | median); c=$(echo "${cpu[$t]}" | median)
        vs_dc=$(ratio "$dc3dd_med" "$ws"); vs_ewf="-"
        case $t in ewfacquire | exhibit-e01 | exhibit-raw-e01) vs_ewf=$(ratio "$ewf_med" "$ws"); vs_dc="-" ;; esac
        flag=""; [[ -n ${status[$t]:-} ]] && flag=" (**${status[$t]}**)"
        mib=$(awk -v b="${outsize[$t]:-0}" 'BEGIN { printf "%.0f", b / 1048576 }')
        echo "| $t$flag | $what | $hashes | $w | $ws | $(mb "$ws") | $vs_dc | $vs_ewf | $c | $mib |"
    done
    if [[ -n ${wsync[exhibit-rescue]:-} ]]; then
        rescue_med=$(echo "${wsync[exhibit-rescue]}" | median)
        echo
        echo "Rescue mode on this healthy source: \`exhibit rescue\` took $(ratio "$rescue_med" "$(echo "${wsync[exhibit]:-}" | median)") the time"
        echo "of \`exhibit acquire\` and was $(ratio "$(echo "${wsync[ddrescue]:-}" | median)" "$rescue_med") as fast as \`ddrescue -d\`"
        echo "(which computes no hash)."
    fi
    if ((${#rescue_tables[@]})); then
        echo
        echo "## Rescue on a faulty device (bench/rescue.sh)"
        echo
        echo "\`exhibit rescue --retry-passes 1\` against \`ddrescue -d -b SECTOR -r 1\` on the test suite's faulty"
        echo "block device (a FUSE file with failing sectors behind a read-only direct-I/O loop device; every"
        echo "failing read takes 2 ms, good reads come from memory), alternating, $reps runs each. Reads are"
        echo "counted by the device itself. exhibit's time includes its three hashes; the third row is"
        echo "ddrescue followed by \`md5sum\`, \`sha1sum\` and \`sha256sum\` of its image, the same job."
        for f in "${rescue_tables[@]}"; do
            echo
            sed -e 's/^### /### /' "$f"
        done
    fi
    if [[ -n $mount_table ]]; then
        echo
        echo "## Mount (bench/mount.sh)"
        echo
        cat "$mount_table"
    fi
    if [[ -n $convert_table ]]; then
        echo
        echo "## Convert (bench/convert.sh)"
        echo
        cat "$convert_table"
    fi
    if [[ -n $restore_table ]]; then
        echo
        echo "## Restore (bench/restore-targets.sh)"
        echo
        cat "$restore_table"
    fi
    if [[ -n $s3_table ]]; then
        echo
        echo "## Acquire into S3 (bench/s3.sh)"
        echo
        cat "$s3_table"
    fi
    if ((${#verify_rows[@]})); then
        echo
        echo "## Verification (read an E01 back, recompute its hashes)"
        echo
        echo "| tool | reads | hashes | s | MB/s | vs ewfverify | CPU s |"
        echo "|---|---|---|---:|---:|---:|---:|"
        for t in "${verify_rows[@]}"; do
            IFS='|' read -r what hashes <<<"$(describe "$t")"
            if [[ -z ${wall[$t]:-} ]]; then echo "| $t | $what | $hashes | ${status[$t]:-no result} | | | |"; continue; fi
            ws=$(echo "${wsync[$t]}" | median); c=$(echo "${cpu[$t]}" | median)
            echo "| $t | $what | $hashes | $ws | $(mb "$ws") | $(ratio "$ewfv_med" "$ws") | $c |"
        done
    fi
    if ((${#stages[@]})); then
        echo
        echo "## Where exhibit's CPU goes"
        echo
        echo "CPU seconds by stage from the record of one more run (\`throughput.cpu_seconds\`): one thread per"
        echo "hash, the CRC-64 piece list, one thread per output; *other* is the E01 compression workers,"
        echo "progress and set-up."
        echo
        echo "| run | CPU seconds by stage |"
        echo "|---|---|"
        for t in "${selected[@]}"; do
            [[ -n ${stages[$t]:-} ]] && echo "| $t | ${stages[$t]} |"
        done
    fi
    echo
    echo "## Ceiling: hashing the source file from the page cache, one core"
    echo
    echo "MD5 is a single serial stream and the slowest of the three, so one core's MD5 speed bounds any"
    echo "tool that computes MD5 (medians of $reps runs; $(version_of md5sum); $(version_of openssl))."
    echo
    echo "| command | s | MB/s |"
    echo "|---|---:|---:|"
    for b in "md5sum" "openssl md5" "openssl sha1" "openssl sha256"; do
        echo "| \`${b/openssl /openssl dgst -} SOURCE\` | ${base[$b]} | $(mb "${base[$b]}") |"
    done
    echo
    echo "## See also"
    echo
    echo "- [performance.md](performance.md): what these figures mean, and what limits each path."
    echo "- [benchmarks-rescue.md](benchmarks-rescue.md): \`exhibit rescue\` against GNU ddrescue on a faulty device (\`bench/rescue.sh\`)."
    echo
    echo "## Command lines"
    echo
    echo "DEV is the loop device, OUT the output directory (deleted between runs)."
    echo
    echo '```'
    for t in "${selected[@]}" "${verify_rows[@]}"; do short "${cmdline[$t]}"; done
    echo '```'
    if ((${#notes[@]})); then
        echo
        echo "## Notes"
        echo
        for n in "${notes[@]}"; do echo "- $n"; done
    fi
} >"$work/report.md"

mkdir -p "$(dirname "$report")"
cp "$work/report.md" "$report"
cat "$report"
log "report written to $report"
