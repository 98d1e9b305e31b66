"""Browser harness bench: what a browser test pays before its first click (tests/browser/README.md).

Figures (median of --repeats): JupyterLab from launch until /api/status answers; Debian Chromium launched by
Playwright; a notebook from page.goto until its kernel is idle; run-all of a one-cell notebook. The baseline,
in the same run, is a bare python3 kernel started and ready through jupyter_client (no server, no browser):
the notebook figure is given as a ratio of it.

Prints one JSON line per figure: {"bench": "browser", "metric", "value", "unit", ...}; prints nothing and
exits 0 when Chromium or Playwright is missing (the reason goes to stderr).
Run: ``python bench/bench_browser.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "browser"))

from browser_harness import (
    browser_unavailable_reason,
    launch_chromium,
    open_notebook,
    start_jupyter,
)


def emit(metric: str, value: float, unit: str, **tags: Any) -> None:
    print(
        json.dumps({"bench": "browser", "metric": metric, "value": value, "unit": unit, **tags}), flush=True
    )


def kernel_ready_s() -> float:
    from jupyter_client.manager import start_new_kernel

    start = time.perf_counter()
    manager, client = start_new_kernel(kernel_name="python3")
    took = time.perf_counter() - start
    client.stop_channels()
    manager.shutdown_kernel(now=True)
    return took


def one_round() -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    figures = {}
    with tempfile.TemporaryDirectory() as workdir:
        server = start_jupyter(Path(workdir))
        try:
            figures["jupyter_ready_s"] = server.started_s
            server.write_notebook("one.ipynb", ["1 + 1"])
            with sync_playwright() as playwright:
                start = time.perf_counter()
                browser = launch_chromium(playwright)
                figures["chromium_launch_s"] = time.perf_counter() - start
                try:
                    lab = open_notebook(browser.new_page(), server, "one.ipynb")
                    figures["notebook_idle_s"] = lab.opened_s
                    start = time.perf_counter()
                    lab.run_all()
                    figures["run_all_one_cell_s"] = time.perf_counter() - start
                    assert lab.output_text(0) == "2"
                finally:
                    browser.close()
        finally:
            server.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    reason = browser_unavailable_reason()
    if reason:
        print(f"bench_browser skipped: {reason}", file=sys.stderr)
        return
    baseline = statistics.median(kernel_ready_s() for _ in range(args.repeats))
    rounds = [one_round() for _ in range(args.repeats)]
    tags = {"stat": "median", "repeats": args.repeats}
    emit("kernel_ready_s", round(baseline, 2), "s", **tags)
    for metric in rounds[0]:
        value = statistics.median(r[metric] for r in rounds)
        extra = (
            {"baseline": "kernel_ready_s", "ratio": round(value / baseline, 2)}
            if metric == "notebook_idle_s"
            else {}
        )
        emit(metric, round(value, 2), "s", **tags, **extra)


if __name__ == "__main__":
    main()
