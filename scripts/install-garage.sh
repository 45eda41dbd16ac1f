#!/usr/bin/env bash
# Builds Garage (a real S3-compatible object store) once into a cache outside target/, and
# prints the path of its binary. The S3 tests (tests/it/s3*.rs) start it on loopback; they skip
# when it is absent and EXHIBIT_REQUIRE_GARAGE is not set.
#
# The build takes about 12 minutes on two cores, so the cache survives `cargo clean` and
# fresh clones: ${EXHIBIT_TOOL_CACHE:-/var/cache/exhibit-test-tools}/garage-VERSION/bin/garage.
#
#   scripts/install-garage.sh          build if missing, print the binary's path
#   scripts/install-garage.sh --path   only print where it would be (exit 1 if absent)
set -euo pipefail

version=${GARAGE_VERSION:-2.5.0}
cache=${EXHIBIT_TOOL_CACHE:-/var/cache/exhibit-test-tools}
root="$cache/garage-$version"
bin="$root/bin/garage"

if [[ -x $bin ]]; then
    echo "$bin"
    exit 0
fi
[[ ${1:-} == --path ]] && exit 1

if ! command -v cargo >/dev/null && [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo ]]; then
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
mkdir -p "$cache"
echo "install-garage: building garage $version into $root (about 12 minutes on 2 cores)" >&2
# Its own target directory inside the cache, so a rebuild after an interruption resumes.
CARGO_TARGET_DIR="$cache/garage-build" cargo install garage --locked --version "$version" \
    --root "$root" </dev/null >&2
rm -rf "$cache/garage-build"
echo "$bin"
