#!/usr/bin/env bash
# Run every benchmark; one JSON line per figure goes to bench/results.jsonl (and the terminal).
# The README table is made from that file by `python bench/report.py`.
# `bash bench/run_all.sh server session` runs only those benches and replaces only their lines in the file
# (extra arguments for one bench: BENCH_ARGS_<name>, e.g. BENCH_ARGS_server="--workers 1 2").
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results.jsonl
all=(vad plot speech session protocol wire_audio server engine agents tables browser cockpit chained experiments hardening)
if [ "$#" -gt 0 ]; then
  names=("$@")
  python - "$out" "${names[@]}" <<'PY'
import json, sys
from pathlib import Path
path, names = Path(sys.argv[1]), set(sys.argv[2:])
kept = [
    line for line in (path.read_text().splitlines() if path.exists() else [])
    if not (line.startswith("{") and json.loads(line).get("bench") in names)
]
path.write_text("".join(line + "\n" for line in kept))
PY
else
  names=("${all[@]}")
  : > "$out"
fi
for name in "${names[@]}"; do
  echo "== bench_$name $(uptime)" >&2
  extra="BENCH_ARGS_$name"
  # shellcheck disable=SC2086
  python "bench/bench_$name.py" ${!extra:-} | tee -a "$out"
done
