"""Render bench/results.jsonl (written by bench/run_all.sh) as the Markdown table shown in README."""

from __future__ import annotations

import json
import sys
from pathlib import Path

SKIP = {"bench", "metric", "value", "unit"}


def rows(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def table(records: list[dict]) -> str:
    lines = ["| bench | figure | value | context |", "|---|---|---|---|"]
    for r in records:
        context = ", ".join(f"{k}={fmt(v)}" for k, v in r.items() if k not in SKIP)
        value = f"{fmt(r.get('value'))} {r.get('unit', '')}"
        lines.append(f"| {r.get('bench', '')} | {r.get('metric', '')} | {value} | {context} |")
    return "\n".join(lines)


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("results.jsonl")
    print(table(rows(source)))
