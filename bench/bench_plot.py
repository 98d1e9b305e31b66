"""Plot one hour of 24 kHz audio with its VAD track and turns; baseline: the same for one minute.

Prints one JSON line per figure. Timings are wall-clock (best of `--repeat`); the plot time covers building
the figure and rendering it to PNG bytes, and excludes the VAD pass (reported separately, energy engine).
Peak memory is measured with tracemalloc (numpy registers its buffers with it) over a separate plot run, and
counts only allocations made while plotting: the input audio and VAD track are already in memory.

    python bench/bench_plot.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import json
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from voicelab.audio.core import Audio
from voicelab.audio.turns import TurnAnalysis, detect_turns
from voicelab.plots import plot_session

RATE = 24000


def speech_like(seconds: int, seed: int = 0) -> Audio:
    """Noise bursts of 0.5-3 s separated by 0.3-2 s of near silence, as a stand-in for a conversation."""
    rng = np.random.default_rng(seed)
    samples = np.empty(seconds * RATE, dtype=np.float32)
    position, loud = 0, False
    while position < samples.size:
        length = int(RATE * (rng.uniform(0.5, 3.0) if loud else rng.uniform(0.3, 2.0)))
        part = samples[position : position + length]
        part[:] = rng.standard_normal(part.size, dtype=np.float32) * (0.2 if loud else 0.001)
        position += length
        loud = not loud
    np.clip(samples, -1.0, 1.0, out=samples)
    return Audio(samples, RATE)


def render(audio: Audio, analysis: TurnAnalysis) -> int:
    figure = plot_session(audio, turns=analysis, width_px=1600, height_px=600)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.tell()


def best_time(function: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_bytes(function: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(label: str, seconds: int, repeat: int) -> dict[str, float]:
    audio = speech_like(seconds)
    start = time.perf_counter()
    analysis = detect_turns(audio, engine="energy")
    vad_s = time.perf_counter() - start
    plot_s = best_time(lambda: render(audio, analysis), repeat)
    peak = peak_bytes(lambda: render(audio, analysis))
    figures = {"vad_s": vad_s, "plot_s": plot_s, "plot_peak_mb": peak / 2**20, "turns": len(analysis.turns)}
    for metric, value in figures.items():
        unit = {"vad_s": "s", "plot_s": "s", "plot_peak_mb": "MiB", "turns": "count"}[metric]
        print(
            json.dumps(
                {"bench": "plot", "audio": label, "metric": metric, "value": round(value, 4), "unit": unit}
            )
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    minute = measure("1 min", 60, args.repeat)
    hour = measure("1 h", 3600, args.repeat)
    for metric in ("plot_s", "plot_peak_mb", "vad_s"):
        print(
            json.dumps(
                {
                    "bench": "plot",
                    "audio": "1 h vs 1 min",
                    "metric": f"{metric}_ratio",
                    "value": round(hour[metric] / minute[metric], 2),
                    "unit": "x",
                    "baseline": "1 min of the same audio",
                }
            )
        )
    print(
        json.dumps(
            {
                "bench": "plot",
                "audio": "1 h",
                "metric": "meets_target",
                "value": hour["plot_s"] < 2.0 and hour["plot_peak_mb"] < 1024,
                "unit": "bool",
                "target": "plot < 2 s and < 1 GiB",
            }
        )
    )


if __name__ == "__main__":
    main()
