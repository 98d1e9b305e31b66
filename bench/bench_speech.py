"""Offline speech bench: TTS time per sentence and speed vs real time; grammar ASR time per phrase and
exactness on the caller lines, clean and with white noise.

Prints one JSON line per figure: {"bench": "speech", "metric", "value", "unit", ...}.
Run: ``python bench/bench_speech.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from voicelab.speech.asr import GrammarTranscriber
from voicelab.speech.corpus import CONVERSATIONS, make_conversation
from voicelab.speech.tts import VOICES, synthesize

LINES = [line for lines in CONVERSATIONS.values() for line in lines]


def emit(metric: str, value: float, unit: str, **tags: Any) -> None:
    print(json.dumps({"bench": "speech", "metric": metric, "value": value, "unit": unit, **tags}), flush=True)


def bench_tts(repeats: int) -> None:
    synthesize("Warm up.")
    times, audio_ms = [], []
    for _ in range(repeats):
        for voice in VOICES:
            for line in LINES:
                start = time.perf_counter()
                audio = synthesize(line, voice=voice)
                times.append(time.perf_counter() - start)
                audio_ms.append(audio.duration_ms)
    ms = 1000 * np.array(times)
    words = float(np.mean([len(line.split()) for line in LINES]))
    tags = {"sentences": len(ms), "mean_words": round(words, 1)}
    emit("tts_ms_per_sentence", round(float(np.median(ms)), 2), "ms", stat="median", **tags)
    emit("tts_ms_per_sentence_p95", round(float(np.percentile(ms, 95)), 2), "ms", **tags)
    ratio = float(np.sum(audio_ms) / np.sum(ms))
    emit("tts_x_realtime", round(ratio, 1), "x", baseline="real time = 1", **tags)


def bench_asr(repeats: int) -> None:
    start = time.perf_counter()
    asr = GrammarTranscriber(LINES)
    emit("asr_init_ms", round(1000 * (time.perf_counter() - start), 1), "ms", phrases=len(LINES))
    voices = ("alloy", "ash", "cedar", "shimmer")
    for snr in (None, 20, 10):
        times, audio_ms, exact, total = [], [], 0, 0
        for i, voice in enumerate(voices):
            for lines in CONVERSATIONS.values():
                conv = make_conversation(lines, voice=voice, snr_db=snr, seed=i)
                for seg in conv.segments:
                    turn = conv.audio.slice_ms(max(0.0, seg.start_ms - 300), seg.end_ms + 300)
                    for _ in range(repeats if snr is None else 1):
                        start = time.perf_counter()
                        text = asr.transcribe(turn)
                        times.append(time.perf_counter() - start)
                        audio_ms.append(turn.duration_ms)
                    exact += text == seg.text
                    total += 1
        ms = 1000 * np.array(times)
        tags = {"snr_db": snr, "noise": "white" if snr is not None else None, "phrases": total}
        emit("asr_ms_per_phrase", round(float(np.median(ms)), 2), "ms", stat="median", **tags)
        emit(
            "asr_x_realtime",
            round(float(np.sum(audio_ms) / np.sum(ms)), 1),
            "x",
            baseline="real time = 1",
            **tags,
        )
        emit("asr_exact", round(exact / total, 3), "share of phrases", **tags)


def main() -> None:
    parser = argparse.ArgumentParser(description="offline speech bench")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    bench_tts(args.repeats)
    bench_asr(args.repeats)


if __name__ == "__main__":
    main()
