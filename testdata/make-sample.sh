#!/usr/bin/env bash
# Builds testdata/sample.img: a small MBR disk image with an ext4 and a FAT12 partition holding
# a few known files, plus per-sector text markers in the unallocated tail.
#
# No root, no mounting: mkfs.ext4 -d fills ext4 from a directory, debugfs fixes what -d copies
# from the host (ctime, owners) and deletes one file, mtools fills FAT, sfdisk writes the table.
# Every random or time-based value is pinned, so running this again with the same tool versions
# gives the same bytes (the sha256 is in testdata/README.md).
#
# Needs: e2fsprogs, dosfstools, mtools, fdisk (sfdisk), openssl, coreutils.
# Usage: testdata/make-sample.sh [OUTPUT]   (default: testdata/sample.img beside this script)
set -euo pipefail
export LC_ALL=C TZ=UTC

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/sample.img}

# 2023-11-14 22:13:20 UTC. Every timestamp in the image is this one.
EPOCH=1700000000
export SOURCE_DATE_EPOCH=$EPOCH E2FSPROGS_FAKE_TIME=$EPOCH

SECTOR=512
TOTAL_SECTORS=12295          # 6 MiB + 7 sectors: not a multiple of 32 KiB nor of 1 MiB
P1_START=2048 P1_SIZE=6144   # ext4, 3 MiB
P2_START=8192 P2_SIZE=3072   # FAT12, 1.5 MiB
GAP_START=11264              # 11264 .. 12294: unallocated, one text marker per sector

for tool in mkfs.ext4 debugfs mkfs.vfat mcopy mmd sfdisk openssl; do
    command -v "$tool" >/dev/null || { echo "make-sample: $tool not found" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/exhibit-sample.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Deterministic pseudo-random bytes: AES-128-CTR keystream under a fixed key.
prng() { # BYTES KEYHEX
    head -c "$1" /dev/zero | openssl enc -aes-128-ctr -nosalt -K "$2" -iv 00000000000000000000000000000000
}

# ---------------------------------------------------------------- ext4 contents
e=$work/ext4
mkdir -p "$e/evidence" "$e/docs"
cat >"$e/README.txt" <<'TXT'
exhibit sample disk image, partition 1 (ext4).
These files exist so that tests and humans can find known content at known places.
TXT
printf 'case: EXHIBIT-SAMPLE-0001\nexaminer: nobody\nnote: the quick brown fox jumps over the lazy dog\n' \
    >"$e/evidence/notes.txt"
prng 102400 000102030405060708090a0b0c0d0e0f >"$e/evidence/random.bin"
head -c 65536 /dev/zero >"$e/evidence/zeros.bin"
# 16 sectors, each starting with its own index: a file whose content shows where a read landed.
for i in $(seq 0 15); do printf '%-511s\n' "exhibit-sample ext4 marker.bin sector $i"; done \
    >"$e/evidence/marker.bin"
for i in $(seq 1 200); do printf 'line %03d: forensic images must be bit-for-bit copies\n' "$i"; done \
    >"$e/docs/lines.txt"
printf 'this file is deleted after the filesystem is built; fls lists it as deleted\n' \
    >"$e/deleted.txt"
ln -s evidence/notes.txt "$e/latest-notes"
find "$e" -exec touch -h -d "@$EPOCH" {} +

truncate -s $((P1_SIZE * SECTOR)) "$work/p1.img"
mkfs.ext4 -q -F -b 1024 -I 256 -m 0 -N 64 -L EXHIBIT-EXT4 \
    -U 45584849-4249-4554-8000-000000000001 \
    -E hash_seed=45584849-4249-4554-8000-000000000002,root_owner=0:0,lazy_itable_init=0 \
    -d "$e" "$work/p1.img"

# mkfs -d copies ctime and owners from the host files; pin them, then delete deleted.txt.
{
    for p in / /lost+found /README.txt /evidence /evidence/notes.txt /evidence/random.bin \
             /evidence/zeros.bin /evidence/marker.bin /docs /docs/lines.txt /deleted.txt /latest-notes; do
        echo "sif $p uid 0"
        echo "sif $p gid 0"
        for f in atime mtime ctime crtime; do echo "sif $p $f @$EPOCH"; done
    done
    echo "rm /deleted.txt"
    for p in /; do for f in atime mtime ctime; do echo "sif $p $f @$EPOCH"; done; done
} >"$work/debugfs.cmd"
debugfs -w -f "$work/debugfs.cmd" "$work/p1.img" >/dev/null 2>"$work/debugfs.err" || {
    cat "$work/debugfs.err" >&2; exit 2; }
if grep -v '^debugfs ' "$work/debugfs.err" | grep -q .; then cat "$work/debugfs.err" >&2; exit 2; fi
# (The deleted inode's dtime comes from E2FSPROGS_FAKE_TIME.) Refuse to ship a damaged fs.
e2fsck -fn "$work/p1.img" >/dev/null 2>&1 || { echo "make-sample: e2fsck found errors" >&2; exit 2; }

# ---------------------------------------------------------------- FAT12 contents
f=$work/fat
mkdir -p "$f/DOCS"
printf 'exhibit sample disk image, partition 2 (FAT12).\r\n' >"$f/HELLO.TXT"
printf 'case EXHIBIT-SAMPLE-0001, FAT side\r\n' >"$f/DOCS/REPORT.TXT"
prng 20000 f0e0d0c0b0a090807060504030201000 >"$f/DOCS/BLOB.BIN"
find "$f" -exec touch -d "@$EPOCH" {} +

mkfs.vfat --invariant -C -F 12 -S 512 -h $P2_START -i 45584849 -n EXHIBIT-FAT \
    "$work/p2.img" $((P2_SIZE * SECTOR / 1024)) >/dev/null
export MTOOLS_SKIP_CHECK=1 MTOOLS_NO_VFAT=1
mmd -i "$work/p2.img" ::/DOCS
mcopy -m -i "$work/p2.img" "$f/HELLO.TXT" ::/HELLO.TXT
mcopy -m -i "$work/p2.img" "$f/DOCS/REPORT.TXT" "$f/DOCS/BLOB.BIN" ::/DOCS/

# ---------------------------------------------------------------- the disk
img=$work/sample.img
truncate -s $((TOTAL_SECTORS * SECTOR)) "$img"
sfdisk --quiet --no-reread --no-tell-kernel --wipe never "$img" <<SFD
label: dos
label-id: 0x45584849
unit: sectors
sector-size: 512

start=$P1_START, size=$P1_SIZE, type=83
start=$P2_START, size=$P2_SIZE, type=1
SFD
dd if="$work/p1.img" of="$img" bs=$SECTOR seek=$P1_START conv=notrunc status=none
dd if="$work/p2.img" of="$img" bs=$SECTOR seek=$P2_START conv=notrunc status=none
for ((lba = GAP_START; lba < TOTAL_SECTORS; lba++)); do
    printf '%-511s\n' "exhibit-sample unallocated LBA $lba"
done | dd of="$img" bs=$SECTOR seek=$GAP_START conv=notrunc status=none

[[ $(stat -c %s "$img") -eq $((TOTAL_SECTORS * SECTOR)) ]] || { echo "make-sample: wrong size" >&2; exit 2; }
mv "$img" "$out"
sha256sum "$out"
