#!/usr/bin/env bash
# Writes a benchmark source of mixed content: 64 MiB pieces cycling random, zeros, text
# (a third each), the same bytes on every Debian machine for the same SIZE.
#
#   bench/make-source.sh SIZE FILE      SIZE in bytes or with an IEC suffix (2G, 256M)
#
# random: AES-128-CTR keystream under a fixed key (incompressible, like encrypted or
#         compressed data); zeros: like unused space; text: the licence texts of
#         /usr/share/common-licenses repeated (compressible like documents; the period is far
#         longer than a 32 KiB E01 chunk, so a chunk sees ordinary text, not repeats).
set -euo pipefail
export LC_ALL=C
(($# == 2)) || { echo "usage: $0 SIZE FILE" >&2; exit 2; }
size=$(numfmt --from=iec "$1")
file=$2
piece=$((64 << 20))
mib=$((1 << 20))
((size > 0)) || { echo "make-source: size must be positive" >&2; exit 2; }

tmp=$(mktemp -d "$(dirname "$file")/.make-source.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# One text piece, built once.
text=$tmp/text
licences=(/usr/share/common-licenses/*)
if [[ -e ${licences[0]} ]]; then
    while (($(stat -c %s "$text" 2>/dev/null || echo 0) < piece)); do cat "${licences[@]}" >>"$text"; done
else # not Debian: base64 of a keystream (compressible to about 3/4)
    head -c $((piece * 3 / 4 + 4096)) /dev/zero \
        | openssl enc -aes-128-ctr -nosalt -K 0f0e0d0c0b0a09080706050403020100 -iv 0 | base64 -w 76 >"$text"
fi
truncate -s $piece "$text"

: >"$file"
written=0 i=0
while ((written < size)); do
    n=$((size - written < piece ? size - written : piece))
    case $((i % 3)) in
        0) # each random piece gets its own IV, so no two pieces are equal
            head -c "$n" /dev/zero | openssl enc -aes-128-ctr -nosalt \
                -K 000102030405060708090a0b0c0d0e0f -iv "$(printf '%032x' "$i")" >>"$file" ;;
        1) head -c "$n" /dev/zero >>"$file" ;;
        2) head -c "$n" "$text" >>"$file" ;;
    esac
    written=$((written + n)) i=$((i + 1))
done
[[ $(stat -c %s "$file") -eq $size ]] || { echo "make-source: wrong size" >&2; exit 2; }
