#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a fixed time each (default
# 10s) on top of its seed corpus. A failure leaves the input that caused it
# in the package's testdata/fuzz/<target>/: commit it as a regression seed.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-10s}"
# Each target's package folder and name, from the source.
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r file; do
  pkg="./$(dirname "${file#./}")"
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -d' ' -f2); do
    echo "fuzz: $pkg $target for $fuzztime"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 2s "$pkg"
  done
done
