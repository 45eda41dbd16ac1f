#!/usr/bin/env bash
# Installs the Debian packages listed in .ci/apt-packages that are missing.
#
# Fast path: when every package is installed, it does nothing (no apt-get update).
# As root it runs apt-get itself; otherwise through sudo when that works without a password;
# otherwise it names the missing packages and exits 3.
#
#   scripts/install-deps.sh            install what is missing
#   scripts/install-deps.sh --update   apt-get update first when something is missing (fresh machine)
#   scripts/install-deps.sh --check    only report; exit 3 when something is missing
#   scripts/install-deps.sh --build    only the build's packages (the list's `# build` section),
#                                      with an apt-get update when something is missing
#   scripts/install-deps.sh [OPTION] EXTRA...   also these packages (the benchmarks use this)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
check_only=0 update_first=0 build_only=0
case ${1:-} in
    --check) check_only=1; shift ;;
    --update) update_first=1; shift ;;
    --build) build_only=1 update_first=1; shift ;;
esac

list="$root/.ci/apt-packages"
if ((build_only)); then
    # The lines from '# build' up to the next section header ('# tests').
    mapfile -t wanted < <(sed -n '/^# build/,/^# tests/p' "$list" |
        sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d')
else
    mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$list")
fi
wanted+=("$@")

missing=()
for p in "${wanted[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
    echo "install-deps: all ${#wanted[@]} packages present"
    exit 0
fi
echo "install-deps: missing: ${missing[*]}"
((check_only)) && exit 3

if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "install-deps: not root and no password-less sudo; install them with:" >&2
    echo "    sudo apt-get install -y ${missing[*]}" >&2
    exit 3
fi

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y -q -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
if ((update_first)); then
    "${as_root[@]}" apt-get update -q </dev/null
fi
# Try without an update first (a warm machine has fresh lists); update and retry if that fails.
if ! "${as_root[@]}" apt-get install "${apt_opts[@]}" --no-install-recommends "${missing[@]}" </dev/null; then
    "${as_root[@]}" apt-get update -q </dev/null
    "${as_root[@]}" apt-get install "${apt_opts[@]}" --no-install-recommends "${missing[@]}" </dev/null
fi
echo "install-deps: installed ${missing[*]}"
