#!/usr/bin/env bash
# Removes what a crashed test run can leave behind, and only that: FUSE mounts, loop devices and
# directories whose path starts with ${TMPDIR:-/tmp}/exhibit-test- (the tests create everything
# there). Nothing else is touched: never `losetup -D`, never a mount or loop device elsewhere.
#
# Order matters (shared/FAULTY-DEVICE-NOTES.md): a plain umount of a hung FUSE mount blocks
# forever, so first abort the FUSE connections, then detach the loop devices, then unmount,
# then delete the directories.
#
# This also removes the fixtures of a test run that is still going: run it only where no other
# run uses the same TMPDIR (CI does; on a shared machine give each run its own TMPDIR).
#
#   scripts/sweep-test-leftovers.sh            sweep (needs root for loop devices and mounts)
#   scripts/sweep-test-leftovers.sh --dry-run  only list what would be swept
#   scripts/sweep-test-leftovers.sh --quiet    say nothing when there is nothing to sweep
set -euo pipefail

dry=0 quiet=0
for a in "$@"; do
    case $a in
        --dry-run) dry=1 ;;
        --quiet) quiet=1 ;;
        *) echo "usage: $0 [--dry-run] [--quiet]" >&2; exit 2 ;;
    esac
done
base=${TMPDIR:-/tmp}
base=${base%/}
prefix="$base/exhibit-test-"
is_root=0
[[ $(id -u) -eq 0 ]] && is_root=1

say() { echo "sweep: $*"; }
run() { if ((dry)); then say "would run: $*"; else say "$*"; "$@"; fi; }

# Mounts under the prefix, deepest first: "MAJ:MIN FSTYPE MOUNTPOINT" (mountinfo escapes \040 etc.).
mounts=()
while IFS= read -r line; do
    # mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
    read -r -a f <<<"$line"
    mp=$(printf '%b' "${f[4]}")
    [[ $mp == "$prefix"* ]] || continue
    fstype=""
    for ((i = 5; i < ${#f[@]}; i++)); do
        if [[ ${f[i]} == "-" ]]; then fstype=${f[i + 1]}; break; fi
    done
    mounts+=("${f[2]} $fstype $mp")
done </proc/self/mountinfo
if ((${#mounts[@]})); then
    mapfile -t mounts < <(printf '%s\n' "${mounts[@]}" | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-)
fi

# 1. Abort the FUSE connections of FUSE mounts under the prefix.
conns=/sys/fs/fuse/connections
for m in "${mounts[@]}"; do
    read -r majmin fstype mp <<<"$m"
    [[ $fstype == fuse* ]] || continue
    if ((is_root)) && ! mountpoint -q "$conns" && [[ -d $conns ]]; then
        run mount -t fusectl fusectl "$conns" || true
    fi
    # fusectl names a connection by the superblock's kernel dev_t: MAJOR << 20 | MINOR.
    dev=$(( (${majmin%%:*} << 20) | ${majmin##*:} ))
    if ((dry)); then
        say "would abort FUSE connection $dev ($mp)"
    elif [[ -e $conns/$dev/abort ]]; then
        say "abort FUSE connection $dev ($mp)"
        echo 1 >"$conns/$dev/abort" || true
    else
        say "FUSE mount $mp: no connection $dev under $conns (server gone?)"
    fi
done

# 2. Detach loop devices whose backing file lies under the prefix.
if command -v losetup >/dev/null; then
    while read -r name back; do
        [[ -n ${name:-} ]] || continue
        back=$(printf "%b" "$back")
        back=${back% (deleted)}
        [[ $back == "$prefix"* ]] || continue
        if ((is_root)); then run losetup -d "$name" || say "could not detach $name"; else say "not root: leaving $name ($back)"; fi
    done < <(losetup --raw -n -l -O NAME,BACK-FILE 2>/dev/null || true)
fi

# 3. Unmount, deepest first (lazily if a plain unmount fails).
for m in "${mounts[@]}"; do
    read -r majmin fstype mp <<<"$m"
    if ((is_root)); then
        run umount "$mp" 2>/dev/null || run umount -l "$mp" || say "could not unmount $mp"
    else
        say "not root: leaving mount $mp"
    fi
done

# 4. Delete the directories and files (never crossing into a filesystem still mounted there).
shopt -s nullglob
left=("$prefix"*)
for p in "${left[@]}"; do
    run rm -rf --one-file-system -- "$p" || say "could not remove $p"
done
((${#mounts[@]} + ${#left[@]} + quiet)) || say "nothing under $prefix*"
exit 0
