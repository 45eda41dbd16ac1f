#!/usr/bin/env bash
# The test command. README.md and .ci/run both run exactly this, so what passes for a developer
# passes in CI.
#
# 1. installs the Debian packages of .ci/apt-packages that are missing (as root, or via
#    password-less sudo; otherwise it says what to install and stops);
#    builds Garage once (scripts/install-garage.sh) for the S3 tests, which must then run;
# 2. runs `cargo test --profile ci --locked` (release optimisation without LTO, see Cargo.toml) (extra arguments go to cargo test, e.g.
#    `scripts/test.sh -- --nocapture`);
# 3. repeats the per-binary summary lines and prints one total line at the end.
#
# Run as root for the full suite: the tests that need real loop devices or FUSE skip otherwise.
# Test fixtures live under ${TMPDIR:-/tmp}/exhibit-test-*; scripts/sweep-test-leftovers.sh
# removes what a crashed run left there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ${EXHIBIT_SKIP_DEPS:-0} != 1 ]]; then
    scripts/install-deps.sh --update || {
        echo "test: missing packages (see above); EXHIBIT_SKIP_DEPS=1 runs the tests anyway" >&2
        exit 2
    }
fi

# Current libewf (pyewf, a manylinux wheel from PyPI) as one more independent E01 reader; the
# tests that use it skip without it, so a failed install is not fatal.
if [[ ${EXHIBIT_SKIP_DEPS:-0} != 1 ]] && command -v python3 >/dev/null &&
    ! python3 -c 'import pyewf' 2>/dev/null; then
    python3 -m pip install -q libewf-python </dev/null ||
        echo "test: could not install libewf-python; the pyewf checks will skip"
fi

# PyYAML, a YAML 1.1 loader like many examiners' tools: the record must load there with every
# string intact (tests/it/readable.rs); that check skips without it.
if [[ ${EXHIBIT_SKIP_DEPS:-0} != 1 ]] && command -v python3 >/dev/null &&
    ! python3 -c 'import yaml' 2>/dev/null; then
    python3 -m pip install -q pyyaml </dev/null ||
        echo "test: could not install pyyaml; the YAML 1.1 record check will skip"
fi

if ! command -v cargo >/dev/null && [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo ]]; then
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi

# Garage, the real S3 server of tests/it/s3*.rs: built once into a cache outside target/
# (about 12 minutes the first time). Once it is there the S3 tests must run, so
# EXHIBIT_REQUIRE_GARAGE=1 turns a missing server into a failure instead of a silent skip.
if [[ ${EXHIBIT_SKIP_DEPS:-0} != 1 ]]; then
    scripts/install-garage.sh >/dev/null || {
        echo "test: could not build Garage (scripts/install-garage.sh); the S3 tests need it" >&2
        exit 2
    }
    export EXHIBIT_REQUIRE_GARAGE=1
fi
command -v cargo >/dev/null || { echo "test: cargo not found" >&2; exit 2; }

if [[ $(id -u) -ne 0 ]]; then
    echo "test: not root: tests that need loop devices or FUSE will skip"
fi
echo "test: $(cargo --version), $(rustc --version)"

log=$(mktemp "${TMPDIR:-/tmp}/exhibit-cargo-test.XXXXXX")
trap 'rm -f "$log"' EXIT

set +e
cargo test --profile ci --locked --no-fail-fast "$@" 2>&1 </dev/null | tee "$log"
rc=${PIPESTATUS[0]}
set -e

echo
echo "== cargo test summary"
grep -E '^(     Running|   Doc-tests|test result:)' "$log" | sed -e 's/^ *//' || true
# One total line: "tests: N passed, N failed, N skipped" (skipped = #[ignore]d).
grep -E '^test result:' "$log" | awk '
    { for (i = 1; i <= NF; i++) {
          v = $i; gsub(/[;,.]/, "", v)
          if ($(i + 1) ~ /^passed/)  p += v
          if ($(i + 1) ~ /^failed/)  f += v
          if ($(i + 1) ~ /^ignored/) s += v } }
    END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }'
if ((rc != 0)) && ! grep -q '^test result:' "$log"; then
    echo "test: cargo test failed before running any test (exit $rc); see the build output above" >&2
fi
exit "$rc"
