#!/usr/bin/env bash
# exhibit rescue vs GNU ddrescue on the same faulty block device (tests/it/support's FUSE + loop
# fixture, run by examples/faulty_device.rs): wall time, reads, and reads that touched a bad
# sector (from the device's own read log), with the same retry count. Needs root, /dev/fuse,
# losetup and ddrescue. Writes a Markdown table to stdout (and to $OUT if set).
#
#   bench/rescue.sh [SIZE] [SCATTER] [SECTOR_SIZE] [FAIL_DELAY_MS] [RETRIES] [REPEATS]
#   defaults:        128M   300       512           2               1         3
# Each tool runs REPEATS times, alternating; the table gives the fastest and the median wall
# time (a shared 2-core machine is noisy), and the reads of the last run (they are the same
# every run: both tools are deterministic).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-128M}
SCATTER=${2:-300}
SS=${3:-512}
FAIL_MS=${4:-2}
RETRIES=${5:-1}
REPEATS=${6:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -q --release --examples --bin exhibit
BIN=$CARGO_TARGET_DIR/release
if "$BIN/exhibit" rescue --help >/dev/null 2>&1; then
    RESCUE=("$BIN/exhibit" rescue)
    RESCUE_NAME="exhibit rescue"
else
    RESCUE=("$BIN/examples/rescue")
    RESCUE_NAME="exhibit rescue (examples/rescue.rs: library, CLI not wired yet)"
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/exhibit-test-bench-XXXXXX")
cleanup() {
    if [[ -n "${DEV_PID:-}" ]]; then
        echo quit >&"${DEV[1]}" 2>/dev/null || true
        wait "$DEV_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

coproc DEV { exec "$BIN/examples/faulty_device" --size "$SIZE" --sector-size "$SS" \
    --scatter "$SCATTER" --bad "1000-1063" --seed 7 --fail-delay-ms "$FAIL_MS" \
    --bad-list "$WORK/bad.txt"; }
DEV_PID=$DEV_PID
read -r word DEVICE <&"${DEV[0]}"
[[ $word == DEVICE ]] || { echo "no device: $word $DEVICE" >&2; exit 1; }
cmd() { echo "$1" >&"${DEV[1]}"; read -r ok <&"${DEV[0]}"; [[ $ok == OK ]]; }

run() { # name, then the command
    local name=$1; shift
    rm -f "$WORK/$name".*.tmp
    cmd reset
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || true
    t1=$(date +%s.%N)
    cmd "log $WORK/$name.log"
    echo "$t0 $t1" >>"$WORK/$name.time"
}

for ((i = 0; i < REPEATS; i++)); do
    rm -f "$WORK"/exhibit.{raw,map,md5,sha1,sha256,yaml} "$WORK"/ddrescue.{img,map}
    EXHIBIT_RESCUE_PHASES=1 run exhibit "${RESCUE[@]}" "$DEVICE" -o "$WORK/exhibit" --retry-passes "$RETRIES"
    run ddrescue ddrescue -q -d -b "$SS" -r "$RETRIES" "$DEVICE" "$WORK/ddrescue.img" "$WORK/ddrescue.map"
    # What exhibit does at the end and ddrescue leaves to the user: the three media hashes.
    t0=$(date +%s.%N)
    for h in md5sum sha1sum sha256sum; do "$h" "$WORK/ddrescue.img" >/dev/null; done
    t1=$(date +%s.%N)
    echo "$t0 $t1" >>"$WORK/hashes.time"
done

python3 - "$WORK" "$SS" "$SIZE" "$SCATTER" "$FAIL_MS" "$RETRIES" "$RESCUE_NAME" <<'PY' | tee ${OUT:+"$OUT"}
import bisect, sys, os, hashlib, platform, datetime, subprocess
work, ss, size, scatter, fail_ms, retries, rescue_name = sys.argv[1:]
ss = int(ss)
bad = sorted(int(l) for l in open(f"{work}/bad.txt"))
bad_bytes = [s * ss for s in bad]
def bad_sectors_of_map(path):
    out = []
    started = False
    for line in open(path):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        f = line.split()
        if not started:
            started = True
            continue
        pos, sz, st = int(f[0], 0), int(f[1], 0), f[2]
        if st == '-':
            out.extend(range(pos // ss, (pos + sz + ss - 1) // ss))
    return out
rows = []
for name, mapfile, image in [("exhibit", f"{work}/exhibit.map", f"{work}/exhibit.raw"),
                             ("ddrescue", f"{work}/ddrescue.map", f"{work}/ddrescue.img")]:
    walls = sorted(b - a for a, b in (map(float, l.split()) for l in open(f"{work}/{name}.time")))
    reads = touching = failed = 0
    for line in open(f"{work}/{name}.log"):
        off, ln, fl = map(int, line.split())
        reads += 1
        failed += fl
        i = bisect.bisect_left(bad_bytes, off - ss + 1)
        if i < len(bad_bytes) and bad_bytes[i] < off + ln:
            touching += 1
    found = bad_sectors_of_map(mapfile)
    hashing = ""
    if name == "exhibit":
        marks = dict((l.split()[2], float(l.split()[0])) for l in open(f"{work}/exhibit.err") if l.strip().endswith(("hashing", "end")) and " s " in l)
        if "hashing" in marks and "end" in marks:
            hashing = f"{marks['end'] - marks['hashing']:.2f}"
    rows.append((name, walls, reads, touching, failed, found == bad, len(found), hashing))
names = {"exhibit": rescue_name, "ddrescue": "GNU ddrescue " + subprocess.run(["ddrescue", "--version"], capture_output=True, text=True).stdout.split("\n")[0].split()[-1] + f" (-d -b {ss} -r {retries})"}
print(f"### {size} device, {ss}-byte sectors, {len(bad)} bad sectors ({scatter} scattered + a run of 64), "
      f"failing read {fail_ms} ms, retries {retries}")
print()
print(f"{platform.node()}, {os.cpu_count()} cores, kernel {platform.release()}, {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC")
print()
print(f"| tool | wall s, fastest of {len(rows[0][1])} | median | of which hashing (last run) | reads | reads touching a bad sector | failed reads | map = injected bad sectors |")
print("|---|---:|---:|---:|---:|---:|---:|---|")
for name, walls, reads, touching, failed, exact, n, hashing in rows:
    med = walls[len(walls) // 2]
    print(f"| {names[name]} | {walls[0]:.2f} | {med:.2f} | {hashing or '-'} | {reads} | {touching} | {failed} | {'yes' if exact else f'no ({n} sectors)'} |")
hw = sorted(b - a for a, b in (map(float, l.split()) for l in open(f"{work}/hashes.time")))
dw = rows[1][1]
both = sorted(x + y for x, y in zip(dw, hw))
print(f"| GNU ddrescue, then md5sum, sha1sum, sha256sum of its image | {both[0]:.2f} | {both[len(both)//2]:.2f} | {hw[len(hw)//2]:.2f} | | | | |")
e, d = rows[0], rows[1]
print()
print(f"Ratios exhibit/ddrescue: fastest wall time {e[1][0]/d[1][0]:.2f}, median {e[1][len(e[1])//2]/d[1][len(d[1])//2]:.2f} "
      f"(with the hashes: {e[1][0]/both[0]:.2f}, median {e[1][len(e[1])//2]/both[len(both)//2]:.2f}), "
      f"reads touching bad sectors {e[3]/max(d[3],1):.2f}, all reads {e[2]/max(d[2],1):.2f}")
PY
