#!/usr/bin/env bash
# Run every benchmark; one JSON line per figure goes to bench/results.jsonl (and the terminal).
# The README table is made from that file by `python bench/report.py`.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results.jsonl
: > "$out"
for name in vad plot speech session protocol server engine agents tables browser cockpit chained experiments hardening; do
  echo "== bench_$name" >&2
  python "bench/bench_$name.py" | tee -a "$out"
done
