#!/usr/bin/env bash
# Bounded cargo-fuzz runs of the parsers that read hostile files: the E01 reader (through
# verify and info) and the ddrescue map parser. Each target runs for FUZZ_SECONDS (default 60)
# with bounded input size, memory and time per input. Needs a nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`); without either it says so and exits 0, so it can sit in any
# pipeline. Not part of scripts/test.sh: the stable counterparts (tests/it/verify_fuzz.rs,
# tests/it/readable.rs) run there.
#
#   scripts/fuzz.sh                 # every target
#   FUZZ_SECONDS=600 scripts/fuzz.sh map_parse
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${FUZZ_SECONDS:-60}
targets=("$@")
((${#targets[@]})) || targets=(verify_e01 map_parse)

if ! command -v rustup >/dev/null || ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: skipped: no nightly toolchain (rustup toolchain install nightly)"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: skipped: cargo-fuzz is not installed (cargo install cargo-fuzz)"
    exit 0
fi

for t in "${targets[@]}"; do
    case $t in
    verify_e01) args=(-max_len=262144 -rss_limit_mb=2048 -timeout=10) ;;
    map_parse) args=(-max_len=65536 -rss_limit_mb=1024 -timeout=5) ;;
    *) echo "fuzz: unknown target '$t' (verify_e01, map_parse)" >&2; exit 2 ;;
    esac
    echo "fuzz: $t for ${seconds}s"
    # Overflow checks on, as in the ci profile: a wrap on a hostile size is a finding.
    RUSTFLAGS="${RUSTFLAGS:-} -C overflow-checks=on" \
        cargo +nightly fuzz run --fuzz-dir fuzz "$t" -- -max_total_time="$seconds" "${args[@]}"
done
echo "fuzz: ${targets[*]}: no crash in ${seconds}s each"
